"""Arrow IPC file (Feather v2): labels and raw image bytes as two columns in record batches.

On disk (one ``.arrow`` file: the Arrow IPC *file* format, which is what Feather v2 is)::

    label  int64, not null
    image  fixed_size_binary(H*W*C*itemsize), not null   C-order bytes of one image
    schema metadata b"fmtbench": {"shape": [H, W(, C)], "dtype": "|u1", "rows": N,
                                  "batch_rows": K, "compression": "none"}

the same columns and metadata as the Parquet case, in record batches of K rows (the last may be
shorter). Open it with plain pyarrow, or with ``pyarrow.feather.read_table(path)``::

    table = pa.ipc.open_file(pa.memory_map(path)).read_all()
    meta = json.loads(table.schema.metadata[b"fmtbench"])
    images = np.frombuffer(table["image"].combine_chunks().buffers()[1], meta["dtype"])
    images = images.reshape(-1, *meta["shape"])

Case tokens: ``rb<N>`` rows per record batch (no token: 65536, Feather's default chunk size, so
MNIST's 60000 rows are one batch), ``lz4``/``zstd`` IPC buffer compression (LZ4 frame and zstd
at Arrow's default levels; default: none).

How it reads, and why:

* The file is memory-mapped (``pa.memory_map``) and opened with ``pa.ipc.open_file``. The IPC
  format is Arrow's in-memory layout on disk: an uncompressed record batch is read with no
  copy and no decoding, its buffers point into the map. So an uncompressed file is opened the
  way Arrow is meant to be used: every record batch is read once at open (only its metadata is
  parsed: ``get_batch`` costs 20-80 us of flatbuffer parsing, far more than a gather) and its
  ``fixed_size_binary`` values buffer and label buffer are located in the map. ``read(indices)``
  finds each row's batch by ``index // batch_rows`` (equal batches, checked at open) and
  gathers every row, from whichever batch, with one numpy fancy index on a strided view of the
  whole map: the only copy, of the bytes asked for, and the kernel pages in what they touch.
  (64 random rows across 38 batches: 15 us, against 230 us gathering batch by batch and 5 ms
  for pyarrow's ``take`` on the chunked columns, which concatenates them first.)
* A compressed batch must be decompressed whole before any of its rows exist, so a compressed
  file keeps nothing: ``read`` decompresses each record batch the indices touch
  (``get_batch``) and gathers from it; ``scan`` decompresses the batches in order. As with
  Parquet's row groups, the batch size sets the cost of a single random read (decompress
  ``batch_rows`` images to get one) and no decoded batch is cached: caching would turn the
  case into "hold the file in memory".
* ``scan`` hands out ``batch_size`` rows at a time. From a compressed file they are views of
  freshly decompressed buffers; from an uncompressed one they are copied out of the map (like
  the NPY case): a view of the map would touch no byte of the file, and the figure would time
  nothing but Python.

Measured on Fashion-MNIST train (60000x28x28 uint8), warm cache, a busy 2-core machine, median
of 5, interleaved with benchmarks/reference/arrow_ref.py (the same within noise, plus what
``Reader.read`` then spent checking indices; current ratios: docs/fairness.md)::

    case               write    MB    scan(1024)    one read    batch of 64
    arrow              0.15 s   47.5   26M/s           6 us       14 us
    arrow/rb1024       0.26 s   47.5   17M/s           6 us       18 us
    arrow/rb1024-lz4   0.12 s   31.0   2.9M/s        340 us       14 ms
    arrow/rb1024-zstd  0.16 s   26.7   1.2M/s        830 us       35 ms
    arrow/lz4          0.15 s   31.0   4.2M/s         12 ms       12 ms
    arrow/zstd         0.15 s   26.6   1.5M/s         40 ms       40 ms

Damage: a truncated file has lost its footer (and the ``ARROW1`` magic that ends it) and never
opens. The IPC format has no checksums, so flipped bytes in an uncompressed batch read back
changed. The LZ4 and zstd frames Arrow writes carry no checksum (their frame descriptors' checksum
flags are off; tests/test_arrow.py reads them), so a flip in a compressed buffer decodes silently
or fails depending on where it lands: no detection is claimed for any case.
"""
from __future__ import annotations

