"""LMDB: one key per sample (or per run of samples) in a memory-mapped B+tree, read in place.

On disk (``<name>.lmdb/`` folder, an LMDB environment; ``data.mdb`` only, no ``lock.mdb``)::

    key b"\\0\\0\\0\\0\\0\\0\\0\\x07"  8-byte big-endian value number: sample 7 (``rows1``)
    value             image bytes of the value's samples (C order), then their labels as
                      little-endian int64: (image, label) for one sample per value
    key b"__fmtbench__"   JSON: {"layout": 1, "shape": [28, 28], "dtype": "|u1", "rows": N,
                          "rows_per_value": R}  (sorts after every sample key)

Big-endian keys sort in sample order, so the B+tree holds the samples in file order and the
writer appends them (``MDB_APPEND``: pages filled, never split). Plain ``lmdb`` reads it::

    env = lmdb.open("train.lmdb", readonly=True, lock=False)
    v = env.begin().get((7).to_bytes(8, "big"))   # sample 7 when rows_per_value is 1
    image = np.frombuffer(v, "|u1", 784).reshape(28, 28); label = int.from_bytes(v[784:], "little")

A folder rather than ``subdir=False``: a single-file environment puts its ``-lock`` file
beside the data file, outside fmtbench's atomic write (the rename moves one file, not two).
The writer and the readers use ``lock=False`` (one writer on a private temporary folder;
readers never write), so nothing but ``data.mdb`` exists and reading creates no file. The
writer appends in transactions of <= 64 MiB with ``sync=False`` (the atomic write fsyncs the
folder before its rename) under a ``map_size`` of twice an upper bound of the pages it can
write: address space only (no ``writemap``), the file grows as pages are written.

Cases: ``lmdb`` (one sample per value), ``lmdb/rows<R>`` (R consecutive samples per value:
values larger than half a page live in contiguous overflow pages, so the bulk of the file is
raw sample bytes and a scan copies whole values), ``noreadahead`` (``readahead=False``,
LMDB's ``MDB_NORDAHEAD``: ``madvise(MADV_RANDOM)`` on the map, so a random read from a cold
page cache faults in one page instead of a readahead window).

How it reads, and why: the environment is opened ``readonly=True, lock=False`` and one read
transaction with ``buffers=True`` stays open for the reader's life (nothing writes the file,
so a long transaction pins nothing). ``txn.get`` then returns a memoryview into the map: no
copy until the batch is assembled. ``read`` gets each value by key in the order asked
(``cursor.getmulti`` was no faster: 0.87-0.91M vs 0.89-0.95M samples/s on batches of 64),
joins them with one copy (``bytearray().join``) and splits images from labels with numpy; a
single sample is two views of one copy. ``rows<R>`` cases fetch each touched value once and
copy only the rows asked. ``scan`` walks a cursor (``iternext(values=True)``: 2.4M
samples/s, twice ``getmulti`` over key ranges). Arrays handed out never point into the map:
a memoryview kept after its transaction ends reads unmapped memory.

Measured on Fashion-MNIST train (60000x28x28 uint8; 2 cores shared with other jobs, load
4-6; fmtbench / plain-py-lmdb reference on the same file, interleaved, median of 9-11 per
run, the range over three runs)::

    case            write      MB     single read   batch of 64 sorted    scan(1024)
    lmdb            0.3-0.4 s  49.4   6-7 / 6 us    0.47-0.53M / 0.52-0.55M /s   1.2-2.5M / same
    lmdb/rows64     0.2 s      50.0   13 / 12 us    0.16-0.17M / 0.17M /s         8-10M / same
    lmdb/rows1024   0.1-0.4 s  47.8   14-15 / 13    0.21-0.22M / 0.22M /s         9-22M / same

Against that reference now: docs/fairness.md. A cold page cache (evicted before each pass):
``noreadahead`` took single reads from 693 to 281 us but scans from 186k to 35k samples/s;
on ``rows64`` it made everything slower.

LMDB forbids opening one environment twice in a process (py-lmdb raises "already open"), so
readers of the same ``data.mdb`` (same device and inode) share one environment, each with
its own transaction; ``drop_caches`` releases it, which closes and unmaps it when no other
reader holds it.

Damage (``LmdbAdapter.detection``): LMDB trusts every page number and node offset it reads;
a damaged one makes it read past the end of the map and the process dies of SIGBUS (a flipped
node offset in a branch page did, in fuzzing). So opening first runs py-lmdb's own offline
verifier (``lmdb.verify``, pure Python, reads the file's structure: 0.15 s for the file
above, once per version of a file in a process), then refuses a ``data.mdb`` whose size is
not (last page number + 1) x page size from the newest meta page, so a cut file is a
FormatError before any page is mapped. 5,000 damaged reads after that crashed nothing. LMDB
keeps no checksums: flipped bytes inside a value read back changed, and a flip that keeps
the structure valid (a key byte, a size within its page) goes unnoticed or reads as a
missing sample.
"""
from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fmtbench.datasets._base import LABEL_DTYPE, Split
from fmtbench.errors import FormatError, MissingDependencyError

