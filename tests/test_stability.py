"""Figures that survive a second run: a unit's figure does not depend on what ran before it, and
two identical runs disagree no more often than the comparison's nominal false-positive rate.

Both run real units in real worker processes (the local executor) on a small synthetic dataset,
so they are quick enough for CI; timings are noisy here, which is exactly what they measure.
"""
from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys

import pytest

from fmtbench.datasets._base import Dataset
from fmtbench.executor import LocalExecutor, Unit
from fmtbench.profiles import get_profile
from fmtbench.reports.analysis import frame
from fmtbench.reports.compare import compare, nominal_false_positive_rate
from fmtbench.reports.load import load
from fmtbench.results import ResultStore
from fmtbench.runner import Runner
from fmtbench.stats import summarize
from conftest import make_split

pytestmark = pytest.mark.slow
ROUNDS = 5  # 5 vs 5 values: disjoint 95% intervals by chance 0.8% of the time


def test_a_scan_figure_does_not_depend_on_a_training_unit_before_it(tmp_path):
    """In one long process a scan after a training unit ran 2.5x faster (npy) or 10x slower; in
    fresh workers the scans that follow a training unit and those that follow another scan must
    have overlapping 95% intervals (the rule every pick and comparison uses)."""
    ds = Dataset("synthetic", make_split(20_000), make_split(500, seed=1), "stability test data")
    profile = dataclasses.replace(get_profile("quick"), rounds=1, repeats=3, train_steps=20)
    runner = Runner(ds, profile, ResultStore(tmp_path), tmp_path / "data", executor=LocalExecutor())
    runner.prepare({"npy", "hdf5"})
    after = {"train": {"npy": [], "hdf5": []}, "scan": {"npy": [], "hdf5": []}}
    for rnd in range(ROUNDS):
        for before in ("train", "scan"):
            for case in ("npy", "hdf5"):
                other = "hdf5" if case == "npy" else "npy"
                lead = runner.executor.run(runner.task(Unit(other, before, "warm", rnd)))
                assert lead.error is None, lead.error
                out = runner.executor.run(runner.task(Unit(case, "scan", "warm", rnd)))
                assert out.error is None, out.error
                rate = next(o for o in out.observations if o.metric == "scan_samples_per_s")
                after[before][case].append(sorted(rate.values)[1])
    for case in ("npy", "hdf5"):
        a, b = summarize(after["train"][case]), summarize(after["scan"][case])
        assert a.ci_low <= b.ci_high and b.ci_low <= a.ci_high, (
            f"{case} scan after a training unit {a.median:,.0f}/s [{a.ci_low:,.0f}, {a.ci_high:,.0f}] vs "
            f"after a scan {b.median:,.0f}/s [{b.ci_low:,.0f}, {b.ci_high:,.0f}]")


def _binomial_quantile(n: int, p: float, q: float = 0.99) -> int:
    """The smallest k with P(Binomial(n, p) <= k) >= q."""
    total = 0.0
    for k in range(n + 1):
        total += math.comb(n, k) * p**k * (1 - p) ** (n - k)
        if total >= q:
            return k
    return n


def test_two_identical_runs_flag_no_more_than_chance(tmp_path):
    """Two identical small runs: the figures flagged as changed must be consistent with the
    nominal false-positive rate of the comparison (at most the 99th percentile of the binomial
    count at that rate), and no figure may be flagged in a size, which is exact."""
    args = ["run", "--profile", "quick", "-d", "synthetic", "--n", "2000", "--rounds", str(ROUNDS),
            "-w", "write,scan,random", "-c", "npy", "-c", "hdf5/contiguous", "-c", "sqlite",
            "-c", "parquet/rg1024-zstd", "--no-report"]
    env = dict(os.environ, FMTBENCH_OFFLINE="1")
    for name in ("a", "b"):
        done = subprocess.run([sys.executable, "-m", "fmtbench", *args, "--results", str(tmp_path / name)],
                              capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    old, new = (frame(load([tmp_path / name])) for name in ("a", "b"))
    assert all(r.n == ROUNDS for r in new.rows), "every figure has one value per round"
    cmp = compare(old, new)
    timed = [c for c in cmp.changes if c.metric not in ("file_bytes", "compression_ratio")]
    assert len(timed) >= 40
    rate = nominal_false_positive_rate(ROUNDS, ROUNDS)
    allowed = _binomial_quantile(len(timed), rate)
    flagged = [f"{c.case} {c.metric}: {c.old:.4g} -> {c.new:.4g}" for c in timed if c.flag]
    assert len(flagged) <= allowed, f"{len(flagged)} of {len(timed)} flagged (allowed {allowed}): {flagged}"
    assert not [c for c in cmp.changes if c.metric == "file_bytes" and c.flag]
