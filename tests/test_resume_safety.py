"""Resume is safe: every record names its data, settings and code; a resume into a store of other
data, settings or code is refused in one line; reports never merge rounds of two versions; and
provenance names every library a figure depends on (issue 23, items 5 and 6)."""
from __future__ import annotations

import csv
import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from fmtbench import provenance
from fmtbench.datasets._base import Dataset
from fmtbench.errors import FmtbenchError
from fmtbench.executor import Outcome
from fmtbench.formats import Adapter, cases, register, unregister
from fmtbench.profiles import (FIGURE_FIELDS, SELECTION_FIELDS, Profile, figure_settings, get_profile,
                               settings_id)
from fmtbench.reports.load import load
from fmtbench.results import SCHEMA_VERSION, UNKNOWN, ResultStore
from fmtbench.runner import Plan, Runner
from fmtbench.workloads._base import Observation
from conftest import make_split

STORES = Path(__file__).parent / "fixtures" / "stores"
QUICK = get_profile("quick")
DS = Dataset("synthetic", make_split(200), make_split(40, seed=1), "test data")


def other_code(monkeypatch, code_id: str = "0.9.9 0123456789ab") -> None:
    """This process runs `code_id` from now on (as after a git pull)."""
    monkeypatch.setattr(provenance, "code_fingerprint", lambda: {"version": "0.9.9", "commit": "0" * 40,
                                                                 "dirty": False, "files": None, "id": code_id})


# --- what shapes a figure, and what names the code ---------------------------------------------

def test_every_profile_field_either_shapes_a_figure_or_selects_units():
    names = {f.name for f in fields(Profile)}
    assert set(FIGURE_FIELDS) | set(SELECTION_FIELDS) == names
    assert not set(FIGURE_FIELDS) & set(SELECTION_FIELDS)


def test_rounds_workloads_caches_do_not_change_the_settings_but_repeats_and_seed_do():
    base = settings_id(figure_settings(QUICK, 0))
    more = dataclasses.replace(QUICK, rounds=7, workloads=("scan",), caches=("warm", "cold"), n=500,
                               full_grid=True, sizes=(10,), name="other")
    assert settings_id(figure_settings(more, 0)) == base
    assert settings_id(figure_settings(dataclasses.replace(QUICK, repeats=2), 0)) != base
    assert settings_id(figure_settings(dataclasses.replace(QUICK, train_steps=5), 0)) != base
    assert settings_id(figure_settings(QUICK, 1)) != base
    assert settings_id(figure_settings(QUICK.as_dict(), 0)) == base  # a provenance record's profile dict


def test_the_code_fingerprint_names_version_and_commit_and_is_cached():
    fp = provenance.code_fingerprint()
    assert provenance.code_fingerprint() is fp  # computed once per process
    assert fp["id"].startswith(f"{fp['version']} ") and provenance.code_id() == fp["id"]
    git = provenance.git_state()
    if git is not None:  # a checkout: the commit names it
        assert fp["commit"] == git["commit"] and fp["commit"][:12] in fp["id"]
        assert fp["id"].endswith("+dirty") == fp["dirty"]
    else:
        assert "files:" in fp["id"]


@pytest.mark.parametrize("status, dirty", [("", False), (" M formats/npy.py", True)])
def test_uncommitted_changes_to_tracked_package_files_mark_the_code_dirty(monkeypatch, status, dirty):
    answers = {"ls-files": "__init__.py", "rev-parse": "f" * 40, "status": status}
    monkeypatch.setattr(provenance, "_git", lambda folder, *args: answers[args[0]])
    provenance.code_fingerprint.cache_clear()
    try:
        fp = provenance.code_fingerprint()
    finally:
        provenance.code_fingerprint.cache_clear()
    assert fp["id"] == f"{fp['version']} {'f' * 12}" + ("+dirty" if dirty else "")


