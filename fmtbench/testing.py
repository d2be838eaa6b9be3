"""The conformance kit: the whole Reader contract as a pytest class any format package reuses.

A format, in this repository or in a plugin package, proves it keeps the contract by
subclassing `ReaderContract` in one of its test modules and naming its cases::

    import pytest
    from fmtbench.testing import ReaderContract

    class TestMyFormat(ReaderContract):
        @pytest.fixture(params=["myformat", "myformat/zstd"])
        def case_id(self, request):
            return request.param

Every test then runs on every case: exact round trips of scans and of reads in any order
(duplicates included) and of other shapes, edge cases and bad indices, `drop_caches` leaving
the reader usable and the data unchanged, closing twice, atomic writes (a failed write keeps
the old file; a writer killed before its rename leaves nothing), and the case's damage claims
(`Adapter.detection`) against real damage. A case whose library is missing is skipped with the
install hint. fmtbench's own suite (``tests/test_conformance.py``) is this class.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from fmtbench.datasets._base import Split
from fmtbench.errors import FormatError
from fmtbench.formats import Adapter, get_case, missing_dependency

__all__ = ["ReaderContract", "make_split", "read_all"]


def make_split(n: int = 300, shape: tuple[int, ...] = (28, 28), seed: int = 0, dtype=np.uint8) -> Split:
    """A seeded split with MNIST-like statistics: mostly-zero pixels, labels 0-9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, *shape), dtype=np.int64)
    images[rng.random((n, *shape)) < 0.6] = 0
    return Split("train", images.astype(dtype), rng.integers(0, 10, size=n))


def read_all(case: Adapter, path: Path) -> tuple[list, np.ndarray, np.ndarray]:
    """Batches of a scan, and every sample through one `read`, from a fresh reader."""
    with case.open(path) as r:
        scanned = list(r.scan(97))
        images, labels = r.read(np.arange(len(r)))
    return scanned, images, labels


