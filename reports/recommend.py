"""Picks by use, derived from the measurements: each with its runner-up, the gap and its interval,
a verdict (better, equivalent within the margin, or undecided: `fmtbench.stats.verdict`), and
what the pick costs on the other uses.

The uses are one table (`USES`); "balanced" ranks every case by a weighted geometric mean of how
many times worse than the best it is on each use's metric. The weights are stated on the page
and adjustable there (the page recomputes the pick from `balance_data`) or through
`recommend(..., weights=...)`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fmtbench.metrics import METRICS

from fmtbench.stats import Verdict, decide

from .analysis import TIE, Frame, best_row, goodness, judge, outcome
from .load import Row
from .panels import shuffle_quality
from .units import scale_for, times


@dataclass(frozen=True)
class Use:
    """A question a reader brings, the metric that answers it, and what the pick means."""

    name: str
    metric: str
    short: str  # its name in a list of costs: "size", "write"
    question: str
    what: str  # the deciding figure's meaning, e.g. "lowest single-sample read latency"
    figures: tuple[str, ...]  # supporting figures shown under the pick


USES = (
    Use("streaming training", "native_samples_per_s", "streaming",
        "Reading in the format's own order, through its own pipeline and a shuffle buffer.",
        "fastest feed in the format's own order", ("scan_samples_per_s", "file_bytes")),
    Use("shuffled training", "train_samples_per_s", "shuffled",
        "A fresh random permutation every epoch (random access; the same weights as from memory).",
        "fastest shuffled feed", ("epoch_s", "data_wait_share", "file_bytes")),
    Use("random single-sample serving", "random_p50_s", "serving",
        "One sample at a time by index (a lookup service, a custom sampler).",
        "lowest single-sample read latency", ("random_p99_s", "open_s", "file_bytes")),
    Use("smallest file", "file_bytes", "size", "The fewest bytes on disk (storage, transfer).",
        "smallest on disk", ("compression_ratio", "write_s", "scan_samples_per_s")),
    Use("fastest write", "write_s", "write", "Converting the dataset into the format.",
        "shortest write", ("file_bytes", "write_peak_rss_bytes")),
)
#: When a training workload did not run, its pick falls back to the read pattern it stands on.
FALLBACK = {"train_samples_per_s": ("batch_unsorted_samples_per_s", "by random-batch throughput instead"),
            "native_samples_per_s": ("scan_samples_per_s", "by sequential scan throughput instead")}
BALANCED = "balanced"
#: The balanced score's default weights: every use counts alike.
WEIGHTS = {u.metric: 1.0 for u in USES}


def parse_weights(text: str) -> dict[str, float]:
    """'size=2,write=0' -> the balanced weights (uses by short name; unnamed uses keep weight 1)."""
    from fmtbench.errors import FmtbenchError, UnknownNameError

    by_short = {u.short: u.metric for u in USES}
    out = dict(WEIGHTS)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, eq, number = part.partition("=")
        if name.strip() not in by_short:
            raise UnknownNameError("balanced-weight use", name.strip(), by_short)
        try:
            weight = float(number) if eq else math.nan
        except ValueError:
            weight = math.nan
        if not math.isfinite(weight) or weight < 0:
            raise FmtbenchError(f"weight {part!r} is not USE=NUMBER with a number >= 0 "
                                f"(e.g. size=2,write=0; uses: {', '.join(by_short)})")
        out[by_short[name.strip()]] = weight
    return out


#: a pick's verdict in words: what a reader acts on
SAYS = {"better": "decided: better than every other case",
        "equivalent": "decided: equivalent within the margin to the cases named, better than the rest",
        "undecided": "undecided: the rounds cannot tell it from the cases named; more rounds would"}


@dataclass
class Gap:
    """How far the runner-up is behind the pick: ``times`` worse (1 = equal), the interval of
    that ratio with its coverage, and the verdict ('better': the pick wins, 'equivalent' within
    the margin, 'undecided')."""

    case: str
    figure: str  # its value: "4.18 µs"
    times: float
    low: float | None = None
    high: float | None = None
    verdict: str = "undecided"
    coverage: float | None = None
    margin: float | None = None

    @classmethod
    def of(cls, case: str, figure: str, v: Verdict) -> Gap:
        return cls(case, figure, v.ratio, v.low, v.high, v.kind, v.coverage, v.margin)

    @property
    def tie(self) -> bool:
        """Not separated: equivalent or undecided."""
        return self.verdict != "better"

    def interval(self) -> str:
        """'×1.25–×1.58, 90%', or '' without an interval (one round, or a composite score)."""
        if self.low is None or self.high is None:
            return ""
        cover = f", {self.coverage:.0%}" if self.coverage is not None and self.coverage < 1 else ""
        return f"{times(self.low)}–{times(self.high)}{cover}"

    def word(self) -> str:
        """'better', 'equivalent within 5%' or 'undecided'."""
        if self.verdict == "equivalent" and self.margin is not None:
            return f"equivalent within {self.margin:.0%}"
        return {"better": "pick better"}.get(self.verdict, self.verdict)

    def text(self) -> str:
        if self.low is None or self.high is None:
            return f"runner-up {self.case}: {self.figure} ({times(self.times)} worse)"
        return (f"runner-up {self.case}: {self.figure} ({times(self.times)} worse, interval {self.interval()}; "
                f"{self.word()})")


@dataclass
class Cost:
    """The pick on another use: its figure and how many times worse than that use's best (1 = a tie)."""

    use: str  # the use's short name
    figure: str
    times: float
    best: str | None  # the best case there, when the pick is not (tied with) it

    def text(self) -> str:
        return f"{self.use} best" if self.best is None else f"{self.use} {times(self.times)}"

    def title(self) -> str:
        return self.figure + ("" if self.best is None else f": {times(self.times)} the best ({self.best})")


