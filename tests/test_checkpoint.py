"""The checkpoint workload on the MLP: every variant round-trips bit-exact, compression never
grows a file, a damaged checkpoint is a FormatError, and `fmtbench run -w checkpoint` measures
and reports it.

One MLP is built and trained two steps for the whole file (~2 s, plus ~3.4 s importing
TensorFlow); each save and load of it takes milliseconds. The CLI test runs one case, warm and
cold, one round (~20 s).
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import make_split
from fmtbench.errors import FormatError, UnknownNameError
from fmtbench.profiles import get_profile
from fmtbench.provenance import filesystem
from fmtbench.runner import CACHES, Plan
from fmtbench.workloads.checkpoint import (REPRESENTATIVE, VARIANTS, config, load, optimizer_digest, parse,
                                           run_checkpoint, save, select, target_model, trained_model)

if importlib.util.find_spec("tensorflow") is None:  # checked without paying for the import
    pytest.skip("the checkpoint workload needs tensorflow", allow_module_level=True)

H5PY = [v for v in VARIANTS.values() if v.api == "h5py"]


@pytest.fixture(scope="module")
def net():
    return trained_model("mlp", make_split(300, seed=5), seed=0)


@pytest.fixture(scope="module")
def target(net):
    return target_model(net)


@pytest.fixture(scope="module")
def saved(net, tmp_path_factory):
    """Every variant of the MLP saved once: {variant name: file}."""
    root = tmp_path_factory.mktemp("ck")
    return {name: save(net, v, root / name) for name, v in VARIANTS.items()}


def _load(name, folder, target):
    from fmtbench.workloads.checkpoint import _zero

    if VARIANTS[name].api != "model.save":
        _zero(target)  # a load that restored nothing must not pass
    return load(VARIANTS[name], folder, target)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_round_trip_is_bit_exact(name, net, target, saved):
    from fmtbench.workloads.train import weights_digest

    path = saved[name]
    assert path.is_file() and path.stat().st_size > 0 and sorted(os.listdir(path.parent)) == [path.name]
    got = _load(name, path.parent, target)
    assert weights_digest(got) == weights_digest(net)
    assert [w.tobytes() for w in got.get_weights()] == [w.tobytes() for w in net.get_weights()]
    if name in ("keras", "weights-h5"):  # the files that hold Adam's state give it back exactly
        assert optimizer_digest(got) == optimizer_digest(net) is not None


def test_compression_never_grows_the_weights_file(saved, net):
    size = {name: path.stat().st_size for name, path in saved.items()}
    raw = sum(w.nbytes for w in net.get_weights())
    assert raw <= size["h5-contiguous"] < raw + 64 * 1024  # the arrays plus HDF5's metadata
    for name in ("h5-gzip4", "h5-gzip4-shuffle", "h5-lzf"):
        assert size[name] <= size["h5-chunked"], name
    assert size["keras"] > 2 * raw  # weights + Adam's two moments


@pytest.mark.parametrize("name", list(VARIANTS))
def test_a_truncated_checkpoint_is_a_format_error(name, saved, target, tmp_path):
    path = tmp_path / saved[name].name
    data = saved[name].read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError) as err:
        _load(name, tmp_path, target)
    assert str(path) in str(err.value)


def test_a_missing_file_and_a_foreign_one_are_format_errors(saved, target, tmp_path):
    with pytest.raises(FormatError, match="no checkpoint file here"):
        load(VARIANTS["keras"], tmp_path)
    (tmp_path / "weights.h5").write_bytes(saved["weights-h5"].read_bytes())  # Keras's layout, not ours
    with pytest.raises(FormatError, match="weights.h5"):
        _load("h5-contiguous", tmp_path, target)


def test_flipped_weight_bytes_fail_the_check(net, saved, target, tmp_path):
    """Uncompressed HDF5 has no checksum: damage loads, and only the bit-exact check sees it."""
    from fmtbench.workloads.train import weights_digest

    data = bytearray(saved["h5-contiguous"].read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the first Dense kernel, the bulk of the file
    (tmp_path / "weights.h5").write_bytes(bytes(data))
    assert weights_digest(_load("h5-contiguous", tmp_path, target)) != weights_digest(net)


def test_run_checkpoint_cold(tmp_path):
    fs = filesystem(tmp_path)
    if fs is not None and fs["fstype"] in ("tmpfs", "ramfs"):
        pytest.skip("tmpfs keeps its pages: a cold load cannot be made here")
    profile = dataclasses.replace(get_profile("quick"), repeats=2, warmup=1)
    folder = tmp_path / "ck"
    obs = {o.metric: o for o in run_checkpoint("checkpoint/mlp/h5-gzip4", make_split(300), folder, profile, "cold")}
    assert set(obs) == {"checkpoint_save_s", "checkpoint_load_s", "checkpoint_bytes"}
    assert len(obs["checkpoint_save_s"].values) == len(obs["checkpoint_load_s"].values) == 2
    load_extra = obs["checkpoint_load_s"].extra
    assert load_extra["bit_exact"] is True and load_extra["optimizer_restored"] is None
    assert max(load_extra["residency_before"]) < 0.1  # evicted before every timed load
    assert obs["checkpoint_bytes"].values[0] > 0 and not folder.exists()  # removed after


def test_case_ids_configs_and_plan():
    assert parse("checkpoint/cnn/keras")[0] == "cnn"
    assert config("checkpoint/mlp/h5-gzip4") == {
        "model": "mlp", "variant": "h5-gzip4", "api": "h5py", "file": "weights.h5", "holds": "weights",
        "chunks": True, "compression": "gzip", "level": 4, "shuffle": False}
    with pytest.raises(UnknownNameError, match="valid: checkpoint/cnn/h5, "):
        parse("checkpoint/mlp/h5-gzip9")
    with pytest.raises(UnknownNameError):
        select(["checkpoint/resnet/*"], get_profile("default"))
    assert select(None, get_profile("quick")) == [f"checkpoint/mlp/{v}" for v in REPRESENTATIVE]
    assert len(select(None, get_profile("default"))) == 2 * len(REPRESENTATIVE)
    assert len(select(None, get_profile("full"))) == 2 * len(VARIANTS)
    assert select(["checkpoint/*/keras", "checkpoint/cnn/keras"], get_profile("quick")) == [
        "checkpoint/mlp/keras", "checkpoint/cnn/keras"]
    units = Plan([], ("scan", "checkpoint"), ("warm",), ["checkpoint/mlp/keras"]).units()
    assert units == [("checkpoint/mlp/keras", "checkpoint", c) for c in CACHES]  # loads warm and cold


def fmtbench(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, FMTBENCH_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "fmtbench", *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tempfile.mkdtemp(prefix="fmtbench-cli-"))


def test_cli_run_stores_and_reports_checkpoints(tmp_path):
    ids = ["checkpoint/mlp/h5-gzip4"]
    out = fmtbench("run", "-w", "checkpoint", *sum((["-c", i] for i in ids), []), "-p", "quick", "-d", "synthetic",
                   "--n", "300", "--rounds", "1", "--repeats", "1", "--results", str(tmp_path / "r"),
                   "--report", str(tmp_path / "report.html"))
    assert out.returncode == 0, out.stderr
    recs = [json.loads(line) for line in (tmp_path / "r" / "results.jsonl").read_text().splitlines()]
    ms = [r for r in recs if r["kind"] == "measurement"]
    assert not [r for r in recs if r["kind"] == "failure"]
    assert {(r["case"], r["metric"], r["cache"]) for r in ms} == {
        (i, m, c) for i in ids for m in ("checkpoint_save_s", "checkpoint_load_s", "checkpoint_bytes") for c in CACHES}
    assert all(r["config"] == config(r["case"]) and r["extra"]["bit_exact"] is True for r in ms)
    assert not list((tmp_path / "r" / "data").rglob("weights.h5"))  # every checkpoint removed after
    table = out.stdout.splitlines()
    assert table[0].split()[:2] == ["checkpoint", "save"]
    assert table[1].split()[0] == ids[0] and table[1].split()[-3:] == ["yes", "not", "saved"]
    html = (tmp_path / "report.html").read_text()
    section = html[html.index('<section id="checkpoint">'):]
    section = section[:section.index("</section>")]
    assert "h5-gzip4" in section and "chunked, gzip 4" in section and section.count("✓") == 1
    assert "101,770 parameters" in section and 'href="#checkpoint"' in html


def test_cli_checkpoint_ids_need_the_workload_and_must_exist(tmp_path):
    out = fmtbench("run", "-c", "checkpoint/mlp/keras", "-w", "scan", "--results", str(tmp_path / "a"))
    assert out.returncode == 2 and "error: checkpoint/mlp/keras is a checkpoint case: add the workload" in out.stderr
    out = fmtbench("run", "-c", "checkpoint/mlp/nope", "-w", "checkpoint", "--results", str(tmp_path / "b"))
    assert out.returncode == 2 and "unknown checkpoint case pattern 'checkpoint/mlp/nope'" in out.stderr
    assert "Traceback" not in out.stderr
