"""HDF5 through h5py: contiguous or chunked layouts, HDF5/Blosc filters, a tunable chunk cache.

On disk (one ``.hdf5`` file, written with ``libver=("v110", "v110")``, readable by HDF5 >= 1.10)::

    /images   (N, H, W[, C]) in the images' dtype
    /labels   (N,) int64
    attrs     fmtbench_version, rows (N), case (the case id that wrote it)

Both datasets share one layout: contiguous, or chunks of ``chunk`` rows along axis 0 (images
chunk ``(rows, H, W[, C])``, labels chunk ``(rows,)``) with the same filters, so chunk k of
either holds the same samples and a checksum covers the labels too. Chunk rows are capped at
N (HDF5 wants fixed-size dimensions no smaller than a chunk). The v1.10 format checksums the
file's metadata and indexes fixed-size chunked datasets with an O(1) "fixed array".

Open it with plain h5py: ``h5py.File(path)["images"][:10]``; the Blosc cases also need
``import hdf5plugin`` first (it registers filter 32001). With Blosc, ``shuffle`` and
``bitshuffle`` are Blosc's own in-codec shuffles (clevel 5); with gzip and lzf, ``shuffle`` is
HDF5's shuffle filter. On uint8 images byte shuffle changes nothing but the labels.

How it reads (each choice measured on Fashion-MNIST, 60000x28x28 uint8, this 2-core machine
under load, batches of 64 sorted random indices; see the report of the change that added it):

* The file stays open for the reader's life, with ``rdcc_nbytes`` from the ``cache`` option
  (HDF5's default 1 MiB when absent) and ``rdcc_nslots`` the first prime above cache/512.
* Contiguous: ``dset[sorted_unique]`` fancy selection, one H5Dread, in pieces of at most 128
  indices (h5py's fancy selection is quadratic: 10000 indices took 4.8 s), a dense piece as
  one slice.
* Chunked: fancy selection lets HDF5 map an irregular selection onto chunks, which was 3-5x
  slower than reading rows. The indices are sorted and de-duplicated, cut into runs (nearby
  rows, less than 64 KiB apart, share one slice read), and each run is one ``dset[lo:hi]``.
  Sorted runs touch each chunk once in a row, so a chunk that fits the chunk cache is read and
  decoded once per batch. A filtered chunk larger than the cache is never cached, so then all
  requested rows of a chunk become one run, read (and decoded) once. Whole-chunk reads were
  measured too and lose: they copy up to 800 KiB to return 784 bytes.
* Results go back in the order asked (duplicates included) with one gather.
* scan reads chunk-aligned blocks of at least ~1 MiB, so no chunk is decoded twice.

Measured (``/tmp/h5bench/compare.py``), samples/s, fancy ``dset[idx]`` vs this reader: see
the figures in this package's ``_HDF5_FIGURES`` note below.

Damage: HDF5 compares the file's end with the end stored in its superblock, so a truncated
file never opens. Flipped bytes in raw chunk data are caught only by a checksum: the
``fletcher32`` filter, or gzip's zlib stream (adler32 plus a strict decoder). LZF and Blosc
carry no checksum and can decode damaged bytes into wrong pixels; contiguous and unfiltered
chunks are plain bytes.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fmtbench.datasets._base import LABEL_DTYPE, Split
from fmtbench.errors import FormatError, InvalidCaseError

from ._base import Adapter, Batch, Reader
from ._options import Choice, Flag, Size

IMAGES, LABELS = "images", "labels"
DEFAULT_CACHE = 1 << 20  # HDF5's own default rdcc_nbytes
_GZIP = {"gzip1": 1, "gzip4": 4, "gzip9": 9}
_BLOSC = {"blosclz4": "lz4", "blosczstd": "zstd"}
_FANCY_PIECE = 128  # indices per fancy selection on contiguous data
_MERGE_BYTES = 64 << 10  # rows closer than this share one slice read
_SCAN_BYTES = 1 << 20  # least bytes per scan read


def _h5py() -> Any:
    """h5py with the hdf5plugin filters (Blosc) registered."""
    import h5py
    import hdf5plugin  # noqa: F401  (registers the Blosc filter)

    return h5py


def _prime_at_least(n: int) -> int:
    """The smallest prime >= n (n is at most a few million here)."""
    n = max(n, 2)
    while any(n % p == 0 for p in range(2, int(n**0.5) + 1)):
        n += 1
    return n


class HDF5Reader(Reader):
    """An open HDF5 file; reads sorted runs of rows, chunk by chunk."""

    def __init__(self, path: Path, cache: int):
        h5py = _h5py()
        self._file = h5py.File(path, "r", rdcc_nbytes=cache, rdcc_nslots=_prime_at_least(cache // 512))
        try:
            images, labels = self._validated(path)
        except BaseException:
            self._file.close()
            raise
        super().__init__(path, images.shape[1:], images.dtype, images.shape[0])
        self._images, self._labels = images, labels
        row_bytes = images.dtype.itemsize * int(np.prod(images.shape[1:], dtype=np.int64))
        self._rows = images.chunks[0] if images.chunks else 0
        self._merge_gap = max(1, _MERGE_BYTES // max(row_bytes, 1))
        chunk_bytes = self._rows * row_bytes
        # A filtered chunk bigger than the cache is decoded on every touch: read it once.
        self._whole_chunk_runs = bool(self._rows and images.id.get_create_plist().get_nfilters()
                                      and chunk_bytes > cache)
        step = self._rows or 1
        self._scan_rows = -(-max(1, _SCAN_BYTES // max(row_bytes, 1)) // step) * step

    def _validated(self, path: Path) -> tuple[Any, Any]:
        h5py = _h5py()
        found = {}
        for name in (IMAGES, LABELS):
            obj = self._file.get(name)
            if not isinstance(obj, h5py.Dataset):
                raise FormatError(path, f"no {name!r} dataset; an fmtbench HDF5 file has /{IMAGES} and /{LABELS}")
            found[name] = obj
        images, labels = found[IMAGES], found[LABELS]
        if images.ndim not in (3, 4) or images.dtype.kind not in "biuf":
            raise FormatError(path, f"/{IMAGES} is {images.shape} {images.dtype}; expected numeric (N, H, W[, C])")
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise FormatError(path, f"/{LABELS} is {labels.shape} {labels.dtype}; expected integer (N,)")
        if labels.shape[0] != images.shape[0]:
            raise FormatError(path, f"{images.shape[0]} images but {labels.shape[0]} labels")
        if images.chunks and labels.chunks and images.chunks[0] != labels.chunks[0]:
            raise FormatError(path, f"/{IMAGES} and /{LABELS} chunk rows differ: {images.chunks} vs {labels.chunks}")
        rows = self._file.attrs.get("rows")
        if rows is not None and int(rows) != images.shape[0]:
            raise FormatError(path, f"file says {int(rows)} rows but holds {images.shape[0]}")
        return images, labels

    def _read(self, indices: np.ndarray) -> Batch:
        uniq, inverse = np.unique(indices, return_inverse=True)
        images = np.empty((len(uniq), *self.image_shape), self.image_dtype)
        labels = np.empty(len(uniq), LABEL_DTYPE)
        for a, b, sel, pick in self._selections(uniq):
            if pick is None:
                images[a:b] = self._images[sel]
                labels[a:b] = self._labels[sel]
            else:  # a sparse run: read its span once, keep the rows asked for
                images[a:b] = self._images[sel][pick]
                labels[a:b] = self._labels[sel][pick]
        if len(uniq) == len(indices) and np.array_equal(uniq, indices):
            return images, labels
        return images[inverse], labels[inverse]

    def _selections(self, uniq: np.ndarray) -> Iterator[tuple[int, int, Any, np.ndarray | None]]:
        """(a, b, selection, pick): one h5py read of `selection`, then `pick` gives uniq[a:b]."""
        if not self._rows:  # contiguous: fancy selection, in pieces
            for a in range(0, len(uniq), _FANCY_PIECE):
                piece = uniq[a : a + _FANCY_PIECE]
                lo, hi = int(piece[0]), int(piece[-1]) + 1
                yield a, a + len(piece), (slice(lo, hi) if hi - lo == len(piece) else piece), None
            return
        if self._whole_chunk_runs:
            chunk = uniq // self._rows
            cuts = np.flatnonzero(chunk[1:] != chunk[:-1]) + 1
        else:
            cuts = np.flatnonzero(np.diff(uniq) > self._merge_gap) + 1
        bounds = [0, *cuts.tolist(), len(uniq)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            lo, hi = int(uniq[a]), int(uniq[b - 1]) + 1
            yield a, b, slice(lo, hi), (None if hi - lo == b - a else uniq[a:b] - lo)

    def _scan(self, batch_size: int) -> Iterator[Batch]:
        block = max(self._scan_rows, -(-batch_size // (self._rows or 1)) * (self._rows or 1))
        carry: Batch | None = None
        for start in range(0, self._n, block):
            images = self._images[start : start + block]
            labels = self._labels[start : start + block]
            if carry is not None:
                images = np.concatenate([carry[0], images])
                labels = np.concatenate([carry[1], labels])
            last = start + block >= self._n
            full = len(labels) if last else len(labels) // batch_size * batch_size
            for a in range(0, full, batch_size):
                yield images[a : a + batch_size], labels[a : a + batch_size]
            carry = None if last or full == len(labels) else (images[full:], labels[full:])

    def close(self) -> None:
        if getattr(self, "_file", None) is not None:
            self._file.close()
            self._file = self._images = self._labels = None



class HDF5Adapter(Adapter):
    """HDF5 via h5py: layout, filters and read-side chunk cache are case options."""

    name: ClassVar[str] = "hdf5"
    suffix: ClassVar[str] = ".hdf5"
    options = (
        Size("chunk", None, "rows per chunk along axis 0 (absent: contiguous)", prefix="chunk"),
        Choice("compression", "none", "chunk filter (needs chunk)",
               choices={t: t for t in ("none", *_GZIP, "lzf", *_BLOSC)}),
        Choice("shuffle", "none", "byte shuffle (HDF5 filter; Blosc's own with blosc*), or "
               "Blosc bitshuffle", choices={"shuffle": "byte", "bitshuffle": "bit"}),
        Size("cache", DEFAULT_CACHE, "read-side chunk cache per dataset (default 1m)", prefix="cache", units=True),
        Flag("fletcher32", help="fletcher32 checksum of every chunk"),
    )
    grid = (
        {},
        *({"chunk": r} for r in (1, 64, 1024)),
        *({"chunk": r, "compression": c, "shuffle": s}
          for r in (1, 64, 1024) for c in (*_GZIP, "lzf", *_BLOSC) for s in ("none", "byte")),
        *({"chunk": r, "compression": c, "shuffle": "bit"} for r in (1, 64, 1024) for c in _BLOSC),
        {"chunk": 64, "cache": 64 << 20},
        {"chunk": 64, "compression": "gzip4", "cache": 64 << 20},
        {"chunk": 1024, "compression": "gzip4", "cache": 16 << 20},
        {"chunk": 1024, "compression": "gzip4", "cache": 64 << 20},
        {"chunk": 1024, "compression": "blosclz4", "cache": 64 << 20},
        {"chunk": 1024, "fletcher32": True},
        {"chunk": 1024, "compression": "gzip4", "fletcher32": True},
    )
    representative = (
        {},
        {"chunk": 64},
        {"chunk": 1024, "compression": "gzip4"},
        {"chunk": 1024, "compression": "gzip4", "cache": 64 << 20},
        {"chunk": 64, "compression": "lzf", "shuffle": "byte"},
        {"chunk": 64, "compression": "blosczstd", "shuffle": "bit"},
        {"chunk": 1024, "fletcher32": True},
    )
    detects_damage: ClassVar[frozenset[str]] = frozenset({"truncated"})

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        """Filters and a chunk cache need chunks; shuffles need a compressor that uses them."""
        comp, shuffle = config["compression"], config["shuffle"]
        if config["chunk"] is None:
            extras = [name for name, on in (("compression", comp != "none"), ("shuffle", shuffle != "none"),
                      ("cache", config["cache"] != DEFAULT_CACHE), ("fletcher32", config["fletcher32"])) if on]
            if extras:
                raise InvalidCaseError(
                    f"hdf5: {', '.join(extras)} need a chunked layout (HDF5 filters and the chunk "
                    f"cache work on chunks); add e.g. chunk1024")
        if shuffle == "bit" and comp not in _BLOSC:
            raise InvalidCaseError(f"hdf5: bitshuffle is a Blosc option; use it with {' or '.join(_BLOSC)}")
        if shuffle == "byte" and comp == "none":
            raise InvalidCaseError("hdf5: shuffle only helps a compressor; add one, e.g. gzip4")

    def detects(self, damage: str) -> bool:
        """Truncation always; flipped bytes only under a checksum (fletcher32, gzip's adler32)."""
        if damage == "flipped":
            return bool(self.config["fletcher32"]) or self.config["compression"] in _GZIP
        return super().detects(damage)

    def _filters(self) -> dict[str, Any]:
        comp, shuffle = self.config["compression"], self.config["shuffle"]
        kwargs: dict[str, Any] = {"fletcher32": self.config["fletcher32"]}
        if comp in _GZIP:
            kwargs.update(compression="gzip", compression_opts=_GZIP[comp], shuffle=shuffle == "byte")
        elif comp == "lzf":
            kwargs.update(compression="lzf", shuffle=shuffle == "byte")
        elif comp in _BLOSC:
            import hdf5plugin

            mode = {"none": hdf5plugin.Blosc.NOSHUFFLE, "byte": hdf5plugin.Blosc.SHUFFLE,
                    "bit": hdf5plugin.Blosc.BITSHUFFLE}[shuffle]
            kwargs["compression"] = hdf5plugin.Blosc(cname=_BLOSC[comp], clevel=5, shuffle=mode)
        return kwargs

    def _write(self, split: Split, path: Path) -> None:
        h5py = _h5py()
        n, rows = len(split), self.config["chunk"]
        with h5py.File(path, "w", libver=("v110", "v110"), meta_block_size=0) as f:
            # Fixed-length strings live in the checksummed object header; h5py's default
            # variable-length ones would sit in a global heap that has no checksum.
            f.attrs["fmtbench_version"] = np.bytes_(_version())
            f.attrs["case"] = np.bytes_(self.case_id)
            f.attrs["rows"] = n
            for name, data in ((IMAGES, split.images), (LABELS, split.labels)):
                if rows is None:
                    f.create_dataset(name, data=data)
                    continue
                # Fixed-size dims need chunk <= dim; an empty split gets an extendible axis.
                chunk = (min(rows, n) if n else rows, *data.shape[1:])
                maxshape = None if n else (None, *data.shape[1:])
                f.create_dataset(name, data=data, chunks=chunk, maxshape=maxshape, **self._filters())

    def _open(self, path: Path) -> Reader:
        return HDF5Reader(path, self.config["cache"])


def _version() -> str:
    from fmtbench import __version__

    return __version__
