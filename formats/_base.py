"""The adapter contract: one format with one configuration (a *case*) writes and reads a split.

An adapter subclass declares its options and its configuration grid as class constants and
implements `_write` and `_open`; this base class supplies case ids, validation, atomic writes
and the reader's index checking, so every format behaves the same at its edges.
"""
from __future__ import annotations

import contextlib
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from fmtbench.atomic import atomic_path, path_size
from fmtbench.datasets._base import LABEL_DTYPE, Split
from fmtbench.errors import FmtbenchError, FormatError, InvalidCaseError, UnknownNameError

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

    def __init__(self, path: Path, image_shape: tuple[int, ...], image_dtype: np.dtype, n: int):
        self.path = Path(path)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.image_dtype = np.dtype(image_dtype)
        self._n = int(n)
        #: seconds and bytes of memory spent building the random-access index (0 when native).
        self.index_seconds = 0.0
        self.index_bytes = 0

    def __len__(self) -> int:
        return self._n

    def read(self, indices: Sequence[int] | np.ndarray) -> Batch:
        """Images and labels at `indices`, in exactly that order; duplicates allowed."""
        # Kept lean on purpose: single-sample latency is a headline figure, and every
        # microsecond spent here is charged to the format.
        idx = np.asarray(indices)
        if idx.dtype.kind not in "iu":
            if idx.size:
                raise TypeError(f"indices must be integers, got dtype {idx.dtype}")
            return (np.empty((0, *self.image_shape), self.image_dtype), np.empty(0, LABEL_DTYPE))
        idx = idx.reshape(-1).astype(np.int64, copy=False)
        if idx.size == 0:
            return (np.empty((0, *self.image_shape), self.image_dtype), np.empty(0, LABEL_DTYPE))
        lo, hi = (int(idx[0]),) * 2 if idx.size == 1 else (int(idx.min()), int(idx.max()))
        if lo < 0 or hi >= self._n:
            bad = lo if lo < 0 else hi
            raise IndexError(f"index {bad} out of range for {self.path} with {self._n} samples")
        try:
            images, labels = self._read(idx)
        except (FmtbenchError, IndexError, *_BUGS):
            raise
        except Exception as exc:  # the same translation as library_errors, without its overhead
            raise FormatError(self.path, exc) from exc
        return self._checked(images, labels, idx.size)

    def scan(self, batch_size: int = 1024) -> Iterator[Batch]:
        """Every sample once, in file order, in batches of `batch_size` (the last may be short)."""
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        seen = 0
        with library_errors(self.path):
            for images, labels in self._scan(int(batch_size)):
                seen += len(labels)
                yield self._checked(images, labels, len(labels))
        if seen != self._n:
            raise FormatError(self.path, f"scan returned {seen} samples, expected {self._n}")

    def _checked(self, images: np.ndarray, labels: np.ndarray, n: int) -> Batch:
        if images.shape[0] != n or images.shape[1:] != self.image_shape or labels.shape != (n,):
            raise FormatError(
                self.path,
                f"decoded shapes {images.shape}/{labels.shape}, expected "
                f"{(n, *self.image_shape)}/{(n,)}",
            )
        if images.dtype != self.image_dtype:
            images = images.astype(self.image_dtype)
        return images, labels.astype(LABEL_DTYPE, copy=False)

    @abstractmethod
    def _read(self, indices: np.ndarray) -> Batch:
        """Read validated, in-range int64 indices (non-empty) in the order given."""

    @abstractmethod
    def _scan(self, batch_size: int) -> Iterator[Batch]:
        """Yield batches in file order."""

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
            self._write(split, tmp)
        return WriteInfo(path, len(split), split.digest, path_size(path))

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
