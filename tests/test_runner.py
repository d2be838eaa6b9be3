"""`fmtbench run`: the store's schema, bad input caught before work, resume after SIGKILL."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

from fmtbench.datasets._base import Dataset
from fmtbench.formats import cases
from fmtbench.metrics import METRICS
from fmtbench.profiles import get_profile
from fmtbench.executor import InlineExecutor
from fmtbench.results import SCHEMA_VERSION, ResultStore
from fmtbench.runner import Plan, Runner
from conftest import make_split

FAST = ["--profile", "quick", "--repeats", "2", "-d", "synthetic", "--n", "400"]


def fmtbench(*args: str, **kw) -> subprocess.CompletedProcess:
    """Run the CLI from a fresh temporary folder, so its default outputs (reports/...) never land
    in the checkout: a test once replaced a user's finished report there."""
    env = dict(os.environ, FMTBENCH_OFFLINE="1")
    kw.setdefault("cwd", tempfile.mkdtemp(prefix="fmtbench-cli-"))
    return subprocess.run([sys.executable, "-m", "fmtbench", *args], capture_output=True, text=True,
                          env=env, timeout=300, **kw)


def records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines() if line]


def test_quick_run_writes_a_valid_store(tmp_path):
    out = fmtbench("run", *FAST, "-c", "npy", "-c", "sqlite", "-w", "write,scan,random",
                   "--cache", "both", "--results", str(tmp_path))
    assert out.returncode == 0, out.stderr
    recs = records(tmp_path)
    kinds = Counter(r["kind"] for r in recs)
    assert kinds["provenance"] == 1 and kinds["failure"] == 0
    prov = next(r for r in recs if r["kind"] == "provenance")
    assert prov["dataset"] == "synthetic" and len(prov["dataset_digest"]) == 64
    assert prov["machine"]["libraries"]["hdf5"] and prov["argv"]
    assert "frozen" in prov["machine"]["executor"]["gc"]
    ms = [r for r in recs if r["kind"] == "measurement"]
    for r in ms:
        assert r["schema"] == SCHEMA_VERSION
        assert r["unit"] == METRICS[r["metric"]].unit and r["better"] == METRICS[r["metric"]].better
        assert r["q1"] <= r["median"] <= r["q3"] and r["n"] == len(r["values"])
    got = {(r["case"], r["metric"], r["cache"]) for r in ms}
    ran = {c.case_id for c in cases(["npy", "sqlite"], full=False)}  # a format name means its cases
    assert {r["case"] for r in ms} == ran
    for case in ran:
        assert (case, "file_bytes", "n/a") in got
        for cache in ("warm", "cold"):
            assert (case, "scan_samples_per_s", cache) in got
            assert (case, "random_p99_s", cache) in got
    cold = [r for r in ms if r["cache"] == "cold" and r["metric"] == "scan_samples_per_s"]
    assert all(max(r["extra"]["residency_before"]) < 0.05 for r in cold)  # really evicted
    rounds = get_profile("quick").rounds
    done = Counter((r["case"], r["workload"], r["cache"], r["round"]) for r in recs if r["kind"] == "done")
    assert set(done.values()) == {1} and len(done) == len(ran) * (1 + 2 + 2) * rounds
    # every unit-round ran in a worker process of its own
    pids = [r["extra"]["machine"][0]["pid"] for r in ms if r["metric"] in ("scan_samples_per_s", "write_s")]
    assert len(set(pids)) == len(pids) == len(ran) * (1 + 2) * rounds
    zygotes: dict[int, set] = {}
    for r in ms:
        zygotes.setdefault(r["round"], set()).add(r["extra"]["machine"][0]["zygote"])
    assert all(len(z) == 1 for z in zygotes.values()), "a round's units fork from one zygote"
    assert len(set.union(*zygotes.values())) == rounds, "each round has a zygote of its own"
    # the zygote froze what its imports left (numpy, h5py, TensorFlow...), so a full collection
    # in a worker walks only the worker's objects
    assert min(r["extra"]["machine"][0]["gc_frozen"] for r in ms) > 50_000


@pytest.mark.parametrize("args, message", [
    (["-w", "scan,fly"], "unknown workload 'fly'; valid: checkpoint, clients, native, random, readers, scan, train, write"),
    (["-c", "parquet/rg1024-brotli"], "unknown option of parquet 'brotli'"),
    (["-c", "nosuch/*"], "unknown case pattern"),
])
def test_bad_input_fails_before_any_work(tmp_path, args, message):
    out = fmtbench("run", *FAST, *args, "--results", str(tmp_path / "r"))
    assert out.returncode == 2
    assert message in out.stderr
    assert not (tmp_path / "r").exists()


def test_unwritable_results_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = fmtbench("run", *FAST, "-c", "npy", "--results", str(blocker / "r"))
    assert out.returncode == 2 and str(blocker) in out.stderr


