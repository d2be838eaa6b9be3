"""The conformance suite: `fmtbench.testing.ReaderContract` over every registered case (see
conftest), plus the atomic-write properties that do not depend on a case."""
from __future__ import annotations

import numpy as np
import pytest

from fmtbench.formats import get_case
from fmtbench.testing import ReaderContract, make_split


class TestConformance(ReaderContract):
    """The kit third parties use, on every registered case (conftest parametrizes case_id)."""


@pytest.mark.parametrize("n", [1, 5])
def test_what_a_workload_times_is_still_checked_after(tmp_path, n):
    """`fetch` returns the adapter's output as it is; `verified` (which every workload runs on it,
    outside the clock) refuses a wrong shape and casts a label dtype that differs."""
    from fmtbench.errors import FormatError

    split = make_split(n=20)
    case = get_case("npy")
    with case.open(case.write(split, case.default_path(tmp_path)).path) as r:
        idx = r.checked(np.arange(n))
        images, labels = r.fetch(idx)
        for bad in ((images[:-1], labels), (images, labels[:-1]), (images.reshape(n, -1), labels)):
            with pytest.raises(FormatError, match="decoded shapes"):
                r.verified(bad, n)
        images, cast = r.verified((images, labels.astype(np.int32)), n)
        assert cast.dtype == np.int64 and np.array_equal(cast, split.labels[:n])


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
