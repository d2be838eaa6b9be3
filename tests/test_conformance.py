"""The conformance suite: `fmtbench.testing.ReaderContract` over every registered case (see
conftest), plus the atomic-write properties that do not depend on a case."""
from __future__ import annotations

import numpy as np
import pytest

from fmtbench.formats import get_case
from fmtbench.testing import ReaderContract, make_split


class TestConformance(ReaderContract):
    """The kit third parties use, on every registered case (conftest parametrizes case_id)."""


def test_a_live_writers_temporary_file_is_never_swept(tmp_path):
    from fmtbench import atomic

    target = tmp_path / "x.csv"
    mine = atomic.temp_name(target)  # this process is alive
    mine.write_text("in progress")
    assert atomic.sweep_stale(target) == [] and mine.exists()


def test_a_name_that_nearly_fills_a_path_component_still_writes(tmp_path, split):
    target = tmp_path / ("n" * 240 + ".csv")
    get_case("csv").write(split, target)
    assert target.is_file() and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_a_folder_case_is_replaced_in_one_step(tmp_path, monkeypatch):
    """NPY is a folder: replacing it was two renames, and a kill between them left nothing at
    the target. Now the two folders are swapped at once (renameat2 RENAME_EXCHANGE)."""
    from fmtbench import atomic

    target = tmp_path / "x.npy"
    get_case("npy").write(make_split(seed=1), target)
    if not atomic._exchange(tmp_path / "x.npy", target):  # a swap with itself: is it supported?
        pytest.skip("this filesystem cannot swap two paths in one step")

    def no_two_step(src, dst):
        raise AssertionError(f"two-step replace of {dst}")

    monkeypatch.setattr(atomic.os, "replace", no_two_step)
    get_case("npy").write(make_split(seed=2), target)
    with get_case("npy").open(target) as reader:
        assert np.array_equal(reader.read([0, 1])[0], make_split(seed=2).images[:2])
    assert [p.name for p in tmp_path.iterdir()] == ["x.npy"]
