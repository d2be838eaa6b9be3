"""The conformance suite: written once, run over every registered case (see conftest)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fmtbench.errors import FormatError
from fmtbench.formats import get_case, missing_dependency
from conftest import make_split


@pytest.fixture
def case(case_id):
    hint = missing_dependency(case_id.partition("/")[0])
    if hint:
        pytest.skip(hint)
    return get_case(case_id)


@pytest.fixture
def written(case, split, tmp_path):
    info = case.write(split, case.default_path(tmp_path))
    return case, info.path


def read_all(case, path):
    with case.open(path) as r:
        scanned = list(r.scan(97))
        images, labels = r.read(np.arange(len(r)))
    return scanned, images, labels


def test_case_id_round_trips(case):
    assert get_case(case.case_id).case_id == case.case_id
    assert get_case(case.case_id).config == case.config


def test_write_reports_what_it_wrote(case, split, tmp_path):
    info = case.write(split, case.default_path(tmp_path))
    assert info.rows == len(split)
    assert info.digest == split.digest
    assert info.nbytes > 0 and info.path.exists()


def test_scan_round_trips_bit_exact(written, split):
    case, path = written
    with case.open(path) as r:
        assert len(r) == len(split)
        assert r.image_shape == split.image_shape
        batches = list(r.scan(64))
    assert [len(b[1]) for b in batches] == [64] * (len(split) // 64) + [len(split) % 64]
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    assert images.dtype == split.images.dtype and labels.dtype == np.int64
    np.testing.assert_array_equal(images, split.images)
    np.testing.assert_array_equal(labels, split.labels)


@pytest.mark.parametrize("order", ["unsorted", "sorted", "duplicates"])
def test_read_returns_the_order_asked(written, split, order):
    case, path = written
    rng = np.random.default_rng(42)
    idx = rng.choice(len(split), size=120, replace=(order == "duplicates"))
    if order == "sorted":
        idx.sort()
    with case.open(path) as r:
        images, labels = r.read(idx)
        one_image, one_label = r.read([int(idx[0])])
    np.testing.assert_array_equal(images, split.images[idx])
    np.testing.assert_array_equal(labels, split.labels[idx])
    np.testing.assert_array_equal(one_image[0], split.images[idx[0]])
    assert one_label[0] == split.labels[idx[0]]


def test_read_edge_cases(written, split):
    case, path = written
    with case.open(path) as r:
        images, labels = r.read([])
        assert images.shape == (0, *split.image_shape) and labels.shape == (0,)
        last = len(split) - 1
        np.testing.assert_array_equal(r.read([last, 0, last])[0], split.images[[last, 0, last]])
        for bad in ([len(split)], [0, -1], [10**9]):
            with pytest.raises(IndexError, match="out of range"):
                r.read(bad)
        with pytest.raises(TypeError):
            r.read([0.5])
        with pytest.raises(ValueError):
            next(r.scan(0))


def test_reader_reports_its_random_access(written):
    case, path = written
    with case.open(path) as r:
        assert r.random_access == case.random_access in ("native", "index")
        if r.random_access == "index":
            assert r.index_seconds > 0 and r.index_bytes > 0


def test_channels_and_other_shapes_round_trip(case, tmp_path):
    split = make_split(n=50, shape=(6, 5, 3), seed=3)
    info = case.write(split, case.default_path(tmp_path))
    scanned, images, labels = read_all(case, info.path)
    np.testing.assert_array_equal(images, split.images)
    np.testing.assert_array_equal(np.concatenate([b[0] for b in scanned]), split.images)


def test_failed_write_leaves_nothing_and_keeps_old_file(case, split, tmp_path, monkeypatch):
    target = case.default_path(tmp_path)
    case.write(split, target)
    before = sorted(p.name for p in target.parent.iterdir())

    original = type(case)._write

    def half_then_fail(self, s, path):
        original(self, s, path)
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(type(case), "_write", half_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        case.write(make_split(seed=9), target)
    assert sorted(p.name for p in target.parent.iterdir()) == before
    _, images, _ = read_all(case, target)
    np.testing.assert_array_equal(images, split.images)

    fresh = tmp_path / "fresh" / target.name
    with pytest.raises(RuntimeError):
        case.write(split, fresh)
    assert not fresh.exists() and not any(fresh.parent.iterdir())


def test_sigkill_during_write_leaves_no_file(case, tmp_path):
    """A writer killed with SIGKILL just before its final rename leaves nothing at the target."""
    target = case.default_path(tmp_path)
    ready = tmp_path / "ready"
    script = textwrap.dedent(f"""
        import os, time, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from conftest import make_split
        from fmtbench import atomic
        from fmtbench.formats import get_case

        def stall(src, dst):
            open({str(ready)!r}, "w").close()
            time.sleep(600)

        atomic.os.replace = stall
        get_case({case.case_id!r}).write(make_split(), {str(target)!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        for _ in range(600):
            if ready.exists() or proc.poll() is not None:
                break
            import time

            time.sleep(0.05)
        assert ready.exists(), f"writer exited early with {proc.returncode}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()
    with pytest.raises(FormatError):
        case.open(target)
    leftovers = [p.name for p in target.parent.iterdir()]
    assert leftovers and all(name.startswith(".") for name in leftovers), leftovers
    case.write(make_split(), target)  # the next write sweeps what the dead writer left
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def _largest_file(path: Path) -> Path:
    return max(path.rglob("*"), key=lambda p: p.stat().st_size) if path.is_dir() else path


def _damage(path: Path, how: str) -> None:
    victim = _largest_file(path)
    data = bytearray(victim.read_bytes())
    if how == "truncated":
        victim.write_bytes(bytes(data[: len(data) // 2]))
    else:
        mid = int(len(data) * 0.6)
        for i in range(mid, min(mid + 64, len(data))):
            data[i] ^= 0xFF
        victim.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "flipped"])
def test_damaged_file_is_a_format_error_or_a_known_property(written, split, how):
    case, path = written
    _damage(path, how)
    try:
        _, images, labels = read_all(case, path)
    except FormatError as exc:
        assert str(path) in str(exc)
        return
    # No error: only acceptable where the case declares it cannot detect this damage.
    assert not case.detects(how), f"{case.case_id} declares it detects {how} files but read them"
    assert images.shape == split.images.shape and labels.shape == split.labels.shape


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
