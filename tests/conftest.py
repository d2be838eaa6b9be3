"""Shared fixtures: small seeded splits and the case parametrization of the conformance suite."""
from __future__ import annotations

import os

import numpy as np
import pytest

from fmtbench.datasets._base import Split
from fmtbench.formats import cases

FULL_GRID = os.environ.get("FMTBENCH_FULL_GRID") == "1"


def make_split(n: int = 300, shape: tuple[int, ...] = (28, 28), seed: int = 0, dtype=np.uint8) -> Split:
    """A seeded split with MNIST-like statistics: mostly-zero pixels, labels 0-9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, *shape), dtype=np.int64)
    images[rng.random((n, *shape)) < 0.6] = 0
    return Split("train", images.astype(dtype), rng.integers(0, 10, size=n))


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
