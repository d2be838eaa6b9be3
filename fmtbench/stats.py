"""Summaries of repeated measurements, and verdicts between two sets of them.

A figure is the median of its rounds (one value per round, each from its own worker process).

**The interval of a median** is distribution-free: the order statistics x(k) and x(n-k+1) cover
the true median with probability 1 - 2 P(Binomial(n, 1/2) <= k - 1), whatever the distribution
of the timings (the sign-test interval; Hollander & Wolfe, ch. 3). `median_ci` takes the
narrowest such pair that reaches `CONFIDENCE` (95%); below 6 values none does, and it returns
[min, max] with its true coverage: 75% for 3 rounds, 87.5% for 4, 93.75% for 5. Every interval
carries its coverage (`Summary.coverage`), and every page states it; nothing is called a 95%
interval that is not one. (The old bootstrap of 3 values was [min, max] called 95%.)

**A comparison of two figures** is a verdict, not an overlap of intervals: the shift in log
space between the two sets of rounds, with the Hodges-Lehmann / Mann-Whitney interval (the
order statistics of all n*m pairwise log ratios, ranks from the exact null distribution of U;
Bauer 1972), the test `asv compare` and most benchmark papers use, free of any assumption
about the timings' distribution beyond a common shape. The interval of the ratio "how many
times worse b is than a" then decides, with an equivalence margin M (default 5%):

- *equivalent within M%*: the whole interval lies inside [1/(1+M), 1+M] (interval-inside-margin,
  the same decision as two one-sided tests, TOST, at half the non-coverage each side);
- *better* / *worse*: the interval excludes 1 (separated at its stated coverage);
- *undecided*: neither: the rounds are too few or too noisy to say, and more rounds would.

With 3 rounds each, the widest pair covers 90% (1 - 2/20); 4 rounds each reach 97%. Metrics
that are exact counts (file sizes) compare their values directly.

**Paired rounds.** Every unit of a round is forked from that round's zygote, so the units of one
round share its process state (library layout, measured: a whole round 10-20% slower or faster
than the next); a ratio taken within each round cancels it. With `PAIRED_MIN` (5) or more rounds
in common, the verdict pairs them: the Hodges-Lehmann interval of the median within-round log
ratio from the Walsh averages, ranks from the exact null distribution of Wilcoxon's signed-rank
statistic (5 pairs: 93.75%, 7: 95.3%). Fewer rounds in common keep the unpaired interval, whose
coverage is higher at 3 or 4 rounds. Which one applies depends on the round counts only, never
on which interval is narrower.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

CONFIDENCE = 0.95
#: the default equivalence margin: two figures within 5% of each other are equivalent
MARGIN = 0.05
VERDICTS = ("better", "worse", "equivalent", "undecided")
PAIRED_MIN = 5  # rounds in common from which a verdict pairs them (see the module docstring)


@dataclass(frozen=True)
class Summary:
    """Median, quartiles, an interval of the median with its coverage, and the range."""

    values: list[float]
    n: int
    median: float
    q1: float
    q3: float
    iqr: float
    ci_low: float
    ci_high: float
    min: float
    max: float
    #: the probability that [ci_low, ci_high] holds the true median (see `median_ci`)
    coverage: float = 0.0


def _binomial_cdf(n: int) -> np.ndarray:
    """cdf[j] = P(Binomial(n, 1/2) <= j), for j = 0..n."""
    ks = np.arange(1, n + 1)
    # log C(n, k) accumulated to stay finite for large n
    log_comb = np.concatenate([[0.0], np.cumsum(np.log(n - ks + 1) - np.log(ks))])
    return np.cumsum(np.exp(log_comb - n * np.log(2.0)))


def median_ci_rank(n: int, level: float = CONFIDENCE) -> tuple[int, float]:
    """(k, coverage): the 1-based rank of the median interval [x(k), x(n-k+1)] of n sorted
    values, the largest k whose coverage reaches `level`, else k = 1 ([min, max]) with its own."""
    if n < 2:
        return 1, 0.0
    cdf = _binomial_cdf(n)
    return _widest_reaching([1 - 2 * cdf[k - 1] for k in range(1, n // 2 + 1)], level)


def _widest_reaching(cover: list[float], level: float) -> tuple[int, float]:
    """(k, cover[k - 1]) for the largest rank k whose coverage (decreasing in k) reaches
    `level`, else k = 1 (the widest interval there is) with its own coverage."""
    if not cover:
        return 1, 0.0
    ok = [k for k, c in enumerate(cover, start=1) if c >= level]
    k = ok[-1] if ok else 1
    return k, float(cover[k - 1])


def median_ci_coverage(n: int, level: float = CONFIDENCE) -> float:
    """The coverage of the median interval `summarize` reports for n values."""
    return median_ci_rank(n, level)[1]


def interval_label(n: int, coverage: float) -> str:
    """What an interval of n values is, in words: '95% interval (7 rounds)' or
    'range of 3 rounds (covers the median 75% of the time)'."""
    if n < 2:
        return "one round: no interval"
    if coverage >= CONFIDENCE:
        return f"{coverage:.0%} interval of the median ({n} rounds)"
    return f"range of {n} rounds (covers the median {coverage:.0%} of the time)"


def summarize(values: Iterable[float]) -> Summary:
    """Summarize measurements: median, quartiles (linear interpolation), IQR, the median's
    interval and its coverage, min, max."""
    raw = [float(v) for v in values]
    if not raw:
        raise ValueError("summarize needs at least one value")
    if not all(np.isfinite(raw)):
        raise ValueError(f"summarize needs finite values, got {raw}")
    x = np.sort(np.asarray(raw, dtype=np.float64))
    q1, median, q3 = (float(q) for q in np.percentile(x, [25, 50, 75]))
    k, coverage = median_ci_rank(len(x))
    return Summary(
        values=raw, n=len(raw), median=median, q1=q1, q3=q3, iqr=q3 - q1,
        ci_low=float(x[k - 1]), ci_high=float(x[len(x) - k]), min=float(x[0]), max=float(x[-1]),
        coverage=coverage,
    )


@lru_cache(maxsize=None)
def _mann_whitney_cdf(n: int, m: int) -> tuple[float, ...]:
    """cdf[u] = P(U <= u) under the null, U the Mann-Whitney statistic of samples of n and m."""
    # counts[i][j][u]: arrangements of i and j values with U = u (exact, integers)
    counts = [[[1] for _ in range(m + 1)] for _ in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            a, b = counts[i - 1][j], counts[i][j - 1]  # the largest value from sample 1, or from 2
            size = i * j + 1
            row = [0] * size
            for u, c in enumerate(b):
                row[u] += c
            for u, c in enumerate(a):
                row[u + j] += c
            counts[i][j] = row
    total = math.comb(n + m, n)
    return tuple(np.cumsum(counts[n][m]) / total)


def shift_ci_rank(n: int, m: int, level: float = CONFIDENCE) -> tuple[int, float]:
    """(k, coverage) of the Hodges-Lehmann interval [D(k), D(nm-k+1)] over the n*m sorted
    pairwise differences: the largest k reaching `level`, else k = 1 with its own coverage."""
    if n * m <= 60 * 60:
        cdf = _mann_whitney_cdf(n, m)
        cover = [1 - 2 * cdf[k - 1] for k in range(1, n * m // 2 + 1)]
    else:  # normal approximation of U, for very many rounds
        from statistics import NormalDist

        mu, sd = n * m / 2, math.sqrt(n * m * (n + m + 1) / 12)
        cover = [1 - 2 * NormalDist(mu, sd).cdf(k - 0.5) for k in range(1, n * m // 2 + 1)]
    return _widest_reaching(cover, level)


@lru_cache(maxsize=None)
def _signed_rank_cdf(n: int) -> tuple[float, ...]:
    """cdf[t] = P(T <= t) under the null, T Wilcoxon's signed-rank statistic of n pairs."""
    counts = [1]  # subsets of {1..k} by their sum
    for k in range(1, n + 1):
        nxt = counts + [0] * k
        for t, c in enumerate(counts):
            nxt[t + k] += c
        counts = nxt
    return tuple(np.cumsum(counts) / 2 ** n)