def test_outside_a_checkout_the_code_is_a_hash_of_the_package_files(monkeypatch, tmp_path):
    monkeypatch.setattr(provenance, "git_state", lambda: None)
    provenance.code_fingerprint.cache_clear()
    try:
        fp = provenance.code_fingerprint()
    finally:
        provenance.code_fingerprint.cache_clear()
    assert fp["commit"] is None and fp["id"] == f"{fp['version']} files:{fp['files']}"
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    before = provenance._files_hash([tmp_path / "pkg"])
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert provenance._files_hash([tmp_path / "pkg"]) != before


# --- the store: every record names its code and settings ----------------------------------------

class FakeExecutor:
    """Measures nothing: every unit observes one scan rate (or writes nothing for 'prepare')."""

    name = "fake"

    def __init__(self):
        self.ran: list = []

    def run(self, task):
        self.ran.append(task.unit)
        if task.unit.workload == "prepare":
            return Outcome()
        return Outcome(observations=[Observation("scan_samples_per_s", [100.0 + len(self.ran)])])

    def begin_round(self, rnd):
        pass

    def describe(self):
        return {"executor": self.name}

    def close(self):
        pass


def _run(tmp_path, profile=QUICK, seed=0, resume=False, ds=DS):
    store = ResultStore(tmp_path / "r")
    ex = FakeExecutor()
    Runner(ds, profile, store, tmp_path / "data", seed=seed, resume=resume, executor=ex).run(
        Plan(cases(["npy"]), ("scan",), ("warm",)))
    return store, ex


def test_every_record_the_runner_writes_names_digest_settings_and_code(tmp_path):
    store, _ = _run(tmp_path, dataclasses.replace(QUICK, rounds=2))
    sid = settings_id(figure_settings(QUICK, 0))
    recs = store.records()
    assert {r["kind"] for r in recs} == {"measurement", "done"}
    assert all(r["schema"] == SCHEMA_VERSION and r["code"] == provenance.code_id() and r["settings"] == sid
               and r["dataset_digest"] == DS.digest for r in recs)
    assert store.done_keys(provenance.code_id(), sid) == {("npy", "synthetic", DS.digest, "scan", "warm", r)
                                                          for r in (0, 1)}


def test_a_resumed_runner_counts_only_units_of_its_own_data_settings_and_code(tmp_path, monkeypatch):
    one = dataclasses.replace(QUICK, rounds=1)
    _run(tmp_path, one)
    _, ex = _run(tmp_path, dataclasses.replace(QUICK, rounds=2), resume=True)  # more rounds: round 1 only
    assert [u.round for u in ex.ran if u.workload == "scan"] == [1]
    _, ex = _run(tmp_path, dataclasses.replace(one, repeats=9), resume=True)  # other settings: none done
    assert [u.round for u in ex.ran if u.workload == "scan"] == [0]
    other = Dataset("synthetic", make_split(300), make_split(40, seed=1), "test data")
    _, ex = _run(tmp_path, one, resume=True, ds=other)  # other data (another --n)
    assert [u.round for u in ex.ran if u.workload == "scan"] == [0]
    other_code(monkeypatch)
    store, ex = _run(tmp_path, one, resume=True)  # other code
    assert [u.round for u in ex.ran if u.workload == "scan"] == [0]
    # the report never merges those rounds: the latest version's row stands alone
    rows = [r for r in load([store.path]).rows if r.digest == DS.digest]
    assert len(rows) == 1 and rows[0].n == 1 and rows[0].code == "0.9.9 0123456789ab"


def _start(store: ResultStore, profile: Profile = QUICK, seed: int = 0, ds: Dataset = DS) -> None:
    store.start_run({}, ["fmtbench", "run"], profile.as_dict(), ds.name, ds.digest,
                    settings=figure_settings(profile, seed))
    store.add_measurement("npy", "scan", "scan_samples_per_s", "warm", [1.0], ds.name, ds.digest)
    store.mark_done("npy", ds.name, "scan", "warm", dataset_digest=ds.digest)


