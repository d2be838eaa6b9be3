"""JSON Lines: one JSON object per sample and line, images as nested lists of numbers.

On disk (a ``<name>.jsonl`` folder)::

    data.jsonl       one line per sample, compact separators, UTF-8, every line ending in "\\n":
                     {"label":3,"image":[[0,0,...,0],...,[0,...,0]]}
    data.jsonl.gz    (gzip) the same text as a series of gzip members, each holding whole lines
    data.jsonl.idx   (idx) the line index, little-endian uint64; see below
    meta.json        {"shape": [28, 28], "dtype": "|u1", "rows": N, "encoding": "list",
                      "compression": "none", "index": false}

``image`` is the image as nested lists (H lists of W numbers, or of W lists of C numbers):
what ``img.tolist()`` gives and ``np.array(obj["image"], dtype)`` takes back, the shape
readable from the data itself, and what every JSON consumer (pandas, jq, JavaScript, Spark)
understands without knowing anything of the writer. That interoperability is the reason to
choose JSON at all, so it is the default. With ``b64`` the image is instead a string holding
base64 of its raw C-order bytes in ``dtype`` (2.1x smaller than the lists of Fashion-MNIST and
far faster to decode), opaque to anything but a program that knows shape and dtype from
``meta.json``. JSON has no place for array metadata, so shape, dtype and the row count sit in
``meta.json`` beside the data, as dataset cards and ``dataset_info.json`` files do. Integers
and booleans are written as JSON integers and ``true``/``false``; floats as the shortest text
that parses back to the same float64 (so float16/32/64 round-trip bit-exact); NaN and
infinities, which standard JSON cannot hold, are refused at write. Open it with plain Python::

    meta = json.load(open(folder / "meta.json"))
    for line in open(folder / "data.jsonl", "rb"):
        obj = json.loads(line)
        image = np.array(obj["image"], dtype=meta["dtype"])   # b64: np.frombuffer(base64...)

or ``pandas.read_json(folder / "data.jsonl", lines=True)``; ``gzip.open`` reads the ``gzip``
file (and ``zcat`` it), which is a plain multi-member gzip stream.

Case tokens: ``b64`` (default: lists), ``gzip`` (default: none), ``idx`` (write the line index;
default: none, the reader builds it at open, ``random_access == "index"``).

How it writes, reads, and why:

* Lines are written with compact separators. Integer and boolean images go through pandas'
  C encoder (``DataFrame.to_json(orient="records", lines=True)``), which walks the arrays
  without making a Python int per pixel: 2.3-2.5 s for Fashion-MNIST train against 4.7 s for
  ``tolist()`` + ``json``, the same bytes. Floats go through ``json`` (shortest round-trip text).
* Parsing is the whole cost of reading JSON, so batches go to the fastest JSON parser here:
  pyarrow's (``pyarrow.json.read_json``, what Hugging Face ``datasets`` loads JSON Lines with),
  given the column types so numbers parse straight into the image dtype, then one flatten to
  numpy. For 1024 Fashion-MNIST lines it took 45 ms of CPU against 83 ms for ``json.loads``
  per line (66) plus ``np.array`` (17); at 32 lines they tie, below that pyarrow's set-up loses,
  so batches under 64 lines go through ``json.loads``. (orjson, not installed here, is the
  usual faster ``json.loads``.) pyarrow's defaults stand: 1 MiB blocks on its thread pool
  (one thread measured the same here). ``b64`` lines are short: ``json.loads`` plus
  ``b64decode`` for every batch.
* Random access needs every line's byte offset. ``idx`` stores them beside the data at write
  time; without it the reader finds them at open in one pass (``np.flatnonzero(block ==
  b"\\n")`` over 16 MiB blocks: 0.04 s for 137 MB) and reports what that cost. ``read`` then
  fetches each line with one ``pread`` and parses the lines of a batch in one call; ``scan``
  reads ``batch_size`` lines as one contiguous ``pread`` and parses them in one call.
* ``gzip`` cannot seek inside a deflate stream, so the writer ends a gzip member after every
  ~64 KiB of text, at a line end (the way BGZF makes gzip seekable; 2.4% larger than one
  stream). Its index holds, per line, the byte offset of its member and its offset in the
  member's text: ``(N + 1, 2)`` uint64 (the last row is the file size and 0). A plain index
  is ``N + 1`` offsets, the last the file size. Without ``idx`` the reader inflates every
  member at open to find them (0.4 s). ``read`` inflates each member its indices touch, once
  per call; ``scan`` inflates them in order. Nothing inflated is kept between calls. Level 6
  (gzip's default) costs 9.5 s of a write here; level 1 would take 1.1 s for a 21% larger file.

Measured on Fashion-MNIST train (60000x28x28 uint8), warm cache, a busy 2-core machine, median
of 5 (interleaved with benchmarks/reference/jsonl_ref.py, which read within 0.94-1.15x of it)::

    case            write    MB    scan(1024)    one read   batch of 64
    jsonl           3.1 s   138    18-21k/s        61 us      4.1 ms
    jsonl/gzip     10.9 s    36    19k/s          241 us     15 ms
    jsonl/b64       0.5 s    64    153k/s          16 us      0.43 ms
    jsonl/b64-gzip  2.0 s    28    95k/s          223 us     13 ms

"""
from __future__ import annotations