import json
import struct
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
#: pyarrow.feather.write_feather's default rows per record batch.
FEATHER_ROWS = 1 << 16
#: Arrow's CompressionType enum (format/Message.fbs) as this adapter's compression names.
_CODECS = {0: "lz4", 1: "zstd"}
_RECORD_BATCH = 3  # MessageHeader union tag of a RecordBatch


def _field(buf: bytes, table: int, i: int) -> int | None:
    """Where field `i` of the flatbuffer table at `table` is stored, or None when absent."""
    vtable = table - struct.unpack_from("<i", buf, table)[0]
    if 4 + 2 * i >= struct.unpack_from("<H", buf, vtable)[0]:
        return None
    at = struct.unpack_from("<H", buf, vtable + 4 + 2 * i)[0]
    return table + at if at else None


def _batch_header(metadata: bytes) -> tuple[int, str]:
    """(rows, compression) from the flatbuffer metadata of a RecordBatch IPC message
    (format/Message.fbs: Message.header -> RecordBatch.length and .compression.codec), read
    without decoding the batch: pyarrow exposes neither a batch's codec nor, short of
    decompressing it (`get_batch`), its row count."""
    message = struct.unpack_from("<I", metadata, 0)[0]
    kind, header = _field(metadata, message, 1), _field(metadata, message, 2)
    if kind is None or metadata[kind] != _RECORD_BATCH or header is None:
        raise ValueError("the first record batch message holds no RecordBatch header")
    batch = header + struct.unpack_from("<I", metadata, header)[0]
    length = _field(metadata, batch, 0)
    rows = struct.unpack_from("<q", metadata, length)[0] if length is not None else 0
    compression = _field(metadata, batch, 3)
    if compression is None:
        return rows, "none"
    body = compression + struct.unpack_from("<I", metadata, compression)[0]
    codec = _field(metadata, body, 0)  # absent: the default, LZ4_FRAME
    code = struct.unpack_from("<b", metadata, codec)[0] if codec is not None else 0
    return rows, _CODECS.get(code, f"codec {code}")


def _fixed_width_view(column: Any, width: int) -> np.ndarray:
    """The (rows, width) uint8 view of a FixedSizeBinaryArray's values buffer, without a copy."""
    if column.null_count:
        raise ValueError(f"{column.null_count} null images")
    flat = np.frombuffer(column.buffers()[1], np.uint8, count=len(column) * width,
                         offset=column.offset * width)
    return flat.reshape(len(column), width)


