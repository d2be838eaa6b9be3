"""Lance read with pylance alone: ``take`` for random reads, ``to_batches`` for scans."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

COLUMNS = ["label", "image"]


class Reference:
    """A Lance dataset fmtbench wrote, read the way the Lance docs read one."""

    def __init__(self, path: Path):
        import lance

        self._ds = lance.dataset(str(path))
        meta = json.loads(self._ds.schema.metadata[b"fmtbench"])
        self._shape, self._dtype = tuple(meta["shape"]), np.dtype(meta["dtype"])

    def _arrays(self, labels, images) -> tuple[np.ndarray, np.ndarray]:
        import pyarrow as pa

        # fixed_size_binary: buffers [validity, values]; binary: [validity, offsets, values]
        buffers = images.buffers()
        width = int(np.prod(self._shape)) * self._dtype.itemsize
        if len(buffers) == 3:  # the images of a compressed case: equal-width binary values
            kind = np.int64 if images.type == pa.large_binary() else np.int32
            start = int(np.frombuffer(buffers[1], kind, count=1, offset=images.offset * kind().itemsize)[0])
        else:
            start = images.offset * width
        pixels = np.frombuffer(buffers[-1], np.uint8, count=len(images) * width, offset=start)
        return pixels.view(self._dtype).reshape(-1, *self._shape), labels.to_numpy()

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        table = self._ds.take(indices.tolist(), columns=COLUMNS).combine_chunks()
        return self._arrays(table.column(0).chunk(0), table.column(1).chunk(0))

    def scan(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for batch in self._ds.to_batches(columns=COLUMNS, batch_size=batch_size):
            yield self._arrays(batch.column(0), batch.column(1))

    def close(self) -> None:
        self._ds = None
