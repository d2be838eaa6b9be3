"""rawbin: an example fmtbench format plugin (the README's "Adding a format" walks through it).

On disk (one ``.rawbin`` file): a JSON header line ``{"shape": [N, H, W], "dtype": "|u1",
"align": A}``, zero padding up to a multiple of A bytes, the images as C-order bytes, then
the labels as little-endian int64. Plain numpy opens it::

    line = open(path, "rb").readline()
    header = json.loads(line)
    offset = -(-len(line) // header["align"]) * header["align"]   # the line, rounded up
    images = np.memmap(path, header["dtype"], "r", offset, tuple(header["shape"]))

Reads go through one ``np.memmap``: a gather for ``read``, slices for ``scan``.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np

from fmtbench.formats import Adapter, Batch, Choice, Detection, Reader, Split


def _layout(path: Path) -> tuple[dict, int]:
    with open(path, "rb") as f:
        line = f.readline(1 << 16)
    header = json.loads(line)
    align = int(header["align"])
    return header, -(-len(line) // align) * align


class RawbinReader(Reader):
    def __init__(self, path: Path):
        header, offset = _layout(path)
        shape, dtype = tuple(header["shape"]), np.dtype(header["dtype"])
        n = shape[0]
        expected = offset + int(np.prod(shape)) * dtype.itemsize + 8 * n
        if path.stat().st_size != expected:
            raise ValueError(f"file holds {path.stat().st_size} bytes, its header says {expected}")
        self._offset = offset
        super().__init__(path, shape[1:], dtype, n)
        self._map()

    def _map(self) -> None:
        n, size = len(self), int(np.prod(self.image_shape)) * self.image_dtype.itemsize
        self._images = np.memmap(self.path, self.image_dtype, "r", self._offset, (n, *self.image_shape))
        self._labels = np.memmap(self.path, "<i8", "r", self._offset + n * size, (n,))

    def _read(self, indices: np.ndarray) -> Batch:
        return self._images[indices], np.asarray(self._labels[indices])

    def _scan(self, batch_size: int) -> Iterator[Batch]:
        for start in range(0, len(self), batch_size):
            yield (np.array(self._images[start:start + batch_size]),
                   np.array(self._labels[start:start + batch_size]))

    def drop_caches(self) -> None:
        # Pages mapped into this process stay resident: unmap and map again.
        self.close()
        self._map()

    def close(self) -> None:
        self._images = self._labels = None  # the maps close when collected


class RawbinAdapter(Adapter):
    """Raw bytes behind a JSON header; `align4096` puts the images on a page boundary."""

    name: ClassVar[str] = "rawbin"
    suffix: ClassVar[str] = ".rawbin"
    options = (Choice("align", 64, "where the images start", {"align64": 64, "align4096": 4096}),)
    grid = ({}, {"align": 4096})
    representative = ({},)

    def _detection(self, damage: str) -> Detection:
        if damage == "truncated":
            return Detection(1.0, "the header's shape fixes the file size")
        return Detection(0.0, "no checksum: changed pixels read back")

    def _write(self, split: Split, path: Path) -> None:
        header = {"shape": list(split.images.shape), "dtype": split.images.dtype.str,
                  "align": self.config["align"]}
        line = (json.dumps(header) + "\n").encode()
        with open(path, "wb") as f:
            f.write(line.ljust(-(-len(line) // header["align"]) * header["align"], b"\0"))
            f.write(split.images.tobytes())
            f.write(split.labels.astype("<i8").tobytes())

    def _open(self, path: Path) -> Reader:
        return RawbinReader(path)
