"""ArrayRecord: Grain's random-access record file, one record per sample after a JSON header.

On disk (``<name>.array_record``, one ArrayRecord file: Riegeli chunks, then a footer indexing
them)::

    record 0       UTF-8 JSON: {"fmtbench": "arrayrecord", "encoding": "raw"|"example",
                                "shape": [H, W(, C)], "dtype": "|u1", "rows": N}
    record i + 1   sample i
                   raw:     the label as 8 bytes (int64, little-endian), then the image's
                            C-order bytes
                   example: a serialized tf.train.Example with features image (bytes) and
                            label (int64), as in this project's TFRecord files

The header is a record because ArrayRecord has no other place for it: the writer's options
string takes only its own keys (``Unknown option foo, valid options: ...``) and the Python
binding does not expose Riegeli's file metadata. Open with plain array_record (here (H, W)
uint8 images, raw encoding)::

    r = array_record_module.ArrayRecordReader(path, "readahead_buffer_size:0")
    meta = json.loads(r.read(0, 1)[0])
    rec = r.read(i + 1, i + 2)[0]
    label = int.from_bytes(rec[:8], "little", signed=True)
    image = np.frombuffer(rec[8:], meta["dtype"]).reshape(meta["shape"])

(In Grain, ``ArrayRecordDataSource(path)[i + 1]``; ``MapDataset.source(...)[1:]`` skips the
header.) Case tokens: ``uncompressed``/``snappy`` (default: zstd), ``zstd<L>`` the zstd level
(default 3), ``group<N>`` records per chunk (default 1), ``example`` the Example encoding.

How it reads, and why:

* Random reads use a reader opened with ``readahead_buffer_size:0,max_parallelism:0`` (the
  options ArrayRecord documents for random access). Its batch API ``read([indices])`` costs
  ~110 us a call here (a parallel fan-out, even for one index), a range read ``read(i, i + 1)``
  5 us; so ``read`` loops over range reads: 64 random indices at ~195k samples/s against 36k
  with ``read(list)`` (group 1, zstd). With several records per chunk, each chunk a batch
  touches is decoded once: one range read from the first to the last record wanted in it.
* ``scan`` opens a second reader with ArrayRecord's sequential defaults (16 MB read-ahead,
  parallel chunk decoding) and reads ``batch_size`` records per range read; ``read_all``,
  record-by-record ``read()`` and other read-ahead settings were no faster here.
* raw records decode as one ``b"".join`` viewed as a packed (label, image) struct, one copy
  per column; Example records as tfrecord.py does (``Example.FromString`` under 128
  records, ``tf.io.parse_example`` from there). raw is the default: on the numbers below it
  is 7% smaller than Example, reads a sample in 8.5 us against 12 and scans 1.5-2x faster;
  ``example`` is there for the TFDS/Grain pipelines that parse Examples.
* ``drop_caches`` reopens the random-access reader (Riegeli's file buffer keeps recent bytes).

Measured on Fashion-MNIST train (60000x28x28 uint8), 2 busy cores, two or three runs, each the
median of 7 interleaved repeats (``/tmp/arrayrecord_measure.py``); fmtbench / plain-library
reference: scan 0.87-1.17 and batches 0.96-1.04 everywhere, single reads 1.11-1.16 (the base
class's ``Reader.read`` then added ~0.9 us to a 5-8 us read; with the indices checked once per
unit: see docs/fairness.md for the current ratios)::

    case           size     write       scan         one read    random 64
    (zstd 3, g 1)  32.0 MB  0.8-1.6 s   0.19-0.30M/s  8.4-10 us   190-196k/s
    uncompressed   50.9 MB  0.2-0.4 s   0.45-0.55M/s  5.4-7.9 us  337-343k/s
    snappy         34.7 MB  0.3-0.4 s   0.27-0.47M/s  6.6-9.2 us  245-249k/s
    zstd9          31.1 MB  1.7-3.4 s   0.18-0.34M/s  7.4-10 us   191-196k/s
    group64        26.9 MB  0.4 s       0.56-0.63M/s  74-94 us    8-17k/s
    group1024      26.9 MB  0.4-0.7 s   0.35-0.49M/s  0.85 ms     1.5-1.8k/s
    example        34.3 MB  0.9-1.3 s   0.12-0.14M/s  12-14 us    133-137k/s

Damage: every Riegeli chunk carries a 64-bit HighwayHash of its header and one of its data,
every 64 KiB block header one of itself, and ArrayRecord checks them on every chunk it reads
(postscript and footer at open, data chunks on read and scan). Flipping each byte of a
120-sample file in turn (group 1 zstd, group 64 uncompressed), nothing read back changed; the
only bytes no read checks are the file signature (the first 64 bytes) and the padding chunks
the writer puts before and after the postscript (64-128 KiB of zeros, most of a small file).
``_riegeli.check_slack`` checks those at open: the signature against its fixed bytes, each padding
chunk's header hash, type and size and its zero data (~0.7 ms). With it, flipping each byte of
the 120-sample files of both representative cases in turn (196608 and 131072 bytes) raised a
FormatError every time. A cut file loses the postscript, which the reader looks for 64 KiB
before the end: it fails to open, or holds fewer records than the header says.
"""
from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fmtbench.datasets._base import Split
from fmtbench.errors import FormatError, InvalidCaseError

