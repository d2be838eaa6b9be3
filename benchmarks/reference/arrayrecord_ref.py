"""ArrayRecord read with array_record alone: a range read per record (or per chunk)."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np


class Reference:
    """An ArrayRecord file fmtbench wrote: record 0 a JSON header, record i + 1 sample i."""

    def __init__(self, path: Path):
        from array_record.python import array_record_module

        self._module, self._path = array_record_module, str(path)
        self._reader = array_record_module.ArrayRecordReader(
            self._path, "readahead_buffer_size:0,max_parallelism:0")  # ArrayRecord's random-access options
        meta = json.loads(self._reader.read(0, 1)[0])
        self._shape, self._dtype = tuple(meta["shape"]), np.dtype(meta["dtype"])
        self._n, self._example = int(meta["rows"]), meta["encoding"] == "example"
        self._group = int(re.search(r"group_size:(\d+)", self._reader.writer_options_string()).group(1))
        self._record = np.dtype([("label", "<i8"), ("image", self._dtype, self._shape)])

    def _decode(self, records: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        if self._example:
            import tensorflow as tf

            if len(records) < 128:  # parse_example's fixed cost beats it below ~128 records
                feats = [tf.train.Example.FromString(r).features.feature for r in records]
                blobs = [f["image"].bytes_list.value[0] for f in feats]
                labels = np.array([f["label"].int64_list.value[0] for f in feats], dtype=np.int64)
            else:
                ex = tf.io.parse_example(records, {"image": tf.io.FixedLenFeature([], tf.string),
                                                   "label": tf.io.FixedLenFeature([], tf.int64)})
                blobs, labels = ex["image"].numpy().tolist(), ex["label"].numpy()
            return np.frombuffer(b"".join(blobs), self._dtype).reshape(-1, *self._shape), labels
        table = np.frombuffer(b"".join(records), self._record)  # packed (label <i8, image)
        return table["image"].copy(), table["label"].astype(np.int64)

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        read = self._reader.read
        if self._group == 1:  # read([i, ...]) costs ~110 us a call; a range read 5 us
            return self._decode([read(i + 1, i + 2)[0] for i in indices.tolist()])
        rows, inverse = np.unique(indices + 1, return_inverse=True)
        records, chunks = [], rows // self._group
        for chunk in np.unique(chunks).tolist():  # one range read per chunk touched
            wanted = rows[chunks == chunk]
            span = read(int(wanted[0]), int(wanted[-1]) + 1)
            records.extend(span[r] for r in (wanted - wanted[0]).tolist())
        images, labels = self._decode(records)
        return images[inverse], labels[inverse]

    def scan(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        reader = self._module.ArrayRecordReader(self._path)  # the sequential defaults
        try:
            for start in range(1, self._n + 1, batch_size):
                yield self._decode(reader.read(start, min(start + batch_size, self._n + 1)))
        finally:
            reader.close()

    def close(self) -> None:
        self._reader.close()