import base64
import io
import json
import os
import struct
import time
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fmtbench.datasets._base import LABEL_DTYPE, Split
from fmtbench.errors import FormatError

from ._base import CHECKSUM_32, Adapter, Batch, Detection, Reader, library_errors
from ._options import Choice, Flag

META, DATA = "meta.json", "data.jsonl"
_MEMBER_TEXT = 64 << 10  # text per gzip member (BGZF's block size)
_LEVEL = 6  # gzip's and zlib's default level
_BLOCK = 16 << 20  # bytes per pass when the reader builds an index
_GZIP_READ = 64 << 10  # compressed bytes per read when inflating members in order
_WRITE_ROWS = 4096  # lines formatted per write call
_ARROW_LINES = 64  # batches from this many lines on parse with pyarrow.json
# A gzip member header: magic, deflate, FHCRC, no time, no extra flags, OS unknown; its CRC-16 follows.
_HEADER = b"\x1f\x8b\x08\x02\x00\x00\x00\x00\x00\xff"
_HEADER_CRC = struct.pack("<H", zlib.crc32(_HEADER) & 0xFFFF)


def _gzip_member(text: bytes) -> bytes:
    """`text` as one complete gzip member with a header CRC."""
    deflate = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15)
    body = deflate.compress(text) + deflate.flush()
    return _HEADER + _HEADER_CRC + body + struct.pack("<II", zlib.crc32(text), len(text) & 0xFFFFFFFF)


def _inflate(member: bytes) -> bytes:
    """The text of exactly one gzip member; zlib checks its header CRC, CRC-32 and length."""
    inflater = zlib.decompressobj(31)
    text = inflater.decompress(member)
    if not inflater.eof or inflater.unused_data:
        raise ValueError("a gzip member does not end where the index says")
    return text


def _members(fd: int, size: int) -> Iterator[tuple[int, bytes]]:
    """(offset, text) of each gzip member of the file, in order, inflated and checked."""
    fed = start = 0  # bytes given to zlib so far; offset of the member being inflated
    inflater, parts = zlib.decompressobj(31), []
    while fed < size:
        # Small reads: zlib copies what follows a member's end into unused_data.
        data = os.pread(fd, min(_GZIP_READ, size - fed), fed)
        if not data:
            break
        fed += len(data)
        while data:
            parts.append(inflater.decompress(data))
            if not inflater.eof:
                break
            data = inflater.unused_data
            yield start, b"".join(parts)
            start = fed - len(data)
            inflater, parts = zlib.decompressobj(31), []
    if start != size:
        raise ValueError(f"the gzip member at byte {start} is cut short: the file ends at {size}")


def _check_lines(text: bytes, where: str) -> np.ndarray:
    """Offsets of every line start in `text` (which must end in a newline), then len(text)."""
    ends = np.flatnonzero(np.frombuffer(text, np.uint8) == 10) + 1
    if len(text) and (not len(ends) or ends[-1] != len(text)):
        raise ValueError(f"{where} does not end with a newline")
    return np.concatenate([[0], ends]).astype(np.int64)


def _arrow_type(dtype: np.dtype) -> Any:
    """The pyarrow type that JSON numbers of `dtype` parse into (float16 through float32)."""
    import pyarrow as pa

    if dtype.kind == "b":
        return pa.bool_()
    if dtype.kind == "f":
        return pa.float64() if dtype.itemsize == 8 else pa.float32()
    return pa.from_numpy_dtype(dtype.newbyteorder("="))


