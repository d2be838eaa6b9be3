"""The adapter contract: one format with one configuration (a *case*) writes and reads a split.

An adapter subclass declares its options and its configuration grid as class constants and
implements `_write` and `_open`; this base class supplies case ids, validation, atomic writes
and the reader's index checking, so every format behaves the same at its edges.
"""
from __future__ import annotations

import contextlib
import functools
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from fmtbench.atomic import atomic_path, path_size, remove
from fmtbench.datasets._base import LABEL_DTYPE, Split
from fmtbench.errors import FmtbenchError, FormatError, InvalidCaseError, ReaderClosedError, UnknownNameError

from ._options import Option

Batch = tuple[np.ndarray, np.ndarray]

# Programming errors are never dressed up as a corrupt file.
_BUGS = (AttributeError, NameError, AssertionError, NotImplementedError, RecursionError)

#: the kinds of damage a case declares its detection of: "truncated" (bytes cut off the end of
#: the file, or of any file of a folder case) and "flipped" (bytes changed in place where the
#: samples are stored, the bulk of the file; each module's docstring says what guards its
#: headers and footers).
DAMAGE = ("truncated", "flipped")
#: the chance that a 32-bit checksum (CRC-32, crc32c, zlib's Adler-32) catches a change wider
#: than the burst it always catches (32 bits): it misses 1 in 2^32 whatever the data.
CHECKSUM_32 = 1.0 - 2.0**-32
_INT64 = np.dtype(np.int64)  # a singleton: `arr.dtype is _INT64` for every native int64 array
_SHAPE_OF_ONE = (1,)


class Detection(NamedTuple):
    """What reading a file with one kind of damage is promised to do, and which check does it."""

    #: the chance that reading (open, scan or read) raises FormatError, whatever the data:
    #: 1.0 always, CHECKSUM_32 by a 32-bit checksum, 0.0 when nothing is promised.
    p: float
    #: the check that catches the damage, or why nothing sure does.
    by: str

    @property
    def label(self) -> str:
        """The matrix entry: "detected", "not detected" or "detected with probability 1 - 2^-32"."""
        if self.p >= 1.0:
            return "detected"
        if self.p <= 0.0:
            return "not detected"
        miss = 1.0 - self.p
        odds = f"1 - 2^{round(math.log2(miss))}" if miss < 1e-3 else f"{self.p:.2f}"
        return f"detected with probability {odds}"


NOT_DETECTED = Detection(0.0, "no check covers it")


@contextlib.contextmanager
def library_errors(path: str | Path) -> Iterator[None]:
    """Turn any error of a storage library into one FormatError naming the file and the cause."""
    try:
        yield
    except (FmtbenchError, IndexError, *_BUGS):
        raise
    except Exception as exc:  # h5py OSError, ArrowInvalid, sqlite3.DatabaseError, DataLossError...
        raise FormatError(path, exc) from exc


def rebatch(blocks: Iterable[Batch], batch_size: int) -> Iterator[Batch]:
    """Batches of exactly `batch_size` (the last may be short) from consecutive blocks of any
    size: the rows left at the end of a block are carried into the next."""
    carry: Batch | None = None
    for images, labels in blocks:
        if carry is not None:
            images = np.concatenate([carry[0], images])
            labels = np.concatenate([carry[1], labels])
        full = len(labels) // batch_size * batch_size
        for a in range(0, full, batch_size):
            yield images[a:a + batch_size], labels[a:a + batch_size]
        carry = (images[full:], labels[full:]) if full < len(labels) else None
    if carry is not None:
        yield carry


@dataclass(frozen=True)
class WriteInfo:
    """What a write produced: rows, content digest of what went in, and bytes on disk."""

    path: Path
    rows: int
    digest: str
    nbytes: int


