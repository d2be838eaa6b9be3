"""Plain json, zlib and pyarrow.json reading an fmtbench JSON Lines folder."""
from __future__ import annotations

import base64
import gzip
import itertools
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ARROW_LINES = 64  # from this many lines on, one pyarrow.json call beats json.loads per line


class Reference:
    """Line offsets from ``data.jsonl[.gz].idx`` (or one pass at open); lines fetched with
    ``pread`` (gzip: the members they sit in, inflated), parsed by ``json.loads`` or, for
    batches, ``pyarrow.json.read_json``; scans stream the file (``gzip.open`` when gzip)."""

    def __init__(self, path: Path):
        import pyarrow as pa
        import pyarrow.json as paj

        meta = json.loads((path / "meta.json").read_text())
        self._shape, self._dtype, rows = tuple(meta["shape"]), np.dtype(meta["dtype"]), meta["rows"]
        self._b64, self._gzip = meta["encoding"] == "base64", meta["compression"] == "gzip"
        self._data = path / ("data.jsonl.gz" if self._gzip else "data.jsonl")
        self._fd = os.open(self._data, os.O_RDONLY)
        size = os.fstat(self._fd).st_size
        if meta["index"]:
            table = np.fromfile(f"{self._data}.idx", "<u8").astype(np.int64).reshape(rows + 1, -1)
        else:
            table = self._gzip_index(size) if self._gzip else self._plain_index(size)
        self._starts, self._inner = table[:, 0], table[:, -1] * self._gzip
        self._bounds = np.unique(self._starts)
        image = pa.float64() if self._dtype == np.float64 else (
            pa.float32() if self._dtype.kind == "f" else pa.from_numpy_dtype(self._dtype))
        for _ in self._shape:
            image = pa.list_(image)
        self._paj, self._pa = paj, pa
        self._options = paj.ParseOptions(explicit_schema=pa.schema([("label", pa.int64()), ("image", image)]))

    def _plain_index(self, size: int) -> np.ndarray:
        with open(self._data, "rb") as fh:
            text = np.frombuffer(fh.read(), np.uint8)
        return np.concatenate([[0], np.flatnonzero(text == 10) + 1])[:, None]

    def _gzip_index(self, size: int) -> np.ndarray:
        with open(self._data, "rb") as fh:
            data = fh.read()
        rows, pos = [], 0
        while pos < size:
            inflater = zlib.decompressobj(31)
            text = inflater.decompress(data[pos:])
            lines = np.concatenate([[0], np.flatnonzero(np.frombuffer(text, np.uint8) == 10)[:-1] + 1])
            rows.append(np.stack([np.full(len(lines), pos), lines], axis=1))
            pos = size - len(inflater.unused_data)
        return np.concatenate([*rows, [[size, 0]]]).astype(np.int64)

    def _lines(self, indices: np.ndarray) -> list[bytes]:
        starts, inner = self._starts, self._inner
        if not self._gzip:
            return [os.pread(self._fd, int(starts[i + 1] - starts[i]), int(starts[i])) for i in indices]
        texts = {}
        for m in np.unique(starts[indices]).tolist():
            end = int(self._bounds[np.searchsorted(self._bounds, m, "right")])
            texts[m] = zlib.decompress(os.pread(self._fd, end - m, m), 31)
        out = []
        for i in indices.tolist():
            text = texts[int(starts[i])]
            stop = int(inner[i + 1]) if starts[i + 1] == starts[i] else len(text)
            out.append(text[int(inner[i]):stop])
        return out

    def _parse(self, lines: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        n = len(lines)
        if self._b64 or n < ARROW_LINES:
            objects = [json.loads(line) for line in lines]
            labels = np.array([o["label"] for o in objects], np.int64)
            if self._b64:
                raw = b"".join(base64.b64decode(o["image"]) for o in objects)
                return np.frombuffer(raw, self._dtype).reshape(n, *self._shape).copy(), labels
            return np.array([o["image"] for o in objects], self._dtype), labels
        table = self._paj.read_json(self._pa.BufferReader(b"".join(lines)), parse_options=self._options)
        images = table.column("image").combine_chunks()
        for _ in self._shape:
            images = images.flatten()
        images = images.to_numpy(zero_copy_only=False, writable=True).astype(self._dtype, copy=False)
        return images.reshape(n, *self._shape), table.column("label").to_numpy()

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._parse(self._lines(np.asarray(indices, np.int64)))

    def scan(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        with (gzip.open if self._gzip else open)(self._data, "rb") as fh:
            while lines := list(itertools.islice(fh, batch_size)):
                yield self._parse(lines)

    def close(self) -> None:
        os.close(self._fd)