from ._base import Adapter, Batch, Detection, Reader, library_errors
from ._options import Flag, Size

DATA = "data.mdb"
META_KEY = b"__fmtbench__"
LAYOUT = 1
_LABEL = np.dtype("<i8")
_TXN_BYTES = 64 << 20  # bytes of values per write transaction


def _key(i: int) -> bytes:
    return i.to_bytes(8, "big")


class _Shared:
    """One read-only environment per data file in this process, shared by its readers."""

    _lock = threading.Lock()
    _envs: dict[tuple[int, int], list[Any]] = {}  # (dev, ino) -> [env, holders]
    _verified: set[tuple[int, int, int, int]] = set()  # (dev, ino, size, mtime_ns)

    @classmethod
    def acquire(cls, path: Path, readahead: bool) -> tuple[tuple[int, int], Any]:
        import lmdb

        st = os.stat(path / DATA)
        key = (st.st_dev, st.st_ino)
        with cls._lock:
            entry = cls._envs.get(key)
            if entry is None:
                cls._verify(path, st)
                env = lmdb.open(str(path), readonly=True, lock=False, readahead=readahead,
                                subdir=True, create=False, max_dbs=0)
                try:
                    _check_whole(path, env, st.st_size)
                except BaseException:
                    env.close()
                    raise
                entry = cls._envs[key] = [env, 0]
            entry[1] += 1
            return key, entry[0]

    @classmethod
    def _verify(cls, path: Path, st: os.stat_result) -> None:
        """py-lmdb's offline structural check, once per version of the file in this process:
        LMDB trusts every page number and node offset it reads, and a damaged one makes it
        read past the end of the map (SIGBUS) instead of returning an error."""
        try:
            from lmdb.verify import verify
        except ImportError:
            raise MissingDependencyError(
                f"lmdb needs py-lmdb's verifier (lmdb.verify): {LmdbAdapter.install}") from None

        version = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if version in cls._verified:
            return
        problems = verify(str(path))
        if problems:
            shown = "; ".join(problems[:3]) + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else "")
            raise FormatError(path / DATA, f"damaged LMDB structure: {shown}")
        cls._verified.add(version)

    @classmethod
    def release(cls, key: tuple[int, int]) -> None:
        with cls._lock:
            entry = cls._envs.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] == 0:
                del cls._envs[key]
                entry[0].close()


def _check_whole(path: Path, env: Any, size: int) -> None:
    """FormatError unless data.mdb is exactly as long as its newest meta page says: LMDB reads
    pages through the map, where a page cut off the file is a SIGBUS, not an error."""
    psize, last = env.stat()["psize"], env.info()["last_pgno"]
    want = (last + 1) * psize
    if size != want:
        what = "truncated" if size < want else "bytes after its last page"
        raise FormatError(path / DATA, f"{size} bytes, but its meta page says {last + 1} pages of "
                                       f"{psize} ({want} bytes): {what}")


