"""Summaries of repeated measurements: median, quartiles and a 95% confidence interval of the median.

The confidence interval is distribution-free. With n >= 6 values it is the order-statistic
(binomial) interval: the sorted values x(k) and x(n-k+1), with k the largest rank such that
P(Binomial(n, 1/2) < k) <= 2.5%, so the interval covers the true median with probability
>= 95% whatever the distribution of the timings. Below 6 values no pair of order statistics
reaches 95% (for n = 5, [min, max] covers only 93.75%), so the interval is a percentile
bootstrap of the median with a fixed seed: deterministic, but only indicative — use more
repeats when the spread matters.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
_MIN_BINOMIAL_N = 6
_BOOTSTRAP_DRAWS = 2000
_BOOTSTRAP_SEED = 20240601


@dataclass(frozen=True)
class Summary:
    """Median, quartiles, 95% CI of the median and range of a list of measurements."""

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


def _binomial_rank(n: int, alpha: float = 1 - CONFIDENCE) -> int:
    """Largest 1-based rank k with P(Binomial(n, 1/2) <= k - 1) <= alpha / 2 (0 when none)."""
    ks = np.arange(1, n + 1)
    # log pmf(k) = log C(n, k) - n log 2, with log C(n, k) accumulated to stay finite for large n.
    log_comb = np.concatenate([[0.0], np.cumsum(np.log(n - ks + 1) - np.log(ks))])
    cdf = np.cumsum(np.exp(log_comb - n * np.log(2.0)))  # cdf[j] = P(X <= j)
    ok = np.nonzero(cdf <= alpha / 2)[0]
    return int(ok[-1]) + 1 if ok.size else 0


def _median_ci(x: np.ndarray) -> tuple[float, float]:
    n = len(x)
    if n == 1:
        return float(x[0]), float(x[0])
    if n >= _MIN_BINOMIAL_N:
        k = _binomial_rank(n)
        return float(x[k - 1]), float(x[n - k])
    rng = np.random.default_rng(_BOOTSTRAP_SEED)
    medians = np.median(x[rng.integers(0, n, size=(_BOOTSTRAP_DRAWS, n))], axis=1)
    lo, hi = np.percentile(medians, [50 * (1 - CONFIDENCE), 50 * (1 + CONFIDENCE)])
    return float(lo), float(hi)


def summarize(values: Iterable[float]) -> Summary:
    """Summarize measurements: median, quartiles (linear interpolation), IQR, 95% CI, min, max."""
    raw = [float(v) for v in values]
    if not raw:
        raise ValueError("summarize needs at least one value")
    if not all(np.isfinite(raw)):
        raise ValueError(f"summarize needs finite values, got {raw}")
    x = np.sort(np.asarray(raw, dtype=np.float64))
    q1, median, q3 = (float(q) for q in np.percentile(x, [25, 50, 75]))
    ci_low, ci_high = _median_ci(x)
    return Summary(
        values=raw, n=len(raw), median=median, q1=q1, q3=q3, iqr=q3 - q1,
        ci_low=ci_low, ci_high=ci_high, min=float(x[0]), max=float(x[-1]),
    )


def percentiles(samples: Iterable[float] | np.ndarray,
                ps: Sequence[float] = (50, 95, 99, 99.9)) -> dict[float, float]:
    """Percentiles of a latency distribution, as {p: value} (linear interpolation)."""
    x = np.asarray(samples if isinstance(samples, np.ndarray) else list(samples), dtype=np.float64)
    if x.size == 0:
        raise ValueError("percentiles needs at least one sample")
    return {float(p): float(v) for p, v in zip(ps, np.percentile(x, list(ps)))}
