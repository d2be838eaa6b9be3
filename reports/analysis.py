"""One dataset's rows as a lookup frame; Pareto fronts, best per column and noise-aware comparisons."""
from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from fmtbench.formats import formats
from fmtbench.metrics import METRICS
from fmtbench.stats import MARGIN, Verdict, interval_label, verdict

from .load import BASELINE, Problem, Results, Row

_METRIC_ORDER = {name: i for i, name in enumerate(METRICS)}
_FORMAT_ORDER = {name: i for i, name in enumerate(formats())}
PREFERRED_CACHES = ("warm", "n/a", "cold")
#: Workloads with sections of their own, kept out of the case x metric table and its stars:
#: checkpoints are Keras models, not storage-format cases, and concurrent readers are curves.
OWN_SECTION = ("checkpoint", "readers", "clients")
CHECKPOINT = "checkpoint/"  # the id prefix of checkpoint cases (fmtbench.workloads.checkpoint)


@dataclass
class Frame:
    """The measurements of one dataset (name and digest), indexed by (case, metric, cache)."""

    dataset: str
    digest: str | None
    rows: list[Row]
    problems: list[Problem] = field(default_factory=list)
    #: the equivalence margin of every verdict drawn from this frame (0.05: within 5%)
    margin: float = MARGIN

    def __post_init__(self) -> None:
        self._index = {(r.case, r.metric, r.cache): r for r in self.rows}

    def get(self, case: str, metric: str, cache: str | None = None) -> Row | None:
        """The row of (case, metric) in `cache`, or in the first of warm, n/a, cold measured."""
        if cache is not None:
            return self._index.get((case, metric, cache))
        for c in PREFERRED_CACHES:
            if (case, metric, c) in self._index:
                return self._index[(case, metric, c)]
        return None

    def median(self, case: str, metric: str, cache: str | None = None) -> float | None:
        """The median of get(...), or None."""
        row = self.get(case, metric, cache)
        return None if row is None else row.median

    def cases(self, baseline: bool = False, checkpoints: bool = False) -> list[str]:
        """Storage-format case ids measured or attempted, in registry order then id; the
        baseline and the checkpoint cases only if asked."""
        ids = {r.case for r in self.rows} | {p.case for p in self.problems}
        if not baseline:
            ids.discard(BASELINE)
        if not checkpoints:
            ids = {c for c in ids if not c.startswith(CHECKPOINT)}
        return sorted(ids, key=case_sort_key)

    def columns(self) -> list[tuple[str, str]]:
        """(metric, cache) pairs of the case x metric table, in the order of the metrics table,
        warm before cold (the workloads with sections of their own left out)."""
        cols = {(r.metric, r.cache) for r in self.rows if r.workload not in OWN_SECTION}
        return sorted(cols, key=lambda c: (_METRIC_ORDER.get(c[0], 99), PREFERRED_CACHES.index(c[1])
                                           if c[1] in PREFERRED_CACHES else 9))

    def workload_of(self, metric: str) -> str | None:
        """The workload that measured `metric` in this frame."""
        return next((r.workload for r in self.rows if r.metric == metric), None)

    def problem(self, case: str, workload: str | None, cache: str) -> Problem | None:
        """Why (case, workload, cache) has no numbers, when it failed or was skipped."""
        for p in self.problems:
            if p.case == case and p.workload == workload and p.cache in (cache, "n/a"):
                return p
        return None


def case_sort_key(case: str) -> tuple:
    """Order cases by format (registry order), the plain case first, then by id with numbers as numbers."""
    fmt = case.split("/", 1)[0]
    natural = tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", case))
    return (_FORMAT_ORDER.get(fmt, len(_FORMAT_ORDER)), "/" in case, natural)


def datasets(results: Results) -> list[tuple[str, str | None]]:
    """(dataset, digest) pairs with measurements, most recently measured last."""
    seen: dict[tuple[str, str | None], None] = {}
    for r in results.rows:
        seen.pop((r.dataset, r.digest), None)
        seen[(r.dataset, r.digest)] = None
    return list(seen)


def frame(results: Results, dataset: str | None = None) -> Frame:
    """The frame of `dataset` (default: the one measured last); digests keep different data apart."""
    pairs = datasets(results)
    if dataset is not None:
        pairs = [p for p in pairs if p[0] == dataset]
    if not pairs:
        name = dataset or (results.problems[-1].dataset if results.problems else None) or "?"
        return Frame(name, None, [], [p for p in results.problems if p.dataset in (name, None)])
    name, digest = pairs[-1]
    rows = [r for r in results.rows if (r.dataset, r.digest) == (name, digest)]
    probs = [p for p in results.problems if p.dataset in (name, None)]
    return Frame(name, digest, rows, probs)


TIE = 0.01  # values within 1% of each other count as equal on a front (a few bytes, a few microseconds)


def _cmp(x: float, y: float, better: str, tie: float) -> int:
    """+1 when x beats y by more than `tie` (relative), -1 when it loses by more, else 0."""
    if abs(x - y) <= tie * max(abs(x), abs(y)):
        return 0
    return 1 if (x > y) == (better == "higher") else -1


