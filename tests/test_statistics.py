"""The intervals and verdicts every pick, star, claim and comparison stands on (fmtbench.stats)."""
from __future__ import annotations

import math
from itertools import permutations

import numpy as np
import pytest

from fmtbench import stats


@pytest.mark.parametrize("n, coverage", [(2, 0.5), (3, 0.75), (4, 0.875), (5, 0.9375), (6, 1 - 2 / 64)])
def test_the_median_interval_states_its_true_coverage(n, coverage):
    s = stats.summarize(range(1, n + 1))
    assert s.coverage == pytest.approx(coverage)
    if n < 6:  # no pair of order statistics reaches 95%: the whole range, called what it is
        assert (s.ci_low, s.ci_high) == (1, n)
        assert f"range of {n} rounds (covers the median {coverage:.0%}" in stats.interval_label(n, s.coverage)
    else:
        assert stats.interval_label(n, s.coverage).startswith("97% interval of the median")


def test_the_median_interval_covers_as_often_as_it_says():
    rng = np.random.default_rng(1)
    for n in (3, 5, 9):
        hits = 0
        for _ in range(4000):
            s = stats.summarize(rng.lognormal(0.0, 0.5, n))  # true median 1
            hits += s.ci_low <= 1.0 <= s.ci_high
        assert hits / 4000 == pytest.approx(stats.median_ci_coverage(n), abs=0.02)


def _exact_u_cdf(n: int, m: int) -> list[float]:
    """P(U <= u) by enumerating every arrangement of n + m distinct values."""
    counts: dict[int, int] = {}
    labels = [0] * n + [1] * m
    seen = set()
    for perm in permutations(labels):
        if perm in seen:
            continue
        seen.add(perm)
        u = sum(1 for i, a in enumerate(perm) if a == 0 for b in perm[i + 1:] if b == 1)
        counts[u] = counts.get(u, 0) + 1
    total = sum(counts.values())
    return list(np.cumsum([counts.get(u, 0) for u in range(n * m + 1)]) / total)


@pytest.mark.parametrize("n, m", [(3, 3), (2, 4), (4, 3)])
def test_the_mann_whitney_distribution_matches_enumeration(n, m):
    assert stats._mann_whitney_cdf(n, m) == pytest.approx(_exact_u_cdf(n, m))
    assert stats.shift_ci_rank(3, 3) == (1, pytest.approx(0.9))


def test_identical_distributions_are_flagged_as_often_as_the_coverage_allows():
    rng = np.random.default_rng(7)
    flagged = 0
    for _ in range(3000):
        v = stats.verdict(rng.lognormal(0, 0.3, 3), rng.lognormal(0, 0.3, 3), "lower")
        flagged += v.kind in ("better", "worse")
    assert flagged / 3000 == pytest.approx(0.10, abs=0.02)


@pytest.mark.parametrize("a, b, better, kind", [
    ([1.0, 1.01, 0.99], [2.0, 2.1, 1.9], "lower", "better"),
    ([2.0, 2.1, 1.9], [1.0, 1.01, 0.99], "lower", "worse"),
    ([2.0, 2.1, 1.9], [1.0, 1.01, 0.99], "higher", "better"),
    ([1.0, 1.01, 0.99], [1.01, 1.0, 1.02], "lower", "equivalent"),
    ([1.0, 1.3, 0.8], [1.1, 1.0, 1.4], "higher", "undecided"),
    ([5.0], [6.0], "lower", "undecided"),  # one round each: nothing to stand on
])
def test_verdicts(a, b, better, kind):
    v = stats.verdict(a, b, better)
    assert v.kind == kind
    if v.low is not None:
        assert v.low <= v.ratio <= v.high


def test_exact_counts_compare_by_value_and_the_margin_decides_equivalence():
    assert stats.verdict([100], [104], "lower", exact=True).kind == "equivalent"
    assert stats.verdict([100], [106], "lower", exact=True).kind == "better"
    assert stats.verdict([100], [106], "lower", margin=0.1, exact=True).kind == "equivalent"
    v = stats.verdict([1.0, 1.01, 0.99], [1.03, 1.04, 1.02], "lower", margin=0.01)
    assert v.kind == "better" and math.isclose(v.ratio, 1.03 / 1.0)


def test_the_signed_rank_distribution_matches_enumeration():
    from itertools import product

    for n in (3, 4, 6):
        sums = sorted(sum(k + 1 for k, s in enumerate(signs) if s) for signs in product((0, 1), repeat=n))
        cdf = [sum(1 for t in sums if t <= u) / len(sums) for u in range(n * (n + 1) // 2 + 1)]
        assert stats._signed_rank_cdf(n) == pytest.approx(cdf)
    assert [stats.signed_rank_ci_rank(n)[1] for n in (3, 5, 7)] == pytest.approx([0.75, 0.9375, 122 / 128])


def test_rounds_shared_by_two_figures_pair_and_cancel_what_a_round_shares():
    # each round's zygote shifts every unit of the round alike: unpaired, the shift hides a 5% gap
    shift = [1.0, 0.8, 1.15, 0.9, 1.05]
    a = {r: 100.0 * s for r, s in enumerate(shift)}
    b = {r: 95.0 * s * (1 + 0.004 * (-1) ** r) for r, s in enumerate(shift)}
    paired = stats.verdict(a, b, "higher")
    assert paired.paired and paired.kind == "better" and paired.coverage == pytest.approx(0.9375)
    assert stats.verdict(list(a.values()), list(b.values()), "higher").kind == "undecided"
    few = stats.verdict({r: a[r] for r in range(4)}, {r: b[r] for r in range(4)}, "higher")
    assert not few.paired  # 4 rounds in common: the unpaired interval (97%) rather than 87.5% paired
