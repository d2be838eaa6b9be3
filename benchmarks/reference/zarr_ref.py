"""Plain zarr-python 3: what an expert writes to read the group the zarr adapter wrote."""
from __future__ import annotations

import pathlib
from collections.abc import Iterator

import numpy as np


class Reference:
    """``zarr.open_group(mode="r")``; ``oindex`` for batches, slices for single rows and scans."""

    def __init__(self, path: pathlib.Path):
        import zarr

        group = zarr.open_group(str(path), mode="r")
        self.images, self.labels = group["images"], group["labels"]
        self.n = self.images.shape[0]
        rows = (self.images.shards or self.images.chunks)[0]
        row_bytes = self.images.dtype.itemsize * int(np.prod(self.images.shape[1:]))
        self.block = rows * max(1, -(-(8 << 20) // (rows * row_bytes)))  # whole chunks, >= 8 MiB

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        indices = np.asarray(indices, np.int64)
        if len(indices) == 1:
            i = int(indices[0])
            return self.images[i:i + 1], self.labels[i:i + 1]
        uniq, inverse = np.unique(indices, return_inverse=True)
        return self.images.oindex[uniq][inverse], self.labels.oindex[uniq][inverse]

    def scan(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        block = -(-batch_size // self.block) * self.block
        images = labels = None
        for start in range(0, self.n, block):
            more_images, more_labels = self.images[start:start + block], self.labels[start:start + block]
            images = more_images if images is None else np.concatenate([images, more_images])
            labels = more_labels if labels is None else np.concatenate([labels, more_labels])
            last = start + block >= self.n
            full = len(labels) if last else len(labels) // batch_size * batch_size
            for a in range(0, full, batch_size):
                yield images[a:a + batch_size], labels[a:a + batch_size]
            images, labels = images[full:], labels[full:]

    def close(self) -> None:
        self.images = self.labels = None
