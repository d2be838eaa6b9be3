"""HDF5 through h5py: contiguous or chunked layout, HDF5/Blosc filters, a read-side chunk cache.

On disk (one ``.hdf5`` file; HDF5 1.10 format, so metadata is checksummed and fixed-size
chunked datasets get an O(1) chunk index)::

    /labels   (N,) int64                     written first
    /images   (N, H, W[, C]) images' dtype
    attrs     fmtbench_version, case (fixed-length bytes), rows (N)

Both datasets share the layout: contiguous, or chunks of ``chunk`` rows along axis 0 (images
``(rows, H, W[, C])``, labels ``(rows,)``, rows capped at N as HDF5 requires) with the same
filters, so a checksum covers the labels too. Plain h5py opens it:
``h5py.File(path)["images"][:10]``; Blosc cases need ``import hdf5plugin`` first (filter
32001). With Blosc (clevel 5) ``shuffle``/``bitshuffle`` are Blosc's in-codec shuffles; with
gzip and lzf ``shuffle`` is HDF5's filter (on uint8 pixels it only reorders the labels).
Every combination writes Fashion-MNIST in seconds except gzip9 on chunk64/1024 (~25 s).

How it reads. The file stays open with ``rdcc_nbytes`` = the ``cache`` option (HDF5's 1 MiB
by default), ``rdcc_nslots`` = the first prime >= cache/512 and the sieve buffer off
(``set_sieve_buf_size(0)``): by default HDF5 reads contiguous data through a 64 KiB sieve
buffer, so each 784-byte random row costs a 64 KiB read (Fashion-MNIST, median of 3: single
rows 23 -> 13 us, random batches of 64 sorted rows 80k -> 182k samples/s, scans unchanged;
chunked data never uses the sieve). Indices are sorted and de-duplicated, read, and put back
in the order asked with one gather.

* Contiguous: fancy ``dset[sorted]`` (one H5Dread), at most 128 indices per call because
  h5py's fancy selection is quadratic (10000 indices: 4.8 s); a dense piece is one slice.
* Chunked: fancy selection makes HDF5 map an irregular selection onto chunks, 3-5x slower
  than reading rows. Rows are read as runs (rows < 16 KiB apart share one ``dset[lo:hi]``,
  unless a chunk holding none of them lies between: the run would read and decode it for
  nothing), in sorted order, so each touched chunk is fetched and decoded once while it sits in the
  chunk cache. A filtered chunk larger than the cache is never cached and would be decoded
  per row: then each touched chunk's rows are one run (32x32x3 uint8, chunk1024-gzip4, 1 MiB
  cache: row loop 57/s, fancy 341/s, this reader 371/s). Reading whole chunks lost (it copies
  800 KiB to return 784 bytes).
* One index is ``dset[i:i + 1]`` of each dataset, nothing else.
* scan reads blocks of whole chunks that are also whole batches, about 1 MiB and at least one
  batch (bigger reads were slower: 1024-row batches of 784 bytes, chunk64, a scan in 23 ms with
  1024-row reads, 26 with 2048, 32 with 4096), so no chunk is decoded twice and each batch is a
  view of one read; where such a block would pass 16 MiB (chunk1000 with batches of 97),
  blocks of >= 1 MiB whole chunks, the rows left over carried into the next block.

Measured on Fashion-MNIST train (2 busy cores; same file and rdcc for every read path; median
of 7 interleaved repeats), samples/s, random batches of 64 sorted indices /
single-sample reads (fmtbench's figures predate the trimming of the Reader's checks to < 1 us;
the current fairness ratios are in docs/fairness.md):

    case                      batch: fancy  row loop  fmtbench   single: fancy  dset[i]  fmtbench
    hdf5 (contiguous)               82k      53k       77k               7.9k    41k      31k
    chunk64                        9.2k      25k       31k               4.5k    47k      17k
    chunk1024-gzip4                 302      299       307                191    187      197
    chunk1024-gzip4-cache64m        13k      64k       54k               6.2k    69k      39k

With the default cache a 800 KiB gzip chunk is decoded for every random access (~3-5 ms);
only a bigger ``cache`` fixes that, which is why it is a case option: ``cacheN[k|m|g]``,
``cache0`` (no chunk cache) or ``cacheauto`` (every chunk of both datasets uncompressed, at most
1/4 of RAM; resolved from the file at open). The grid keeps HDF5's 1 MiB default as its own
case at every point and gives chunk64/chunk1024 x none/gzip4/lzf/blosclz4 the twin an expert
would set (``expert_cache``). For unfiltered chunks that is ``cache0``: HDF5 then reads just
the rows asked straight from the file, where a cache reads and keeps whole chunks. Measured
(``fmtbench run -w random,scan -c hdf5/chunk64 -c hdf5/chunk64-cache0 -c hdf5/chunk64-cacheauto``
and the same for chunk1024, Fashion-MNIST, 3 rounds, 2 busy cores), single p50 / sorted
batches of 64 / scan:

    chunk64     1 MiB 15.4 us  35.8k/s  2360 MB/s   cache0 11.1  44.0k  2732   cacheauto 17.8  28.2k  1616
    chunk1024   1 MiB 55.0 us  12.4k/s  1953 MB/s   cache0 10.9  50.5k  3282   cacheauto 11.4   7.7k   823

For compressed chunks it is ``cacheauto``: each chunk is decoded once per open file (two
such runs of the twins, 3 and 5 rounds: chunk1024-gzip4 single p50 227-502x faster, batches
4.8-6.2x; chunk1024-blosclz4 23-24x and 2.5-5.4x).
Its cost shows where chunks are seldom revisited: a fresh process grows the cache a new
chunk at a time (page faults), so chunk64 compressed singles (200 reads over 938 chunks) are
1.1-1.8x slower and scans through it up to 1.9x slower. The report's HDF5 section lists each
twin against the default (``reports/hdf5grid.worth``).

Against h5py alone on the same file with the same cache (``benchmarks/reference/hdf5_ref.py``;
current ratios in docs/fairness.md; before the Reader's checks were trimmed and scans aligned
to batches: up to 1.18x, 1.09x and 1.49x).

Damage (``HDF5Adapter.detection``): HDF5 checks the file's end against the superblock, so a
truncated file never opens. Flipped bytes in metadata fail its checksums; in chunk data only
gzip's zlib stream is sure to catch them (inflate's checks, then the Adler-32 of the chunk: a
32-bit checksum, which misses 1 in 2^32 random changes). ``fletcher32`` is no such promise:
it sums 16-bit words mod 65535, so it catches any one changed byte, but a word that turns
0x0000 <-> 0xFFFF leaves the sum unchanged, and MNIST pixels are mostly zeros: two zero pixels
set to 0xFF read back silently. On images with 81% zero pixels, bursts of 2 and 8 bytes XORed
with 0xFF at random offsets passed it 34% and 11% of the time (400 each; an outside test on
MNIST: 24% and 12%). LZF and Blosc have no checksum and can decode damage into wrong
pixels; contiguous and unfiltered data are plain bytes. (Unused slack HDF5 leaves between
blocks is never read, so flips there change nothing.)
"""
from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fmtbench import __version__
from fmtbench.datasets._base import LABEL_DTYPE, Split
from fmtbench.errors import FormatError, InvalidCaseError

