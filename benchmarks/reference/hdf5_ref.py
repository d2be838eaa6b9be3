"""HDF5 with h5py alone, opened with the chunk cache the case asks for.

The file is opened through a low-level file-access property list: ``rdcc_nbytes`` = the
case's cache (its ``cacheN`` token in the file's ``case`` attribute, else HDF5's 1 MiB;
``cache0``: none; ``cacheauto``: every chunk of both datasets uncompressed, at most 1/4 of RAM),
``rdcc_nslots`` = the first prime >= cache/512, and no sieve buffer (HDF5's 64 KiB sieve makes
every random contiguous row a 64 KiB read) -- the settings an HDF5 expert picks for random
rows. One index: ``dset[i:i + 1]``. A batch: sorted unique indices, then contiguous data in
one fancy selection and chunked data row by row (HDF5 maps a fancy selection onto chunks far
slower than it reads rows, each chunk decoded once while it sits in the cache), then the order
asked restored with one gather. ``scan``: ``dset[a:b]`` per batch.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _prime_at_least(n: int) -> int:
    n = max(n, 2)
    while any(n % p == 0 for p in range(2, int(n**0.5) + 1)):
        n += 1
    return n


class Reference:
    def __init__(self, path: Path):
        import h5py
        import hdf5plugin  # noqa: F401  (Blosc)
        import numpy as np

        self._np = np
        with h5py.File(path, "r") as f:
            case = bytes(f.attrs.get("case", b"")).decode()
            working_set = sum(d.size // d.shape[0] * d.dtype.itemsize * d.chunks[0] * -(-d.shape[0] // d.chunks[0])
                              for d in (f["images"], f["labels"]) if d.chunks and d.shape[0])
        m = re.search(r"(?:^|[/-])cache(\d+)([kmg]?)(?:-|$)", case)
        cache = int(m.group(1)) * _UNITS[m.group(2)] if m else 1 << 20
        if re.search(r"(?:^|[/-])cacheauto(?:-|$)", case):
            cache = min(working_set, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4)
        fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        mdc, _, _, w0 = fapl.get_cache()
        fapl.set_cache(mdc, _prime_at_least(cache // 512), cache, w0)
        fapl.set_sieve_buf_size(0)
        self._file = h5py.File(h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY, fapl=fapl))
        self._images, self._labels = self._file["images"], self._file["labels"]
        self._chunked = self._images.chunks is not None

    def read(self, indices):
        np = self._np
        if len(indices) == 1:
            i = int(indices[0])
            return self._images[i:i + 1], self._labels[i:i + 1]
        ids, inverse = np.unique(indices, return_inverse=True)
        if not self._chunked:
            return self._images[ids][inverse], self._labels[ids][inverse]
        images = np.empty((len(ids), *self._images.shape[1:]), self._images.dtype)
        labels = np.empty(len(ids), self._labels.dtype)
        dimages, dlabels = self._images, self._labels
        for k, i in enumerate(ids.tolist()):
            images[k], labels[k] = dimages[i], dlabels[i]
        return images[inverse], labels[inverse]

    def scan(self, batch_size: int) -> Iterator:
        for start in range(0, len(self._labels), batch_size):
            yield self._images[start:start + batch_size], self._labels[start:start + batch_size]

    def close(self) -> None:
        self._file.close()