def _values(images: Any, shape: tuple[int, ...]) -> Any:
    """The flat values of a column of nested lists, each image exactly `shape` (else ValueError)."""
    for depth, size in enumerate(shape):
        if images.null_count:
            raise ValueError(f"{images.null_count} null images or rows at depth {depth}")
        if not (np.diff(images.offsets.to_numpy()) == size).all():
            raise ValueError(f"an image has another shape than {shape} (depth {depth})")
        images = images.flatten()
    if images.null_count:
        raise ValueError(f"{images.null_count} null pixels")
    return images


class JsonlReader(Reader):
    """Line offsets (stored or found at open) for `read`, contiguous line runs for `scan`."""

    def __init__(self, path: Path, config: dict[str, Any]):
        meta = json.loads((path / META).read_text("utf-8"))
        found = {key: meta.get(key) for key in config}
        if found != config:
            raise FormatError(path, f"written with {found}, opened as {config}")
        shape, dtype, rows = tuple(int(d) for d in meta["shape"]), np.dtype(meta["dtype"]), int(meta["rows"])
        self._gzip, self._b64 = config["compression"] == "gzip", config["encoding"] == "base64"
        self._width = int(np.prod(shape)) * dtype.itemsize
        self._fd = os.open(path / (DATA + (".gz" if self._gzip else "")), os.O_RDONLY)
        try:
            super().__init__(path, shape, dtype, rows)
            self.random_access = "native" if config["index"] else "index"  # type: ignore[misc]
            self._size = os.fstat(self._fd).st_size
            if config["index"]:
                self._load_index(path / (DATA + (".gz.idx" if self._gzip else ".idx")))
            else:
                start = time.perf_counter()
                self._build_index()
                self.index_seconds = time.perf_counter() - start
                self.index_bytes = self._starts.nbytes + (0 if self._inner is None else self._inner.nbytes)
            # gzip: where each member starts, and the file's end: a member ends where the next starts
            self._bounds = np.unique(self._starts) if self._gzip else self._starts[-1:]
            self._arrow_options(shape, dtype)
        except BaseException:
            self.close()
            raise

    def _load_index(self, idx: Path) -> None:
        """The stored index, checked against the file: plain (N+1,), gzip (N+1, 2) uint64."""
        columns = 2 if self._gzip else 1
        table = np.fromfile(idx, "<u8").astype(np.int64)
        if table.size != (self._n + 1) * columns:
            raise FormatError(self.path, f"{idx.name} holds {table.size} offsets, expected "
                                         f"{(self._n + 1) * columns} for {self._n} lines")
        table = table.reshape(self._n + 1, columns)
        starts, steps = table[:, 0], np.diff(table[:, 0])
        ok = starts[0] == 0 and starts[-1] == self._size
        if self._gzip:  # members in order; lines in order within each, the first at 0
            inner = table[:, 1]
            ok = ok and inner[0] == 0 and inner[-1] == 0 and (steps >= 0).all()
            ok = ok and ((steps > 0) | (np.diff(inner) > 0)).all() and not inner[1:][steps > 0].any()
        else:
            inner, ok = None, ok and (steps > 0).all()
        if not ok:
            raise FormatError(self.path, f"{idx.name} does not index this file of {self._size} bytes "
                                         "(a cut or damaged file, or a stale index)")
        self._starts, self._inner = starts, inner

    def _build_index(self) -> None:
        """Every line's offsets, found in one pass over the file (inflating every gzip member)."""
        if not self._gzip:
            ends, pos = [np.zeros(1, np.int64)], 0
            while pos < self._size:
                block = os.pread(self._fd, min(_BLOCK, self._size - pos), pos)
                ends.append(np.flatnonzero(np.frombuffer(block, np.uint8) == 10) + (pos + 1))
                pos += len(block)
            self._starts, self._inner = np.concatenate(ends).astype(np.int64), None
            if self._starts[-1] != self._size:
                raise FormatError(self.path, f"the last line has no newline: cut at byte {self._size}")
        else:
            members: list[np.ndarray] = []
            inner: list[np.ndarray] = []
            for offset, text in _members(self._fd, self._size):
                lines = _check_lines(text, f"the gzip member at byte {offset}")[:-1]
                members.append(np.full(len(lines), offset, np.int64))
                inner.append(lines)
            self._starts = np.concatenate([*members, [self._size]]).astype(np.int64)
            self._inner = np.concatenate([*inner, [0]]).astype(np.int64)
        if len(self._starts) != self._n + 1:
            raise FormatError(self.path, f"{len(self._starts) - 1} lines, but {META} counts {self._n}")

    def _arrow_options(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        import pyarrow as pa
        import pyarrow.json as paj

        image = _arrow_type(dtype)
        for _ in shape:
            image = pa.list_(image)
        schema = pa.schema([("label", pa.int64()), ("image", image)])
        self._parse_options = paj.ParseOptions(explicit_schema=schema)

    def _lines(self, indices: np.ndarray) -> list[bytes]:
        """The text of the lines at `indices`, in that order (a gzip member inflated once per call)."""
        fd, starts, inner = self._fd, self._starts, self._inner
        if not self._gzip:
            return [os.pread(fd, b - a, a) for a, b in zip(starts[indices].tolist(),
                                                           starts[indices + 1].tolist())]
        members = starts[indices]
        texts = {}
        for m in np.unique(members).tolist():
            end = int(self._bounds[np.searchsorted(self._bounds, m, "right")])
            texts[m] = _inflate(os.pread(fd, end - m, m))
        follow = indices + 1
        stops = np.where(starts[follow] == members, inner[follow], -1).tolist()
        return [texts[m][a:b] if b >= 0 else texts[m][a:]
                for m, a, b in zip(members.tolist(), inner[indices].tolist(), stops)]

    def _read(self, indices: np.ndarray) -> Batch:
        lines = self._lines(indices)
        if self._b64 or len(lines) < _ARROW_LINES:
            return self._parse_lines(lines)
        return self._parse_arrow(b"".join(lines), len(lines))

    def _decode(self, text: bytes, n: int) -> Batch:
        """`n` complete lines of text, parsed."""
        if self._b64 or n < _ARROW_LINES:
            lines = text.split(b"\n")
            if len(lines) != n + 1 or lines[-1]:
                raise ValueError(f"expected {n} lines ending in a newline, found {len(lines) - 1}")
            return self._parse_lines(lines[:-1])
        return self._parse_arrow(text, n)

    def _parse_lines(self, lines: list[bytes]) -> Batch:
        """Lines parsed one by one with json.loads (short batches, and every b64 batch)."""
        objects = [json.loads(line) for line in lines]
        labels = np.array([o["label"] for o in objects], LABEL_DTYPE)
        if not self._b64:
            return np.array([o["image"] for o in objects], self.image_dtype), labels
        raw = [base64.b64decode(o["image"]) for o in objects]
        if any(len(r) != self._width for r in raw):
            raise ValueError(f"an image decodes to other than {self._width} bytes")
        images = np.frombuffer(b"".join(raw), self.image_dtype).reshape(-1, *self.image_shape)
        return images.copy(), labels

    def _parse_arrow(self, text: bytes, n: int) -> Batch:
        """Lines parsed in one call by pyarrow.json, numbers straight into the image dtype."""
        import pyarrow as pa
        import pyarrow.json as paj

        table = paj.read_json(pa.BufferReader(text), parse_options=self._parse_options)
        if table.num_rows != n:
            raise ValueError(f"parsed {table.num_rows} rows from {n} lines")
        labels, images = (table.column(c).combine_chunks() for c in ("label", "image"))
        if labels.null_count:
            raise ValueError(f"{labels.null_count} lines without a label")
        values = _values(images, self.image_shape).to_numpy(zero_copy_only=False, writable=True)
        return values.reshape(n, *self.image_shape), labels.to_numpy(zero_copy_only=False, writable=True)

    def _scan(self, batch_size: int) -> Iterator[Batch]:
        if self._gzip:
            yield from self._scan_gzip(batch_size)
            return
        starts = self._starts
        for a in range(0, self._n, batch_size):
            b = min(a + batch_size, self._n)
            yield self._decode(os.pread(self._fd, int(starts[b] - starts[a]), int(starts[a])), b - a)

    def _scan_gzip(self, batch_size: int) -> Iterator[Batch]:
        """Members inflated in order; their text cut into runs of `batch_size` lines."""
        parts: list[bytes] = []
        held = 0
        for _, text in _members(self._fd, self._size):
            parts.append(text)
            held += text.count(b"\n")
            if held < batch_size:
                continue
            joined = b"".join(parts)
            ends = np.flatnonzero(np.frombuffer(joined, np.uint8) == 10) + 1
            done = 0
            while held - done >= batch_size:
                a = int(ends[done - 1]) if done else 0
                done += batch_size
                yield self._decode(joined[a:int(ends[done - 1])], batch_size)
            parts, held = [joined[int(ends[done - 1]):]], held - done
        if held:
            yield self._decode(b"".join(parts), held)

    def close(self) -> None:
        fd, self._fd = getattr(self, "_fd", -1), -1
        if fd >= 0:
            os.close(fd)


class JsonlAdapter(Adapter):
    """JSON Lines, images as nested lists (or base64), optionally gzip and a stored line index."""

    name: ClassVar[str] = "jsonl"
    requires: ClassVar[tuple[str, ...]] = ("pyarrow", "pandas")
    install: ClassVar[str] = "pip install pyarrow pandas"
    suffix: ClassVar[str] = ".jsonl"
    writes_folder: ClassVar[bool] = True
    options = (
        Choice("encoding", "list", "how an image is written",
               {"list": "list", "b64": "base64"}),
        Choice("compression", "none", "gzip members of ~64 KiB of text each",
               {"none": "none", "gzip": "gzip"}),
        Flag("index", False, "store every line's offset beside the data", flag="idx"),
    )
    grid = tuple({"encoding": e, "compression": c, "index": i}
                 for e in ("list", "base64") for c in ("none", "gzip") for i in (False, True))
    representative = ({}, {"compression": "gzip", "index": True})

    def __init__(self, config: Mapping[str, Any] | None = None):
        super().__init__(config)
        self.random_access = "native" if self.config["index"] else "index"  # type: ignore[misc]

    def _detection(self, damage: str) -> Detection:
        """Truncation always (the index ends at the file size); flips only with gzip's CRC-32."""
        if damage == "truncated":
            return Detection(1.0, f"the line index must end at the file's size and count the "
                                  f"rows {META} records")
        if self.config["compression"] == "gzip":
            return Detection(CHECKSUM_32, "the CRC-32 of every gzip member's text, checked each "
                                          "time zlib inflates it (scan, read, open without idx)")
        return Detection(0.0, "no checksum: a flipped digit is another digit")

    def _write(self, split: Split, path: Path) -> None:
        images = split.images
        if images.dtype.kind == "f" and not np.isfinite(images).all():
            raise ValueError("jsonl writes standard JSON, which has no NaN or infinity; the images hold some")
        gzip = self.config["compression"] == "gzip"
        data = path / (DATA + (".gz" if gzip else ""))
        with open(data, "wb") as fh:
            out = _LineWriter(fh, gzip)
            for start in range(0, len(split), _WRITE_ROWS):
                stop = start + _WRITE_ROWS
                out.write(_json_lines(images[start:stop], split.labels[start:stop], self.config["encoding"]))
            out.close()
        if self.config["index"]:
            out.index().astype("<u8").tofile(path / (data.name + ".idx"))
        meta = {"shape": list(split.image_shape), "dtype": images.dtype.str, "rows": len(split),
                **self.config}
        # No final newline: any cut of the file then cuts its closing brace, and it fails to parse.
        (path / META).write_text(json.dumps(meta, indent=1), "utf-8")

    def _open(self, path: Path) -> Reader:
        if not (path / META).is_file():
            raise FormatError(path, f"missing {META}; a jsonl case is a folder with {META} and {DATA}")
        return JsonlReader(path, self.config)

    def observed(self, path: Path) -> dict[str, Any]:
        """What the data shows, not what meta.json says: ``compression`` from the data file's
        first bytes (the gzip magic or not), ``index`` from whether its line index sits beside
        it, ``encoding`` from the first line's image (a base64 string or nested lists; left
        out of an empty file). Reads the first line only (inflating part of one gzip member)."""
        path = Path(path)
        found = [p for p in (path / DATA, path / (DATA + ".gz")) if p.is_file()]
        if not found:
            raise FormatError(path, f"no {DATA} or {DATA}.gz; a jsonl case is a folder holding one")
        data = found[0]
        with library_errors(path), open(data, "rb") as fh:
            gzip = fh.read(2) == b"\x1f\x8b"
            fh.seek(0)
            line = _first_line(fh, gzip)
            image = json.loads(line)["image"] if line else None
        observed: dict[str, Any] = {}
        if isinstance(image, str):
            observed["encoding"] = "base64"
        elif isinstance(image, list):
            observed["encoding"] = "list"
        elif line:
            raise FormatError(path, f"the first line's image is {type(image).__name__}, "
                                    "neither a list nor a base64 string")
        observed["compression"] = "gzip" if gzip else "none"
        observed["index"] = (path / (data.name + ".idx")).is_file()
        return observed


def _first_line(fh: io.BufferedReader, gzip: bool) -> bytes:
    """The first line of a data file (b"" when it is empty), read a block at a time."""
    inflater = zlib.decompressobj(31) if gzip else None
    text = b""
    while b"\n" not in text:
        block = fh.read(_GZIP_READ)
        if not block:
            if text:
                raise ValueError("the first line has no newline")
            return b""
        text += inflater.decompress(block) if inflater is not None else block
    return text[:text.index(b"\n")]


def _json_lines(images: np.ndarray, labels: np.ndarray, encoding: str) -> bytes:
    """One compact JSON line per sample, each ending in a newline."""
    encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
    if encoding == "base64":
        pixels: list[Any] = [base64.b64encode(img.tobytes()).decode("ascii") for img in images]
    elif images.dtype.kind in "biu":
        # pandas' C encoder walks the arrays without making a Python int per pixel: 2.2x less
        # CPU than tolist() + json, and the same bytes (tests/test_jsonl.py checks it).
        import pandas as pd

        text = pd.DataFrame({"label": labels, "image": list(images)}).to_json(orient="records", lines=True)
        return (text if text.endswith("\n") else text + "\n").encode()
    else:  # floats: json writes the shortest text that reads back as the same float64
        pixels = images.tolist()
    return "".join(encode({"label": lab, "image": img}) + "\n"
                   for lab, img in zip(labels.tolist(), pixels)).encode()


class _LineWriter:
    """Writes whole lines, plain or as gzip members of ~64 KiB of text, and records the index."""

    def __init__(self, fh: io.BufferedWriter, gzip: bool):
        self._fh, self._gzip, self._pos = fh, gzip, 0
        self._starts: list[np.ndarray] = []  # line offsets; gzip: offsets of their members
        self._inner: list[np.ndarray] = []  # gzip: line offsets in their member's text
        self._pending = b""  # gzip: whole lines not yet in a member

    def write(self, text: bytes) -> None:
        """Write `text`, whole lines only."""
        if not self._gzip:
            ends = np.flatnonzero(np.frombuffer(text, np.uint8) == 10) + 1
            self._starts.append(self._pos + np.concatenate([[0], ends[:-1]]).astype(np.int64))
            self._fh.write(text)
            self._pos += len(text)
            return
        text = self._pending + text
        ends = np.flatnonzero(np.frombuffer(text, np.uint8) == 10) + 1
        first = start = 0  # the member's first line, and where it starts in text
        while (last := int(np.searchsorted(ends, start + _MEMBER_TEXT))) < len(ends):
            self._member(text[start:ends[last]], ends[first:last] - start)
            first, start = last + 1, int(ends[last])
        self._pending = text[start:]

    def _member(self, text: bytes, later_lines: np.ndarray) -> None:
        """One gzip member of `text`, whose lines after the first start at `later_lines`."""
        inner = np.concatenate([[0], later_lines]).astype(np.int64)
        self._starts.append(np.full(len(inner), self._pos, np.int64))
        self._inner.append(inner)
        packed = _gzip_member(text)
        self._fh.write(packed)
        self._pos += len(packed)

    def close(self) -> None:
        """Write what is pending as the last gzip member."""
        if self._pending:
            ends = np.flatnonzero(np.frombuffer(self._pending, np.uint8) == 10) + 1
            self._member(self._pending, ends[:-1])
            self._pending = b""

    def index(self) -> np.ndarray:
        """Plain: (N+1,) line offsets, the last the file size. Gzip: (N+1, 2) offsets of each
        line's member and of the line in the member's text, the last row (file size, 0)."""
        starts = np.concatenate([*self._starts, [self._pos]]).astype(np.int64)
        if not self._gzip:
            return starts
        inner = np.concatenate([*self._inner, [0]]).astype(np.int64)
        return np.stack([starts, inner], axis=1)