from ._base import CHECKSUM_32, Adapter, Batch, Detection, Reader, library_errors, rebatch
from ._options import Choice, Flag, Size

IMAGES, LABELS = "images", "labels"
DEFAULT_CACHE = 1 << 20  # HDF5's own default rdcc_nbytes
AUTO = "auto"  # the cache value sized to the working set at open (see working_set_bytes)
_RAM_SHARE = 4  # an auto cache takes at most 1/4 of the machine's memory
_EXPERT_POINTS = ("none", "gzip4", "lzf", "blosclz4")  # compressions whose expert-cache twins the grid has
_GZIP = {"gzip1": 1, "gzip4": 4, "gzip9": 9}
_BLOSC = {"blosclz4": "lz4", "blosczstd": "zstd"}
_BLOSC_FILTER = 32001  # the registered HDF5 filter id of Blosc
_BLOSC_BY_CODE = {1: "blosclz4", 5: "blosczstd"}  # Blosc's compressor codes (lz4 1, zstd 5)
_FANCY_PIECE = 128  # indices per fancy selection on contiguous data
_MERGE_BYTES = 16 << 10  # rows closer than this share one slice read
_SCAN_BYTES = 1 << 20  # least bytes per scan read
_ALIGNED_BYTES = 16 << 20  # most bytes of a scan read aligned with both chunks and batches
_ALL = np.logical_and.reduce  # np.all() adds ~1 us of Python wrappers
STREAM_ROWS = 1024  # least rows per read of the streaming pipeline (rounded up to whole chunks)


