"""Compare two result stores: per-case ratios, with changes beyond the measured noise flagged."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from fmtbench.stats import summarize

from .analysis import TIE, Frame, interval, outcome, ratio


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
    flag: str  # "better" | "worse" | "" (within noise)
    basis: str  # "95% CI" | "IQR" | "no spread"
    n_old: int = 0
    n_new: int = 0


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
        """How many flags two runs of identical code would raise by chance, with these interval sizes."""
        return sum(nominal_false_positive_rate(c.n_old, c.n_new) for c in self.changes if "CI" in c.basis)

    def flagged(self) -> list[Change]:
        """Changes beyond the noise, largest first."""
        out = [c for c in self.changes if c.flag]
        return sorted(out, key=lambda c: -abs(math.log(c.ratio)) if c.ratio and c.ratio > 0 else 0)


EXACT = frozenset({"file_bytes", "compression_ratio"})  # deterministic: one measurement is the value


def _basis(row) -> str:
    if row.n > 1 and row.ci_low is not None and row.ci_high is not None:
        return "95% CI"
    if row.n > 1 and row.q1 is not None and row.q3 is not None:
        return "IQR"
    return "exact" if row.metric in EXACT else "one repeat: noise unknown"


def compare(old: Frame, new: Frame, old_label: str = "old", new_label: str = "new") -> Comparison:
    """Match rows by (case, metric, cache); flag a change only when the two intervals do not overlap
    and (but for exact sizes) the medians differ by more than 1%.

    Sizes are exact, so any change in them is flagged; a timing measured once has no known noise
    and is never flagged.
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
        res = outcome(r, o)
        basis = _basis(r) if _basis(r) == _basis(o) else f"{_basis(o)} / {_basis(r)}"
        if interval(r) is None or interval(o) is None or "noise unknown" in basis:
            res = "same"
        elif r.metric not in EXACT and abs(r.median - o.median) <= TIE * max(abs(r.median), abs(o.median)):
            res = "same"  # a page of memory or a microsecond is no change, even with tight intervals
        changes.append(Change(r.case, r.metric, r.cache, r.unit, o.median, r.median, ratio(r.median, o.median),
                              "" if res == "same" else res, basis, o.n, r.n))
    old_cases, new_cases = set(old.cases(True, True)), set(new.cases(True, True))
    return Comparison(old_label, new_label, changes, sorted(old_cases - new_cases), sorted(new_cases - old_cases),
                      warnings)


@functools.lru_cache(maxsize=None)
def nominal_false_positive_rate(n_old: int, n_new: int, draws: int = 2000, seed: int = 0) -> float:
    """The chance that two sets of n_old and n_new values from one distribution get disjoint 95%
    intervals of the median (the rule `compare` flags by), from the very interval code of
    `fmtbench.stats` on seeded exchangeable draws. For n = 3 vs 3 the intervals are the ranges,
    so it is 2 * 3! 3! / 6! = 10%; for 5 vs 5 it is 0.8%."""
    if n_old < 2 or n_new < 2:
        return 0.0
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(draws):
        a, b = summarize(rng.random(n_old)), summarize(rng.random(n_new))
        hits += a.ci_high < b.ci_low or b.ci_high < a.ci_low
    return hits / draws