def test_check_resume_allows_the_same_run_with_more_rounds_and_workloads(tmp_path):
    store = ResultStore(tmp_path)
    store.check_resume(DS.name, DS.digest, figure_settings(QUICK, 0))  # an empty store: nothing to resume
    _start(store)
    more = dataclasses.replace(QUICK, rounds=9, workloads=("scan", "write", "random"), caches=("warm", "cold"))
    ResultStore(tmp_path).check_resume(DS.name, DS.digest, figure_settings(more, 0))


def test_check_resume_continues_an_earlier_run_that_matches(tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    _start(store)
    _start(ResultStore(tmp_path), dataclasses.replace(QUICK, repeats=1))  # a later run, other settings
    ResultStore(tmp_path).check_resume(DS.name, DS.digest, figure_settings(QUICK, 0))


@pytest.mark.parametrize("change, says", [
    ("n", "holds a run of other data (synthetic {old}, this is synthetic {new}: another --n, --dataset or "
          "--dataset-path?); start a new store with --results NEW or drop --resume"),
    ("repeats", "holds a run of other settings (repeats 3, this is 1); start a new store with --results NEW "
                "or drop --resume"),
    ("seed", "holds a run of other settings (seed 0, this is 5)"),
    ("code", "holds a run of other code (fmtbench {mine}, this is fmtbench 0.9.9 0123456789ab); start a new "
             "store with --results NEW or drop --resume"),
])
def test_check_resume_refuses_other_data_settings_or_code_in_one_line(tmp_path, monkeypatch, change, says):
    store = ResultStore(tmp_path)
    _start(store)
    mine = provenance.code_id()
    ds, profile, seed = DS, QUICK, 0
    if change == "n":
        ds = Dataset("synthetic", make_split(300), make_split(40, seed=1), "test data")
    elif change == "repeats":
        profile = dataclasses.replace(QUICK, repeats=1)
    elif change == "seed":
        seed = 5
    else:
        other_code(monkeypatch)
    with pytest.raises(FmtbenchError) as info:
        ResultStore(tmp_path).check_resume(ds.name, ds.digest, figure_settings(profile, seed))
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"cannot resume: {tmp_path}/ holds a run of ")
    assert says.format(old=DS.digest[:12], new=ds.digest[:12], mine=mine) in message


def test_check_resume_names_every_difference(tmp_path, monkeypatch):
    _start(ResultStore(tmp_path))
    other_code(monkeypatch)
    ds = Dataset("synthetic", make_split(300), make_split(40, seed=1), "test data")
    with pytest.raises(FmtbenchError, match=r"of other data \(.*\), other settings \(repeats 3, this is 1; "
                                            r"warmup 1, this is 0\) and other code \(.*\); start a new store"):
        ResultStore(tmp_path).check_resume(ds.name, ds.digest,
                                           figure_settings(dataclasses.replace(QUICK, repeats=1, warmup=0), 0))


@pytest.mark.parametrize("name", ["schema2-with-host", "schema2-with-config", "schema2-before-config"])
def test_resuming_a_store_written_before_schema_3_is_refused(tmp_path, name):
    """Its records name no code or settings: nothing could show its units are this run's."""
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "results.jsonl").write_bytes((STORES / name / "results.jsonl").read_bytes())
    store = ResultStore(tmp_path / "legacy")
    prov = store.records("provenance")[-1]
    assert (prov["code"], prov["settings"]) == (UNKNOWN, UNKNOWN)
    assert store.done_keys(provenance.code_id(), settings_id(figure_settings(QUICK, 0))) == set()
    with pytest.raises(FmtbenchError) as info:
        store.check_resume(prov["dataset"], prov["dataset_digest"], figure_settings(prov["profile"], 0))
    assert str(info.value) == (
        f"cannot resume: {tmp_path}/legacy/ holds a run written before stores named their code and settings "
        f"(schema 2, by fmtbench 0.1.0 {prov['machine']['git']['commit'][:12]}): its code is unknown; start a "
        f"new store with --results NEW or drop --resume")