class ArrowReader(Reader):
    """A memory-mapped IPC file: uncompressed rows gathered from the map, compressed batches
    decoded on demand."""

    def __init__(self, path: Path):
        self._map = self._file = self._rows_at = self._labels_at = self._flat = None
        try:
            self._open_file(path)
            shape, dtype, rows = self._layout(path)
            super().__init__(path, shape, dtype, rows)
            if not self._compressed:
                self._locate_batches()
        except BaseException:
            self.close()
            raise

    def _open_file(self, path: Path) -> None:
        import pyarrow as pa

        self._map = pa.memory_map(str(path))
        self._file = pa.ipc.open_file(self._map)

    def _layout(self, path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
        """Check the schema and metadata this adapter writes, and that the batches add up."""
        import pyarrow as pa

        schema = self._file.schema
        raw = (schema.metadata or {}).get(META_KEY)
        if raw is None or schema.names != COLUMNS:
            raise FormatError(path, f"not an fmtbench arrow file (columns {schema.names})")
        meta = json.loads(raw)
        shape, dtype = tuple(int(d) for d in meta["shape"]), np.dtype(meta["dtype"])
        rows, self._batch_rows = int(meta["rows"]), int(meta["batch_rows"])
        self._width = int(np.prod(shape)) * dtype.itemsize
        expected = [pa.int64(), pa.binary(self._width)]
        batches = -(-rows // self._batch_rows)
        if schema.types != expected or self._file.num_record_batches != batches:
            raise FormatError(path, f"columns {schema.types} in {self._file.num_record_batches} "
                                    f"record batches do not match the metadata: {expected} in "
                                    f"{batches} batches of {self._batch_rows} rows")
        self._rows, self._batches = rows, batches
        self._compressed = meta["compression"] != "none"
        return shape, dtype, rows

    def _batch(self, b: int) -> tuple[Any, Any]:
        """Record batch `b` as (image, label) arrays, checked against the layout."""
        batch = self._file.get_batch(b)
        want = min(self._batch_rows, self._rows - b * self._batch_rows)
        if batch.num_rows != want:
            raise FormatError(self.path, f"record batch {b} holds {batch.num_rows} rows, expected {want}")
        images, labels = batch.column(1), batch.column(0)
        if images.null_count or labels.null_count:
            raise FormatError(self.path, f"record batch {b} holds nulls")
        return images, labels

    def _locate_batches(self) -> None:
        """Where each batch's image and label values sit in the map (uncompressed: no byte copied),
        and strided views of the whole map that gather rows of any batch in one call."""
        from numpy.lib.stride_tricks import as_strided

        self._map.seek(0)
        whole = self._map.read_buffer()
        image_at, label_at = [], []
        for b in range(self._batches):
            images, labels = self._batch(b)
            image_at.append(images.buffers()[1].address + images.offset * self._width - whole.address)
            label_at.append(labels.buffers()[1].address + labels.offset * 8 - whole.address)
        image_at, label_at = np.array(image_at, np.int64), np.array(label_at, np.int64)
        rows = np.minimum(self._batch_rows, self._rows - np.arange(self._batches) * self._batch_rows)
        inside = ((image_at >= 0) & (image_at + rows * self._width <= whole.size)
                  & (label_at >= 0) & (label_at + rows * 8 <= whole.size) & (label_at % 8 == 0))
        if not inside.all():
            raise FormatError(self.path, "record batch buffers lie outside the mapped file")
        flat = np.frombuffer(whole, np.uint8)
        self._rows_at = as_strided(flat, (max(flat.size - self._width + 1, 0), self._width), (1, 1),
                                   writeable=False)
        self._labels_at = flat[: flat.size // 8 * 8].view("<i8")
        self._flat = flat
        self._image_at, self._label_at = image_at, label_at // 8

    def drop_caches(self) -> None:
        # Pages mapped into this process survive POSIX_FADV_DONTNEED: unmap so they can be evicted.
        self.close()
        self._open_file(self.path)
        if not self._compressed:
            self._locate_batches()

    def _shaped(self, pixels: np.ndarray) -> np.ndarray:
        return pixels.view(self.image_dtype).reshape(-1, *self.image_shape)

    def _read(self, indices: np.ndarray) -> Batch:
        batch_of, rows = np.divmod(indices, self._batch_rows)
        if not self._compressed:  # one gather from the map, the only copy
            images = self._rows_at[self._image_at[batch_of] + rows * self._width]
            return self._shaped(images), self._labels_at[self._label_at[batch_of] + rows]
        out = np.empty((indices.size, self._width), np.uint8)
        labels = np.empty(indices.size, np.int64)
        for b in np.unique(batch_of).tolist():
            where = np.flatnonzero(batch_of == b)
            images_b, labels_b = self._views(b)  # decompressed now, dropped after
            out[where], labels[where] = images_b[rows[where]], labels_b[rows[where]]
        return self._shaped(out), labels

    def _scan(self, batch_size: int) -> Iterator[Batch]:
        pending: list[tuple[np.ndarray, np.ndarray]] = []
        held = 0
        for b in range(self._batches):
            images, labels = self._views(b)
            start = 0
            while start < len(labels):
                take = min(batch_size - held, len(labels) - start)
                pending.append((images[start:start + take], labels[start:start + take]))
                start, held = start + take, held + take
                if held == batch_size:
                    yield self._joined(pending)
                    pending, held = [], 0
        if pending:
            yield self._joined(pending)

    def _views(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch `b` as (rows, width) uint8 and int64 views: of the map, or of its decompressed buffers."""
        if not self._compressed:
            start, rows = self._image_at[b], min(self._batch_rows, self._rows - b * self._batch_rows)
            images = self._flat[start:start + rows * self._width].reshape(rows, self._width)
            return images, self._labels_at[self._label_at[b]:self._label_at[b] + rows]
        images, labels = self._batch(b)
        return _fixed_width_view(images, self._width), labels.to_numpy()

    def _joined(self, pieces: list[tuple[np.ndarray, np.ndarray]]) -> Batch:
        """One batch from pieces of batches. Pieces of the map are copied out (a view would read
        nothing); a piece of a freshly decompressed batch is handed out as it is."""
        if len(pieces) == 1 and self._compressed:
            return self._shaped(pieces[0][0]), pieces[0][1]
        return (self._shaped(np.concatenate([p[0] for p in pieces])),
                np.concatenate([p[1] for p in pieces]))

    def close(self) -> None:
        self._file = self._rows_at = self._labels_at = self._flat = None
        if self._map is not None:
            self._map.close()
            self._map = None


class ArrowAdapter(Adapter):
    """Arrow IPC file format (Feather v2) through pyarrow: memory-mapped, record-batch random access."""

    name: ClassVar[str] = "arrow"
    requires: ClassVar[tuple[str, ...]] = ("pyarrow",)
    install: ClassVar[str] = "pip install pyarrow"
    suffix: ClassVar[str] = ".arrow"
    options = (
        Size("batch_rows", FEATHER_ROWS, "rows per record batch (default: Feather's 65536)",
             prefix="rb"),
        Choice("compression", "none", "IPC buffer compression",
               {c: c for c in ("none", "lz4", "zstd")}),
    )
    grid = tuple({"batch_rows": rb, "compression": c}
                 for rb in (1024, FEATHER_ROWS) for c in ("none", "lz4", "zstd"))
    representative = ({}, {"batch_rows": 1024, "compression": "zstd"})

    def _detection(self, damage: str) -> Detection:
        """Truncation always (the footer is at the end); flipped bytes never (no checksums)."""
        if damage == "truncated":
            return Detection(1.0, "the footer and its ARROW1 magic sit at the end of the file")
        if self.config["compression"] == "none":
            return Detection(0.0, "no checksum: changed pixels read back")
        return Detection(0.0, "no checksum: LZ4 and zstd frames as Arrow writes them carry none, "
                              "so damage decodes silently or fails depending on where it lands")

    def _write(self, split: Split, path: Path) -> None:
        import pyarrow as pa

        n, width = len(split), split.images.itemsize * int(np.prod(split.image_shape))
        compression = self.config["compression"]
        meta = {"shape": list(split.image_shape), "dtype": split.images.dtype.str, "rows": n,
                "batch_rows": self.config["batch_rows"], "compression": compression}
        fields = [pa.field("label", pa.int64(), nullable=False),
                  pa.field("image", pa.binary(width), nullable=False)]
        schema = pa.schema(fields, metadata={META_KEY: json.dumps(meta).encode()})
        images = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(width), n, [None, pa.py_buffer(split.images)])
        table = pa.Table.from_arrays([pa.array(split.labels, pa.int64()), images], schema=schema)
        options = pa.ipc.IpcWriteOptions(compression=None if compression == "none" else compression)
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema, options=options) as w:
            w.write_table(table, max_chunksize=self.config["batch_rows"])

    def _open(self, path: Path) -> Reader:
        return ArrowReader(path)

    def observed(self, path: Path) -> dict[str, Any]:
        """``compression`` from the codec in the first record batch's IPC metadata (Arrow
        records it per batch); ``batch_rows`` from that batch's row count when there are two
        batches or more (one batch holds all rows, whatever the option). Only the footer and
        the first batch's metadata are read: nothing is decompressed."""
        import pyarrow as pa

        path = Path(path)
        if not path.is_file():
            raise FormatError(path, "no such file")
        with library_errors(path), pa.memory_map(str(path)) as source:
            batches = pa.ipc.open_file(source).num_record_batches
            if not batches:
                return {}
            source.seek(8)  # past the "ARROW1" magic and its padding: the IPC stream
            first = next(m for m in pa.ipc.MessageReader.open_stream(source)
                         if m.type == "record batch")
            rows, compression = _batch_header(first.metadata.to_pybytes())
        found: dict[str, Any] = {"compression": compression}
        if batches >= 2:
            found["batch_rows"] = rows
        return found
