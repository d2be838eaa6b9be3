"""Parquet with pyarrow alone: read only the row groups the indices touch, then ``take``.

Opened once as ``pq.ParquetFile(path, memory_map=True, pre_buffer=False,
page_checksum_verification=True)`` (the checks cost nothing on a file without page CRCs).
``read``: the row-group boundaries come from the footer; ``read_row_groups`` of the groups
touched, ``Table.take`` of the rows in the order asked (duplicates allowed), then numpy views of
the two columns. One index: ``read_row_group`` of its group and a one-row ``slice``. ``scan``:
``iter_batches``.
"""
from __future__ import annotations

import bisect
import json
from collections.abc import Iterator
from pathlib import Path

COLUMNS = ["label", "image"]


class Reference:
    def __init__(self, path: Path):
        import numpy as np
        import pyarrow.parquet as pq

        self._np = np
        self._file = pq.ParquetFile(path, memory_map=True, pre_buffer=False, page_checksum_verification=True)
        meta = json.loads(self._file.schema_arrow.metadata[b"fmtbench"])
        self._shape, self._dtype = tuple(meta["shape"]), np.dtype(meta["dtype"])
        md = self._file.metadata
        self._starts = np.cumsum([0] + [md.row_group(g).num_rows for g in range(md.num_row_groups)])
        self._start_list = self._starts.tolist()

    def _arrays(self, table):
        np = self._np
        image = table.column(1)
        if hasattr(image, "combine_chunks"):  # a Table's column; a RecordBatch's is one array
            image = image.combine_chunks()
        width = image.type.byte_width
        pixels = np.frombuffer(image.buffers()[1], np.uint8, count=len(image) * width, offset=image.offset * width)
        images = pixels.view(self._dtype).reshape(len(image), *self._shape)
        return images, table.column(0).to_numpy()

    def read(self, indices):
        np = self._np
        if len(indices) == 1:
            i = int(indices[0])
            g = bisect.bisect_right(self._start_list, i) - 1
            table = self._file.read_row_group(g, columns=COLUMNS, use_threads=False)
            return self._arrays(table.slice(i - self._start_list[g], 1))
        group_of = np.searchsorted(self._starts, indices, side="right") - 1
        groups = np.unique(group_of)
        table = self._file.read_row_groups(groups.tolist(), columns=COLUMNS, use_threads=False)
        sizes = self._starts[groups + 1] - self._starts[groups]
        first = np.zeros(len(self._starts), np.int64)  # the row of each chosen group in `table`
        first[groups] = np.cumsum(sizes) - sizes
        return self._arrays(table.take(indices - self._starts[group_of] + first[group_of]))

    def scan(self, batch_size: int) -> Iterator:
        for batch in self._file.iter_batches(batch_size=batch_size, columns=COLUMNS, use_threads=False):
            yield self._arrays(batch)

    def close(self) -> None:
        self._file.close()
