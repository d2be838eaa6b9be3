"""CSV: one text row per sample, ``label`` then one column per pixel, parsed by numpy's C reader.

On disk (``<name>.csv``), ASCII, every line ending in ``\\n``::

    label,p_0_0:uint8,p_0_1:uint8,...,p_27_27:uint8
    5,0,0,...,0

Pixel columns are ``p_<row>_<col>[_<channel>]:<dtype>`` in C order, so the header alone gives
the image shape (the last name's indices + 1) and the numpy dtype. Integers are written in
decimal; floats as ``str()`` of their float64 value, the shortest text that parses back to the
same bits (float16/32/64, inf and -0.0 included; NaN comes back as the standard NaN, without
sign or payload). Other dtypes (bool, complex, float128) are refused at write. Open with pandas::

    df = pd.read_csv(path)
    images = df.iloc[:, 1:].to_numpy().reshape(-1, 28, 28).astype("uint8")
    labels = df["label"].to_numpy()

How it reads. Random access goes through a byte index of line starts built at open in one pass
(``np.flatnonzero(block == b"\\n")`` over 16 MiB blocks); ``read`` fetches each asked row with one
``pread``, ``scan`` the byte range of ``batch_size`` rows with one ``pread``. Integer pixels that
int64 holds (all but uint64) are then parsed by one ``np.fromstring(text, np.int64, sep=",")``
over all the rows, numpy's C number parser with no per-row or per-column Python, about 2x faster
than ``np.loadtxt`` with a structured dtype (int64 label, the image as a subarray in its own
dtype), which measured 17k rows/s against 12k for ``pandas.read_csv`` chunks of one dtype and
4k with a per-column dtype dict. fromstring does not see rows, so each newline becomes a
sentinel column (``,<int64 min>,``): the sentinels must land exactly in the last column, the
pixels must fit their dtype (one ``astype(casting="same_value")`` for one row on numpy >= 2.4,
else one max over the parsed values), and no label may sit at the int64 limits (where fromstring
saturates); then every row had exactly its columns. Rows the fast path refuses (and float or
uint64 images) go to ``np.loadtxt`` with the structured dtype, which range-checks,
counts columns and says what is wrong with a bad row.

Damage: CSV has no checksum and no row count. A cut inside a row (no final newline) is a
FormatError at open, but a cut at a row boundary reads as a shorter file, and a flipped digit is
another digit, so neither is guaranteed (the conformance test's XOR 0xFF does make non-ASCII
bytes that fail to parse).

Writing formats rows with ``str()`` (as fast as ``np.savetxt``; ``DataFrame.to_csv`` took 2x as
long). Measured on Fashion-MNIST train (60000x28x28 uint8), 2 busy cores, two runs of medians
of 3: 133 MB, write 11-13 s, index 0.13-0.20 s and 0.48 MB, scan 19-30k samples/s (4-5x below
plain TFRecord in the same runs), sorted random batches of 64 23-29k samples/s, one read 45 us
(all with ``np.loadtxt``; fromstring: one read 14 us, scan 90k samples/s). Against the same
index and ``np.fromstring`` alone (``benchmarks/reference/csv_ref.py``; current ratios in
docs/fairness.md): single reads were 1.97x and scans 1.33x before the block parse.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np

from fmtbench.datasets._base import Split
from fmtbench.errors import FormatError

from ._base import Adapter, Batch, Detection, Reader

_BLOCK = 16 << 20  # bytes per pass of the line index
_WRITE_ROWS = 4096  # rows formatted per write call
_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)
_ROW_END = f",{_INT64_MIN},".encode()  # what the fast path puts in place of each newline
_MIN, _MAX, _ALL = np.minimum.reduce, np.maximum.reduce, np.logical_and.reduce


def _same_value_casts() -> bool:
    """Whether this numpy has ``astype(..., casting="same_value")``: a cast that refuses values
    the new dtype cannot hold (numpy >= 2.4), the cheapest range check of one row."""
    try:
        np.array([1]).astype(np.uint8, casting="same_value")
    except (ValueError, TypeError):
        return False
    return True


_SAME_VALUE = _same_value_casts()


def _names(shape: tuple[int, ...], dtype: np.dtype) -> list[str]:
    """The header: ``label`` and one ``p_<row>_<col>[_<ch>]:<dtype>`` per pixel in C order."""
    return ["label"] + [f"p_{'_'.join(map(str, ix))}:{dtype.name}" for ix in np.ndindex(*shape)]


def _parse_header(path: Path, line: bytes) -> tuple[tuple[int, ...], np.dtype]:
    """Image shape and dtype from the header line; FormatError when it is not ours."""
    names = line.decode("ascii").rstrip("\n").split(",")
    last, _, dtype_name = names[-1].partition(":")
    try:
        shape = tuple(int(i) + 1 for i in last.split("_")[1:])
        dtype = np.dtype(dtype_name)
    except (ValueError, TypeError) as exc:
        raise FormatError(path, f"column {names[-1]!r} is not p_<row>_<col>[_<ch>]:<dtype>") from exc
    ours = len(shape) in (2, 3) and dtype.kind in "iuf" and len(names) == 1 + math.prod(shape)
    ours = ours and names == _names(shape, dtype)
    if not (ours and line.endswith(b"\n")):
        raise FormatError(path, "header is not label,p_<row>_<col>[_<ch>]:<dtype>,... in C order")
    return shape, dtype


def _line_index(fd: int, start: int) -> np.ndarray:
    """Byte offsets of every row's start from `start` on, then the file size."""
    size, pos = os.fstat(fd).st_size, start
    parts = [np.array([start], dtype=np.int64)]
    while pos < size:
        block = os.pread(fd, min(_BLOCK, size - pos), pos)
        parts.append(np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10) + (pos + 1))
        pos += len(block)
    return np.concatenate(parts).astype(np.int64, copy=False)


