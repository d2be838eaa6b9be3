"""NPY with numpy alone: both arrays memory-mapped, one fancy-index gather per read."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


class Reference:
    """``np.load(mmap_mode="r")`` viewed as plain ndarrays (a ``np.memmap`` runs Python-level
    ``__getitem__`` and ``__array_finalize__`` on every index); ``read`` is ``arr[indices]``,
    one index a copied slice; ``scan`` copies slices."""

    def __init__(self, path: Path):
        import numpy as np

        self._np = np
        self._images = np.load(Path(path) / "images.npy", mmap_mode="r")
        self._labels = np.load(Path(path) / "labels.npy", mmap_mode="r")
        self._pixels, self._targets = self._images.view(np.ndarray), self._labels.view(np.ndarray)

    def read(self, indices):
        if len(indices) == 1:
            i = int(indices[0])
            return self._pixels[i:i + 1].copy(), self._targets[i:i + 1].copy()
        return self._pixels[indices], self._targets[indices]

    def scan(self, batch_size: int) -> Iterator:
        pixels, targets = self._pixels, self._targets
        for start in range(0, len(targets), batch_size):
            yield pixels[start:start + batch_size].copy(), targets[start:start + batch_size].copy()

    def close(self) -> None:
        self._pixels = self._targets = None
        for arr in (self._images, self._labels):
            if getattr(arr, "_mmap", None) is not None:
                arr._mmap.close()
