"""IDX files (the MNIST container), plain or gzipped, read and written with numpy alone.

An IDX file is a 4-byte magic number ``0x00 0x00 <dtype code> <ndim>``, then ``ndim``
big-endian uint32 sizes, then the values in C order, big-endian. Anything that does not fit
that exactly (wrong magic, wrong dtype or ndim for the caller, a short or long payload, a
broken gzip stream) is a ValueError naming the file.
"""
from __future__ import annotations

import gzip
import io
import os
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

# IDX dtype codes; the format stores every multi-byte value big-endian.
DTYPES = {
    0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
CODES = {dt.newbyteorder("="): code for code, dt in DTYPES.items()}
GZIP_MAGIC = b"\x1f\x8b"

# The four files of MNIST and Fashion-MNIST, as their publishers and Keras name them.
TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)


def _read_exact(fh: BinaryIO, out: memoryview) -> int:
    got = 0
    while got < len(out):
        n = fh.readinto(out[got:])  # type: ignore[attr-defined]
        if not n:
            break
        got += n
    return got


def read_idx(path: str | os.PathLike[str], *, ndim: int | None = None,
             dtype: np.dtype | str | None = None) -> np.ndarray:
    """The array in an IDX file (gzipped or not), in native byte order; ValueError if malformed."""
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            fh: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw  # type: ignore[assignment]
            values = _parse(fh, ndim, dtype, None if gzipped else os.fstat(raw.fileno()).st_size)
    except FileNotFoundError:
        raise
    except (OSError, EOFError, zlib.error, MemoryError) as e:
        raise ValueError(f"{path}: not a readable IDX file ({type(e).__name__}: {e})") from e
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return values.astype(values.dtype.newbyteorder("="), copy=False)


def _parse(fh: BinaryIO, ndim: int | None, dtype: np.dtype | str | None, size: int | None) -> np.ndarray:
    magic = fh.read(4)
    if len(magic) != 4 or magic[:2] != b"\0\0" or magic[2] not in DTYPES:
        raise ValueError(f"bad IDX magic number {magic.hex() or '(empty file)'}")
    stored, rank = DTYPES[magic[2]], magic[3]
    if ndim is not None and rank != ndim:
        raise ValueError(f"expected {ndim} dimensions, the header says {rank}")
    if dtype is not None and stored.newbyteorder("=") != np.dtype(dtype):
        raise ValueError(f"expected dtype {np.dtype(dtype)}, the header says {stored}")
    dims_raw = fh.read(4 * rank)
    if len(dims_raw) != 4 * rank:
        raise ValueError("truncated header")
    shape = tuple(int(d) for d in np.frombuffer(dims_raw, ">u4"))
    nbytes = int(np.prod(shape, dtype=object)) * stored.itemsize
    if size is not None and size != 4 + 4 * rank + nbytes:
        # Checked before allocating, so a corrupt header cannot ask for terabytes.
        raise ValueError(f"file is {size} bytes; shape {shape} of {stored} needs {4 + 4 * rank + nbytes}")
    values = np.empty(shape, dtype=stored)
    got = _read_exact(fh, memoryview(values.reshape(-1).view(np.uint8)))
    if got != values.nbytes:
        raise ValueError(f"truncated: {got} of {values.nbytes} data bytes for shape {shape}")
    if fh.read(1):
        raise ValueError(f"trailing bytes after {values.nbytes} data bytes for shape {shape}")
    return values


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write array as an IDX file, gzipped when the name ends in .gz (for tests and exports)."""
    array = np.asarray(array)
    code = CODES.get(array.dtype.newbyteorder("="))
    if code is None or not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX cannot hold dtype {array.dtype} with {array.ndim} dimensions")
    buf = io.BytesIO()
    buf.write(bytes([0, 0, code, array.ndim]))
    buf.write(np.asarray(array.shape, ">u4").tobytes())
    buf.write(np.ascontiguousarray(array, DTYPES[code]).tobytes())
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(buf.getvalue())


def find_files(folder: str | os.PathLike[str]) -> dict[str, Path] | None:
    """The four MNIST-named IDX files in folder (each plain or .gz), or None if any is missing."""
    found = {}
    for name in FILES:
        hits = [p for p in (Path(folder) / name, Path(folder) / f"{name}.gz") if p.is_file()]
        if not hits:
            return None
        found[name] = hits[0]
    return found


def read_split(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, H, W) and uint8 labels (N,) from a pair of IDX files that must agree."""
    x = read_idx(images, ndim=3, dtype="u1")
    y = read_idx(labels, ndim=1, dtype="u1")
    if len(x) != len(y):
        raise ValueError(f"{images} holds {len(x)} images but {labels} holds {len(y)} labels")
    return x, y
