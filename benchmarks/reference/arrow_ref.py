"""Plain pyarrow reading an fmtbench Arrow IPC (Feather v2) file: memory map, batches, gather."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np


class Reference:
    """Memory-mapped ``pa.ipc.open_file``. Uncompressed: every batch's buffers located in the map
    once, rows gathered from a strided view of the whole map in one numpy call. Compressed: each
    batch a read touches is decompressed (``get_batch``) and gathered from with numpy."""

    def __init__(self, path: Path):
        import pyarrow as pa

        self._map = pa.memory_map(str(path))
        self._file = pa.ipc.open_file(self._map)
        meta = json.loads(self._file.schema.metadata[b"fmtbench"])
        self._shape, self._dtype = tuple(meta["shape"]), np.dtype(meta["dtype"])
        self._rows, self._k = meta["rows"], meta["batch_rows"]
        self._width = int(np.prod(self._shape)) * self._dtype.itemsize
        self._kept = None
        if meta["compression"] == "none":  # the buffers point into the map: keep their views
            from numpy.lib.stride_tricks import as_strided

            self._map.seek(0)
            whole = self._map.read_buffer()
            flat = np.frombuffer(whole, np.uint8)
            self._kept = [self._views(b) for b in range(self._file.num_record_batches)]
            self._image_at = np.array([v[0].ctypes.data - whole.address for v in self._kept])
            self._label_at = np.array([v[1].ctypes.data - whole.address for v in self._kept]) // 8
            self._rows_at = as_strided(flat, (max(flat.size - self._width + 1, 0), self._width), (1, 1),
                                       writeable=False)
            self._labels_at = flat[: flat.size // 8 * 8].view("<i8")

    def _views(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        batch = self._file.get_batch(b)
        images = np.frombuffer(batch.column(1).buffers()[1], np.uint8,
                               count=batch.num_rows * self._width).reshape(-1, self._width)
        return images, batch.column(0).to_numpy()

    def _batch(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        return self._kept[b] if self._kept is not None else self._views(b)

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        indices = np.asarray(indices, np.int64)
        batch_of, rows = np.divmod(indices, self._k)
        if self._kept is not None:
            images = self._rows_at[self._image_at[batch_of] + rows * self._width]
            labels = self._labels_at[self._label_at[batch_of] + rows]
            return images.view(self._dtype).reshape(-1, *self._shape), labels
        images = np.empty((len(indices), self._width), np.uint8)
        labels = np.empty(len(indices), np.int64)
        for b in np.unique(batch_of).tolist():
            where = np.flatnonzero(batch_of == b)
            pixels, labs = self._views(b)
            images[where], labels[where] = pixels[rows[where]], labs[rows[where]]
        return images.view(self._dtype).reshape(-1, *self._shape), labels

    def scan(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        pieces: list[tuple[np.ndarray, np.ndarray]] = []
        held = 0
        for b in range(self._file.num_record_batches):
            pixels, labs = self._batch(b)
            start = 0
            while start < len(labs):
                take = min(batch_size - held, len(labs) - start)
                pieces.append((pixels[start:start + take], labs[start:start + take]))
                start, held = start + take, held + take
                if held == batch_size:
                    yield self._joined(pieces)
                    pieces, held = [], 0
        if held:
            yield self._joined(pieces)

    def _joined(self, pieces: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        # A view of the map would read nothing, so rows of an uncompressed file are copied out;
        # a compressed batch was just decompressed: its rows are handed out as they are.
        if len(pieces) == 1 and self._kept is None:
            images, labels = pieces[0]
        else:
            images = np.concatenate([p[0] for p in pieces])
            labels = np.concatenate([p[1] for p in pieces])
        return images.view(self._dtype).reshape(-1, *self._shape), labels

    def close(self) -> None:
        self._kept = self._file = self._rows_at = self._labels_at = None
        self._map.close()
