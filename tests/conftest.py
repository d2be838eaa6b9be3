"""Shared fixtures: small seeded splits and the case parametrization of the conformance suite."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from fmtbench.datasets._base import Split
from fmtbench.formats import cases, get_case
from fmtbench.testing import make_split  # noqa: F401  (tests import it from here)

FULL_GRID = os.environ.get("FMTBENCH_FULL_GRID") == "1"


def write(case_id: str, tmp_path: Path, split: Split):
    """(case, path of the file it wrote) for `split` under `tmp_path`."""
    case = get_case(case_id)
    return case, case.write(split, case.default_path(tmp_path)).path


def reference_class(format_name: str) -> type:
    """benchmarks/reference/<format>_ref.py's Reference, loaded from its file (the repository
    root is not on sys.path under a bare ``pytest``, and should not be: it holds ``datasets/``)."""
    file = Path(__file__).resolve().parents[1] / "benchmarks" / "reference" / f"{format_name}_ref.py"
    spec = importlib.util.spec_from_file_location(f"fmtbench_test_{format_name}_ref", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Reference


@pytest.fixture(scope="session")
def split() -> Split:
    return make_split()


def _case_params():
    representative = {c.case_id for c in cases(full=False)}
    pool = cases(full=True) + [c for c in cases(full=False)]
    seen: dict[str, object] = {}
    for c in pool:
        if c.case_id in seen:
            continue
        marks = () if c.case_id in representative else (pytest.mark.full_grid,)
        seen[c.case_id] = pytest.param(c.case_id, marks=marks, id=c.case_id)
    return list(seen.values())


def pytest_generate_tests(metafunc):
    if "case_id" in metafunc.fixturenames:
        metafunc.parametrize("case_id", _case_params())


def pytest_collection_modifyitems(config, items):
    """Full-grid cases run only when asked for: -m full_grid or FMTBENCH_FULL_GRID=1."""
    if FULL_GRID or "full_grid" in (config.getoption("-m") or ""):
        return
    keep = [i for i in items if i.get_closest_marker("full_grid") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
