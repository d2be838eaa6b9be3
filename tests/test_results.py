"""The JSON Lines results store and the provenance record."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fmtbench import provenance
from fmtbench.errors import FmtbenchError, UnknownNameError
from fmtbench.metrics import METRICS
from fmtbench.results import FILENAME, SCHEMA_VERSION, ResultStore

COMMON = {"schema", "kind", "run_id", "time"}


def test_round_trip_and_schema_fields(tmp_path):
    store = ResultStore(tmp_path / "runs")
    run_id = store.start_run({"cpu_model": "x"}, ["fmtbench", "run"], "quick", "mnist", "abc")
    m = store.add_measurement("hdf5/chunk64", "scan", "scan_samples_per_s", "cold",
                              [np.float64(3.0), 1.0, 2.0], "mnist", "abc",
                              extra={"residency": [0.0, 0.0, 0.0], "read_bytes": np.int64(7)})
    store.add_skip("tfrecord/gzip", "random", "warm", "tensorflow not installed", dataset="mnist")
    try:
        raise ValueError("boom")
    except ValueError as exc:
        store.add_failure("csv", "write", "n/a", exc, dataset="mnist")
    store.mark_done("hdf5/chunk64", "mnist", "scan", "cold")

    again = ResultStore(tmp_path / "runs")  # a second reader sees the same records
    recs = again.records()
    assert [r["kind"] for r in recs] == ["provenance", "measurement", "skip", "failure", "done"]
    assert all(COMMON <= set(r) and r["schema"] == SCHEMA_VERSION and r["run_id"] == run_id
               for r in recs)
    assert all(r["time"].endswith("+00:00") for r in recs)
    assert recs[0]["argv"] == ["fmtbench", "run"] and recs[0]["machine"] == {"cpu_model": "x"}
    meas = again.records("measurement")[0]
    assert meas == m
    spec = METRICS["scan_samples_per_s"]
    assert (meas["unit"], meas["better"]) == (spec.unit, spec.better)
    assert meas["format"] == "hdf5" and meas["values"] == [3.0, 1.0, 2.0]
    assert (meas["median"], meas["q1"], meas["q3"], meas["n"]) == (2.0, 1.5, 2.5, 3)
    assert meas["ci_low"] <= meas["median"] <= meas["ci_high"]
    assert meas["extra"] == {"residency": [0.0, 0.0, 0.0], "read_bytes": 7}
    fail = again.records("failure")[0]
    assert fail["error"] == {"type": "ValueError", "message": "boom"}
    assert "raise ValueError" in fail["traceback"]
    assert again.done_keys() == {("hdf5/chunk64", "mnist", None, "scan", "cold", 0)}
    assert all(r["code"] == provenance.code_id() for r in recs)  # every record names its code
    for line in (tmp_path / "runs" / FILENAME).read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))


def test_unknown_metric_kind_and_cache_are_rejected(tmp_path):
    store = ResultStore(tmp_path)
    with pytest.raises(UnknownNameError, match="scan_samples_per_s"):
        store.add_measurement("npy", "scan", "samples_per_sec", "warm", [1.0], "mnist", "d")
    with pytest.raises(FmtbenchError, match="cache"):
        store.add_measurement("npy", "scan", "scan_samples_per_s", "hot", [1.0], "mnist", "d")
    with pytest.raises(FmtbenchError, match="kind"):
        store.append({"kind": "note"})
    assert store.records() == []


def test_non_finite_values_become_null(tmp_path):
    store = ResultStore(tmp_path)
    store.add_measurement("npy", "write", "write_s", "n/a", [1.0], "m", "d",
                          extra={"ratio": float("inf")})
    assert store.records()[0]["extra"] == {"ratio": None}


def test_truncated_last_line_is_skipped_then_cut_before_next_append(tmp_path):
    store = ResultStore(tmp_path)
    store.mark_done("npy", "mnist", "scan", "warm")
    with open(store.path, "a") as fh:
        fh.write('{"schema": 1, "kind": "done", "case": "cs')  # a write cut short by a kill
    reader = ResultStore(tmp_path)
    with pytest.warns(UserWarning, match="torn"):
        assert reader.done_keys() == {("npy", "mnist", None, "scan", "warm", 0)}
    with pytest.warns(UserWarning, match="torn"):
        reader.mark_done("csv", "mnist", "scan", "warm")
    assert reader.done_keys() == {("npy", "mnist", None, "scan", "warm", 0), ("csv", "mnist", None, "scan", "warm", 0)}


def test_corrupt_middle_line_is_an_error(tmp_path):
    store = ResultStore(tmp_path)
    store.path.write_text('{"kind": "done"\n{"schema": 1, "kind": "skip"}\n')
    with pytest.raises(FmtbenchError, match=f"{FILENAME}:1"):
        store.records()


def test_unwritable_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(FmtbenchError, match="not writable") as info:
        ResultStore(blocker / "results")
    assert str(blocker / "results") in str(info.value)


def test_sigkill_keeps_every_record_appended_before_it(tmp_path):
    child = textwrap.dedent(f"""
        import sys
        from fmtbench.results import ResultStore
        store = ResultStore({str(tmp_path)!r}, run_id="killed")
        i = 0
        while True:
            store.mark_done(f"case{{i}}", "mnist", "scan", "warm")
            print(i, flush=True)
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    acknowledged = -1
    try:
        for line in proc.stdout:
            acknowledged = int(line)
            if acknowledged >= 49:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL and acknowledged == 49
    done = ResultStore(tmp_path).done_keys()
    assert {(f"case{i}", "mnist", None, "scan", "warm", 0) for i in range(acknowledged + 1)} <= done


def test_provenance_keys_and_hdf5_version(tmp_path):
    info = provenance.collect(tmp_path)
    assert {"cpu_model", "logical_cores", "memory_total_bytes", "os", "filesystem", "python",
            "libraries", "hdf5_chunk_cache", "git", "fmtbench_version"} <= set(info)
    libs = info["libraries"]
    assert {"numpy", "h5py", "hdf5", "hdf5plugin", "pyarrow", "pandas", "tensorflow", "keras",
            "sqlite"} <= set(libs)
    assert libs["numpy"] == np.__version__
    h5py = pytest.importorskip("h5py")
    assert libs["hdf5"] == h5py.version.hdf5_version
    assert info["hdf5_chunk_cache"]["rdcc_nbytes"] > 0
    if info["filesystem"] is not None:
        assert info["filesystem"]["fstype"] and str(tmp_path).startswith(info["filesystem"]["mount_point"])
    json.dumps(info)


def test_provenance_does_not_import_tensorflow():
    code = ("import sys; from fmtbench import provenance; provenance.collect(); "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
