"""Shared fixtures: small seeded splits and the case parametrization of the conformance suite."""
from __future__ import annotations

import os

import numpy as np
import pytest

from fmtbench.datasets._base import Split
from fmtbench.formats import cases
from fmtbench.testing import make_split  # noqa: F401  (tests import it from here)

FULL_GRID = os.environ.get("FMTBENCH_FULL_GRID") == "1"


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
