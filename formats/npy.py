"""NPY: the split as two ``np.save`` arrays in a folder, read through memory mapping.

On disk (``<name>.npy/`` folder)::

    images.npy   (N, H, W[, C]) in the images' dtype, C order
    labels.npy   (N,) int64

Open with plain numpy: ``np.load(folder / "images.npy", mmap_mode="r")``.

How it reads: both arrays are memory-mapped (``mmap_mode="r"``), the way NumPy users feed
arrays bigger than memory. ``read`` is one fancy-index gather on the map, which the kernel
serves page by page (one index: a copy of a one-row slice, 3x faster than a gather of one);
``scan`` copies consecutive slices. Both index plain ndarray views of the maps: indexing an
``np.memmap`` runs its Python ``__getitem__`` and ``__array_finalize__`` (a gather of one image:
2.1 us on the map, 0.9 us on a view, timeit). Against ``np.load(mmap_mode="r")`` and fancy
indexing alone (``benchmarks/reference/npy_ref.py``): see docs/fairness.md. A single read is
~0.7 us of numpy here, so the ~0.4 us of output checks every read makes were 1.30x of it while
the workloads timed them; they now run outside the clock (`Reader.verified`). There is no checksum: flipped bytes
in the pixel data cannot be detected (a known property of the format); a truncated file or a
damaged header is a FormatError.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np

from fmtbench.datasets._base import Split
from fmtbench.errors import FormatError

from ._base import Adapter, Batch, Detection, Reader

IMAGES, LABELS = "images.npy", "labels.npy"


class NpyReader(Reader):
    """Memory-mapped images and labels."""

    thread_safe = True  # reads are numpy gathers from read-only maps

    def __init__(self, path: Path):
        for name in (IMAGES, LABELS):
            if not (path / name).is_file():
                raise FormatError(path, f"missing {name}; an NPY case is a folder with {IMAGES} and {LABELS}")
        self._map(path)
        if self._images.ndim not in (3, 4) or self._labels.shape != self._images.shape[:1]:
            raise FormatError(path, f"shapes {self._images.shape} and {self._labels.shape} do not match")
        super().__init__(path, self._images.shape[1:], self._images.dtype, self._images.shape[0])

    def _map(self, path: Path) -> None:
        self._images = np.load(path / IMAGES, mmap_mode="r", allow_pickle=False)
        self._labels = np.load(path / LABELS, mmap_mode="r", allow_pickle=False)
        # Plain ndarray views of the same pages: indexing a np.memmap runs its Python-level
        # __getitem__ and __array_finalize__ on every call.
        self._pixels, self._targets = self._images.view(np.ndarray), self._labels.view(np.ndarray)

    def drop_caches(self) -> None:
        # Pages mapped into this process survive POSIX_FADV_DONTNEED: unmap so they can be evicted.
        self.close()
        self._map(self.path)

    def _read(self, indices: np.ndarray) -> Batch:
        return self._pixels[indices], self._targets[indices]

    def _read_one(self, i: int) -> Batch:
        return self._pixels[i:i + 1].copy(), self._targets[i:i + 1].copy()  # 3x faster than a gather

    def _scan(self, batch_size: int) -> Iterator[Batch]:
        pixels, targets = self._pixels, self._targets
        for start in range(0, len(self), batch_size):
            stop = start + batch_size
            yield pixels[start:stop].copy(), targets[start:stop].copy()

    def close(self) -> None:
        for arr in (self._images, self._labels):
            mm = getattr(arr, "_mmap", None)
            if mm is not None:
                mm.close()
        self._images = self._labels = self._pixels = self._targets = None  # type: ignore[assignment]


class NpyAdapter(Adapter):
    """NumPy ``.npy`` arrays in a folder, memory-mapped for reading."""

    name: ClassVar[str] = "npy"
    suffix: ClassVar[str] = ".npy"
    writes_folder: ClassVar[bool] = True

    def _detection(self, damage: str) -> Detection:
        """Truncation always (numpy checks the length); flipped bytes never (no checksum)."""
        if damage == "truncated":
            return Detection(1.0, "numpy compares each file's length with its header's shape")
        return Detection(0.0, "no checksum: changed pixels read back")

    def _write(self, split: Split, path: Path) -> None:
        np.save(path / IMAGES, split.images, allow_pickle=False)
        np.save(path / LABELS, split.labels, allow_pickle=False)

    def _open(self, path: Path) -> Reader:
        return NpyReader(path)
