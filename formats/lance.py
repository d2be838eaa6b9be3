"""Lance: a Lance dataset of labels and raw image bytes, read with ``take`` and the scanner.

On disk (``<name>.lance/``, a Lance dataset folder: ``data/*.lance`` files, ``_versions/``
manifests, ``_transactions/``)::

    label  int64, not null
    image  fixed_size_binary(H*W*C*itemsize), not null    C-order bytes of one image
           (binary, with field metadata lance-encoding:compression = zstd, when compressed)
    schema metadata b"fmtbench": {"shape": [H, W(, C)], "dtype": "|u1", "rows": N}

Open with plain Lance (here (H, W) uint8 images)::

    ds = lance.dataset(path)
    t = ds.take([5, 3], columns=["label", "image"])
    image = np.frombuffer(t["image"][0].as_py(), np.uint8).reshape(28, 28)

Case tokens: ``file<N>`` rows per data file (Lance's ``max_rows_per_file``; no token: Lance's
default 1Mi, one file for MNIST), ``v2.0``/``v2.1``/``v2.2`` the file format version (no token:
the library's ``stable``, 2.2 in pylance 14), ``zstd`` compression (off the grid, below).

How it reads, and why:

* ``read(indices)`` is one ``LanceDataset.take(indices, columns)``: Lance maps row offsets to
  files and pages itself and returns the rows in the order asked, duplicates included (the
  tests check it), so nothing is reordered here. The image column arrives as one flat buffer
  that numpy views; one copy hands the caller writable arrays.
* ``scan`` is ``to_batches(batch_size, strict_batch_size=True)``: the scanner's own read-ahead
  and decoding threads, and batches of exactly ``batch_size`` (without it a batch ends at every
  file boundary; strict batching cost nothing measurable here).
* Compression: Lance 2.x compresses only variable-width values (``lance-encoding:compression``
  in the field metadata is ignored on ``fixed_size_binary``: 47.1 MB either way on
  Fashion-MNIST), so a compressed case stores the images as ``binary``, each value compressed
  on its own, and the reader checks every value's width (``lz4`` is not offered: pylance
  14.0.2 accepts the name and writes zstd frames). zstd gives 29.4 MB but scans at a
  third of the speed, and a damaged compressed page can abort the interpreter (pylance 14.0.2:
  ``memory allocation of 1099494874080 bytes failed`` after two flipped bytes, on scan and
  take alike), so the compressed cases are not on the grid; ``lance/zstd`` runs when asked.
* ``max_rows_per_group`` is left alone: Lance 2.x has no row groups (it only batches the
  writer); 64 or 8192 changed neither the size nor the reads here.
* ``drop_caches`` reopens the dataset: its session caches manifests and file metadata.

Measured on Fashion-MNIST train (60000x28x28 uint8), 2 busy cores, two runs, each the median of
7 interleaved repeats (``/tmp/lance_measure.py``); fmtbench / plain-library reference
(``take``, unstrict ``to_batches``): 0.94-1.10 on every figure::

    case      size     write       scan          one take     random 64
    (v2.2)    47.1 MB  0.2-0.5 s   0.9-1.3M/s    0.32-0.33 ms  51-58k/s
    v2.0      47.5 MB  0.15-0.2 s  1.6-2.0M/s    0.39-0.43 ms  33-55k/s
    v2.1      47.1 MB  0.16-0.4 s  1.0-1.5M/s    0.44-0.50 ms  44-56k/s
    file8192  47.1 MB  0.12-0.2 s  4.9-5.0M/s    0.31-0.41 ms  34-50k/s
    zstd      29.4 MB  0.5-0.8 s   0.33-0.42M/s  0.40-0.43 ms  37-48k/s

``file8192`` (8 files) scans 4x faster: the scanner decodes files in parallel.

Damage: Lance keeps no checksum of its pages: flipped pixels read back changed (compressed
values decode changed, fail, or abort, as above), so no detection is claimed. A cut data file
has lost its footer (and the manifest records its size); a cut manifest breaks its protobuf.
Lance never reads two files back: the commit's transaction file and the version hint. The
reader checks them at open (``_check_commit``: the hint names the version opened, the
transaction file equals the copy the manifest begins with), so a cut of any file of the
dataset is a FormatError.
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fmtbench.datasets._base import Split
from fmtbench.errors import FormatError

from ._base import Adapter, Batch, Detection, Reader, library_errors
from ._options import Choice, Size

META_KEY = b"fmtbench"
COLUMNS = ["label", "image"]
COMPRESSION_KEY = b"lance-encoding:compression"
LIBRARY_ROWS_PER_FILE = 1 << 20  # lance.write_dataset's max_rows_per_file default


def _pixels(column: Any, width: int) -> np.ndarray:
    """The (rows, width) uint8 view of a fixed_size_binary or binary image array, no copy."""
    import pyarrow as pa

    if column.null_count:
        raise ValueError(f"{column.null_count} null images")
    n, buffers = len(column), column.buffers()
    if pa.types.is_fixed_size_binary(column.type):
        data = np.frombuffer(buffers[1], np.uint8, count=n * width, offset=column.offset * width)
        return data.reshape(n, width)
    kind = np.int64 if pa.types.is_large_binary(column.type) else np.int32
    offsets = np.frombuffer(buffers[1], kind, count=n + 1, offset=column.offset * np.dtype(kind).itemsize)
    if n and not np.all(np.diff(offsets) == width):
        raise ValueError(f"an image value is not {width} bytes")
    start = int(offsets[0]) if n else 0
    return np.frombuffer(buffers[2], np.uint8, count=n * width, offset=start).reshape(n, width)


@contextlib.contextmanager
def _panics_as_format_errors(path: Path) -> Iterator[None]:
    """A Rust panic reaches Python as pyo3's PanicException, a BaseException that the base
    classes' error translation does not catch: make it the FormatError it is."""
    try:
        yield
    except BaseException as exc:
        if type(exc).__name__ == "PanicException":
            raise FormatError(path, f"lance panicked: {exc}") from None
        raise