class CsvReader(Reader):
    """A CSV file with a line-start index: `read` preads rows, `scan` the byte range of a batch."""

    random_access: ClassVar[str] = "index"

    def __init__(self, path: Path):
        self._file = open(path, "rb")
        self._fd = self._file.fileno()
        try:
            header = self._file.readline()
            shape, dtype = _parse_header(path, header)
            start = time.perf_counter()
            self._offsets = _line_index(self._file.fileno(), len(header))
            seconds = time.perf_counter() - start
            size = os.fstat(self._file.fileno()).st_size
            if self._offsets[-1] != size:
                raise FormatError(path, f"the last row has no newline: truncated at byte {size}")
        except BaseException:
            self._file.close()
            raise
        super().__init__(path, shape, dtype, len(self._offsets) - 1)
        self._row = np.dtype([("label", np.int64), ("image", dtype, shape)])
        self._columns = 1 + math.prod(shape)
        # The fast path's pixel range (integer dtypes that int64 holds), None for the others.
        fast = dtype.kind in "iu" and dtype != np.uint64
        self._pixel_range = (int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)) if fast else None
        self._int64 = dtype == np.int64
        self._checked_cast = fast and not self._int64 and _SAME_VALUE
        self.index_seconds = seconds
        self.index_bytes = self._offsets.nbytes

    def _parse(self, text: bytes, n: int, lines: list[bytes] | None = None) -> Batch:
        """`n` whole rows, each ending in a newline (`text`; `lines`: the same rows one by one,
        when the caller has them), as images and labels."""
        if self._pixel_range is not None:
            batch = self._parse_fast(text, n)
            if batch is not None:
                return batch
        # Anything else (floats, uint64, a row the fast path did not take): numpy's structured
        # reader, which also says what is wrong with a bad row.
        if lines is None:
            lines = text.split(b"\n")[:-1]  # rows end at b"\n" only, as the index says
        rows = np.loadtxt(lines, delimiter=",", dtype=self._row, comments=None, ndmin=1)
        return np.ascontiguousarray(rows["image"]), rows["label"]

    def _parse_fast(self, text: bytes, n: int) -> Batch | None:
        """Integer pixels that int64 holds: one ``np.fromstring`` over all rows; None unless the
        text is plainly `n` rows of a label and ``pixels`` in-range integers each.

        Every newline becomes ``,<int64 min>,``, a sentinel column after each row. fromstring
        saturates numbers past int64, so no other field reads as int64 min unless it is that
        number or beyond, and such a label or pixel sends the rows to the slow path: with the
        sentinels exactly in the last column and nowhere else, every row has exactly its
        columns (a long row cannot make up for a short one)."""
        try:
            values = np.fromstring(text.replace(b"\n", _ROW_END), dtype=np.int64, sep=",")
        except ValueError:  # text that is not integers and commas
            return None
        width = self._columns + 1
        if values.size != n * width:
            return None
        if n == 1:
            label = values.item(0)
            if values.item(-1) != _INT64_MIN or label == _INT64_MIN or label == _INT64_MAX:
                return None
            if self._checked_cast:  # the range check inside the cast (numpy >= 2.4)
                try:
                    pixels = values[1:-1].astype(self.image_dtype, casting="same_value")
                except ValueError:
                    return None
                return pixels.reshape(1, *self.image_shape), values[:1].copy()
        ends = values[width - 1::width]
        if not _ALL(ends == _INT64_MIN):
            return None
        lo, hi = self._pixel_range
        ends[:] = lo  # the checks below see the sentinels as valid pixels
        # One pass over everything, labels included: when the labels are in the pixel range
        # too (class ids usually are), no other check is needed.
        if self._int64:
            ok = False  # every label is in range: check them below
        elif lo == 0:
            ok = _MAX(values.view(np.uint64)) <= hi  # negatives viewed as uint64 are huge
        else:
            ok = _MIN(values) >= lo and _MAX(values) <= hi
        values = values.reshape(n, width)
        pixels, labels = values[:, 1:-1], values[:, 0]
        if not ok:
            if _MIN(pixels, axis=None) < lo or _MAX(pixels, axis=None) > hi:
                return None
            # labels past int64 saturate (numpy's reader refuses them), and int64 min is the
            # sentinel: labels at either end go to the slow path.
            if _MIN(labels) == _INT64_MIN or _MAX(labels) == _INT64_MAX:
                return None
        if self._int64 and (_MIN(pixels, axis=None) == _INT64_MIN or _MAX(pixels, axis=None) == _INT64_MAX):
            return None  # the same for int64 pixels
        return pixels.astype(self.image_dtype).reshape(n, *self.image_shape), labels.copy()

    def _read_one(self, i: int) -> Batch:
        a, b = self._offsets.item(i), self._offsets.item(i + 1)
        return self._parse(os.pread(self._fd, b - a, a), 1)

    def _read(self, indices: np.ndarray) -> Batch:
        fd = self._fd  # one pread per index in the order asked, duplicates read twice
        starts, stops = self._offsets[indices].tolist(), self._offsets[indices + 1].tolist()
        lines = [os.pread(fd, b - a, a) for a, b in zip(starts, stops)]
        return self._parse(b"".join(lines), len(lines), lines)

    def _scan(self, batch_size: int) -> Iterator[Batch]:
        fd, offsets = self._fd, self._offsets.tolist()
        for start in range(0, self._n, batch_size):
            stop = min(start + batch_size, self._n)
            text = os.pread(fd, offsets[stop] - offsets[start], offsets[start])
            if len(text) != offsets[stop] - offsets[start]:
                raise FormatError(self.path, "the file is shorter than its line index: changed while open")
            yield self._parse(text, stop - start)

    def close(self) -> None:
        self._file.close()
        self._fd = -1  # a read after close fails (EBADF) rather than pread a reused descriptor