@dataclass
class Recommendation:
    """A use, the case chosen for it (None when not measured), why, and the figures behind it."""

    use: str
    case: str | None
    reason: str
    figures: list[str] = field(default_factory=list)
    #: cases the rounds do not separate from the pick (equivalent within the margin, or undecided)
    tied: list[str] = field(default_factory=list)
    question: str = ""
    metric: str | None = None
    figure: str = ""  # the deciding figure: "single-sample read p50 2.67 µs"
    value: str = ""  # its value alone: "2.67 µs"
    runner_up: Gap | None = None
    #: what the pick costs on the other uses (`Cost`s, in the order of `USES`).
    costs: list[Cost] = field(default_factory=list)
    #: "better" (than every other case), "equivalent" (to `equivalent`, better than the rest),
    #: "undecided" (against `undecided`), or "" (a composite or nothing to compare)
    verdict: str = ""
    equivalent: list[str] = field(default_factory=list)
    undecided: list[str] = field(default_factory=list)
    margin: float | None = None
    #: how many settling rounds its figures took ('' when none: `fmtbench.settle`)
    extra_rounds: str = ""
    note: str = ""  # shown under its figure (the streaming pick: how shuffled its order was)

    @property
    def decided(self) -> bool:
        return self.verdict in ("better", "equivalent")

    def says(self) -> str:
        """The verdict in words: 'better than every other case', 'equivalent within 5% to npy'..."""
        if self.verdict == "better":
            return "better than every other case"
        if self.verdict == "equivalent":
            return f"equivalent within {self.margin:.0%} to {_names(self.equivalent)}; better than the rest"
        if self.verdict == "undecided":
            return f"undecided against {_names(self.undecided)}"
        return ""


def _names(cases: list[str], most: int = 3) -> str:
    return ", ".join(cases[:most]) + (f" and {len(cases) - most} more" if len(cases) > most else "")


def show(frame: Frame, case: str, metric: str, cache: str | None = None) -> str:
    """'scan throughput 1.2 M samples/s' for a case, or '' when not measured."""
    row = frame.get(case, metric, cache)
    if row is None or row.median is None:
        return ""
    return f"{METRICS[metric].label} {scale_for(row.unit, [row.median]).text(row.median, True)}"


def value(row: Row) -> str:
    """The row's median in its unit: '2.67 µs'."""
    return scale_for(row.unit, [row.median]).text(row.median, True)


def _figures(frame: Frame, case: str, metrics: tuple[str, ...]) -> list[str]:
    return [s for m in metrics if (s := show(frame, case, m))]


def verdicts(frame: Frame, metric: str, cases: list[str], winner: str) -> dict[str, Verdict]:
    """The winner's verdict against each other measured case ("better" = the winner wins)."""
    top = frame.get(winner, metric)
    out = {}
    for c in cases:
        row = frame.get(c, metric)
        if c != winner and row is not None and row.median is not None:
            out[c] = judge(top, row, frame.margin)
    return out


def tied_with(frame: Frame, metric: str, cases: list[str], winner: str) -> list[str]:
    """The cases the rounds do not separate from the winner: equivalent or undecided."""
    return [c for c, v in verdicts(frame, metric, cases, winner).items() if v.kind != "better"]