# --- the command line: refused before any work, in one line ------------------------------------

def fmtbench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, FMTBENCH_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "fmtbench", *args], capture_output=True, text=True,
                          env=env, timeout=300, cwd=cwd)


def test_fmtbench_run_resume_refuses_other_n_settings_or_code_before_any_work(tmp_path):
    run = ["run", "-d", "synthetic", "-p", "quick", "-c", "npy", "-w", "scan", "--rounds", "1",
           "--results", "r", "--no-report"]
    first = fmtbench(*run, "--n", "300", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    store = tmp_path / "r" / "results.jsonl"
    recs = [json.loads(line) for line in store.read_text().splitlines()]
    assert all(r["code"] == provenance.code_id() for r in recs)  # the CLI's own process names the same code
    before = store.read_bytes()

    refusals = {
        "other data": fmtbench(*run, "--n", "500", "--resume", cwd=tmp_path),
        "other settings (repeats 3, this is 2)": fmtbench(*run, "--n", "300", "--repeats", "2", "--resume",
                                                          cwd=tmp_path),
    }
    store.write_text(before.decode().replace(json.dumps(provenance.code_id()), '"0.0.1 feedfacecafe"'))
    refusals["other code (fmtbench 0.0.1 feedfacecafe, this is fmtbench"] = fmtbench(
        *run, "--n", "300", "--resume", cwd=tmp_path)
    for says, out in refusals.items():
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: cannot resume: r/ holds a run of ") and says in lines[0]
        assert "Traceback" not in out.stderr and "drop --resume" in lines[0]
    store.write_bytes(before)
    # more rounds and another workload: the normal use of --resume, measuring only what is new
    more = ["run", "-d", "synthetic", "-p", "quick", "-c", "npy", "-w", "scan,write", "--rounds", "2",
            "--results", "r", "--no-report", "--n", "300", "--resume"]
    again = fmtbench(*more, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    done = [(r["workload"], r["round"]) for r in map(json.loads, store.read_text().splitlines()) if r["kind"] == "done"]
    assert sorted(done) == [("scan", 0), ("scan", 1), ("write", 0), ("write", 1)]  # scan round 0 not again


# --- reports: versions kept apart, the latest shown, host and code exported ---------------------

def test_a_store_of_two_code_versions_reports_the_latest_and_never_merges_them(tmp_path, monkeypatch):
    store = ResultStore(tmp_path / "a")
    for v in (10.0, 11.0, 12.0):
        store.add_measurement("npy", "scan", "scan_samples_per_s", "warm", [v], "synthetic", "d" * 64, round=int(v))
    store.add_measurement("csv", "scan", "scan_samples_per_s", "warm", [5.0], "synthetic", "d" * 64)
    store.add_failure("sqlite", "scan", "warm", ValueError("old bug"), dataset="synthetic", dataset_digest="d" * 64)
    old = load([store.path]).rows
    assert {r.case for r in old} == {"npy", "csv"} and {r.code for r in old} == {provenance.code_id()}
    other_code(monkeypatch)
    newer = ResultStore(tmp_path / "a")
    newer.add_measurement("npy", "scan", "scan_samples_per_s", "warm", [1000.0], "synthetic", "d" * 64, round=10)
    results = load([newer.path])
    assert [(r.case, r.median, r.n, r.code) for r in results.rows] == [("npy", 1000.0, 1, "0.9.9 0123456789ab")]
    assert results.problems == []  # the old code's failure is no finding about the new


def test_two_stores_of_other_code_load_apart_for_a_comparison(tmp_path, monkeypatch):
    from fmtbench.reports.analysis import frame
    from fmtbench.reports.compare import compare

    a = ResultStore(tmp_path / "a")
    a.add_measurement("npy", "scan", "scan_samples_per_s", "warm", [90, 100, 110, 95, 105], "s", "d" * 64)
    other_code(monkeypatch)
    b = ResultStore(tmp_path / "b")
    b.add_measurement("npy", "scan", "scan_samples_per_s", "warm", [190, 200, 210, 195, 205], "s", "d" * 64)
    both = load([a.path, b.path])
    assert [(r.median, r.code) for r in both.rows] == [(200, "0.9.9 0123456789ab")]  # not one median of ten
    cmp = compare(frame(load([a.path])), frame(load([b.path])), "a", "b")
    assert [(c.old, c.new) for c in cmp.changes] == [(100, 200)]


def test_csv_and_json_exports_carry_host_and_code(tmp_path):
    from fmtbench.reports.render import CSV_FIELDS, write_report

    assert {"host", "code"} <= set(CSV_FIELDS)
    store = ResultStore(tmp_path / "s")
    for case in ("npy", "csv"):
        store.add_measurement(case, "scan", "scan_samples_per_s", "warm", [1.0, 2.0, 3.0], "s", "d" * 64,
                              host="alpha")
        store.add_measurement(case, "write", "file_bytes", "n/a", [10.0], "s", "d" * 64, host="alpha")
    done = write_report([store.folder], tmp_path / "r.html")
    rows = list(csv.DictReader(done.csv.open()))
    assert rows and all((r["host"], r["code"]) == ("alpha", provenance.code_id()) for r in rows)
    doc = json.loads(done.json.read_text())
    assert all((r["host"], r["code"]) == ("alpha", provenance.code_id()) for r in doc["rows"])


# --- provenance: every library a figure depends on ----------------------------------------------

def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def test_provenance_lists_every_formats_libraries_with_versions(tmp_path):
    info = provenance.collect(tmp_path)
    libs = info["libraries"]
    assert info["code"] == provenance.code_fingerprint()
    expected = {"dask": "dask", "distributed": "distributed", "zarr": "zarr", "numcodecs": "numcodecs",
                "lmdb": "lmdb", "pylance": "lance", "array-record": "array_record", "google-crc32c": "google_crc32c"}
    for dist, module in expected.items():
        if _installed(module):
            assert libs.get(dist) == importlib.metadata.version(dist), dist
    if _installed("zarr"):  # zarr's own libraries: what its shards' checksums and codecs run through
        assert {"zarr", "numcodecs", "google-crc32c"} <= set(info["formats"]["zarr"]["libraries"])
    assert set(info["formats"]) >= {"npy", "hdf5", "parquet", "tfrecord"}
    assert info["formats"]["hdf5"]["libraries"] == {"h5py": libs["h5py"], "hdf5plugin": libs["hdf5plugin"]}
    assert "google-crc32c" in info["formats"]["tfrecord"]["libraries"]
    json.dumps(info)


class _PluginAdapter(Adapter):
    name = "pluginfmt"
    requires = ("numcodecs", "no_such_module_xyz")


def test_a_plugins_own_distribution_and_requires_are_recorded():
    register("pluginfmt", _PluginAdapter, origin="plugin fmtbench-rawbin")
    try:
        libs = provenance.format_libraries("pluginfmt")
        info = provenance.collect()
    finally:
        unregister("pluginfmt")
    assert "fmtbench-rawbin" in libs and libs["no_such_module_xyz"] is None
    if _installed("numcodecs"):
        assert libs["numcodecs"] == importlib.metadata.version("numcodecs")
    assert info["formats"]["pluginfmt"] == {"origin": "plugin fmtbench-rawbin", "libraries": libs}


def test_a_cluster_worker_of_other_code_is_refused():
    from fmtbench.cluster import other_code as worker_code

    same = {"tcp://a:1": {"host": "a", "provenance": {"code": provenance.code_fingerprint()}}}
    assert worker_code(same) is None
    other = {**same, "tcp://b:2": {"host": "b", "provenance": {"code": {"id": "0.0.1 feedfacecafe"}}}}
    assert worker_code(other) == (f"worker tcp://b:2 (b) runs other code (fmtbench 0.0.1 feedfacecafe, this "
                                  f"client fmtbench {provenance.code_id()}): install the same fmtbench on every worker")
