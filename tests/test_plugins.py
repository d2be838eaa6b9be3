"""Formats from outside the package: `register()`, the ``fmtbench.formats`` entry points, and
the conformance kit (`fmtbench.testing`) that a plugin runs on itself.

The example plugin in ``docs/examples/fmtbench-rawbin`` (the README's "Adding a format") is
copied to a temporary folder, really installed there with pip, and then seen by a fresh
process: listed by `fmtbench cases`, passing the kit, and measured by `fmtbench run`.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fmtbench import formats
from fmtbench.errors import FmtbenchError, UnknownNameError
from fmtbench.formats import Adapter, get_case
from fmtbench.formats.npy import NpyAdapter, NpyReader

EXAMPLE = Path(__file__).parent.parent / "docs" / "examples" / "fmtbench-rawbin"


class TinyNpy(NpyAdapter):
    name = "tinynpy"


@pytest.fixture
def registered():
    formats.register("tinynpy", TinyNpy)
    yield
    formats.unregister("tinynpy")


def test_register_adds_a_format_everywhere(registered, tmp_path):
    assert formats.formats()["tinynpy"] == "registered at run time"
    assert [c.case_id for c in formats.cases(["tinynpy"])] == ["tinynpy"]
    case = get_case("tinynpy")
    assert isinstance(case, TinyNpy)
    assert formats.missing_dependency("tinynpy") is None


def test_register_refuses_what_would_break_the_registry(registered):
    with pytest.raises(FmtbenchError, match="already registered"):
        formats.register("tinynpy", TinyNpy)
    with pytest.raises(FmtbenchError, match="already registered .built-in."):
        formats.register("npy", NpyAdapter)
    formats.register("tinynpy", TinyNpy, replace=True)
    for bad in ("Bad", "1x", "a/b", "a-b", ""):
        with pytest.raises(FmtbenchError, match="not valid"):
            formats.register(bad, TinyNpy)
    with pytest.raises(FmtbenchError, match="named 'tinynpy', not 'other'"):
        formats.register("other", TinyNpy)
    with pytest.raises(FmtbenchError, match="module:Class"):
        formats.register("other", "no_colon_here")
    with pytest.raises(FmtbenchError, match="Adapter subclass"):
        formats.register("other", object)  # type: ignore[arg-type]
    with pytest.raises(UnknownNameError, match="valid: .*tinynpy"):
        formats.unregister("nosuchformat")


def test_a_target_that_does_not_load_is_one_clear_error():
    formats.register("ghost", "no_such_module_anywhere:Ghost")
    try:
        with pytest.raises(FmtbenchError, match="format 'ghost' .registered at run time.: cannot load"):
            get_case("ghost")
    finally:
        formats.unregister("ghost")


def test_a_missing_library_is_reported_with_its_install_hint():
    class NeedsGhost(NpyAdapter):
        name = "needsghost"
        requires = ("no_such_library_anywhere",)
        install = "pip install no-such-library"

    formats.register("needsghost", NeedsGhost)
    try:
        assert formats.missing_dependency("needsghost") == (
            "needsghost needs no_such_library_anywhere: pip install no-such-library")
    finally:
        formats.unregister("needsghost")


def _kit_on(tmp_path: Path, adapter_source: str, case_id: str) -> subprocess.CompletedProcess:
    """Run the conformance kit, in a fresh pytest process, on an adapter defined in a test file."""
    test = tmp_path / "test_kit_target.py"
    test.write_text(textwrap.dedent(adapter_source) + textwrap.dedent(f"""
        import pytest
        from fmtbench.testing import ReaderContract

        class TestTarget(ReaderContract):
            @pytest.fixture(params=[{case_id!r}])
            def case_id(self, request):
                return request.param
    """))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)


def test_the_kit_fails_a_drop_caches_that_leaves_the_reader_closed(tmp_path):
    """The defect the kit missed before: drop_caches closing the file without reopening it."""
    broken = """
        from fmtbench import formats
        from fmtbench.formats.npy import NpyAdapter, NpyReader

        class ClosingReader(NpyReader):
            def drop_caches(self):
                self.close()

        class ClosingNpy(NpyAdapter):
            name = "closingnpy"
            def _open(self, path):
                return ClosingReader(path)

        formats.register("closingnpy", ClosingNpy)
    """
    done = _kit_on(tmp_path, broken, "closingnpy")
    assert done.returncode == 1, done.stdout
    failed = {line.split("::")[-1].split("[")[0] for line in done.stdout.splitlines() if line.startswith("FAILED")}
    assert failed == {"test_drop_caches_keeps_the_reader_usable"}, done.stdout


def test_the_kit_passes_a_correct_adapter(tmp_path):
    done = _kit_on(tmp_path, """
        from fmtbench import formats
        from fmtbench.formats.npy import NpyAdapter

        class PlainNpy(NpyAdapter):
            name = "plainnpy"

        formats.register("plainnpy", PlainNpy)
    """, "plainnpy")
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and "failed" not in done.stdout


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """The example plugin, installed with pip into a temporary site folder (never the venv)."""
    root = tmp_path_factory.mktemp("plugin")
    src = root / "src"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    site = root / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(site), str(src)],
        capture_output=True, text=True, timeout=600)
    if done.returncode != 0 and "setuptools" in done.stderr and "No module named" in done.stderr:
        pytest.skip("setuptools is not installed in this environment: cannot build the plugin offline")
    assert done.returncode == 0, done.stderr
    assert list(site.glob("fmtbench_rawbin-*.dist-info"))
    return root


def _with_plugin(root: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root / "site"), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_an_installed_plugin_is_listed_with_its_origin(plugin_site, tmp_path):
    done = _with_plugin(plugin_site, sys.executable, "-m", "fmtbench", "cases", "rawbin", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["case"] for r in rows] == ["rawbin", "rawbin/align4096"]
    assert {r["origin"] for r in rows} == {"plugin fmtbench-rawbin"}
    assert rows[0]["detects"] == {"truncated": "detected", "flipped": "not detected"}


def test_an_installed_plugin_passes_the_kit(plugin_site, tmp_path):
    tests = plugin_site / "src" / "tests"
    done = _with_plugin(plugin_site, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests),
                        cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "failed" not in done.stdout


def test_an_installed_plugin_is_measured_by_a_run(plugin_site, tmp_path):
    done = _with_plugin(
        plugin_site, sys.executable, "-m", "fmtbench", "run", "-d", "synthetic", "--n", "500",
        "-c", "rawbin", "-c", "npy", "-w", "write,scan,random", "-p", "quick", "--rounds", "1",
        "--results", str(tmp_path / "res"), "--report", str(tmp_path / "r.html"), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    records = [json.loads(line) for line in (tmp_path / "res" / "results.jsonl").read_text().splitlines()]
    measured = {r["case"] for r in records if r.get("kind") == "measurement" and r["median"] > 0}
    assert {"rawbin", "npy"} <= measured, sorted(measured)
    assert "rawbin" in (tmp_path / "r.html").read_text()