from ._base import Adapter, Batch, Detection, Reader, library_errors
from ._options import Choice, Flag, Size
from ._riegeli import check_slack

RANDOM_OPTIONS = "readahead_buffer_size:0,max_parallelism:0"
SCAN_OPTIONS = ""  # ArrayRecord's defaults: 16 MB read-ahead, parallel chunk decoding
MAGIC = "arrayrecord"
_BATCH_PARSE = 128  # from this many records on, tf.io.parse_example beats Example.FromString
_LABEL = np.dtype("<i8")


def _module() -> Any:
    """The array_record binding, imported on first use (listing cases stays cheap)."""
    from array_record.python import array_record_module

    return array_record_module


@functools.cache
def _tf() -> Any:
    """TensorFlow, imported on first use without its INFO chatter (Example encoding only)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    import tensorflow as tf

    return tf


# --- the adapter --------------------------------------------------------------------------


class ArrayRecordReader(Reader):
    """Range reads for random access, a read-ahead reader for scans."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._reader = self._open_reader(RANDOM_OPTIONS)
        try:
            shape, dtype, rows = self._layout()
            try:
                check_slack(self.path)
            except (ValueError, IndexError) as exc:
                raise FormatError(self.path, f"Riegeli slack check: {exc}") from exc
        except BaseException:
            self.close()
            raise
        super().__init__(path, shape, dtype, rows)
        self._nbytes = int(np.prod(shape)) * self.image_dtype.itemsize
        # a raw record is one element of this packed struct (a view, no per-record copies)
        self._record = np.dtype([("label", _LABEL), ("image", self.image_dtype, self.image_shape)])

    def _open_reader(self, options: str) -> Any:
        return _module().ArrayRecordReader(str(self.path), options)

    def _layout(self) -> tuple[tuple[int, ...], np.dtype, int]:
        """Read and check the header record and the chunking."""
        total = self._reader.num_records()
        if total < 1:
            raise FormatError(self.path, "no header record")
        try:
            meta = json.loads(self._reader.read(0, 1)[0])
            shape, dtype = tuple(int(d) for d in meta["shape"]), np.dtype(meta["dtype"])
            rows, self._example = int(meta["rows"]), meta["encoding"] == "example"
            if meta.get("fmtbench") != MAGIC:
                raise ValueError("not written by fmtbench")
        except (ValueError, KeyError, TypeError) as exc:
            raise FormatError(self.path, f"not an fmtbench ArrayRecord file: {exc}") from exc
        if total != rows + 1:
            raise FormatError(self.path, f"{total - 1} sample records, the header says {rows}")
        found = re.search(r"group_size:(\d+)", self._reader.writer_options_string() or "")
        self._group = int(found.group(1)) if found else 0
        if self._group < 1:
            raise FormatError(self.path, "the writer options name no group_size")
        return shape, dtype, rows

    def drop_caches(self) -> None:
        # Riegeli's file reader buffers recent bytes: a fresh reader starts empty.
        self._reader.close()
        self._reader = self._open_reader(RANDOM_OPTIONS)

    def _records(self, rows: list[int]) -> list[bytes]:
        """The records at sorted, unique record numbers `rows`, one range read per chunk."""
        read, group = self._reader.read, self._group
        out: list[bytes] = []
        i = 0
        while i < len(rows):
            first, j = rows[i], i
            while j + 1 < len(rows) and rows[j + 1] // group == first // group:
                j += 1
            span = read(first, rows[j] + 1)
            out.extend(span[r - first] for r in rows[i:j + 1])
            i = j + 1
        return out

    def _read(self, indices: np.ndarray) -> Batch:
        if self._group == 1:  # a range read per index, in the order asked
            read = self._reader.read
            return self._decode([read(i + 1, i + 2)[0] for i in indices.tolist()])
        rows, inverse = np.unique(indices, return_inverse=True)
        images, labels = self._decode(self._records((rows + 1).tolist()))
        return images[inverse], labels[inverse]

    def _scan(self, batch_size: int) -> Iterator[Batch]:
        reader = self._open_reader(SCAN_OPTIONS)
        try:
            for start in range(1, len(self) + 1, batch_size):
                yield self._decode(reader.read(start, min(start + batch_size, len(self) + 1)))
        finally:
            reader.close()

    def _decode(self, records: list[bytes]) -> Batch:
        if self._example:
            return self._parse(records)
        flat, width = b"".join(records), self._record.itemsize
        if len(flat) != width * len(records) or (len(records) > 1 and min(map(len, records)) != width):
            raise FormatError(self.path, f"a record is not {width} bytes")
        table = np.frombuffer(flat, self._record)
        return table["image"].copy(), table["label"].astype(np.int64)

    def _parse(self, records: list[bytes]) -> Batch:
        """Decode serialized Examples (image bytes, int64 label)."""
        tf = _tf()
        if len(records) >= _BATCH_PARSE:
            spec = {"image": tf.io.FixedLenFeature([], tf.string),
                    "label": tf.io.FixedLenFeature([], tf.int64)}
            ex = tf.io.parse_example(records, spec)
            blobs, labels = ex["image"].numpy().tolist(), ex["label"].numpy()
        else:
            try:
                feats = [tf.train.Example.FromString(r).features.feature for r in records]
                blobs = [f["image"].bytes_list.value[0] for f in feats]
                labels = np.array([f["label"].int64_list.value[0] for f in feats], dtype=np.int64)
            except IndexError as exc:  # a feature missing from a record
                raise FormatError(self.path, f"a record lacks image or label: {exc}") from exc
        if any(len(b) != self._nbytes for b in blobs):
            raise FormatError(self.path, f"an image is not {self._nbytes} bytes")
        images = np.frombuffer(b"".join(blobs), np.uint8).view(self.image_dtype)
        return images.reshape(-1, *self.image_shape), labels

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class ArrayRecordAdapter(Adapter):
    """Google's ArrayRecord (Grain, TFDS): one Riegeli record per sample, random access."""

    name: ClassVar[str] = "arrayrecord"
    requires: ClassVar[tuple[str, ...]] = ("array_record",)
    install: ClassVar[str] = "pip install array-record"
    suffix: ClassVar[str] = ".array_record"
    options = (
        Choice("compression", "zstd", "chunk compression",
               {"zstd": "zstd", "snappy": "snappy", "uncompressed": "uncompressed"}),
        Size("level", 3, "zstd level", prefix="zstd", maximum=22),
        Size("group", 1, "records per chunk (ArrayRecord's group_size: 1 reads one record alone)",
             prefix="group"),
        Flag("example", False, "store each sample as a tf.train.Example"),
    )
    grid = (
        {},
        {"compression": "uncompressed"},
        {"compression": "snappy"},
        {"level": 9},
        {"group": 64},
        {"group": 1024},
        {"example": True},
    )
    representative = ({}, {"group": 64, "example": True})

    @classmethod
    def check(cls, config: dict[str, Any]) -> None:
        if config["level"] != 3 and config["compression"] != "zstd":
            raise InvalidCaseError(f"arrayrecord: a zstd level with {config['compression']}")

    def _detection(self, damage: str) -> Detection:
        """Both: the postscript sits at the end; Riegeli's 64-bit hashes cover every chunk."""
        if damage == "truncated":
            return Detection(1.0, "the postscript is found 64 KiB before the end; the header "
                                  "record counts the samples")
        # 1 - 2^-64 is 1.0 in floating point: a 64-bit hash misses 1 damaged chunk in 2^64.
        return Detection(1.0 - 2.0**-64, "Riegeli's HighwayHash-64 of every chunk and block "
                                         "header, checked on every read; padding checked at open")

    def options_string(self) -> str:
        """The ArrayRecordWriter options this case writes with."""
        c = self.config
        compression = f"zstd:{c['level']}" if c["compression"] == "zstd" else c["compression"]
        return f"group_size:{c['group']},{compression}"

    def _write(self, split: Split, path: Path) -> None:
        meta = {"fmtbench": MAGIC, "encoding": "example" if self.config["example"] else "raw",
                "shape": list(split.image_shape), "dtype": split.images.dtype.str, "rows": len(split)}
        writer = _module().ArrayRecordWriter(str(path), self.options_string())
        try:  # a failed open or write raises RuntimeError from write() and close()
            writer.write(json.dumps(meta).encode())
            for record in (self._examples(split) if self.config["example"] else self._raw(split)):
                writer.write(record)
        finally:
            writer.close()

    @staticmethod
    def _raw(split: Split) -> Iterator[bytes]:
        table = np.empty(len(split), [("label", _LABEL), ("image", split.images.dtype, split.image_shape)])
        table["label"], table["image"] = split.labels, split.images
        flat, width = table.tobytes(), table.itemsize
        for start in range(0, len(flat), width):
            yield flat[start:start + width]

    @staticmethod
    def _examples(split: Split) -> Iterator[bytes]:
        ex = _tf().train.Example()  # one message refilled per sample, as tfrecord.py does
        feature = ex.features.feature
        image, label = feature["image"].bytes_list.value, feature["label"].int64_list.value
        image.append(b"")
        label.append(0)
        for img, lab in zip(split.images, split.labels.tolist()):
            image[0], label[0] = img.tobytes(), lab
            yield ex.SerializeToString(deterministic=True)

    def _open(self, path: Path) -> Reader:
        return ArrayRecordReader(path)

    def observed(self, path: Path) -> dict[str, Any]:
        """``compression``, ``level`` (zstd only) and ``group`` from the writer options that
        ArrayRecord stores in the file (``writer_options_string()``, e.g. ``group_size:64,...,
        zstd:3,...``); ``example`` from the header record's encoding, which is how every
        sample record is decoded. Reads the footer and the header record only."""
        path = Path(path)
        if not path.is_file():
            raise FormatError(path, "no such file")
        with library_errors(path):
            reader = _module().ArrayRecordReader(str(path), RANDOM_OPTIONS)
            try:
                options = reader.writer_options_string() or ""
                header = json.loads(reader.read(0, 1)[0]) if reader.num_records() else {}
            finally:
                reader.close()
            found: dict[str, Any] = {}
            for option in options.split(","):
                key, _, value = option.partition(":")
                if key == "zstd":  # Riegeli's zstd level defaults to 3
                    found["compression"], found["level"] = "zstd", int(value) if value else 3
                elif key in ("snappy", "uncompressed", "brotli"):
                    found["compression"] = key
                elif key == "group_size":
                    found["group"] = int(value)  # a malformed number: a FormatError
        if not isinstance(header, dict):
            raise FormatError(path, "the header record is not a JSON object")
        if "encoding" in header:
            found["example"] = header["encoding"] == "example"
        return {opt.name: found[opt.name] for opt in self.options if opt.name in found}