def dominates(a: tuple[float, float], b: tuple[float, float], better: tuple[str, str], tie: float = TIE) -> bool:
    """Whether point a is at least as good as b on both axes and better on one (ties within `tie`)."""
    res = [_cmp(x, y, d, tie) for x, y, d in zip(a, b, better)]
    return min(res) >= 0 and max(res) > 0


def pareto_front(points: dict[str, tuple[float, float]], metrics: tuple[str, str]) -> list[str]:
    """The cases no other case dominates, with directions from the metrics table, sorted by x."""
    better = (METRICS[metrics[0]].better, METRICS[metrics[1]].better)
    front = [c for c, p in points.items() if not any(dominates(q, p, better) for q in points.values())]
    return sorted(front, key=lambda c: points[c])


def best_per_column(frame: Frame, exclude: set = frozenset()) -> dict[tuple[str, str], set[str]]:
    """For each (metric, cache): the cases (baseline and `exclude`d figures left out) with the best
    median, and every case the rounds do not separate from it (equivalent or undecided).

    A column whose values are all equal has no best (nothing to choose between).
    """
    out: dict[tuple[str, str], set[str]] = {}
    for metric, cache in frame.columns():
        rows = [r for r in frame.rows if r.metric == metric and r.cache == cache and r.case != BASELINE
                and r.median is not None and (r.case, metric, cache) not in exclude]
        if len({r.median for r in rows}) < 2:
            continue
        pick = max if METRICS[metric].better == "higher" else min
        top = pick(rows, key=lambda r: r.median)
        out[(metric, cache)] = {r.case for r in rows if r.median == top.median or outcome(r, top, frame.margin) == "same"}
    return out


def interval(row: Row) -> tuple[float, float] | None:
    """The row's interval of the median (its coverage is `row.coverage`), else its IQR, else None."""
    for lo, hi in ((row.ci_low, row.ci_high), (row.q1, row.q3)):
        if lo is not None and hi is not None:
            return lo, hi
    return None


def spread_label(row: Row) -> str:
    """What the row's interval is: '95% interval of the median (7 rounds)', or 'range of 3
    rounds (covers the median 75% of the time)'."""
    return interval_label(row.n, row.coverage or 0.0)


def judge(a: Row, b: Row, margin: float = MARGIN) -> Verdict:
    """The verdict of a against b from their rounds (`fmtbench.stats.verdict`): 'better' when a
    wins at the stated coverage, 'equivalent' within `margin`, 'worse', or 'undecided'."""
    m = METRICS[a.metric]
    if a.rounds and b.rounds and a.host == b.host:  # one value per round: pairs where they share rounds
        return verdict(dict(zip(a.rounds, a.values)), dict(zip(b.rounds, b.values)), m.better, margin,
                       exact=m.exact)
    va = a.values or ([a.median] if a.median is not None else [])
    vb = b.values or ([b.median] if b.median is not None else [])
    return verdict(va, vb, m.better, margin, exact=m.exact)


def outcome(a: Row, b: Row, margin: float = MARGIN) -> str:
    """'better', 'worse' or 'same' for a against b: 'same' when they are equivalent within
    `margin` or the rounds cannot tell them apart (see `judge` for which)."""
    if a.median is None or b.median is None:
        return "same"
    kind = judge(a, b, margin).kind
    return kind if kind in ("better", "worse") else "same"


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when undefined."""
    if a is None or b is None or b == 0 or not math.isfinite(a) or not math.isfinite(b):
        return None
    return a / b


def goodness(metric: str, value: float, best: float) -> float:
    """How many times worse than the best a value is (1 = best), whichever direction is better."""
    if METRICS[metric].better == "higher":
        return best / value if value > 0 else math.inf
    return value / best if best > 0 else (1.0 if value == 0 else math.inf)


def best_row(frame: Frame, metric: str, cases: Iterable[str], cache: str | None = None) -> Row | None:
    """The row with the best median of `metric` among `cases`."""
    rows = [r for c in cases if (r := frame.get(c, metric, cache)) is not None and r.median is not None]
    if not rows:
        return None
    key = (lambda r: -r.median) if METRICS[metric].better == "higher" else (lambda r: r.median)
    return min(rows, key=key)


NOT_COLD = 0.1  # a cold repeat that began with more than this share of its file cached was not cold


def not_cold(row: Row) -> str | None:
    """Why a cold-cache measurement was not really cold (file still cached, or nothing read), else None."""
    if row.cache != "cold":
        return None
    resident = [x for x in row.extra.get("residency_before") or [] if x is not None]
    if resident and sorted(resident)[len(resident) // 2] > NOT_COLD:
        return f"{sorted(resident)[len(resident) // 2]:.0%} of the file was cached when its repeats began"
    fetched = [b for b in row.extra.get("read_bytes") or [] if b is not None]
    if fetched and max(fetched) == 0:
        return "it read nothing from storage (an in-process cache kept the data)"
    return None
