"""NPY with numpy alone: both arrays memory-mapped, one fancy-index gather per read."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


class Reference:
    """``np.load(mmap_mode="r")``; ``read`` is ``arr[indices]``; ``scan`` copies slices."""

    def __init__(self, path: Path):
        import numpy as np

        self._np = np
        self._images = np.load(Path(path) / "images.npy", mmap_mode="r")
        self._labels = np.load(Path(path) / "labels.npy", mmap_mode="r")

    def read(self, indices):
        return self._images[indices], self._labels[indices]

    def scan(self, batch_size: int) -> Iterator:
        np, n = self._np, len(self._labels)
        for start in range(0, n, batch_size):
            yield np.array(self._images[start:start + batch_size]), np.array(self._labels[start:start + batch_size])

    def close(self) -> None:
        for arr in (self._images, self._labels):
            if getattr(arr, "_mmap", None) is not None:
                arr._mmap.close()