def _check_commit(path: Path, ds: Any) -> None:
    """Check the two files of a commit that Lance never reads back: the version hint must name
    the version opened, and the transaction file must equal the copy of the transaction that
    the manifest begins with (a u32 length, then the Transaction message)."""
    version = ds.version
    hint = path / "_versions" / "latest_version_hint.json"
    if hint.exists() and json.loads(hint.read_bytes()).get("version") != version:
        raise FormatError(path, f"{hint.name} does not name version {version}")
    txn = ds.read_transaction(version)
    if txn is None:
        return
    manifest = path / "_versions" / f"{(1 << 64) - 1 - version}.manifest"  # v2 manifest paths
    if not manifest.exists():
        manifest = path / "_versions" / f"{version}.manifest"
    head = manifest.read_bytes()
    copy = head[4:4 + int.from_bytes(head[:4], "little")]
    found = (path / "_transactions" / f"{txn.read_version}-{txn.uuid}.txn").read_bytes()
    if found != copy:
        raise FormatError(path, f"the transaction file of version {version} differs from the "
                                f"manifest's copy ({len(found)} bytes, {len(copy)} expected)")


class LanceReader(Reader):
    """``take`` for random reads and the scanner for scans, over one LanceDataset."""

    def __init__(self, path: Path):
        self._ds = self._open_dataset(path)
        self._layout(path)
        super().__init__(path, self._shape, self._dtype, self._rows)

    @staticmethod
    def _open_dataset(path: Path) -> Any:
        import lance

        # A Lance dataset is a folder with a _versions/ manifest folder. Anything else is refused
        # before Lance sees it: on an arbitrary file its open hung (all threads in futex waits)
        # once in a run of tests/test_attacks.py, and a hang is no error message.
        if not (Path(path) / "_versions").is_dir():
            raise FormatError(path, "not a Lance dataset: no _versions/ folder "
                                    "(a Lance case is a folder written by fmtbench or lance)")
        with _panics_as_format_errors(path):
            ds = lance.dataset(str(path))
            _check_commit(path, ds)
        return ds

    def _layout(self, path: Path) -> None:
        """Check the schema and metadata this adapter writes."""
        import pyarrow as pa

        schema = self._ds.schema
        raw = (schema.metadata or {}).get(META_KEY)
        if raw is None or schema.names != COLUMNS:
            raise FormatError(path, f"not an fmtbench lance dataset (columns {schema.names})")
        meta = json.loads(raw)
        self._shape = tuple(int(d) for d in meta["shape"])
        self._dtype, self._rows = np.dtype(meta["dtype"]), int(meta["rows"])
        self._width = int(np.prod(self._shape)) * self._dtype.itemsize
        image = schema.field("image").type
        if schema.field("label").type != pa.int64() or image not in (
                pa.binary(self._width), pa.binary(), pa.large_binary()):
            raise FormatError(path, f"columns {schema.types} are not int64 and binary({self._width})")
        found = self._ds.count_rows()
        if found != self._rows:
            raise FormatError(path, f"{found} rows, the metadata says {self._rows}")

    def drop_caches(self) -> None:
        # The dataset's session caches manifests and file metadata: a fresh dataset starts empty.
        self._ds = self._open_dataset(self.path)

    def _decode(self, labels: Any, images: Any) -> Batch:
        pixels = _pixels(images, self._width)
        return pixels.view(self._dtype).reshape(-1, *self._shape), labels.to_numpy(zero_copy_only=False)

    def _read(self, indices: np.ndarray) -> Batch:
        with _panics_as_format_errors(self.path):
            table = self._ds.take(indices.tolist(), columns=COLUMNS).combine_chunks()
        images, labels = self._decode(table.column(0).chunk(0), table.column(1).chunk(0))
        return images.copy(), labels.copy()  # views would pin Arrow's buffers and stay read-only

    def _scan(self, batch_size: int) -> Iterator[Batch]:
        with _panics_as_format_errors(self.path):
            for batch in self._ds.to_batches(columns=COLUMNS, batch_size=batch_size, strict_batch_size=True):
                yield self._decode(batch.column(0), batch.column(1))

    def close(self) -> None:
        self._ds = None


