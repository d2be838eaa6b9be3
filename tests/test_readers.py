"""The readers workload: every count and mode measured on real files, own handles per process,
the fork-after-open mistake recorded as a finding, `-w readers` through the CLI and its report."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fmtbench import cache as page_cache
from fmtbench import datasets
from fmtbench.formats import get_case, missing_dependency
from fmtbench.metrics import READER_MODES, READER_PATTERNS, readers_metric
from fmtbench.profiles import get_profile
from fmtbench.runner import Plan, check_workloads
from fmtbench.workloads import readers as rd
from fmtbench.reports.readers import verdict

PROFILE = dataclasses.replace(get_profile("quick"), readers_window_s=0.05)
OUTCOMES = {"ok", "slower", "error", "wrong data", "crashed", "hung"}


@pytest.fixture(scope="module")
def split():
    return datasets.load("synthetic", n=500, seed=0).train


def _written(case_id: str, split, folder: Path) -> tuple:
    if missing_dependency(get_case(case_id).name):
        pytest.skip(missing_dependency(get_case(case_id).name))
    case = get_case(case_id)
    path = case.default_path(folder)
    case.write(split, path)
    return case, str(path)


@pytest.mark.parametrize("cid,cache", [("npy", "cold"), ("hdf5/chunk64", "warm"), ("sqlite", "warm"),
                                           ("lmdb", "warm")])
def test_every_count_and_mode_measures_and_the_fork_finding_is_recorded(cid, cache, split, tmp_path):
    case, path = _written(cid, split, tmp_path)
    cold = (lambda: page_cache.cold([path])) if cache == "cold" else None
    obs = rd.run_readers(case, path, split, PROFILE, 0, cold)
    by = {o.metric: o for o in obs}
    for pattern in READER_PATTERNS:
        for mode in READER_MODES:
            for n in PROFILE.readers_counts:
                ob = by.pop(readers_metric(pattern, mode, n))
                assert ob.values[0] > 0 and ob.extra["readers"] == n and ob.extra["mode"] == mode
                assert ob.extra["handles"] == rd.HANDLES[mode]
                assert ob.extra["p50_s"][0] <= ob.extra["p95_s"][0] <= ob.extra["p99_s"][0]
                assert ob.extra["samples"] > 0 and ob.extra["reads"] >= n
                if cold:  # evicted before every point (the crew's maps dropped first)
                    assert ob.extra["residency_before"][0] < 0.1
                finding = ob.extra["fork_after_open"][0]
                assert finding["outcome"] in OUTCOMES and finding["readers"] == PROFILE.readers_fork_count
    # what is left: the shared handle's rate, only when it worked
    assert set(by) <= {"readers_fork_after_open_samples_per_s"}
    assert bool(by) == (finding["outcome"] in ("ok", "slower"))


def test_each_process_opens_its_own_handle_after_fork(split, tmp_path):
    case, path = _written("hdf5/chunk64", split, tmp_path)

    def holders(pid: int) -> int:
        fds = Path(f"/proc/{pid}/fd")
        return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == os.path.realpath(path))

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to see which process holds the file")
    crew = rd.ProcessCrew(case, path, split, 3)
    try:
        pids = [p.pid for p in crew.procs]
        assert len(set(pids)) == 3 and os.getpid() not in pids
        assert holders(os.getpid()) == 0  # the parent opened nothing before (or after) forking
        assert all(holders(pid) >= 1 for pid in pids)
        works = [rd.Work("random", 3, k, len(split.labels), 32, 0) for k in range(3)]
        results = crew.run(works, 0.0, 0.02)
        assert all(r["samples"] > 0 and r["wrong"] == 0 for r in results)
    finally:
        crew.close()
    assert not any(p.is_alive() for p in crew.procs)


def test_a_reader_that_reads_wrong_data_fails_the_point(split):
    results = [{"start": 0.0, "end": 1.0, "samples": 64, "latencies": np.array([0.01]), "wrong": 1,
                "read_bytes": 0}]
    with pytest.raises(RuntimeError, match="1 batches read back different data"):
        rd.summarize_point(results)


def test_shards_are_disjoint_and_cover_the_file():
    for n in (1, 2, 4, 8):
        got = np.concatenate([b for k in range(n) for b in rd.Work("scan", n, k, 1001, 64, 0).batches()])
        assert np.array_equal(got, np.arange(1001))
    a, b = (list(zip(range(3), rd.Work("random", 2, k, 1000, 64, 0).batches())) for k in (0, 1))
    assert not np.array_equal(a[0][1], b[0][1])  # each reader its own seeded order
    # a client of many clients reads its shard again until the window ends (epochs)
    again = rd.Work("scan", 2, 1, 1001, 64, 0, epochs=True).batches()
    first = np.concatenate([next(again) for _ in range(8)])  # 501 samples: 8 batches
    assert np.array_equal(first, np.arange(500, 1001)) and np.array_equal(next(again), np.arange(500, 564))


def test_readers_is_a_workload_with_both_caches():
    assert check_workloads(["readers", "scan"]) == ("scan", "readers")
    units = Plan([get_case("npy")], ("readers",), ("warm", "cold")).units()
    assert units == [("npy", "readers", "warm"), ("npy", "readers", "cold")]


def test_verdict_names_a_lock_from_the_figures():
    v = verdict("hdf5/chunk64", {"processes": {1: 100.0, 2: 190.0, 4: 195.0, 8: 190.0},
                                 "threads": {1: 100.0, 2: 104.0, 4: 103.0, 8: 101.0}}, cores=2)
    assert v["verdict"] == "serializes in one process, scales with processes"
    assert "h5py holds one lock" in v["why"][0] and "CPU-bound" in v["why"][1]
    assert v["efficiency"] == {"processes": "95%", "threads": "52%"}
    io = verdict("npy", {"processes": {1: 100.0, 2: 200.0, 4: 390.0, 8: 700.0},
                         "threads": {1: 100.0, 2: 200.0, 4: 380.0, 8: 760.0}}, cores=2)
    assert io["verdict"] == "scales" and all("waits overlap" in w for w in io["why"])


def test_run_w_readers_through_the_cli_stores_points_findings_and_renders(tmp_path):
    cases = ["npy"] + ([] if missing_dependency("lance") else ["lance/"])
    args = [sys.executable, "-m", "fmtbench", "run", "-w", "readers", "-p", "quick", "-d", "synthetic",
            "--n", "500", "--rounds", "1", "--results", str(tmp_path / "res"), "--report", str(tmp_path / "r.html")]
    for c in cases:
        args += ["-c", c]
    out = subprocess.run(args, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, FMTBENCH_OFFLINE="1"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "panicked" not in out.stderr  # a fork-after-open crash is a finding, not terminal noise
    recs = [json.loads(line) for line in (tmp_path / "res" / "results.jsonl").read_text().splitlines()]
    assert not [r for r in recs if r["kind"] == "failure"]
    got = {(r["case"], r["metric"]) for r in recs if r["kind"] == "measurement"}
    for c in (c.rstrip("/") for c in cases):  # "lance/" is lance's default case, id "lance"
        assert {(c, readers_metric(p, m, n)) for p in READER_PATTERNS for m in READER_MODES
                for n in (1, 2, 4, 8)} <= got
    html = (tmp_path / "r.html").read_text()
    assert '<section id="readers">' in html and 'href="#readers"' in html
    assert html.count("npy: random batches") >= 1 and "Fork after open" in html
    # lance's runtime often does not survive a fork (crashed or hung in every round on 60k
    # samples here; on 500 samples it sometimes works): whatever happened is a finding of the
    # unit, which still stored every point above and no failure
    for c in (c.rstrip("/") for c in cases):
        finding = next(r["extra"]["fork_after_open"][0] for r in recs
                       if r["kind"] == "measurement" and r["case"] == c)
        assert finding["outcome"] in OUTCOMES and finding["detail"]


def test_clients_without_a_cluster_are_a_skip_with_its_reason_never_an_error(tmp_path):
    """Many clients need a cluster's workers: a local run stores a skip (not done, so a later
    --resume on a cluster measures it) and runs nothing."""
    from fmtbench.clients import NEEDS_CLUSTER
    from fmtbench.executor import InlineExecutor
    from fmtbench.results import ResultStore
    from fmtbench.runner import Runner

    assert check_workloads(["clients", "readers"]) == ("readers", "clients")
    store = ResultStore(tmp_path / "res")
    Runner(datasets.load("synthetic", n=200), PROFILE, store, tmp_path / "data",
           executor=InlineExecutor()).run(Plan([get_case("npy")], ("clients",), ("warm", "cold")))
    skips = store.records("skip")
    assert [(r["workload"], r["cache"], r["reason"]) for r in skips] == \
        [("clients", c, NEEDS_CLUSTER) for _ in range(PROFILE.rounds) for c in ("warm", "cold")]
    assert store.records("done") == [] and store.records("measurement") == []
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*.npy"))


@pytest.mark.parametrize("argv,message", [
    (["-w", "clients", "--clients", "1,0"], "error: --clients 1,0: '0' is no client count; choose among 1, 2,"),
    (["-w", "scan", "--clients", "2"], "error: --clients sets the counts of the clients workload: add -w clients"),
])
def test_bad_client_counts_are_one_clear_line(argv, message, tmp_path):
    out = subprocess.run([sys.executable, "-m", "fmtbench", "run", "-d", "synthetic", "--n", "200", "-c", "npy",
                          "--results", str(tmp_path / "res"), "--no-report", *argv], capture_output=True,
                         text=True, timeout=120, env=dict(os.environ, FMTBENCH_OFFLINE="1"))
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert out.stderr.startswith(message)


def test_the_many_clients_panel_says_what_its_figures_show(tmp_path):
    from fmtbench.metrics import clients_metric
    from fmtbench.reports.analysis import frame
    from fmtbench.reports.load import load
    from fmtbench.reports.readers import many_clients, section
    from fmtbench.results import ResultStore

    store = ResultStore(tmp_path)
    for n, rate, p99 in ((1, 1000.0, 0.002), (2, 1900.0, 0.004)):
        extra = {"pattern": "random", "clients": n, "hosts": [f"h{k}" for k in range(n)],
                 "client_p50_s": [0.001], "client_p99_s": [p99], "client_rate_spread": [1.1],
                 "start_spread_s": 0.001, "wall_s": 0.3}
        store.add_measurement("npy", "clients", clients_metric("random", n), "warm", [rate], "synthetic", "d" * 64,
                              extra=extra, host=",".join(extra["hosts"]))
    fr = frame(load([tmp_path]))
    panel = many_clients(fr)
    assert panel["counts"] == [1, 2] and len(panel["charts"]) == 2
    (said,) = panel["sentences"]
    assert said["case"] == "npy" and said["text"] == ("(random batches, warm): aggregate grows ×1.90 from 1 to 2 "
                                                     "clients (95% of the ideal ×2); per-client p99 2.00 → 4.00 ms.")
    assert panel["table"][0]["cells"][1]["detail"].startswith("95% of ideal · p50 1.00 · p99 4.00 ms")
    assert section(fr, load([tmp_path]))["clients"] == panel  # shown even where readers were not measured


def test_the_crew_forks_without_a_libraries_fork_warning_on_the_terminal(split, tmp_path):
    # Lance warns "not fork-safe" on every fork of a process that imported it (a before-fork
    # hook); the crew forks before anything is opened, so the warning is noise in a run's output
    if missing_dependency("lance"):
        pytest.skip(missing_dependency("lance"))
    import warnings

    import lance  # noqa: F401  (its fork hook is what is under test)

    case, path = _written("lance", split, tmp_path)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        crew = rd.ProcessCrew(case, path, split, 1)
        crew.close()
        import multiprocessing

        # the control: lance's hook is still there, and a fork outside quiet_fork() warns
        p = multiprocessing.get_context("fork").Process(target=int)
        p.start()
        p.join()
    messages = [str(w.message) for w in seen]
    assert sum("fork-safe" in m for m in messages) == 1  # the unguarded fork, not the crew's


def test_a_cold_thread_crew_leaves_nothing_of_the_file_cached(split, tmp_path):
    # LMDB shares one map among a process's handles: dropping one handle's caches at a time left
    # the whole file mapped, and every cold point of the thread crew began 100% cached
    if missing_dependency("lmdb"):
        pytest.skip(missing_dependency("lmdb"))
    case, path = _written("lmdb", split, tmp_path)
    crew = rd.ThreadCrew(case, path, split, 2)
    try:
        works = [rd.Work("scan", 2, k, len(split.labels), 256, 0) for k in range(2)]
        crew.run(works, 0.0, 0.05)
        for reader in crew.readers:  # the control: each handle dropping its own caches in turn
            reader.drop_caches()
        before = page_cache.cold(path)
        crew.run(works, 0.0, 0.05)
        crew.drop()
        after = page_cache.cold(path)
        # what is left is what opening two handles touches (meta pages and their readahead on a
        # small file), not the file the readers read
        assert before > 0.9 and after < 0.5, (before, after)
        results = crew.run(works, 0.0, 0.02)  # the reopened handles read correctly
        assert all(r["samples"] > 0 and r["wrong"] == 0 for r in results)
    finally:
        crew.close()
