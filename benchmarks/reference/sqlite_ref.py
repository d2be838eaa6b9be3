"""SQLite with the standard library alone: primary-key queries on a read-only connection.

Opened as ``file:...?mode=ro&immutable=1`` (read-only, no locking: the way to read a file that
nobody writes). One index: ``SELECT label, image FROM samples WHERE id = ?``. A batch: its sorted
unique ids in one ``WHERE id IN (?, ...) ORDER BY id`` (statement text cached per length, so
sqlite3's statement cache reuses the prepared statement), BLOBs joined into one buffer numpy
views, then the order asked restored with one gather. ``scan``: ``ORDER BY id`` and
``fetchmany``.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path


class Reference:
    def __init__(self, path: Path):
        import sqlite3

        import numpy as np

        self._np = np
        self._con = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        meta = dict(self._con.execute("SELECT key, value FROM meta"))
        self._shape = tuple(json.loads(meta["shape"]))
        self._dtype = np.dtype(meta["dtype"])
        self._sql: dict[int, str] = {}

    def _images(self, blobs, n):
        return self._np.frombuffer(b"".join(blobs), self._dtype).reshape(n, *self._shape)

    def read(self, indices):
        np = self._np
        if len(indices) == 1:
            label, blob = self._con.execute(
                "SELECT label, image FROM samples WHERE id = ?", (int(indices[0]),)).fetchone()
            return np.frombuffer(blob, self._dtype).reshape(1, *self._shape), np.array([label], np.int64)
        ids, inverse = np.unique(indices, return_inverse=True)
        n = len(ids)
        sql = self._sql.get(n)
        if sql is None:
            sql = self._sql[n] = f"SELECT label, image FROM samples WHERE id IN ({','.join('?' * n)}) ORDER BY id"
        rows = self._con.execute(sql, ids.tolist()).fetchall()
        labels, blobs = zip(*rows)
        return self._images(blobs, n)[inverse], np.array(labels, np.int64)[inverse]

    def scan(self, batch_size: int) -> Iterator:
        np = self._np
        cur = self._con.execute("SELECT label, image FROM samples ORDER BY id")
        while rows := cur.fetchmany(batch_size):
            labels, blobs = zip(*rows)
            yield self._images(blobs, len(rows)), np.array(labels, np.int64)

    def close(self) -> None:
        self._con.close()
