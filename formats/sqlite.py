"""SQLite: one row per sample, the image as a BLOB, read by batched primary-key queries.

On disk (one ``.sqlite`` file, opens with plain ``sqlite3``; no ``-wal``/``-journal`` sidecar)::

    CREATE TABLE samples (id INTEGER PRIMARY KEY, label INTEGER NOT NULL, image BLOB NOT NULL)
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)
        -- rows: ('shape', '[28, 28]'), ('dtype', '|u1'), ('rows', '60000'), ('layout', '1')

``id`` is the sample index (0..N-1, the rowid itself, so lookups are one B-tree descent) and
``image`` holds the C-order bytes of one image: ``np.frombuffer(blob, dtype).reshape(shape)``.

The split is written in one transaction with ``executemany``. Cases: ``sqlite`` (rollback
journal, 4 KiB pages), ``sqlite/wal`` (written in WAL mode; afterwards the WAL is checkpointed
and the file switched back to rollback mode, so the renamed file is self-contained and opens
read-only without creating ``-wal``/``-shm`` files; reads are those of ``sqlite``) and
``sqlite/page65536`` (64 KiB pages: fewer, larger pages per B-tree descent).

How it reads, and why: the file is opened read-only through a ``file:...?mode=ro&immutable=1``
URI, so a reader never creates or changes a file, and SQLite skips the file lock and change
check it otherwise pays on every query (single-row query 18 -> 9 us here); fmtbench replaces
files by rename and never edits one in place, so an open file cannot change. ``read(indices)``
asks for the sorted unique ids with parameterized ``SELECT label, image ... WHERE id IN (?, ...)
ORDER BY id`` queries (ids per query up to SQLite's variable limit: 250000 in this build, 32766
by default; the text is built once per length, so sqlite3's statement cache hands back the
prepared statement), joins the BLOBs into one buffer that numpy views, then gathers the order
asked (duplicates allowed); sorted unique indices skip that gather. Ids are unique and every row
returned is one asked for, so as many rows as ids means all of them, in order: the row count is
the whole check of the ids; every BLOB's length is checked before the join (``set(map(len,
...))``, ~2% of a batch or a scan; checking it in SQL cost as much). One index is ``SELECT
label, image FROM samples WHERE id = ?``. ``scan`` walks ``ORDER BY id`` (rowid order, no sort
step) with ``fetchmany(batch_size)``.

Measured on Fashion-MNIST train (60000x28x28 uint8), warm cache, a loaded 2-core machine, cases
interleaved with Parquet's, median of 7 (compare ratios, not absolutes):

    case              batch of 64 sorted   single sample   scan(1024)    write
    sqlite            77k samples/s        0.094 ms        300k/s        0.4-0.8 s
    sqlite/wal        79k                  0.097 ms        258k/s        1.4-1.9 s
    sqlite/page65536  32k                  0.112 ms        349k/s        0.5-0.8 s

(64 KiB pages make each random row cost a 64 KiB page read; Parquet rg1024-zstd: 0.63k/s and
3.2 ms.) Against the same queries through ``sqlite3`` alone (``benchmarks/reference/sqlite_ref.py``;
ratios in docs/fairness.md): single reads were 1.5-1.8x (a query rebuilt and id lists compared
per call); scans measured 1.12-1.30x until the fairness benchmark froze its imports out of the
garbage collector: whichever reader's scan triggered a full collection paid for it.

Damage (``SqliteAdapter.detection``): SQLite itself notices a cut file only when whole pages
are gone; it reads the missing tail of a cut last page as zeros (300 samples, 500 bytes cut:
one sample read back with 203 pixels zeroed, and no error). So opening reads the 100-byte
header and refuses a file whose size is not the page size (offset 16) times the page count
(offset 28; valid when the change counter at 24 equals offset 92), and a file in WAL mode,
whose newest pages, the header's page count included, would be in a ``-wal`` file (the
``wal`` case checkpoints and leaves WAL mode, so its file is whole by itself).
``PRAGMA quick_check`` is not run on open (it reads the whole file, and it cannot see a changed
BLOB anyway); opening checks the schema and ``meta``, so a file that is not ours is a clear
FormatError. Flipped bytes inside a BLOB are not detectable: SQLite keeps no checksums.
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fmtbench.datasets._base import Split
from fmtbench.errors import FormatError, InvalidCaseError

from ._base import Adapter, Batch, Detection, Reader, library_errors
from ._options import Choice, Size

SCHEMA = (
    "CREATE TABLE samples (id INTEGER PRIMARY KEY, label INTEGER NOT NULL, image BLOB NOT NULL)",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
COLUMNS = [("id", "INTEGER", 1), ("label", "INTEGER", 0), ("image", "BLOB", 0)]
SIDECARS = ("-journal", "-wal", "-shm")
LAYOUT = "1"
_MAGIC = b"SQLite format 3\x00"
_HEADER = 100  # bytes of the database header, at the start of page 1
_ONE = "SELECT label, image FROM samples WHERE id = ?"
_QUERIES = 64  # IN (...) query texts kept, one per batch length
_ALL = np.logical_and.reduce  # np.all() adds ~1 us of Python wrappers


def _check_whole(path: Path) -> None:
    """FormatError unless the file is as long as its header says: SQLite reads the missing tail
    of a cut last page as zeros, and notices a cut only when whole pages are gone."""
    with open(path, "rb") as fh:
        head, size = fh.read(_HEADER), os.fstat(fh.fileno()).st_size
    if len(head) < _HEADER or not head.startswith(_MAGIC):
        raise FormatError(path, "not an SQLite database (no SQLite header)")
    if head[18] != 1 or head[19] != 1:
        # WAL mode: the newest pages, page 1 with its page count included, may sit in a -wal
        # file, which fmtbench never leaves (it writes WAL cases back to rollback mode).
        raise FormatError(path, "the database is in WAL mode; fmtbench files never are")
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page  # the header's encoding of 64 KiB pages
    pages = int.from_bytes(head[28:32], "big")
    # The in-header page count is valid only when the change counter (offset 24) equals the
    # "version-valid-for" number (offset 92): SQLite >= 3.7.0 keeps them in step.
    if pages == 0 or head[24:28] != head[92:96]:
        raise FormatError(path, "the header's page count is stale: cannot tell whether the file is whole")
    if size != pages * page:
        what = "truncated" if size < pages * page else "bytes after its last page"
        raise FormatError(path, f"{size} bytes, but the header says {pages} pages of {page} "
                                f"({pages * page} bytes): {what}")


def _blobs_to_array(blobs: Sequence[bytes], width: int, path: Path) -> np.ndarray:
    """One writable (n, width) uint8 array from n BLOBs of `width` bytes each. Their joined
    length is checked, which catches any one BLOB of another length (a damaged record header);
    a set of every length cost 10% of a scan (40 us per 1024 BLOBs)."""
    joined = bytearray().join(blobs)
    if len(joined) != width * len(blobs):
        raise FormatError(path, f"{len(blobs)} image BLOBs hold {len(joined)} bytes, not {width} each")
    return np.frombuffer(joined, np.uint8).reshape(len(blobs), width)


def _connect(path: Path) -> sqlite3.Connection:
    # check_same_thread=False: input pipelines (tf.data, Keras) call readers from worker threads;
    # the read-only connection is used by one caller at a time, which SQLite's serialized
    # threading mode makes safe.
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True,
                           check_same_thread=False)


class SqliteReader(Reader):
    """A read-only connection; batched primary-key lookups and an ordered scan."""

    def __init__(self, path: Path):
        _check_whole(path)
        # immutable=1: no file locking or change checks per query; fmtbench replaces files by
        # rename and never edits one in place, so an open file cannot change under a reader.
        self._con = _connect(path)
        try:
            shape, dtype, rows = self._layout(path)
        except BaseException:
            self.close()
            raise
        self._width = int(np.prod(shape)) * dtype.itemsize
        self._chunk = self._con.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._queries: dict[int, str] = {}
        super().__init__(path, shape, dtype, rows)

    def _layout(self, path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
        """Check the schema and meta this adapter writes, and the id range."""
        columns = [(c[1], c[2].upper(), c[5]) for c in self._con.execute("PRAGMA table_info(samples)")]
        tables = {r[0] for r in self._con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if columns != COLUMNS or "meta" not in tables:
            raise FormatError(path, f"not an fmtbench sqlite file (tables {sorted(tables)})")
        meta = dict(self._con.execute("SELECT key, value FROM meta"))
        if meta.get("layout") != LAYOUT:
            raise FormatError(path, f"unknown layout {meta.get('layout')!r} in table meta")
        shape, dtype = tuple(int(d) for d in json.loads(meta["shape"])), np.dtype(meta["dtype"])
        rows = int(meta["rows"])
        lo, hi = self._con.execute("SELECT min(id), max(id) FROM samples").fetchone()
        if (lo, hi) != ((0, rows - 1) if rows else (None, None)):
            raise FormatError(path, f"ids {lo}..{hi} do not match the {rows} rows in meta")
        return shape, dtype, rows

    def _read_one(self, i: int) -> Batch:
        """One row: the primary-key lookup, nothing else."""
        row = self._con.execute(_ONE, (i,)).fetchone()
        if row is None:
            raise FormatError(self.path, "1 of the ids asked is missing")
        label, blob = row
        if len(blob) != self._width:
            raise FormatError(self.path, f"an image BLOB is not {self._width} bytes long")
        return np.frombuffer(bytearray(blob), self.image_dtype).reshape(self._shape_of_one), np.array([label], np.int64)

    def _read(self, indices: np.ndarray) -> Batch:
        if _ALL(indices[1:] > indices[:-1]):
            ids, inverse = indices, None
        else:
            ids, inverse = np.unique(indices, return_inverse=True)
        ids = ids.tolist()
        rows: list[tuple[int, bytes]] = []
        for start in range(0, len(ids), self._chunk):
            part = ids[start:start + self._chunk]
            got = self._con.execute(self._select(len(part)), part).fetchall()
            # Ids are unique and every row returned is one asked for: as many rows as ids
            # means all of them, in the order asked (ORDER BY id).
            if len(got) != len(part):
                raise FormatError(self.path, f"{len(part) - len(got)} of the ids asked are missing")
            rows += got
        labels, blobs = zip(*rows)
        images = _blobs_to_array(blobs, self._width, self.path).view(self.image_dtype)
        images, label_array = images.reshape(-1, *self.image_shape), np.array(labels, np.int64)
        return (images, label_array) if inverse is None else (images[inverse], label_array[inverse])

    def _select(self, n: int) -> str:
        """The query for `n` sorted unique ids; one text per length, so sqlite3's statement
        cache hands back the prepared statement instead of compiling it again."""
        sql = self._queries.get(n)
        if sql is None:
            if len(self._queries) >= _QUERIES:  # bounded, like sqlite3's own statement cache
                self._queries.clear()
            sql = self._queries[n] = f"SELECT label, image FROM samples WHERE id IN ({','.join('?' * n)}) ORDER BY id"
        return sql

    def _scan(self, batch_size: int) -> Iterator[Batch]:
        cur = self._con.execute("SELECT label, image FROM samples ORDER BY id")
        try:
            while rows := cur.fetchmany(batch_size):
                labels, blobs = zip(*rows)
                images = _blobs_to_array(blobs, self._width, self.path)
                yield (images.view(self.image_dtype).reshape(-1, *self.image_shape),
                       np.array(labels, np.int64))
        finally:
            cur.close()

    def drop_caches(self) -> None:
        # SQLite keeps a page cache per connection: a fresh connection starts cold.
        self.close()
        self._con = _connect(self.path)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None  # type: ignore[assignment]


class SqliteAdapter(Adapter):
    """SQLite through the standard library: BLOB rows keyed by sample index."""

    name: ClassVar[str] = "sqlite"
    suffix: ClassVar[str] = ".sqlite"
    options = (
        Choice("journal", "delete", "journal mode while writing", {"delete": "delete", "wal": "wal"}),
        Size("page_size", 4096, "page size in bytes, a power of two in 512..65536", prefix="page"),
    )
    grid = ({}, {"journal": "wal"}, {"page_size": 65536})
    representative = grid

    def _detection(self, damage: str) -> Detection:
        """Truncation always (the size check at open); flipped bytes never (no checksums)."""
        if damage == "truncated":
            return Detection(1.0, "the file's size against the page count in its header, at open")
        return Detection(0.0, "no checksums: a changed BLOB reads back")

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        """Page sizes must be what SQLite accepts; it silently ignores any other."""
        size = config["page_size"]
        if not (512 <= size <= 65536 and size & (size - 1) == 0):
            raise InvalidCaseError(f"sqlite: page size {size} is not a power of two in 512..65536")

    def _write(self, split: Split, path: Path) -> None:
        con = sqlite3.connect(path, isolation_level=None)
        ok = False
        try:
            con.execute(f"PRAGMA page_size = {int(self.config['page_size'])}")
            con.execute(f"PRAGMA journal_mode = {self.config['journal']}")
            meta = {"shape": json.dumps(list(split.image_shape)), "dtype": split.images.dtype.str,
                    "rows": str(len(split)), "layout": LAYOUT}
            con.execute("BEGIN")
            for statement in SCHEMA:
                con.execute(statement)
            con.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            con.executemany(
                "INSERT INTO samples VALUES (?, ?, ?)",
                zip(range(len(split)), split.labels.tolist(), map(memoryview, split.images)),
            )
            con.execute("COMMIT")
            if self.config["journal"] == "wal":
                # Fold the WAL into the file and leave WAL mode, so nothing lives beside it.
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                con.execute("PRAGMA journal_mode = delete")
            ok = True
        finally:
            con.close()
            left = [p for p in (path.with_name(path.name + s) for s in SIDECARS) if p.exists()]
            for side in left if not ok else ():  # a failed write's journal dies with the temp file
                with contextlib.suppress(FileNotFoundError):
                    side.unlink()
        if ok and left:
            raise RuntimeError(f"sqlite left {[p.name for p in left]} beside {path.name}")

    def _open(self, path: Path) -> Reader:
        return SqliteReader(path)

    def observed(self, path: Path) -> dict[str, Any]:
        """The page size, from the database header (bytes 16-17; 1 means 65536). The journal
        mode is a write-time option: the writer returns the file to rollback mode, so the
        header shows nothing of it."""
        with library_errors(path), open(path, "rb") as fh:
            header = fh.read(100)
        if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
            raise FormatError(path, "not an SQLite database (no SQLite header)")
        size = int.from_bytes(header[16:18], "big")
        return {"page_size": 65536 if size == 1 else size}
