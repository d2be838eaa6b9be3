"""Compare two result stores: per-case ratios, each a verdict of the rounds (`fmtbench.stats.verdict`):
better or worse (flagged), equivalent within the margin, or undecided."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from fmtbench.metrics import METRICS
from fmtbench.stats import shift_ci_rank

from .analysis import Frame, judge, ratio


@dataclass
class Change:
    """One (case, metric, cache) in both stores: new / old, and 'better'/'worse' when beyond noise."""

    case: str
    metric: str
    cache: str
    unit: str
    old: float
    new: float
    ratio: float | None
    flag: str  # "better" | "worse" | "" (equivalent or undecided)
    basis: str  # "90% interval of the ratio" | "exact" | "one round: noise unknown"
    n_old: int = 0
    n_new: int = 0
    verdict: str = "undecided"  # "better" | "worse" | "equivalent" | "undecided"
    #: how often the ratio's interval holds the true ratio: 1 - coverage is the chance that identical
    #: code is flagged (None: exact, or no interval)
    coverage: float | None = None


@dataclass
class Comparison:
    """All changes between a baseline frame (old) and a candidate frame (new)."""

    old_label: str
    new_label: str
    changes: list[Change]
    only_old: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def expected_by_chance(self) -> float:
        """How many flags two runs of identical code would raise by chance: each tested change's
        interval misses the true ratio (1) with probability 1 - its coverage."""
        return sum(1 - c.coverage for c in self.changes if c.coverage is not None and c.coverage < 1)

    def counts(self) -> dict[str, int]:
        """How many changes got each verdict."""
        out = {"better": 0, "worse": 0, "equivalent": 0, "undecided": 0}
        for c in self.changes:
            out[c.verdict] += 1
        return out

    def flagged(self) -> list[Change]:
        """Changes beyond the noise, largest first."""
        out = [c for c in self.changes if c.flag]
        return sorted(out, key=lambda c: -abs(math.log(c.ratio)) if c.ratio and c.ratio > 0 else 0)


def compare(old: Frame, new: Frame, old_label: str = "old", new_label: str = "new") -> Comparison:
    """Match rows by (case, metric, cache) and judge each new figure against the old: flagged
    'better' or 'worse' only when the interval of the ratio excludes 1 (at its stated coverage).

    Sizes are exact, so any change in them beyond the margin is flagged; a timing measured once
    has no known noise and is never flagged.
    """
    warnings = []
    if old.dataset != new.dataset:
        warnings.append(f"different datasets: {old.dataset} vs {new.dataset}; ratios compare different data")
    elif old.digest and new.digest and old.digest != new.digest:
        warnings.append(f"same dataset name {old.dataset!r} but different content digests "
                        f"({old.digest[:12]} vs {new.digest[:12]}): e.g. a different --n; ratios are indicative")
    for f, label in ((old, old_label), (new, new_label)):
        if not f.rows:
            warnings.append(f"{label} has no measurements of dataset {f.dataset!r}: nothing to compare")
    index = {(r.case, r.metric, r.cache): r for r in old.rows}
    changes = []
    for r in new.rows:
        o = index.get((r.case, r.metric, r.cache))
        if o is None or o.median is None or r.median is None:
            continue
        exact = METRICS[r.metric].exact
        v = judge(r, o, new.margin)
        if exact:
            basis = "exact"
        elif min(r.n, o.n) < 2 or v.coverage is None:
            basis, v = "one round: noise unknown", None
        else:
            basis = f"{v.coverage:.0%} interval of the ratio"
        kind = v.kind if v is not None else "undecided"
        changes.append(Change(r.case, r.metric, r.cache, r.unit, o.median, r.median, ratio(r.median, o.median),
                              kind if kind in ("better", "worse") else "", basis, o.n, r.n, kind,
                              None if v is None else v.coverage))
    old_cases, new_cases = set(old.cases(True, True)), set(new.cases(True, True))
    return Comparison(old_label, new_label, changes, sorted(old_cases - new_cases), sorted(new_cases - old_cases),
                      warnings)


def nominal_false_positive_rate(n_old: int, n_new: int) -> float:
    """The chance that two runs of identical code, n_old and n_new rounds of one distribution, get
    a change flagged: the miss rate of the ratio's interval, 2 P(U <= k - 1) of Mann-Whitney's U
    (3 vs 3 rounds: 2/20 = 10%; 5 vs 5: 8/252 = 3.2%)."""
    if n_old < 2 or n_new < 2:
        return 0.0
    return 1 - shift_ci_rank(n_old, n_new)[1]
