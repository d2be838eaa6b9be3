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
ROUNDS = 5  # 5 vs 5 values: disjoint ranges by chance 0.8%, a flagged comparison 3.2% of the time
# A disagreement is measured again from scratch before it fails the test: one by chance repeats
# with about the square of its probability, an order or process effect repeats every time. Seen
# here: a full test run on this 2-core machine failed a single attempt about once in seven.
ATTEMPTS = 2


def test_a_scan_figure_does_not_depend_on_a_training_unit_before_it(tmp_path):
    """In one long process a scan after a training unit ran 2.5x faster (npy) or 10x slower; in
    fresh workers the scans that follow a training unit and those that follow another scan must
    have overlapping ranges of 5 rounds (apart by chance 0.8% of the time)."""
    ds = Dataset("synthetic", make_split(20_000), make_split(500, seed=1), "stability test data")
    profile = dataclasses.replace(get_profile("quick"), rounds=1, repeats=3, train_steps=20)
    runner = Runner(ds, profile, ResultStore(tmp_path), tmp_path / "data", executor=LocalExecutor())
    runner.prepare({"npy", "hdf5"})
    problems = []
    for _ in range(ATTEMPTS):
        problems = _scans_after(runner)
        if not problems:
            return
    raise AssertionError(f"in {ATTEMPTS} fresh measurements: {problems}")


def _scans_after(runner: Runner) -> list[str]:
    """npy and hdf5 scan rates after a training unit and after a scan unit; the cases whose
    ranges do not overlap."""
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
    problems = []
    for case in ("npy", "hdf5"):
        a, b = summarize(after["train"][case]), summarize(after["scan"][case])
        if not (a.ci_low <= b.ci_high and b.ci_low <= a.ci_high):
            problems.append(f"{case} scan after a training unit {a.median:,.0f}/s [{a.ci_low:,.0f}, "
                            f"{a.ci_high:,.0f}] vs after a scan {b.median:,.0f}/s [{b.ci_low:,.0f}, {b.ci_high:,.0f}]")
    return problems


def _binomial_quantile(n: int, p: float, q: float = 0.99) -> int:
    """The smallest k with P(Binomial(n, p) <= k) >= q."""
    total = 0.0
    for k in range(n + 1):
        total += math.comb(n, k) * p**k * (1 - p) ** (n - k)
        if total >= q:
            return k
    return n


def test_two_identical_runs_flag_no_more_than_chance(tmp_path):
    """Two identical small runs: the units with a figure flagged as changed must be consistent
    with the comparison's nominal false-positive rate, and no size may be flagged (sizes are exact).

    The figures of one unit are not independent (a slow moment moves its p50, p95, p99 and both
    batch rates together), so the count is over units (case, workload), each flagged when any of
    its k timed figures is; by the union bound its chance is at most k times the per-figure rate.
    The test allows up to the 99th percentile of that binomial count."""
    args = ["run", "--profile", "quick", "-d", "synthetic", "--n", "2000", "--rounds", str(ROUNDS),
            "-w", "write,scan,random", "-c", "npy", "-c", "hdf5/contiguous", "-c", "sqlite",
            "-c", "parquet/rg1024-zstd", "--no-report"]
    failures = []
    for attempt in range(ATTEMPTS):
        failure = _compare_two_runs(tmp_path / str(attempt), args)
        if failure is None:
            return
        failures.append(failure)
    raise AssertionError(f"in {ATTEMPTS} fresh pairs of runs: {failures}")


def _compare_two_runs(folder, args: list[str]) -> str | None:
    """Run `args` twice into `folder`; why the comparison flags more than chance allows, or None."""
    folder.mkdir()
    env = dict(os.environ, FMTBENCH_OFFLINE="1")
    for name in ("a", "b"):
        done = subprocess.run([sys.executable, "-m", "fmtbench", *args, "--results", str(folder / name)],
                              capture_output=True, text=True, env=env, timeout=600, cwd=folder)
        assert done.returncode == 0, done.stderr[-2000:]
    old, new = (frame(load([folder / name])) for name in ("a", "b"))
    assert all(r.n == ROUNDS for r in new.rows), "every figure has one value per round"
    cmp = compare(old, new)
    assert not [c for c in cmp.changes if c.metric == "file_bytes" and c.flag]
    workload = {(r.case, r.metric, r.cache): r.workload for r in new.rows}
    units: dict[tuple[str, str], list] = {}
    for c in cmp.changes:
        if c.metric not in ("file_bytes", "compression_ratio"):
            units.setdefault((c.case, workload[(c.case, c.metric, c.cache)]), []).append(c)
    assert len(units) >= 12  # 6 cases (a format name means all its representative cases) x 3 workloads
    rate = nominal_false_positive_rate(ROUNDS, ROUNDS)
    k = max(len(v) for v in units.values())
    allowed = _binomial_quantile(len(units), min(1.0, k * rate))
    flagged = {u: [f"{c.metric}: {c.old:.4g} -> {c.new:.4g}" for c in v if c.flag] for u, v in units.items()}
    flagged = {u: f for u, f in flagged.items() if f}
    if len(flagged) > allowed:
        return f"{len(flagged)} of {len(units)} units flagged (allowed {allowed}): {flagged}"
    return None