def runner_up(frame: Frame, metric: str, cases: list[str], winner: str) -> Gap | None:
    """The best case after the winner, how far behind it is, and the verdict between them."""
    second = best_row(frame, metric, [c for c in cases if c != winner])
    if second is None:
        return None
    v = judge(frame.get(winner, metric), second, frame.margin)
    if not math.isfinite(v.ratio):
        return None
    return Gap.of(second.case, value(second), v)


def costs(frame: Frame, case: str, uses: list[Use], cases: list[str], exclude: set = frozenset()) -> list[Cost]:
    """The case's figure on each of `uses` and how far it is from the best of `cases` there
    (flagged figures in `exclude` are never the best)."""
    out = []
    for u in uses:
        row, best = frame.get(case, u.metric), best_row(frame, u.metric, _eligible(frame, u.metric, cases, exclude))
        if row is None or row.median is None or best is None:
            continue
        g = goodness(u.metric, row.median, best.median)
        if not math.isfinite(g):  # a zero rate: no ratio to state
            continue
        tie = g < 1 + TIE or outcome(row, best, frame.margin) == "same"
        out.append(Cost(u.short, show(frame, case, u.metric), g, None if tie else best.case))
    return out


def _eligible(frame: Frame, metric: str, cases: list[str], exclude: set) -> list[str]:
    return [c for c in cases if not any((c, metric, k) in exclude for k in ("warm", "cold", "n/a"))]


def pick(frame: Frame, use: Use, cases: list[str], exclude: set = frozenset(), metric: str | None = None,
         what: str | None = None) -> Recommendation:
    """The case with the best median of the use's metric (or `metric`) among `cases`, a flagged
    figure never picked, with its runner-up and its cost on the other uses."""
    metric = metric or use.metric
    eligible = _eligible(frame, metric, cases, exclude)
    top = best_row(frame, metric, eligible)
    if top is None:
        why = ("every figure is flagged as past what this machine can do (see 'How these numbers were taken')"
               if any(frame.get(c, metric) is not None for c in cases) else "not measured in this run")
        return Recommendation(use.name, None, f"{METRICS[metric].label}: {why}", question=use.question,
                              metric=metric)
    second = runner_up(frame, metric, eligible, top.case)
    vs = verdicts(frame, metric, eligible, top.case)
    undecided = [c for c, v in vs.items() if v.kind == "undecided"]
    equivalent = [c for c, v in vs.items() if v.kind == "equivalent"]
    kind = ("undecided" if undecided else "equivalent" if equivalent else "better") if vs else ""
    others = [u for u in USES if u.metric not in (metric, use.metric)]
    rec = Recommendation(use.name, top.case, "", _figures(frame, top.case, use.figures), equivalent + undecided,
                         question=use.question, metric=metric, runner_up=second, figure=show(frame, top.case, metric),
                         value=value(top), costs=costs(frame, top.case, others, frame.cases(), exclude),
                         verdict=kind, equivalent=equivalent, undecided=undecided, margin=frame.margin)
    rec.reason = f"{what or use.what}: {show(frame, top.case, metric)}" + (f"; {rec.says()}" if kind else "")
    if metric == "native_samples_per_s" and (q := shuffle_quality(frame, top.case)):
        rec.note = f"its order: {q}"
    return rec


def _trained(frame: Frame, cases: list[str]) -> list[str]:
    """Cases whose shuffled training reproduced the in-memory weights (or was not checked)."""
    return [c for c in cases if (r := frame.get(c, "train_samples_per_s")) is not None
            and r.extra.get("weights_match_baseline") is not False]


def recommend(frame: Frame, exclude: set = frozenset(),
              weights: Mapping[str, float] | None = None) -> list[Recommendation]:
    """One pick per use in `USES`, then the balanced pick; figures in `exclude` ((case, metric,
    cache) flagged as not credible) are never picked."""
    cases = frame.cases()
    out = []
    for use in USES:
        pool = _trained(frame, cases) if use.metric == "train_samples_per_s" else cases
        if use.metric in FALLBACK and not any(frame.get(c, use.metric) is not None for c in pool):
            metric, how = FALLBACK[use.metric]
            out.append(pick(frame, use, cases, exclude, metric, f"{use.name} not measured in this run; {how}"))
        else:
            out.append(pick(frame, use, pool, exclude))
    out.append(balance(frame, exclude, weights))
    return out