def signed_rank_ci_rank(n: int, level: float = CONFIDENCE) -> tuple[int, float]:
    """(k, coverage) of the interval [W(k), W(N-k+1)] over the N = n(n+1)/2 sorted Walsh averages
    of n paired differences: the largest k reaching `level`, else k = 1 with its own coverage."""
    cdf = _signed_rank_cdf(n)
    return _widest_reaching([1 - 2 * cdf[k - 1] for k in range(1, n * (n + 1) // 4 + 1)], level)


@dataclass(frozen=True)
class Verdict:
    """How b compares with a: `ratio` = how many times worse b is (1 = equal, < 1 = b is better),
    its interval [low, high] with `coverage`, and the decision `kind` at equivalence `margin`."""

    kind: str  # "better" (a beats b), "worse", "equivalent" or "undecided"
    ratio: float
    low: float | None
    high: float | None
    coverage: float | None
    margin: float
    paired: bool = False  # the interval pairs the rounds the two figures share

    @property
    def decided(self) -> bool:
        return self.kind != "undecided"


def _worse_by(better: str, a: float, b: float) -> float:
    """How many times worse b is than a (b/a for lower-is-better, a/b for higher)."""
    num, den = (b, a) if better == "lower" else (a, b)
    if den == 0:
        return 1.0 if num == 0 else math.inf
    return num / den


def decide(low: float, high: float, margin: float) -> str:
    if 1 / (1 + margin) <= low and high <= 1 + margin:
        return "equivalent"
    if low > 1:
        return "better"
    if high < 1:
        return "worse"
    return "undecided"


def paired_verdict(a: Mapping[int, float], b: Mapping[int, float], better: str, margin: float = MARGIN,
                   level: float = CONFIDENCE) -> Verdict | None:
    """The verdict over the rounds `a` and `b` share ({round: value}), paired within each round;
    None when they share fewer than `PAIRED_MIN` rounds (or a value is not positive)."""
    common = sorted(set(a) & set(b))
    if len(common) < PAIRED_MIN or min(min(a[r], b[r]) for r in common) <= 0:
        return None
    d = np.array([math.log(b[r] / a[r]) for r in common])  # > 0: b is the larger
    if better == "higher":
        d = -d
    walsh = np.sort([(d[i] + d[j]) / 2 for i in range(len(d)) for j in range(i, len(d))])
    k, coverage = signed_rank_ci_rank(len(d), level)
    low, high = float(np.exp(walsh[k - 1])), float(np.exp(walsh[len(walsh) - k]))
    ratio = _worse_by(better, float(np.median([a[r] for r in common])), float(np.median([b[r] for r in common])))
    return Verdict(decide(low, high, margin), ratio, low, high, coverage, margin, paired=True)


def verdict(a: Sequence[float] | Mapping[int, float], b: Sequence[float] | Mapping[int, float], better: str,
            margin: float = MARGIN, exact: bool = False, level: float = CONFIDENCE) -> Verdict:
    """Whether the figure with rounds `a` is better than, equivalent to, or worse than the one
    with rounds `b` ("better" means a wins), or undecided; see the module docstring. Given as
    {round: value}, rounds they share pair when there are `PAIRED_MIN` of them."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        if not exact and (v := paired_verdict(a, b, better, margin, level)) is not None:
            return v
        a, b = list(a.values()), list(b.values())
    a = [float(v) for v in a if v is not None and math.isfinite(v)]
    b = [float(v) for v in b if v is not None and math.isfinite(v)]
    if not a or not b:
        return Verdict("undecided", math.nan, None, None, None, margin)
    ratio = _worse_by(better, float(np.median(a)), float(np.median(b)))
    if exact or (min(a) == max(a) and min(b) == max(b) and (len(a) > 1 and len(b) > 1)):
        # a count (bytes), or figures with no spread at all: the values are the answer
        return Verdict(decide(ratio, ratio, margin), ratio, ratio, ratio, 1.0, margin)
    if min(a) <= 0 or min(b) <= 0 or not math.isfinite(ratio):
        return Verdict("undecided", ratio, None, None, None, margin)
    la, lb = np.log(a), np.log(b)
    d = np.sort((lb[None, :] - la[:, None]).ravel())  # log(b / a) for every pair
    if better == "higher":
        d = -d[::-1]
    k, coverage = shift_ci_rank(len(a), len(b), level)
    low, high = float(np.exp(d[k - 1])), float(np.exp(d[len(d) - k]))
    if coverage <= 0:
        return Verdict("undecided", ratio, low, high, coverage, margin)
    return Verdict(decide(low, high, margin), ratio, low, high, coverage, margin)


def percentiles(samples: Iterable[float] | np.ndarray,
                ps: Sequence[float] = (50, 95, 99, 99.9)) -> dict[float, float]:
    """Percentiles of a latency distribution, as {p: value} (linear interpolation)."""
    x = np.asarray(samples if isinstance(samples, np.ndarray) else list(samples), dtype=np.float64)
    if x.size == 0:
        raise ValueError("percentiles needs at least one sample")
    return {float(p): float(v) for p, v in zip(ps, np.percentile(x, list(ps)))}