class LanceAdapter(Adapter):
    """Lance columnar datasets through pylance: fixed-size binary images, native ``take``."""

    name: ClassVar[str] = "lance"
    requires: ClassVar[tuple[str, ...]] = ("lance", "pyarrow")
    install: ClassVar[str] = "pip install pylance"
    suffix: ClassVar[str] = ".lance"
    writes_folder: ClassVar[bool] = True
    options = (
        Size("rows_per_file", LIBRARY_ROWS_PER_FILE, "rows per data file (default: Lance's)",
             prefix="file"),
        Choice("version", "stable", "Lance file format version (default: the library's stable one)",
               {"v2.0": "2.0", "v2.1": "2.1", "v2.2": "2.2"}),
        Choice("compression", "none", "image compression (stores images as variable-width binary)",
               {"none": "none", "zstd": "zstd"}),
    )
    # Compressed cases stay off the grid: a damaged compressed page can abort the interpreter.
    grid = ({}, {"version": "2.0"}, {"version": "2.1"}, {"rows_per_file": 8192})
    representative = ({}, {"version": "2.0"})

    def _detection(self, damage: str) -> Detection:
        """Truncation of any file of the dataset; flipped bytes never (no page checksums)."""
        if damage == "truncated":
            return Detection(1.0, "a data file's footer sits at its end, the manifest is one "
                                  "protobuf; the transaction file and version hint, which Lance "
                                  "never reads, are checked at open")
        return Detection(0.0, "no checksum of data pages: changed pixels read back")

    def _write(self, split: Split, path: Path) -> None:
        import lance
        import pyarrow as pa

        n, width = len(split), split.images.itemsize * int(np.prod(split.image_shape))
        meta = {"shape": list(split.image_shape), "dtype": split.images.dtype.str, "rows": n}
        pixels = np.ascontiguousarray(split.images).reshape(-1).view(np.uint8)
        compression = self.config["compression"]
        if compression == "none":
            kind, field_meta = pa.binary(width), None
            images = pa.FixedSizeBinaryArray.from_buffers(kind, n, [None, pa.py_buffer(pixels)])
        else:  # int32 offsets while they fit, as pyarrow's own binary() does
            large = n * width >= 1 << 31
            kind = pa.large_binary() if large else pa.binary()
            field_meta = {COMPRESSION_KEY: compression.encode()}
            offsets = np.arange(n + 1, dtype=np.int64) * width
            offsets = pa.py_buffer(offsets if large else offsets.astype(np.int32))
            images = pa.Array.from_buffers(kind, n, [None, offsets, pa.py_buffer(pixels)])
        schema = pa.schema(
            [pa.field("label", pa.int64(), nullable=False),
             pa.field("image", kind, nullable=False, metadata=field_meta)],
            metadata={META_KEY: json.dumps(meta).encode()})
        table = pa.Table.from_arrays([pa.array(split.labels, pa.int64()), images], schema=schema)
        lance.write_dataset(
            table, str(path), mode="create", max_rows_per_file=self.config["rows_per_file"],
            data_storage_version=self.config["version"],
        )

    def _open(self, path: Path) -> Reader:
        return LanceReader(path)

    def observed(self, path: Path) -> dict[str, Any]:
        """From the manifest: ``version`` the data storage version (``stable`` when this case
        asks for it and the file's is the library's stable one), ``compression`` from the
        image field (``fixed_size_binary`` is uncompressed; a compressed case's ``binary``
        field names its codec in its metadata), ``rows_per_file`` the first data file's rows
        when there are two files or more (one file holds every row whatever the option)."""
        import lance
        import pyarrow as pa
        from lance.file import stable_version

        path = Path(path)
        if not path.is_dir():
            raise FormatError(path, "no such folder")
        with library_errors(path), _panics_as_format_errors(path):
            ds = lance.dataset(str(path))
            version = ds.data_storage_version
            image = ds.schema.field("image")
            fragments = ds.get_fragments()
            rows = fragments[0].metadata.physical_rows if len(fragments) >= 2 else None
            if self.config["version"] == "stable" and version == stable_version():
                version = "stable"
        found: dict[str, Any] = {}
        if rows is not None:
            found["rows_per_file"] = rows
        found["version"] = version
        if pa.types.is_fixed_size_binary(image.type):
            found["compression"] = "none"
        else:
            found["compression"] = (image.metadata or {}).get(COMPRESSION_KEY, b"none").decode()
        return found
