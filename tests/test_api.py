"""The Python API a notebook uses: your own arrays through `fmtbench.benchmark`, as `fmtbench run`."""
from __future__ import annotations

import json

import numpy as np
import pytest

import fmtbench


def test_benchmark_my_own_arrays_in_five_lines(tmp_path):
    rng = np.random.default_rng(3)
    images, labels = rng.integers(0, 256, (400, 12, 12), dtype=np.uint8), rng.integers(0, 10, 400)
    done = fmtbench.benchmark(images, labels, cases=["npy", "hdf5/chunk64"], workloads=["write", "scan"],
                              results=tmp_path / "res", rounds=1)
    recs = [json.loads(line) for line in done.results.read_text().splitlines()]
    measured = {(r["case"], r["metric"]) for r in recs if r["kind"] == "measurement"}
    assert {("npy", "scan_samples_per_s"), ("hdf5/chunk64", "write_s")} <= measured
    assert {r["dataset"] for r in recs if r["kind"] == "measurement"} == {"arrays"}
    rows = [r for r in recs if r["kind"] == "provenance"]
    assert rows and rows[0]["dataset"] == "arrays"
    assert done.report.is_file() and "<html" in done.report.read_text()[:200].lower()
    assert done.summary.splitlines()[0].split()[:2] == ["case", "size"] and "npy" in done.summary


def test_bad_input_is_one_fmtbench_error(tmp_path):
    with pytest.raises(fmtbench.FmtbenchError, match="images and labels together"):
        fmtbench.benchmark(np.zeros((3, 2, 2)), None, results=tmp_path)
    with pytest.raises(fmtbench.FmtbenchError, match="unknown case pattern|unknown format"):
        fmtbench.benchmark(dataset="synthetic", cases=["nosuch/*"], results=tmp_path / "r", report=False)