def _h5py() -> Any:
    """h5py with the hdf5plugin filters (Blosc) registered."""
    import h5py
    import hdf5plugin  # noqa: F401  (registers the Blosc filter)

    return h5py


@dataclass(frozen=True)
class CacheSize(Size):
    """The chunk cache: bytes (``cache64m``), ``cache0`` (no chunk cache) or ``cacheauto``."""

    minimum: int = 0

    def parse(self, token: str) -> tuple[bool, Any]:
        return (True, AUTO) if token == self.prefix + AUTO else super().parse(token)

    def token(self, value: Any) -> str:
        if value == AUTO or value == 0:  # Size would spell 0 as "cache0g"
            return f"{self.prefix}{value}"
        return super().token(value)

    def describe(self) -> str:
        return f"{super().describe()}|{self.prefix}0|{self.prefix}{AUTO}"


def working_set_bytes(path: Path) -> int:
    """What ``cacheauto`` sets: every chunk of /images and /labels uncompressed (a chunk
    occupies its full size in the cache), at most a quarter of this machine's memory."""
    h5py = _h5py()
    total = 0
    with h5py.File(path, "r") as f:
        for name in (IMAGES, LABELS):
            d = f.get(name)
            if isinstance(d, h5py.Dataset) and d.chunks:
                chunks = math.prod(-(-s // c) for s, c in zip(d.shape, d.chunks))
                total += chunks * math.prod(d.chunks) * d.dtype.itemsize
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        ram = 16 << 30
    return min(total, ram // _RAM_SHARE)


def expert_cache(compression: str) -> int | str:
    """The chunk cache an expert sets: none for unfiltered chunks (HDF5 then reads just the
    rows asked; measured faster), every chunk of the working set for filtered ones."""
    return 0 if compression == "none" else AUTO


def _prime_at_least(n: int) -> int:
    """The smallest prime >= n (n is at most a few million here)."""
    n = max(n, 2)
    while any(n % p == 0 for p in range(2, int(n**0.5) + 1)):
        n += 1
    return n


def stream_rows(chunk_rows: int | None) -> int:
    """Rows per read of the streaming pipeline: whole chunks, at least STREAM_ROWS rows."""
    step = chunk_rows or 1
    return -(-STREAM_ROWS // step) * step


class HDF5Reader(Reader):
    """An open HDF5 file; reads sorted runs of rows, chunk by chunk."""

    def __init__(self, path: Path, cache: int | str):
        self._cache = working_set_bytes(path) if cache == AUTO else int(cache)
        images, labels = self._open_file(path)
        super().__init__(path, images.shape[1:], images.dtype, images.shape[0])
        row_bytes = max(1, images.dtype.itemsize * int(np.prod(images.shape[1:], dtype=np.int64)))
        self._row_bytes = row_bytes
        self._rows = images.chunks[0] if images.chunks else 0  # 0: contiguous
        self._merge_gap = max(1, _MERGE_BYTES // row_bytes)
        # HDF5 never caches a chunk bigger than the cache: a filtered one is decoded per touch.
        filtered = bool(self._rows and images.id.get_create_plist().get_nfilters())
        self._whole_chunk_runs = filtered and self._rows * row_bytes > self._cache
        step = self._rows or 1
        self._scan_rows = -(-max(1, _SCAN_BYTES // row_bytes) // step) * step

    def _open_file(self, path: Path) -> tuple[Any, Any]:
        h5py, cache = _h5py(), self._cache
        fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        mdc_nelmts, _, _, w0 = fapl.get_cache()
        fapl.set_cache(mdc_nelmts, _prime_at_least(cache // 512), cache, w0)
        fapl.set_sieve_buf_size(0)  # contiguous rows are read as asked, not as 64 KiB blocks
        self._file = h5py.File(h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY, fapl=fapl))
        try:
            self._images, self._labels = self._validated(path)
        except BaseException:
            self._file.close()
            raise
        return self._images, self._labels

    def drop_caches(self) -> None:
        # The chunk cache lives as long as the open file: reopen so every repeat decodes afresh.
        self.close()
        self._open_file(self.path)

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
        rows = self._file.attrs.get("rows")
        if rows is not None and int(rows) != images.shape[0]:
            raise FormatError(path, f"file says {int(rows)} rows but holds {images.shape[0]}")
        return images, labels

    def _read_one(self, i: int) -> Batch:
        return self._images[i : i + 1], self._labels[i : i + 1]  # one slice of each dataset

    def _read(self, indices: np.ndarray) -> Batch:
        inverse = None
        if not _ALL(indices[1:] > indices[:-1]):
            indices, inverse = np.unique(indices, return_inverse=True)
        dimages, dlabels = self._images, self._labels
        runs = self._runs(indices)
        if len(runs) == 1 and runs[0][1] > 1 and runs[0][3] is None:
            sel = runs[0][2]  # one selection of several rows (contiguous, <= 128): as h5py returns it
            images, labels = dimages[sel], dlabels[sel]
            return (images, labels) if inverse is None else (images[inverse], labels[inverse])
        images = np.empty((len(indices), *self.image_shape), self.image_dtype)
        labels = np.empty(len(indices), LABEL_DTYPE)
        for a, b, sel, pick in runs:
            if b - a == 1:  # the common case of random batches: one row, integer indexing
                images[a], labels[a] = dimages[sel], dlabels[sel]
            elif pick is None:
                images[a:b], labels[a:b] = dimages[sel], dlabels[sel]
            else:  # a sparse run: read its span once, keep the rows asked for
                images[a:b], labels[a:b] = dimages[sel][pick], dlabels[sel][pick]
        return (images, labels) if inverse is None else (images[inverse], labels[inverse])

    def _runs(self, uniq: np.ndarray) -> list[tuple[int, int, Any, np.ndarray | None]]:
        """(a, b, selection, pick) over sorted unique indices: one h5py read of `selection`,
        then `pick` (None: all of it) gives the samples uniq[a:b]."""
        u = uniq.tolist()
        if not self._rows:  # contiguous: fancy selections of at most _FANCY_PIECE indices
            bounds = [*range(0, len(u), _FANCY_PIECE), len(u)]
        elif self._whole_chunk_runs:  # one run per touched chunk
            chunk = uniq // self._rows
            bounds = [0, *(np.flatnonzero(chunk[1:] != chunk[:-1]) + 1).tolist(), len(u)]
        else:  # rows closer than _MERGE_BYTES share a run, unless a chunk no row is in lies between
            split = (np.diff(uniq) > self._merge_gap) | (np.diff(uniq // self._rows) > 1)
            bounds = [0, *(np.flatnonzero(split) + 1).tolist(), len(u)]
        runs: list[tuple[int, int, Any, np.ndarray | None]] = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            lo, hi = u[a], u[b - 1] + 1
            if b - a == 1:
                runs.append((a, b, lo, None))
            elif hi - lo == b - a:
                runs.append((a, b, slice(lo, hi), None))
            elif not self._rows:
                runs.append((a, b, uniq[a:b], None))
            else:
                runs.append((a, b, slice(lo, hi), uniq[a:b] - lo))
        return runs

    def tf_batches(self, batches: np.ndarray, probe: Any = None) -> Any:
        """Contiguous images as an expert trains from them: h5py gives the dataset's byte offset
        (``dset.id.get_offset()``), numpy maps it and gathers each batch (labels read once),
        two batches in flight; no HDF5 call per batch. Chunked files read through `read`."""
        offset = None if self._rows else self._images.id.get_offset()
        if offset is None:
            return super().tf_batches(batches, probe)
        from ._tfdata import PARALLEL_READS, indexed_batches

        images = np.memmap(self.path, mode="r", dtype=self.image_dtype, offset=offset,
                           shape=(self._n, *self.image_shape))
        labels = self._labels[...].astype(LABEL_DTYPE)
        signature = ((self.image_dtype, (None, *self.image_shape)), (np.int64, (None,)))
        order = self.checked_order(batches)  # numpy would wrap a negative index, not refuse it
        return indexed_batches(lambda idx: (images[idx], labels[idx]), order, signature, probe=probe,
                               parallel=PARALLEL_READS, describe="numpy gather from the mapped contiguous dataset")

    def _scan(self, batch_size: int) -> Iterator[Batch]:
        step = self._rows or 1
        unit = math.lcm(step, batch_size)  # whole chunks and whole batches
        if unit * self._row_bytes <= _ALIGNED_BYTES:
            # Blocks of whole chunks that are also whole batches, about 1 MiB (bigger reads
            # were slower: 1024 rows of 784 bytes 23 ms a scan, 2048 26, 4096 32): every
            # batch is a view of one read, nothing is carried over and copied again.
            block = unit * max(1, self._scan_rows // unit)
            dimages, dlabels = self._images, self._labels
            for start in range(0, self._n, block):
                images, labels = dimages[start:start + block], dlabels[start:start + block]
                for a in range(0, len(labels), batch_size):
                    yield images[a:a + batch_size], labels[a:a + batch_size]
            return
        block = max(self._scan_rows, -(-batch_size // step) * step)
        yield from rebatch(((self._images[start:start + block], self._labels[start:start + block])
                            for start in range(0, self._n, block)), batch_size)

    def close(self) -> None:
        if getattr(self, "_file", None) is not None:
            self._file.close()
            self._file = self._images = self._labels = None


class HDF5Adapter(Adapter):
    """HDF5 via h5py: layout, filters and read-side chunk cache are case options."""

    name: ClassVar[str] = "hdf5"
    requires: ClassVar[tuple[str, ...]] = ("h5py", "hdf5plugin")
    install: ClassVar[str] = "pip install 'h5py<3.15' hdf5plugin"
    suffix: ClassVar[str] = ".hdf5"
    options = (
        Size("chunk", None, "rows per chunk along axis 0 (absent: contiguous)", prefix="chunk",
             default_word="contiguous"),  # 'hdf5' alone means every HDF5 case; this picks one
        Choice("compression", "none", "chunk filter (needs chunk)",
               choices={t: t for t in ("none", *_GZIP, "lzf", *_BLOSC)}),
        Choice("shuffle", "none", "byte shuffle (HDF5 filter; Blosc's own with blosc*), or "
               "Blosc bitshuffle", choices={"shuffle": "byte", "bitshuffle": "bit"}),
        CacheSize("cache", DEFAULT_CACHE, "read-side chunk cache per dataset (default 1m; cache0: none; "
                  "cacheauto: every chunk, at most 1/4 of RAM)", prefix="cache", units=True,
                  # more than this machine's memory would only fail later, as a "corrupt file"
                  maximum=16 << 30, affects="read"),
        Flag("fletcher32", help="fletcher32 checksum of every chunk"),
    )
    grid = (
        {},
        *({"chunk": r} for r in (1, 64, 1024)),
        *({"chunk": r, "compression": c, "shuffle": s}
          for r in (1, 64, 1024) for c in (*_GZIP, "lzf", *_BLOSC) for s in ("none", "byte")),
        *({"chunk": r, "compression": c, "shuffle": "bit"} for r in (1, 64, 1024) for c in _BLOSC),
        # The library default's twins with the cache an expert sets (module docstring).
        *({"chunk": r, "compression": c, "cache": expert_cache(c)} for r in (64, 1024) for c in _EXPERT_POINTS),
        {"chunk": 1024, "fletcher32": True},
        {"chunk": 1024, "compression": "gzip4", "fletcher32": True},
    )
    representative = (
        {},
        {"chunk": 64},
        {"chunk": 1024, "compression": "gzip4"},
        {"chunk": 1024, "compression": "gzip4", "cache": AUTO},
        {"chunk": 1024, "compression": "lzf"},  # same chunks as gzip4: the gzip-vs-LZF claim
        {"chunk": 64, "compression": "lzf", "shuffle": "byte"},
        {"chunk": 64, "compression": "blosczstd", "shuffle": "bit"},
        {"chunk": 1024, "fletcher32": True},
    )

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

    def _detection(self, damage: str) -> Detection:
        """Truncation always; flipped chunk data only under gzip's Adler-32 (not Fletcher-32)."""
        if damage == "truncated":
            return Detection(1.0, "HDF5 compares the file's end with the superblock's at open")
        if self.config["compression"] in _GZIP:
            return Detection(CHECKSUM_32, "zlib: inflate's checks and the Adler-32 of every chunk")
        if self.config["fletcher32"]:
            # Fletcher-32 sums 16-bit words mod 65535, where 0x0000 and 0xFFFF are the same:
            # any word of two zero pixels turned 0xFFFF passes (module docstring).
            return Detection(0.0, "Fletcher-32 catches any one changed byte but no 16-bit word "
                                  "turned 0x0000 <-> 0xFFFF, and zero pixels are common")
        return Detection(0.0, "no checksum over chunk data: changed pixels read back")

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
        # meta_block_size=0: no 2 KiB metadata blocks with unused, unchecked slack. Fixed-length
        # strings stay in the checksummed object header (h5py's default str attrs would go to
        # a global heap without checksum). Labels go first, so the slack of HDF5's small-data
        # block for their chunks sits near the start of the file.
        with h5py.File(path, "w", libver=("v110", "v110"), meta_block_size=0) as f:
            f.attrs["fmtbench_version"] = np.bytes_(__version__)
            f.attrs["case"] = np.bytes_(self.case_id)
            f.attrs["rows"] = n
            for name, data in ((LABELS, split.labels), (IMAGES, split.images)):
                if rows is None:
                    f.create_dataset(name, data=data)
                    continue
                # Fixed-size dims need chunk <= dim; an empty split gets an extendible axis.
                chunk = (min(rows, n) if n else rows, *data.shape[1:])
                maxshape = None if n else (None, *data.shape[1:])
                f.create_dataset(name, data=data, chunks=chunk, maxshape=maxshape, **self._filters())

    def native_dataset(self, path: Path, batch_size: int, shuffle_buffer: int, seed: int) -> Any:
        """Blocks of whole chunks (at least STREAM_ROWS rows: one row per read would make 1-row
        chunks run at ~2.4k samples/s) in a seeded shuffled order, new each pass, then a shuffle
        buffer over samples."""
        from ._tfdata import Native, from_batches

        f = _h5py().File(path, "r")
        images, labels = f[IMAGES], f[LABELS][...].astype(LABEL_DTYPE)
        shape = tuple(images.shape[1:])
        rows = stream_rows(images.chunks[0] if images.chunks else None)
        starts = np.arange(0, images.shape[0], rows)
        passes = itertools.count()

        def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            # tf.data calls this once per pass (repeat): a fresh generator, a fresh block order
            for s in np.random.default_rng([seed, next(passes)]).permutation(starts):
                yield images[s: s + rows], labels[s: s + rows]

        ds = from_batches(blocks, shape, images.dtype, batch_size, shuffle_buffer, seed)
        layout = f"{images.chunks[0]}-row chunks" if images.chunks else "contiguous"
        return Native(ds, shape, f"h5py blocks of {rows} rows ({layout}) in shuffled order + shuffle buffer",
                      f.close)

    def _open(self, path: Path) -> Reader:
        return HDF5Reader(path, self.config["cache"])

    def observed(self, path: Path) -> dict[str, Any]:
        """Layout and filters from the images dataset's creation properties. The chunk cache
        only changes reading (never shown); a chunk as tall as the data shows no chunk size."""
        import h5py

        with library_errors(path), h5py.File(path, "r") as f:
            d = f[IMAGES]
            chunks, rows = d.chunks, d.shape[0]
            out: dict[str, Any] = {"fletcher32": bool(d.fletcher32)}
            if chunks is None:
                return out | {"chunk": None, "compression": "none", "shuffle": "none"}
            if chunks[0] < rows:
                out["chunk"] = int(chunks[0])
            plist = d.id.get_create_plist()
            filters = {plist.get_filter(i)[0]: plist.get_filter(i)[2] for i in range(plist.get_nfilters())}
        if h5py.h5z.FILTER_DEFLATE in filters:
            out["compression"] = f"gzip{filters[h5py.h5z.FILTER_DEFLATE][0]}"
        elif h5py.h5z.FILTER_LZF in filters:
            out["compression"] = "lzf"
        elif _BLOSC_FILTER in filters:  # cd_values: (..., clevel, shuffle, compressor) from index 4
            values = filters[_BLOSC_FILTER]
            out["compression"] = _BLOSC_BY_CODE.get(values[6], f"blosc-code{values[6]}")
            out["shuffle"] = {0: "none", 1: "byte", 2: "bit"}.get(values[5], f"mode{values[5]}")
            return out
        else:
            out["compression"] = "none"
        out["shuffle"] = "byte" if h5py.h5z.FILTER_SHUFFLE in filters else "none"
        return out
