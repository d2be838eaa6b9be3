"""Plain py-lmdb: what an expert writes to read the environment the lmdb adapter wrote.

LMDB forbids opening one environment twice in a process, and py-lmdb (>= 3.0) refuses it
("already open in this process"), so this reader cannot be open while fmtbench's reader of the
same file is: open, use and close one, then the other (``EXCLUSIVE``).
"""
from __future__ import annotations

import itertools
import json
import pathlib
from collections.abc import Iterator

import numpy as np

#: True: never open at the same time as fmtbench's reader of the same file in one process.
EXCLUSIVE = True


class Reference:
    """A read-only, lock-free environment and one ``buffers=True`` transaction; values by key."""

    def __init__(self, path: pathlib.Path):
        import lmdb

        self.env = lmdb.open(str(path), readonly=True, lock=False)
        self.txn = self.env.begin(buffers=True)
        meta = json.loads(bytes(self.txn.get(b"__fmtbench__")))
        self.shape, self.dtype = tuple(meta["shape"]), np.dtype(meta["dtype"])
        self.n, self.per = meta["rows"], meta["rows_per_value"]
        self.width = int(np.prod(self.shape)) * self.dtype.itemsize

    def _records(self, values: list) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of one-sample values: image bytes then a little-endian int64."""
        rec = np.frombuffer(bytearray().join(values), np.uint8).reshape(len(values), -1)
        images = np.ascontiguousarray(rec[:, :self.width]).view(self.dtype).reshape(-1, *self.shape)
        return images, rec[:, self.width:].copy().view("<i8").reshape(-1)

    def _value(self, v: int) -> tuple[np.ndarray, np.ndarray]:
        """Image rows (as bytes) and labels of the value holding samples v*per ..."""
        flat = np.frombuffer(self.txn.get(v.to_bytes(8, "big")), np.uint8)
        k = len(flat) // (self.width + 8)
        return flat[:k * self.width].reshape(k, self.width), flat[k * self.width:].view("<i8")

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        indices = np.asarray(indices, np.int64)
        if self.per == 1:
            get = self.txn.get
            if len(indices) == 1:
                buf = bytearray(get(int(indices[0]).to_bytes(8, "big")))
                return (np.frombuffer(buf, self.dtype, self.width // self.dtype.itemsize).reshape(1, *self.shape),
                        np.frombuffer(buf, "<i8", 1, self.width))
            return self._records([get(i.to_bytes(8, "big")) for i in indices.tolist()])
        order = np.argsort(indices, kind="stable")
        wanted = indices[order]
        of = wanted // self.per
        bounds = [0, *(np.flatnonzero(of[1:] != of[:-1]) + 1).tolist(), len(wanted)]
        images = np.empty((len(indices), self.width), np.uint8)
        labels = np.empty(len(indices), np.int64)
        for a, b in zip(bounds[:-1], bounds[1:]):
            v = int(of[a])
            pixels, labs = self._value(v)
            rows = wanted[a:b] - v * self.per
            images[order[a:b]], labels[order[a:b]] = pixels[rows], labs[rows]
        return images.view(self.dtype).reshape(-1, *self.shape), labels

    def scan(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        cursor = self.txn.cursor()
        cursor.first()
        values = itertools.islice(cursor.iternext(keys=False, values=True), -(-self.n // self.per))
        if self.per == 1:
            while chunk := list(itertools.islice(values, batch_size)):
                yield self._records(chunk)
            return
        pixels = labs = None
        pos = 0
        for start in range(0, self.n, batch_size):
            k = min(batch_size, self.n - start)
            images, labels = np.empty((k, self.width), np.uint8), np.empty(k, np.int64)
            filled = 0
            while filled < k:
                if labs is None or pos == len(labs):
                    flat = np.frombuffer(next(values), np.uint8)
                    rows = len(flat) // (self.width + 8)
                    pixels = flat[:rows * self.width].reshape(rows, self.width)
                    labs, pos = flat[rows * self.width:].view("<i8"), 0
                take = min(k - filled, len(labs) - pos)
                images[filled:filled + take] = pixels[pos:pos + take]
                labels[filled:filled + take] = labs[pos:pos + take]
                filled, pos = filled + take, pos + take
            yield images.view(self.dtype).reshape(-1, *self.shape), labels

    def close(self) -> None:
        if self.txn is not None:
            self.txn.abort()
            self.env.close()
            self.txn = self.env = None