class CsvAdapter(Adapter):
    """Comma-separated text, one row per sample, a header that names shape and dtype."""

    name: ClassVar[str] = "csv"
    suffix: ClassVar[str] = ".csv"
    random_access: ClassVar[str] = "index"

    def _detection(self, damage: str) -> Detection:
        """Neither: no row count, no checksum (see the module docstring)."""
        if damage == "truncated":
            return Detection(0.0, "no row count: a cut at a row boundary reads as a shorter file")
        return Detection(0.0, "no checksum: a flipped digit is another digit")

    def _write(self, split: Split, path: Path) -> None:
        dtype = split.images.dtype
        if not (dtype.kind in "iu" or dtype in _FLOATS):
            raise ValueError(f"csv stores integer or float16/32/64 images, not {dtype}")
        flat = split.images.reshape(len(split), -1)
        with open(path, "w", encoding="ascii", newline="\n") as fh:
            fh.write(",".join(_names(split.image_shape, dtype)) + "\n")
            for start in range(0, len(split), _WRITE_ROWS):
                block = flat[start : start + _WRITE_ROWS]
                rows = (block.astype(np.float64) if dtype.kind == "f" else block).tolist()
                labels = split.labels[start : start + _WRITE_ROWS].tolist()
                fh.write("".join(f"{lab},{','.join(map(str, row))}\n" for lab, row in zip(labels, rows)))

    def _open(self, path: Path) -> Reader:
        return CsvReader(path)