def balance_data(frame: Frame, exclude: set = frozenset()) -> dict[str, Any] | None:
    """What the balanced score stands on: per case, log(times worse than the best) on each use's
    metric measured for at least half the cases (cases missing one, or with a flagged figure, are
    not ranked). The page recomputes the pick from this when the reader changes the weights."""
    cases = [c for c in frame.cases() if not any(k[0] == c for k in exclude)]
    used = [u.metric for u in USES
            if sum(frame.median(c, u.metric) is not None for c in cases) >= max(2, math.ceil(len(cases) / 2))]
    cands = [c for c in cases if all(frame.median(c, m) is not None for m in used)]
    if len(used) < 2 or len(cands) < 1:
        return None
    best = {m: best_row(frame, m, cands).median for m in used}
    logs = {}
    for c in cands:
        g = [goodness(m, frame.median(c, m), best[m]) for m in used]
        if all(math.isfinite(v) and v > 0 for v in g):
            logs[c] = [math.log(v) for v in g]
    if not logs:
        return None
    return {"metrics": used, "labels": [METRICS[m].label for m in used],
            "uses": [next(u.short for u in USES if u.metric == m) for m in used], "cases": logs}


def scores(data: Mapping[str, Any], weights: Mapping[str, float]) -> dict[str, float]:
    """The weighted geometric mean of each case's shortfalls (1 = best on every weighted use)."""
    w = [max(0.0, float(weights.get(m, 0.0))) for m in data["metrics"]]
    total = sum(w)
    if total <= 0:
        return {}
    return {c: math.exp(sum(wi * li for wi, li in zip(w, logs)) / total) for c, logs in data["cases"].items()}


def balance(frame: Frame, exclude: set = frozenset(),
            weights: Mapping[str, float] | None = None) -> Recommendation:
    """The case closest to the best on every use at once (lowest weighted geometric-mean shortfall)."""
    question = "Closest to the best on every use at once, by weights you can change."
    data = balance_data(frame, exclude)
    weights = dict(WEIGHTS if weights is None else weights)
    score = scores(data, weights) if data else {}
    if not score:
        why = "not measured in this run (needs two or more uses measured)" if not data else "every weight is 0"
        return Recommendation(BALANCED, None, why, question=question)
    ranked = sorted(score, key=score.get)
    win = ranked[0]
    used = data["metrics"]
    stated = ", ".join(f"{METRICS[m].label} {weights.get(m, 0):g}" for m in used)
    parts = ", ".join(f"{METRICS[m].label} {times(math.exp(v))}" for m, v in zip(used, data["cases"][win]))
    reason = (f"on average {times(score[win])} from the best of each use ({parts}; ×1 = best); "
              f"weights: {stated}")
    vs = {c: balanced_verdict(frame, used, weights, win, c) for c in ranked[1:]}
    second = Gap.of(ranked[1], f"{times(score[ranked[1]])} on average", vs[ranked[1]]) if len(ranked) > 1 else None
    undecided = [c for c, v in vs.items() if v.kind == "undecided"]
    equivalent = [c for c, v in vs.items() if v.kind == "equivalent"]
    kind = ("undecided" if undecided else "equivalent" if equivalent else "better") if vs else ""
    rec = Recommendation(BALANCED, win, reason, _figures(frame, win, tuple(used)), equivalent + undecided,
                         question=question, runner_up=second,
                         costs=costs(frame, win, [u for u in USES if u.metric in used], ranked),
                         figure=f"on average {times(score[win])} from the best of each use",
                         value=f"{times(score[win])} the best, on average", verdict=kind, equivalent=equivalent,
                         undecided=undecided, margin=frame.margin)
    if kind:
        rec.reason += f"; {rec.says()}"
    return rec


def balanced_verdict(frame: Frame, metrics: list[str], weights: Mapping[str, float], win: str,
                     other: str) -> Verdict:
    """The balanced pick against `other`: the weighted geometric mean of the per-use ratios (the
    best of each use cancels out), its interval the same mean of the per-use intervals' ends, which
    holds whenever every per-use interval does: coverage at least 1 - the sum of their misses."""
    w = {m: max(0.0, float(weights.get(m, 0.0))) for m in metrics}
    total = sum(w.values())
    log_ratio = log_low = log_high = miss = 0.0
    for m in (m for m in metrics if w[m] > 0):
        v = judge(frame.get(win, m), frame.get(other, m), frame.margin)
        if v.low is None or v.high is None or v.coverage is None or not v.low > 0:
            return Verdict("undecided", math.nan, None, None, None, frame.margin)
        share = w[m] / total
        log_ratio += share * math.log(v.ratio)
        log_low, log_high = log_low + share * math.log(v.low), log_high + share * math.log(v.high)
        miss += 1 - v.coverage
    low, high, coverage = math.exp(log_low), math.exp(log_high), max(0.0, 1 - miss)
    kind = decide(low, high, frame.margin) if coverage > 0 else "undecided"
    return Verdict(kind, math.exp(log_ratio), low, high, coverage, frame.margin)
