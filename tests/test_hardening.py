"""Hardening, round 2: what one broken plugin, a hung reader or an impossible size may not do."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from fmtbench import formats
from fmtbench.errors import FmtbenchError


@pytest.fixture
def broken_plugins():
    formats.register("evilmissing", "evilplug_missing:Nothing", origin="plugin evilplug")
    formats.register("evilraises", "json:nothing_there", origin="plugin evilplug")
    yield
    formats.unregister("evilmissing")
    formats.unregister("evilraises")


def test_a_broken_plugin_is_listed_unavailable_and_every_other_format_works(broken_plugins):
    ids = {c.case_id for c in formats.cases(full=False)}
    assert "npy" in ids and not any(i.startswith("evil") for i in ids)
    assert "cannot load evilplug_missing:Nothing" in formats.broken("evilmissing")
    assert "nothing_there" in formats.missing_dependency("evilraises")
    assert formats.broken("npy") is None
    assert [c.case_id for c in formats.cases(["npy/"])] == ["npy"]
    with pytest.raises(FmtbenchError, match="format 'evilmissing' .plugin evilplug.: cannot load"):
        formats.cases(["evilmissing"])


def _site_with_entry_points(root: Path, **targets: str) -> Path:
    """A folder holding a real installed distribution whose fmtbench.formats entry points are `targets`."""
    dist = root / "evilplug-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evilplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[fmtbench.formats]\n" + "".join(f"{k} = {v}\n" for k, v in targets.items()))
    (root / "evilplug_raises.py").write_text("raise RuntimeError('this plugin is broken on import')\n")
    return root


def test_an_installed_broken_plugin_does_not_brick_the_commands(tmp_path):
    site = _site_with_entry_points(tmp_path / "site", evilmissing="evilplug_missing:Nothing",
                                   evilraises="evilplug_raises:Adapter")
    env = dict(os.environ, FMTBENCH_OFFLINE="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    cwd = tempfile.mkdtemp(prefix="fmtbench-cli-")

    def fmtbench(*args):
        return subprocess.run([sys.executable, "-m", "fmtbench", *args], capture_output=True, text=True,
                              env=env, cwd=cwd, timeout=300)

    listed = fmtbench("cases")
    assert listed.returncode == 0, listed.stderr
    assert "npy" in listed.stdout and "evil" not in listed.stdout
    assert "unavailable: format 'evilmissing' (plugin evilplug): cannot load evilplug_missing:Nothing" in listed.stderr
    assert "RuntimeError: this plugin is broken on import" in listed.stderr
    run = fmtbench("run", "-p", "quick", "-d", "synthetic", "--n", "300", "-c", "npy/", "-w", "scan",
                   "--results", str(tmp_path / "r"), "--no-report")
    assert run.returncode == 0, run.stderr
    named = fmtbench("run", "-p", "quick", "-d", "synthetic", "--n", "300", "-c", "evilraises", "-w", "scan",
                     "--results", str(tmp_path / "r2"), "--no-report")
    assert named.returncode != 0 and "Traceback" not in named.stderr
    assert "format 'evilraises' (plugin evilplug): cannot load evilplug_raises:Adapter" in named.stderr


HANG = textwrap.dedent('''
    import time
    from fmtbench.formats.npy import NpyAdapter, NpyReader

    class HangReader(NpyReader):
        def _read(self, indices):
            time.sleep(3600)

        def _read_one(self, i):
            time.sleep(3600)

    class HangAdapter(NpyAdapter):
        name = "hangplug"

        def _open(self, path):
            return HangReader(path)
''')


def test_a_hung_reader_is_killed_at_the_unit_time_limit_and_the_run_goes_on_and_exits_3(tmp_path):
    site = _site_with_entry_points(tmp_path / "site", hangplug="evilplug_hang:HangAdapter")
    (site / "evilplug_hang.py").write_text(HANG)
    env = dict(os.environ, FMTBENCH_OFFLINE="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    run = subprocess.run([sys.executable, "-m", "fmtbench", "run", "-p", "quick", "-d", "synthetic", "--n", "300",
                          "-c", "hangplug", "-c", "npy/", "-w", "random", "--rounds", "1", "--unit-timeout", "15",
                          "--results", str(tmp_path / "r")],
                         capture_output=True, text=True, env=env, cwd=tempfile.mkdtemp(prefix="fmtbench-cli-"),
                         timeout=300)
    assert run.returncode == 3, run.stderr[-2000:]
    assert "1 of 2 unit-rounds failed" in run.stderr and "Traceback" not in run.stderr
    from fmtbench.results import ResultStore

    store = ResultStore(tmp_path / "r")
    failure = store.records("failure")
    assert [f["case"] for f in failure] == ["hangplug"]
    assert "unit time limit of 15 s (--unit-timeout)" in failure[0]["error"]["message"]
    assert any(r["case"] == "npy" and r["metric"] == "random_p50_s" for r in store.records("measurement"))


def test_a_size_that_cannot_fit_is_refused_before_any_allocation_with_the_numbers(tmp_path):
    from fmtbench.datasets import load

    with pytest.raises(ValueError, match=r"needs 7[\d.,]+ TiB for its arrays .* available: choose a smaller --n"):
        load("synthetic", n=10**10)


def test_a_workload_with_nothing_to_do_says_how_to_choose_its_cases(tmp_path):
    run = subprocess.run([sys.executable, "-m", "fmtbench", "run", "-p", "quick", "-d", "synthetic", "--n", "300",
                          "-c", "npy/", "-w", "scan,checkpoint", "--rounds", "1", "--results", str(tmp_path / "r"),
                          "--no-report"], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, FMTBENCH_OFFLINE="1"), cwd=tempfile.mkdtemp(prefix="fmtbench-cli-"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "-w checkpoint has nothing to do" in run.stderr and "-c 'checkpoint/mlp/*'" in run.stderr


def test_a_reader_that_returns_other_bytes_is_a_failure_never_a_figure(tmp_path):
    import dataclasses

    from fmtbench.datasets._base import Dataset
    from fmtbench.executor import InlineExecutor
    from fmtbench.formats.npy import NpyAdapter, NpyReader
    from fmtbench.profiles import get_profile
    from fmtbench.results import ResultStore
    from fmtbench.runner import Plan, Runner
    from conftest import make_split

    class LyingReader(NpyReader):
        def _read(self, indices):
            images, labels = super()._read(indices)
            images = images.copy()
            images[..., 0, 0] ^= 1  # one bit of every image
            return images, labels

    class Liar(NpyAdapter):
        name = "liar"

        def _open(self, path):
            return LyingReader(path)

    formats.register("liar", Liar)
    try:
        ds = Dataset("synthetic", make_split(300), make_split(50, seed=1), "test data")
        store = ResultStore(tmp_path)
        profile = dataclasses.replace(get_profile("quick"), rounds=1)
        plan = Plan(formats.cases(["liar", "npy/"]), ("scan", "random"), ("warm",))
        Runner(ds, profile, store, tmp_path / "data", executor=InlineExecutor()).run(plan)
    finally:
        formats.unregister("liar")
    failed = {(f["case"], f["workload"]): f["error"]["message"] for f in store.records("failure")}
    assert set(failed) == {("liar", "scan"), ("liar", "random")}
    assert "read returned sample" in failed[("liar", "random")] and "other bytes" in failed[("liar", "random")]
    measured = {r["case"] for r in store.records("measurement")}
    assert measured == {"npy"}


def test_an_adapter_that_writes_beside_its_path_is_told_the_write_contract(tmp_path, split):
    import numpy as np

    from fmtbench.formats.npy import NpyAdapter

    class Sidecar(NpyAdapter):
        name = "sidecar"
        writes_folder = False

        def _write(self, split, path):
            np.save(open(path, "wb"), split.images)
            Path(str(path) + ".shape").write_text("28,28")  # lost at the rename

    formats.register("sidecar", Sidecar)
    try:
        with pytest.raises(FmtbenchError, match=r"wrote .*\.shape beside the path it was given: _write writes only"):
            formats.get_case("sidecar").write(split, tmp_path / "x.raw")
    finally:
        formats.unregister("sidecar")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing partial left, the sidecar removed