def _largest_file(path: Path) -> Path:
    return max((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size) if path.is_dir() else path


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


class ReaderContract:
    """The Reader contract, run on each case the subclass's `case_id` fixture yields."""

    @pytest.fixture
    def case_id(self) -> str:
        pytest.fail("override the case_id fixture: @pytest.fixture(params=[...case ids...])")

    @pytest.fixture
    def case(self, case_id: str) -> Adapter:
        hint = missing_dependency(case_id.partition("/")[0])
        if hint:
            pytest.skip(hint)
        return get_case(case_id)

    @pytest.fixture
    def split(self) -> Split:
        return make_split()

    @pytest.fixture
    def written(self, case: Adapter, split: Split, tmp_path: Path) -> tuple[Adapter, Path]:
        info = case.write(split, case.default_path(tmp_path))
        return case, info.path

    def test_case_id_round_trips(self, case):
        assert get_case(case.case_id).case_id == case.case_id
        assert get_case(case.case_id).config == case.config

    def test_write_reports_what_it_wrote(self, case, split, tmp_path):
        info = case.write(split, case.default_path(tmp_path))
        assert info.rows == len(split)
        assert info.digest == split.digest
        assert info.nbytes > 0 and info.path.exists()

    def test_scan_round_trips_bit_exact(self, written, split):
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
    def test_read_returns_the_order_asked(self, written, split, order):
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

    def test_checked_indices_read_piece_by_piece_like_read(self, written, split):
        """What the workloads do: indices checked once, then per piece (a batch, a slice of
        one) `fetch` (timed) and `verified` (untimed), or both as `read_checked`, return what
        `read` does."""
        case, path = written
        idx = np.random.default_rng(43).choice(len(split), size=64, replace=True)
        with case.open(path) as r:
            checked = r.checked(idx.tolist())
            assert checked.dtype == np.int64 and np.array_equal(checked, idx)
            for piece in (checked, checked[:1], checked[5:6], checked[10:40]):
                for images, labels in (r.read_checked(piece), r.verified(r.fetch(piece), len(piece))):
                    np.testing.assert_array_equal(images, split.images[piece])
                    np.testing.assert_array_equal(labels, split.labels[piece])
                    assert images.dtype == split.images.dtype and labels.dtype == np.int64

    def test_read_edge_cases(self, written, split):
        case, path = written
        with case.open(path) as r:
            images, labels = r.read([])
            assert images.shape == (0, *split.image_shape) and labels.shape == (0,)
            last = len(split) - 1
            np.testing.assert_array_equal(r.read([last, 0, last])[0], split.images[[last, 0, last]])
            for bad in ([len(split)], [0, -1], [10**9], [-1], [3, len(split), 1]):
                with pytest.raises(IndexError, match="out of range"):
                    r.read(bad)
                with pytest.raises(IndexError, match="out of range"):
                    r.checked(np.array(bad))
            with pytest.raises(TypeError):
                r.read([0.5])
            with pytest.raises(TypeError):
                r.checked([0.5])
            with pytest.raises(ValueError):
                next(r.scan(0))

    def test_reader_reports_its_random_access(self, written):
        case, path = written
        with case.open(path) as r:
            assert r.random_access == case.random_access in ("native", "index")
            if r.random_access == "index":
                assert r.index_seconds > 0 and r.index_bytes > 0

    def test_drop_caches_keeps_the_reader_usable(self, written, split):
        """The runner calls drop_caches before every timed repeat: after it (twice in a row,
        between reads, in the middle of nothing) every path still reads the same bytes."""
        case, path = written
        idx = np.random.default_rng(7).choice(len(split), size=50)
        with case.open(path) as r:
            r.drop_caches()
            first = r.read(idx)
            r.drop_caches()
            r.drop_caches()
            again = r.read(idx)
            one = r.read([int(idx[0])])
            r.drop_caches()
            scanned = list(r.scan(64))
            r.drop_caches()
            assert len(r) == len(split)
        for images, labels in (first, again):
            np.testing.assert_array_equal(images, split.images[idx])
            np.testing.assert_array_equal(labels, split.labels[idx])
        np.testing.assert_array_equal(one[0][0], split.images[idx[0]])
        np.testing.assert_array_equal(np.concatenate([b[0] for b in scanned]), split.images)
        np.testing.assert_array_equal(np.concatenate([b[1] for b in scanned]), split.labels)

    def test_close_is_safe_twice_and_readers_are_independent(self, written, split):
        case, path = written
        a, b = case.open(path), case.open(path)
        a.close()
        a.close()
        np.testing.assert_array_equal(b.read([1, 0])[0], split.images[[1, 0]])
        b.close()

    def test_channels_and_other_shapes_round_trip(self, case, tmp_path):
        split = make_split(n=50, shape=(6, 5, 3), seed=3)
        info = case.write(split, case.default_path(tmp_path))
        scanned, images, labels = read_all(case, info.path)
        np.testing.assert_array_equal(images, split.images)
        np.testing.assert_array_equal(labels, split.labels)
        np.testing.assert_array_equal(np.concatenate([b[0] for b in scanned]), split.images)

    def test_failed_write_leaves_nothing_and_keeps_old_file(self, case, split, tmp_path, monkeypatch):
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

    def test_sigkill_during_write_leaves_no_file(self, case, tmp_path):
        """A writer killed with SIGKILL just before its final rename leaves nothing at the
        target, and the next write sweeps what it left."""
        target = case.default_path(tmp_path)
        ready = tmp_path / "ready"
        cls = type(case)
        script = textwrap.dedent(f"""
            import importlib, time
            from fmtbench import atomic, formats
            from fmtbench.formats import get_case
            from fmtbench.testing import make_split

            # A format registered at run time (by a test module) is registered here the same way.
            module = importlib.import_module({cls.__module__!r})
            if {cls.name!r} not in formats.formats():
                formats.register({cls.name!r}, getattr(module, {cls.__qualname__!r}))

            def stall(src, dst):
                open({str(ready)!r}, "w").close()
                time.sleep(600)

            atomic.os.replace = stall
            get_case({case.case_id!r}).write(make_split(), {str(target)!r})
        """)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        proc = subprocess.Popen([sys.executable, "-c", script], env=env)
        try:
            for _ in range(1200):
                if ready.exists() or proc.poll() is not None:
                    break
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
        case.write(make_split(), target)
        assert [p.name for p in target.parent.iterdir()] == [target.name]

    @pytest.mark.parametrize("how", ["truncated", "flipped"])
    def test_damaged_file_is_a_format_error_or_a_known_property(self, written, split, how):
        """Half the largest file cut off, or 64 bytes inverted in its middle: either every read
        raises FormatError naming the file, or the case does not claim to detect that damage."""
        case, path = written
        _damage(path, how)
        try:
            _, images, labels = read_all(case, path)
        except FormatError as exc:
            assert str(path) in str(exc)
            return
        assert not case.detects(how), f"{case.case_id} declares it detects {how} files but read them"
        assert images.shape == split.images.shape and labels.shape == split.labels.shape