class LmdbReader(Reader):
    """A long read transaction over a shared read-only environment; values read in place."""

    def __init__(self, path: Path, readahead: bool):
        if not (path / DATA).is_file():
            raise FormatError(path, f"no {DATA}; an LMDB case is a folder holding an LMDB environment")
        self._readahead = readahead
        self._txn = None
        self._attach(path)
        try:
            meta = self._layout(path)
        except BaseException:
            self.close()
            raise
        super().__init__(path, meta["shape"], meta["dtype"], meta["rows"])

    def _attach(self, path: Path) -> None:
        self._env_key, self._env = _Shared.acquire(path, self._readahead)
        try:
            self._txn = self._env.begin(buffers=True)
        except BaseException:
            _Shared.release(self._env_key)
            raise
        self._get = self._txn.get

    def _layout(self, path: Path) -> dict[str, Any]:
        """Check the metadata value and the entry count; learn the value layout."""
        raw = self._get(META_KEY)
        if raw is None:
            raise FormatError(path, f"no {META_KEY!r} key: not an fmtbench LMDB environment")
        meta = json.loads(bytes(raw))
        if meta.get("layout") != LAYOUT:
            raise FormatError(path, f"unknown layout {meta.get('layout')!r} under {META_KEY!r}")
        meta["shape"], meta["dtype"] = tuple(int(d) for d in meta["shape"]), np.dtype(meta["dtype"])
        rows, per = int(meta["rows"]), int(meta["rows_per_value"])
        self._per, self._nvalues = per, -(-rows // per)
        self._width = int(np.prod(meta["shape"], dtype=np.int64)) * meta["dtype"].itemsize
        self._record = self._width + _LABEL.itemsize
        entries = self._env.stat()["entries"]
        if entries != self._nvalues + 1:
            raise FormatError(path, f"{entries} keys, but {rows} samples in values of {per} "
                                    f"need {self._nvalues} and the metadata key")
        return meta

    def _values_rows(self, v: int) -> int:
        """Samples in value v (the last may be short)."""
        return min(self._per, self._n - v * self._per)

    def _bad(self, what: str) -> FormatError:
        return FormatError(self.path, what)

    def _decode(self, buf: bytearray, k: int) -> Batch:
        """(images, labels) of k (image, label) records joined in `buf`. One length check of
        the whole: the structural check at open keeps every value inside its page, so a wrong
        length is wrong data, never a read outside the file."""
        if len(buf) != k * self._record:
            raise self._bad(f"{k} values of {len(buf)} bytes in all, expected {k} x {self._record}")
        rec = np.frombuffer(buf, np.uint8).reshape(k, self._record)
        images = np.ascontiguousarray(rec[:, :self._width]).view(self.image_dtype)
        labels = rec[:, self._width:].copy().view(_LABEL).reshape(k)
        return images.reshape(k, *self.image_shape), labels

    def _read(self, indices: np.ndarray) -> Batch:
        if self._per == 1:
            return self._read_records(indices)
        return self._read_runs(indices)

    def _read_records(self, indices: np.ndarray) -> Batch:
        get = self._get
        values = [get(i.to_bytes(8, "big")) for i in indices.tolist()]
        if not all(values):  # a missing key gives None (`None in values` took 7 us per 64)
            missing = [v is None for v in values].index(True)
            raise self._bad(f"sample {int(indices[missing])} is missing")
        if len(values) == 1:  # one sample: views of one copy, no split into two arrays
            buf = bytearray(values[0])
            if len(buf) != self._record:
                raise self._bad(f"a value of {len(buf)} bytes, expected {self._record}")
            return (np.frombuffer(buf, self.image_dtype, self._width // self.image_dtype.itemsize)
                    .reshape(1, *self.image_shape), np.frombuffer(buf, _LABEL, 1, self._width))
        return self._decode(bytearray().join(values), len(values))

    def _split(self, value: Any, v: int) -> tuple[np.ndarray, np.ndarray]:
        """(images as (k, width) bytes, labels) views of value number v, length checked."""
        if value is None:
            raise self._bad(f"value {v} (samples from {v * self._per}) is missing")
        k = self._values_rows(v)
        if len(value) != k * self._record:
            raise self._bad(f"value {v} is {len(value)} bytes, expected {k * self._record}")
        flat = np.frombuffer(value, np.uint8)
        return (flat[:k * self._width].reshape(k, self._width),
                flat[k * self._width:].view(_LABEL))

    def _read_runs(self, indices: np.ndarray) -> Batch:
        order = np.argsort(indices, kind="stable")
        wanted = indices[order]
        of = wanted // self._per
        bounds = [0, *(np.flatnonzero(of[1:] != of[:-1]) + 1).tolist(), len(wanted)]
        images = np.empty((len(indices), self._width), np.uint8)
        labels = np.empty(len(indices), LABEL_DTYPE)
        for a, b in zip(bounds[:-1], bounds[1:]):
            v = int(of[a])
            pixels, labs = self._split(self._get(_key(v)), v)
            rows = wanted[a:b] - v * self._per
            images[order[a:b]] = pixels[rows]
            labels[order[a:b]] = labs[rows]
        return images.view(self.image_dtype).reshape(-1, *self.image_shape), labels

    def _scan(self, batch_size: int) -> Iterator[Batch]:
        cursor = self._txn.cursor()
        if not cursor.first():
            return
        values = itertools.islice(cursor.iternext(keys=False, values=True), self._nvalues)
        if self._per == 1:
            while chunk := list(itertools.islice(values, batch_size)):
                yield self._decode(bytearray().join(chunk), len(chunk))
            return
        yield from self._scan_runs(values, batch_size)

    def _scan_runs(self, values: Iterator[Any], batch_size: int) -> Iterator[Batch]:
        """Exact batches copied out of values of several samples each."""
        pixels = labs = None
        pos = v = 0
        for start in range(0, self._n, batch_size):
            k = min(batch_size, self._n - start)
            images = np.empty((k, self._width), np.uint8)
            labels = np.empty(k, LABEL_DTYPE)
            filled = 0
            while filled < k:
                if pixels is None or pos == len(labs):
                    pixels, labs = self._split(next(values, None), v)
                    pos, v = 0, v + 1
                take = min(k - filled, len(labs) - pos)
                images[filled:filled + take] = pixels[pos:pos + take]
                labels[filled:filled + take] = labs[pos:pos + take]
                filled, pos = filled + take, pos + take
            yield images.view(self.image_dtype).reshape(k, *self.image_shape), labels

    def drop_caches(self) -> None:
        # The map is the only cache: releasing the environment unmaps it (when no other
        # reader of this file holds it), so POSIX_FADV_DONTNEED can evict its pages.
        self.close()
        self._attach(self.path)

    def close(self) -> None:
        if self._txn is not None:
            self._txn.abort()
            self._txn = self._get = self._env = None
            _Shared.release(self._env_key)


class LmdbAdapter(Adapter):
    """LMDB through py-lmdb: big-endian sample keys, values read in place from the map."""

    name: ClassVar[str] = "lmdb"
    requires: ClassVar[tuple[str, ...]] = ("lmdb",)
    install: ClassVar[str] = "pip install 'lmdb>=3.0'"  # 3.0 brought lmdb.verify
    suffix: ClassVar[str] = ".lmdb"
    writes_folder: ClassVar[bool] = True
    options = (
        Size("rows_per_value", 1, "samples per LMDB value (default 1: one key per sample)", prefix="rows"),
        Flag("no_readahead", help="open with readahead=False (MDB_NORDAHEAD: madvise random)",
             flag="noreadahead"),
    )
    grid = ({}, {"no_readahead": True}, {"rows_per_value": 64}, {"rows_per_value": 1024})
    representative = ({}, {"rows_per_value": 64})

    def _detection(self, damage: str) -> Detection:
        """Truncation always (the size check at open); flipped bytes never (no checksums)."""
        if damage == "truncated":
            return Detection(1.0, "at open: data.mdb's size against its newest meta page, and "
                                  "py-lmdb's structural verifier")
        return Detection(0.0, "no checksums: a changed value reads back")

    def _write(self, split: Split, path: Path) -> None:
        import lmdb

        n, per = len(split), self.config["rows_per_value"]
        flat = np.ascontiguousarray(split.images).reshape(n, -1).view(np.uint8) if n else None
        labels = split.labels.astype(_LABEL)
        record = split.images.itemsize * int(np.prod(split.image_shape)) + _LABEL.itemsize
        nvalues = -(-n // per)
        meta = {"layout": LAYOUT, "shape": list(split.image_shape), "dtype": split.images.dtype.str,
                "rows": n, "rows_per_value": per}
        # An upper bound of the pages written: per value at most a leaf page, a branch page and
        # its overflow pages, doubled for the pages copied on write between transactions. The
        # map is address space only (no writemap): the file grows as pages are written.
        page = os.sysconf("SC_PAGE_SIZE")  # LMDB's page size
        pages = 2 * (nvalues * (2 + -(-(per * record + 64) // page)) + 64)
        env = lmdb.open(str(path), map_size=pages * page, lock=False, sync=False, metasync=False,
                        subdir=True, writemap=False, meminit=False)
        try:
            values_per_txn = max(1, _TXN_BYTES // (per * record))
            for first in range(0, nvalues, values_per_txn):
                with env.begin(write=True) as txn:
                    txn.cursor().putmulti(
                        ((_key(v), self._value(flat, labels, v * per, min(n, (v + 1) * per)))
                         for v in range(first, min(nvalues, first + values_per_txn))),
                        append=True)
            with env.begin(write=True) as txn:
                txn.put(META_KEY, json.dumps(meta).encode(), append=True)
        finally:
            env.close()

    @staticmethod
    def _value(flat: np.ndarray, labels: np.ndarray, a: int, b: int) -> bytes:
        if b - a == 1:
            return flat[a].tobytes() + labels[a].tobytes()
        return flat[a:b].tobytes() + labels[a:b].tobytes()

    def _open(self, path: Path) -> Reader:
        return LmdbReader(path, readahead=not self.config["no_readahead"])

    def observed(self, path: Path) -> dict[str, Any]:
        """``rows_per_value`` from the length of the first value (sample 0's) over one sample's
        record (image bytes from the metadata's shape and dtype, plus the 8-byte label), when
        the file holds two values or more (one value holds every row whatever the option).
        ``no_readahead`` is how the file is opened, not how it was written: never shown.
        Structure-checked as a reader's open is (a damaged page must not SIGBUS), then one get."""
        path = Path(path)
        if not (path / DATA).is_file():
            raise FormatError(path, f"no {DATA}; an LMDB case is a folder holding an LMDB environment")
        with library_errors(path):
            key, env = _Shared.acquire(path, readahead=True)
            try:
                with env.begin() as txn:
                    raw, first = txn.get(META_KEY), txn.get(_key(0))
                values = env.stat()["entries"] - 1
            finally:
                _Shared.release(key)
            if raw is None:
                raise FormatError(path, f"no {META_KEY!r} key: not an fmtbench LMDB environment")
            meta = json.loads(raw)
            record = int(np.prod(meta["shape"], dtype=np.int64)) * np.dtype(meta["dtype"]).itemsize
            record += _LABEL.itemsize
        if values < 2 or first is None:
            return {}
        if len(first) % record:
            raise FormatError(path, f"the first value is {len(first)} bytes, not a whole number "
                                    f"of {record}-byte samples")
        return {"rows_per_value": len(first) // record}