class Reader(ABC):
    """An open case file: `len`, `read(indices)` in the order asked, `scan(batch_size)` in file order.

    Input pipelines (tf.data, Keras) call a reader from a worker thread, one call at a time:
    a reader must not be tied to the thread that opened it.
    """

    #: "native" when the library seeks by itself, "index" when the adapter built a record index.
    random_access: ClassVar[str] = "native"
    #: Whether several threads may call `read` on this one handle at once (then training input
    #: pipelines keep several reads in flight); False: one call at a time, from any thread.
    thread_safe: ClassVar[bool] = False
    #: set by `close` (every subclass's close is wrapped to set it; drop_caches keeps it)
    _closed: bool = False
    #: whether the class defines `_read_one` (set per class: `fetch` then skips a method lookup)
    _has_one: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Wrap the subclass's `close` so a closed reader says so, and its `drop_caches` (which
        may close and reopen the file) so that it does not change whether the reader is closed."""
        super().__init_subclass__(**kwargs)
        cls._has_one = cls._read_one is not None
        if "close" in cls.__dict__:
            close = cls.__dict__["close"]

            @functools.wraps(close)
            def closing(self: Reader) -> None:
                close(self)
                self._closed = True

            cls.close = closing  # type: ignore[method-assign]
        if "drop_caches" in cls.__dict__:
            drop = cls.__dict__["drop_caches"]

            @functools.wraps(drop)
            def dropping(self: Reader) -> None:
                was = self._closed
                drop(self)
                self._closed = was

            cls.drop_caches = dropping  # type: ignore[method-assign]

    def _closed_error(self) -> ReaderClosedError:
        return ReaderClosedError(f"the reader of {self.path} is closed; open the file again")

    def __init__(self, path: Path, image_shape: tuple[int, ...], image_dtype: np.dtype, n: int):
        self.path = Path(path)
        self.image_shape = tuple(int(d) for d in image_shape)
        self._shape_of_one = (1, *self.image_shape)
        self.image_dtype = np.dtype(image_dtype)
        self._n = int(n)
        #: seconds and bytes of memory spent building the random-access index (0 when native).
        self.index_seconds = 0.0
        self.index_bytes = 0

    def __len__(self) -> int:
        return self._n

    def read(self, indices: Sequence[int] | np.ndarray) -> Batch:
        """Images and labels at `indices`, in exactly that order; duplicates allowed."""
        return self.read_checked(self.checked(indices))

    def checked(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """`indices` as a 1-D int64 array, after the checks every read makes: the reader is open
        (ReaderClosedError), they are integers (TypeError) and each is in range (IndexError).

        A caller that reads many pieces of one set of indices (a workload's seeded indices, a
        training order) checks them once here and reads each piece with `read_checked`, so the
        index checks cost nothing per read; `read` is the two in one call.
        """
        if self._closed:
            raise self._closed_error()
        idx = indices
        if type(idx) is not np.ndarray or idx.dtype is not _INT64 or idx.ndim != 1:
            idx = self._as_indices(indices)
        if len(idx) == 1:
            if not 0 <= idx.item() < self._n:
                raise self._out_of_range(idx.item())
        elif len(idx):  # argmax/argmin: ~0.45 us for 64 indices, a ufunc reduction ~1 us of setup
            hi, lo = idx.item(idx.argmax()), idx.item(idx.argmin())
            if hi >= self._n or lo < 0:
                raise self._out_of_range(lo if lo < 0 else hi)
        return idx

    def read_checked(self, idx: np.ndarray) -> Batch:
        """`read` of indices that `checked` returned, or of a slice of them (a 1-D int64 array
        of in-range indices; anything else is undefined): `fetch`, then `verified`."""
        return self.verified(self.fetch(idx), len(idx))

    def fetch(self, idx: np.ndarray) -> Batch:
        """The format's part of `read_checked`, and all that a workload times: the reader is
        open, the adapter reads, library errors become FormatError. What it returns is not yet
        checked: every caller passes it to `verified` (outside the clock), which a timed
        figure does not charge to the format (the checks cost ~0.4 us a call, a third of an
        NPY single read)."""
        # Kept lean on purpose: single-sample latency is a headline figure.
        if self._closed:
            raise self._closed_error()
        n = len(idx)
        try:
            if n == 1:
                return self._read_one(idx.item()) if self._has_one else self._read(idx)
            if n:
                return self._read(idx)
        except (FmtbenchError, IndexError, *_BUGS):
            raise
        except Exception as exc:  # the same translation as library_errors, without its overhead
            raise FormatError(self.path, exc) from exc
        return (np.empty((0, *self.image_shape), self.image_dtype), np.empty(0, LABEL_DTYPE))

    def verified(self, batch: Batch, n: int) -> Batch:
        """`batch`, which `fetch` returned for `n` indices, after the checks every read makes:
        FormatError unless the shapes are (n, *image_shape) and (n,); a dtype that differs is cast."""
        images, labels = batch
        if n == 1:
            if images.shape != self._shape_of_one or labels.shape != _SHAPE_OF_ONE:
                self._wrong_shapes(images, labels, n)
        else:
            shape = images.shape
            if shape[1:] != self.image_shape or shape[0] != n or labels.shape != (n,):
                self._wrong_shapes(images, labels, n)
        if images.dtype is not self.image_dtype and images.dtype != self.image_dtype:
            images = images.astype(self.image_dtype)
        return images, (labels if labels.dtype is _INT64 else labels.astype(LABEL_DTYPE))

    def _out_of_range(self, i: int) -> IndexError:
        return IndexError(f"index {i} out of range for {self.path} with {self._n} samples")

    def _as_indices(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """`indices` as a 1-D int64 array; TypeError unless they are integers (or none)."""
        idx = np.asarray(indices)
        if idx.dtype.kind not in "iu":
            if idx.size:
                raise TypeError(f"indices must be integers, got dtype {idx.dtype}")
            return np.empty(0, np.int64)
        return idx.reshape(-1).astype(np.int64, copy=False)

    def scan(self, batch_size: int = 1024) -> Iterator[Batch]:
        """Every sample once, in file order, in batches of `batch_size` (the last may be short)."""
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if self._closed:
            raise self._closed_error()
        seen = 0
        # A batch larger than the file is the whole file: libraries need not take 10**12.
        with library_errors(self.path):
            for images, labels in self._scan(min(int(batch_size), max(self._n, 1))):
                seen += len(labels)
                yield self.verified((images, labels), len(labels))
        if seen != self._n:
            raise FormatError(self.path, f"scan returned {seen} samples, expected {self._n}")

    def _wrong_shapes(self, images: np.ndarray, labels: np.ndarray, n: int) -> None:
        raise FormatError(
            self.path,
            f"decoded shapes {images.shape}/{labels.shape}, expected "
            f"{(n, *self.image_shape)}/{(n,)}",
        )

    @abstractmethod
    def _read(self, indices: np.ndarray) -> Batch:
        """Read validated, in-range int64 indices (non-empty) in the order given."""

    #: Optional: a method ``_read_one(self, i: int) -> Batch`` that reads one validated,
    #: in-range index (a batch of one), which `fetch` then calls instead of `_read` for a single
    #: index, sparing the format its array handling where one read is a headline figure.
    _read_one: Callable[[int], Batch] | None = None

    @abstractmethod
    def _scan(self, batch_size: int) -> Iterator[Batch]:
        """Yield batches in file order."""

    def tf_batches(self, batches: np.ndarray, probe: Any = None) -> Any:
        """The shared-order training input: a tf.data Dataset whose element g is
        ``read(batches[g])`` (images in the stored dtype, int64 labels), read ahead of the train
        step (`fmtbench.formats._tfdata.indexed_batches`; `probe` records when each batch was
        ready). The whole order is checked once (`checked_order`), then every block is read
        with `read_checked`. Override it where the library has a better way to the same bytes
        in the same order (TFRecord parses in the graph)."""
        from ._tfdata import PARALLEL_READS, indexed_batches

        signature = ((self.image_dtype, (None, *self.image_shape)), (np.int64, (None,)))
        return indexed_batches(self.read_checked, self.checked_order(batches), signature, probe=probe,
                               parallel=PARALLEL_READS if self.thread_safe else 1)

    def checked_order(self, batches: np.ndarray) -> np.ndarray:
        """A training order (batches x batch size) as a C-contiguous int64 array whose indices
        `checked` has passed: any run of its rows, flattened, may go to `read_checked`."""
        order = np.ascontiguousarray(batches, dtype=np.int64)
        self.checked(order.reshape(-1))
        return order

    def drop_caches(self) -> None:
        """Forget in-process caches of file data (HDF5 chunk cache, SQLite page cache, mapped
        pages). The runner calls it before every timed repeat, warm or cold, so no repeat reads
        what an earlier one decoded; a random-access index is kept on purpose."""

    def close(self) -> None:
        """Release the file; safe to call twice."""

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_twins(adapters: Iterable[Adapter]) -> dict[str, str]:
    """Cases that differ from another only in read-side options (their files are byte-identical):
    twin case id -> its base, the one with every read-side option at its default (else the first)."""
    groups: dict[tuple, list[Adapter]] = {}
    for a in adapters:
        groups.setdefault(a.file_key, []).append(a)
    out = {}
    for members in groups.values():
        base = next((a for a in members if all(a.config[o.name] == o.default for o in a.options
                                               if o.affects == "read")), members[0])
        out.update({a.case_id: base.case_id for a in members if a.case_id != base.case_id})
    return out


class Adapter(ABC):
    """One storage format bound to one configuration; `case_id` names it everywhere."""

    name: ClassVar[str]
    #: the modules reading and writing need (imported by `import_libraries`, never at import
    #: of the adapter's module), and the command that installs them.
    requires: ClassVar[tuple[str, ...]] = ()
    install: ClassVar[str] = ""
    #: file suffix of what `write` creates ("" for a folder of files).
    suffix: ClassVar[str]
    options: ClassVar[tuple[Option, ...]] = ()
    #: the configuration grid, as partial configs (missing options take their defaults).
    grid: ClassVar[tuple[Mapping[str, Any], ...]] = ({},)
    #: the subset the default test run and the quick profile use.
    representative: ClassVar[tuple[Mapping[str, Any], ...]] = ({},)
    #: "native" or "index" (see Reader.random_access).
    random_access: ClassVar[str] = "native"
    #: whether `write` produces a folder rather than one file.
    writes_folder: ClassVar[bool] = False

    def __init__(self, config: Mapping[str, Any] | None = None):
        config = dict(config or {})
        known = {opt.name: opt for opt in self.options}
        for key in config:
            if key not in known:
                raise UnknownNameError(f"option of {self.name}", key, known)
        self.config: dict[str, Any] = {
            opt.name: opt.validate(config.get(opt.name, opt.default)) for opt in self.options
        }
        self.check(self.config)

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        """Raise InvalidCaseError when valid options do not go together."""

    def detection(self, damage: str) -> Detection:
        """How sure reading a file with `damage` (one of DAMAGE) is to raise FormatError, and
        by which check (a case property: a checksum or compression option adds checks)."""
        if damage not in DAMAGE:
            raise UnknownNameError("damage kind", damage, DAMAGE)
        return self._detection(damage)

    def _detection(self, damage: str) -> Detection:
        """This case's Detection of a valid damage kind; the default promises nothing."""
        return NOT_DETECTED

    def detects(self, damage: str) -> bool:
        """Whether reading a file with this damage is sure to raise FormatError: a check every
        such damage fails, or a 32-bit checksum over the damaged bytes (see CHECKSUM_32). A
        weaker checksum (HDF5's Fletcher-32) is no claim: structured data defeats it."""
        return self.detection(damage).p >= CHECKSUM_32

    def observed(self, path: Path) -> dict[str, Any]:
        """The options the file at `path` shows it was written with, read back from the file
        (its metadata or layout), for those this format can tell; `fmtbench verify` compares
        them with the case asked. Options that only change how a file is read (a cache size)
        are never in it, nor a row-group-like size a file too small to show it. The default
        tells nothing."""
        return {}

    def mismatches(self, path: Path) -> dict[str, tuple[Any, Any]]:
        """{option: (asked, found)} for every option the file shows differently from this case."""
        found = self.observed(Path(path))
        return {k: (self.config[k], v) for k, v in found.items() if k in self.config and self.config[k] != v}

    @classmethod
    def from_tokens(cls, tokens: Sequence[str]) -> Adapter:
        """Build a case from the tokens of its id (the part after ``format/``)."""
        config: dict[str, Any] = {}
        for tok in tokens:
            for opt in cls.options:
                ok, value = opt.parse(tok)
                if ok:
                    if opt.name in config:
                        raise InvalidCaseError(f"{cls.name}: option {opt.name!r} given twice")
                    config[opt.name] = value
                    break
            else:
                valid = [opt.describe() for opt in cls.options] or ["(this format has no options)"]
                raise UnknownNameError(f"option of {cls.name}", tok, valid)
        return cls(config)

    @property
    def case_id(self) -> str:
        tokens = [opt.token(self.config[opt.name]) for opt in self.options]
        tokens = [t for t in tokens if t]
        return f"{self.name}/{'-'.join(tokens)}" if tokens else self.name

    @property
    def file_key(self) -> tuple:
        """What decides the bytes written: the format and its options that affect the file."""
        return (self.name, *((o.name, repr(self.config[o.name])) for o in self.options if o.affects != "read"))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.case_id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Adapter) and other.case_id == self.case_id

    def __hash__(self) -> int:
        return hash(self.case_id)

    def default_path(self, folder: str | Path, stem: str = "train") -> Path:
        """Where this case's file for `stem` lives under `folder`: ``folder/<case>/<stem><suffix>``."""
        return Path(folder) / self.case_id.replace("/", "__") / f"{stem}{self.suffix}"

    def write(self, split: Split, path: str | Path) -> WriteInfo:
        """Write `split` to `path` atomically: on any failure nothing appears at `path`."""
        path = Path(path)
        with atomic_path(path, directory=self.writes_folder) as tmp:
            before = set(os.listdir(tmp.parent))
            self._write(split, tmp)
            self._check_wrote_only(tmp, before)
        return WriteInfo(path, len(split), split.digest, path_size(path))

    def _check_wrote_only(self, tmp: Path, before: set[str]) -> None:
        """The write contract: `_write` writes `tmp` and nothing beside it. A sidecar named after
        the path it was given (``tmp + '.shape'``) would be lost at the rename and make every
        later open fail with a misleading error: refuse it now, naming the contract."""
        extra = sorted(n for n in set(os.listdir(tmp.parent)) - before
                       if n != tmp.name and n.startswith(tmp.name.split(".fmtbench-tmp-")[0] + "."))
        if extra:
            for name in extra:
                remove(tmp.parent / name)
            raise FmtbenchError(f"format {self.name!r} wrote {', '.join(extra)} beside the path it was given: "
                                f"_write writes only that path (a file), or the adapter sets writes_folder = True "
                                f"and writes every file inside that folder")

    def native_dataset(self, path: Path, batch_size: int, shuffle_buffer: int, seed: int) -> Any:
        """The streaming training input, the format's own way (`fmtbench.formats._tfdata.Native`):
        endless full batches in the format's order, shuffled as its users shuffle. The default
        streams ``reader.scan`` through a shuffle buffer; an adapter overrides it with its
        library's pipeline (TFRecordDataset, whole HDF5 chunks)."""
        from ._tfdata import scan_stream

        return scan_stream(self.open(path), batch_size, shuffle_buffer, seed)

    def open(self, path: str | Path) -> Reader:
        """Open a file this case wrote; FormatError if it is missing, corrupt or not this format."""
        path = Path(path)
        if not path.exists():
            raise FormatError(path, "no such file or folder")
        with library_errors(path):
            return self._open(path)

    @abstractmethod
    def _write(self, split: Split, path: Path) -> None:
        """Write `split` to the temporary `path` (a file, or an existing empty folder)."""

    @abstractmethod
    def _open(self, path: Path) -> Reader:
        """Open and validate the file's layout; return a Reader."""