def test_resume_after_sigkill_keeps_finished_units(tmp_path):
    ids = ["npy", "sqlite", "csv", "parquet/rg1024-zstd"]
    args = ["run", *FAST, *sum((["-c", i] for i in ids), []),
            "-w", "write,scan,random", "--results", str(tmp_path)]
    env = dict(os.environ, FMTBENCH_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-m", "fmtbench", *args], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = tmp_path / "results.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if store.exists() and store.read_text().count('"kind":"done"') >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed; give it more work"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {(r["case"], r["workload"], r["cache"], r["round"]) for r in records(tmp_path) if r["kind"] == "done"}
    assert before

    out = fmtbench(*args, "--resume")
    assert out.returncode == 0, out.stderr
    recs = records(tmp_path)
    done = Counter((r["case"], r["workload"], r["cache"], r["round"]) for r in recs if r["kind"] == "done")
    assert set(done.values()) == {1}, "a finished unit-round ran twice"
    assert len(done) == len(cases(ids, full=False)) * 3 * get_profile("quick").rounds
    measured = Counter((r["case"], r["workload"], r["cache"], r["round"], r["metric"])
                       for r in recs if r["kind"] == "measurement")
    assert {n for (c, w, k, rnd, _), n in measured.items() if (c, w, k, rnd) in before} == {1}


def test_a_failing_case_is_recorded_and_the_run_goes_on(tmp_path):
    ds = Dataset("synthetic", make_split(300), make_split(50, seed=1), "test data")
    store = ResultStore(tmp_path)
    plan = Plan(cases(["npy", "sqlite"]), ("write", "scan"), ("warm",))
    profile = get_profile("quick")
    damaged = plan.cases[0].default_path(tmp_path / "data", "train")
    damaged.mkdir(parents=True)
    (damaged / "images.npy").write_bytes(b"\x93NUMPY not really")  # the reads meet a damaged file
    (damaged / "labels.npy").write_bytes(b"")
    Runner(ds, profile, store, tmp_path / "data").run(plan)
    failures = store.records("failure")
    assert {(f["case"], f["workload"]) for f in failures} == {("npy", "scan")}
    assert len(failures) == profile.rounds and str(damaged) in failures[0]["error"]["message"]
    assert any(r["case"] == "sqlite" and r["workload"] == "scan" for r in store.records("measurement"))
    assert any(r["case"] == "npy" and r["workload"] == "write" for r in store.records("measurement"))
    assert len(store.done_keys()) == 2 * len(plan.cases) * profile.rounds


@pytest.mark.parametrize("cache, min_time", [("warm", 0.0), ("cold", 0.0), ("warm", 0.05), ("cold", 0.05)])
def test_every_timed_repeat_starts_with_empty_library_caches(tmp_path, monkeypatch, cache, min_time):
    """A 64 MiB chunk cache holds this whole file: a repeat must not read what the last decoded."""
    from fmtbench.formats import get_case
    from fmtbench.formats.hdf5 import HDF5Reader

    events: list[str] = []
    real_drop, real_scan = HDF5Reader.drop_caches, HDF5Reader._scan

    def drop(self):
        events.append("drop")
        real_drop(self)

    def scan(self, batch_size):
        events.append("scan")
        yield from real_scan(self, batch_size)

    monkeypatch.setattr(HDF5Reader, "drop_caches", drop)
    monkeypatch.setattr(HDF5Reader, "_scan", scan)
    ds = Dataset("synthetic", make_split(300), make_split(50, seed=1), "test data")
    profile = get_profile("quick")
    plan = Plan([get_case("hdf5/chunk64-gzip4-cache64m")], ("scan",), (cache,))
    profile = dataclasses.replace(profile, rounds=1, min_time=min_time)
    store = ResultStore(tmp_path)
    Runner(ds, profile, store, tmp_path / "data", executor=InlineExecutor()).run(plan)
    loops = store.records("measurement")[0]["extra"]["loops"][0]
    assert (loops > 1) == (min_time > 0)  # a 300-sample scan lasts far less than 50 ms: calibrated
    # warm: one more drop when the unit puts the file into its warm state, before the warm-up;
    # a calibrated value calls the scan `loops` times, each after its own drop (and eviction)
    # first of all, the content check's scan (untimed: a reader's bytes must be the dataset's)
    lead = ["scan"] + (["drop"] if cache == "warm" else [])
    assert events == lead + ["drop", "scan"] * (profile.warmup + profile.repeats * loops)


def test_a_second_run_into_a_store_in_use_is_refused_naming_the_holder(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from fmtbench.results import ResultStore; "
         f"ResultStore({str(tmp_path)!r}).claim(); print('held', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        out = fmtbench("run", *FAST, "-c", "npy", "-w", "scan", "--results", str(tmp_path))
        assert out.returncode == 2
        assert f"is in use by another fmtbench run (pid {holder.pid})" in out.stderr
        assert "Traceback" not in out.stderr and not records(tmp_path)
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # the kernel releases the lock however the holder dies
        holder.wait()
    ResultStore(tmp_path).claim()


def test_a_failed_resume_of_a_corrupt_store_appends_nothing(tmp_path):
    store = tmp_path / "results.jsonl"
    store.write_text('{"schema": 2, "kind": "done"\n{"schema": 2, "kind": "skip"}\n')  # line 1 is torn mid-file
    before = store.read_bytes()
    for _ in range(2):
        out = fmtbench("run", *FAST, "-c", "npy", "-w", "scan", "--results", str(tmp_path), "--resume")
        assert out.returncode == 2 and "results.jsonl:1: corrupt record" in out.stderr
    assert store.read_bytes() == before
