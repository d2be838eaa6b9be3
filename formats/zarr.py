"""Zarr v3: a group of two chunked arrays, read chunk by chunk through zarr-python 3's async core.

On disk (``<name>.zarr/`` folder, a Zarr v3 group; zarr-python >= 3 opens it)::

    zarr.json            group; attributes {"fmtbench": {"layout": 1, "rows": N, "case": ...}}
    images/zarr.json     (N, H, W[, C]) images' dtype, chunks of ``chunk`` rows x the whole image
    images/c/<i>/0/0     chunk (or shard) i: rows [i*R, (i+1)*R)
    labels/zarr.json     (N,) int64 little-endian, the same rows per chunk and the same codecs
    labels/c/<i>

Read it with plain zarr::

    g = zarr.open_group("train.zarr", mode="r")
    images, labels = g["images"][:10], g["labels"][:10]

Cases: ``chunk<R>`` rows per chunk (default 1024, capped at N); the codec after zarr's
``bytes`` serializer: ``zstd`` (zarr's default for numbers: level 0, no frame checksum; no
token), ``none``, ``blosclz4`` (Blosc, lz4 at clevel 5, byte shuffle); ``shard<S>``: S rows per
shard file (``sharding_indexed``: the chunks of S rows in one file with a crc32c-checked index
at its end; zarr fetches single chunks by byte range), so 60000 samples are 8 files, not 59
or 938; ``crc32c``: zarr's crc32c codec after the compressor, a checksum per (inner) chunk.
Every chunk is written, empty or not (``write_empty_chunks``), so a missing file is damage.

How it reads, and why: the group is opened once with ``mode="r"``. Zarr keeps no chunk cache:
every read fetches and decodes each chunk it touches, so the chunk size sets the cost of a
random read (one 1024-row zstd chunk: 800 KiB decoded to return 784 bytes), and each call
costs ~1 ms of zarr's own machinery (event-loop hand-off, a thread per file read and decode).
``read(indices)`` sorts and de-duplicates the indices and asks for all of them in one
``get_orthogonal_selection`` (zarr groups them by chunk and fetches and decodes the chunks
concurrently), a contiguous run as one slice and a single index as a one-row slice, then
restores the order asked with one gather. ``arr.oindex[idx]``, ``arr[idx]`` and
``get_orthogonal_selection`` are one code path in zarr 3.1 and measured the same (1.4k
samples/s each on random batches of 64 over 1024-row zstd chunks). Images and labels are
awaited together (``asyncio.gather`` over ``Array.async_array`` on zarr's own event loop):
one hand-off instead of two, 10-20% off a single read, no change for batches. ``scan`` reads
blocks of whole chunks (or shards) of >= 8 MiB of images, so each chunk is decoded once and
zarr decodes a block's chunks in parallel (8192-32768-row blocks: 0.82-0.84M samples/s,
1024-row blocks 0.67M), then cuts them into batches. ``async.concurrency`` stays at zarr's
10: 4, 10 and 32 measured alike on 2 cores.

Measured on Fashion-MNIST train (60000x28x28 uint8) on 2 cores shared with other jobs (load
4-6: figures moved by up to 2x between runs; compare within a row). fmtbench / plain-zarr
reference (``benchmarks/reference/zarr_ref.py``) on the same files, interleaved, median of
5-7; write includes fmtbench's fsync of every file and folder, which dominates ``chunk64``
(~1,900 chunk files in ~2,800 folders: 6-26 s)::

    case                       write    MB     single read     batch of 64 sorted   scan(1024)
    zarr                       1.8 s   26.6   1.9 / 2.5 ms    1.2k / 1.3k /s       476k / 435k /s
    zarr/chunk64               6.0 s   26.7   0.8 / 1.0 ms    1.6k / 1.2k /s       112k /  86k /s
    zarr/chunk8192             0.9 s   26.7   7.7 / 7.7 ms    0.95k / 0.78k /s     774k / 624k /s
    zarr/none                  0.5 s   47.9   0.5 / 0.7 ms    4.8k / 4.6k /s       2.5M / 2.1M /s
    zarr/blosclz4              0.2 s   32.0   0.9 / 1.2 ms    2.4k / 2.5k /s       1.4M / 1.2M /s
    zarr/chunk64-shard8192     1.5 s   26.7   1.4 / 1.7 ms    1.8k / 1.6k /s       178k / 147k /s
    zarr/crc32c                0.5 s   26.6   1.6 / 1.8 ms    1.1k / 1.2k /s       610k / 678k /s

Damage (``ZarrAdapter.detection``): opening checks that every chunk (or shard) file of both
arrays exists and is not empty: zarr reads a missing chunk, and an empty shard read whole, as
fill values without complaint. A cut chunk fails to decode: ``none`` by its length (zarr
reshapes it to the chunk's shape), ``zstd`` by its frame, ``crc32c`` by its checksum; a cut
shard loses the end of its index, whose crc32c then fails (a 32-bit check). Blosc catches no
small cut: numcodecs' Blosc trusts the sizes in its header and read 1-16 bytes past the end
of a cut buffer without error; on damaged chunks it can read past mapped memory and kill the
process (one segfault in ~2,000 damaged reads here; numcodecs issue #228), which is why
``blosclz4`` is in the grid but not a representative case. Flipped bytes in chunk data are
caught only by ``crc32c``: zstd frames carry no checksum here and decoded 29 of 60 multi-byte
flips into wrong pixels without error, and Blosc and raw chunks have none. The zarr.json
files are JSON: a cut one never parses; a flip in one may pass.
"""
from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fmtbench import __version__
from fmtbench.datasets._base import Split
from fmtbench.errors import FormatError, InvalidCaseError

from ._base import CHECKSUM_32, Adapter, Batch, Detection, Reader, library_errors, rebatch
from ._options import Choice, Flag, Size

IMAGES, LABELS = "images", "labels"
LAYOUT = 1
_SCAN_BYTES = 8 << 20  # least image bytes per scan read


def _sync(coroutine: Any) -> Any:
    """Run `coroutine` on zarr's event loop, the way zarr's own blocking API does."""
    from zarr.core.sync import sync

    return sync(coroutine)


class ZarrReader(Reader):
    """An open Zarr v3 group; batched chunk-aware selections of both arrays at once."""

    def __init__(self, path: Path):
        import zarr

        group = zarr.open_group(str(path), mode="r", zarr_format=3, use_consolidated=False)
        images, labels = self._validated(path, group)
        super().__init__(path, images.shape[1:], images.dtype, images.shape[0])
        self._images, self._labels = images.async_array, labels.async_array
        rows = (images.shards or images.chunks)[0]
        row_bytes = max(1, images.dtype.itemsize * int(np.prod(images.shape[1:], dtype=np.int64)))
        self._scan_rows = rows * max(1, -(-_SCAN_BYTES // (rows * row_bytes)))

    def _validated(self, path: Path, group: Any) -> tuple[Any, Any]:
        import zarr

        found = {name: group.get(name) for name in (IMAGES, LABELS)}
        for name, arr in found.items():
            if not isinstance(arr, zarr.Array):
                raise FormatError(path, f"no {name!r} array; an fmtbench Zarr group has "
                                        f"{IMAGES} and {LABELS}")
        images, labels = found[IMAGES], found[LABELS]
        if images.ndim not in (3, 4) or images.dtype.kind not in "biuf":
            raise FormatError(path, f"{IMAGES} is {images.shape} {images.dtype}; "
                                    "expected numeric (N, H, W[, C])")
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise FormatError(path, f"{LABELS} is {labels.shape} {labels.dtype}; expected integer (N,)")
        n = images.shape[0]
        meta = group.attrs.get("fmtbench", {})
        if labels.shape[0] != n or meta.get("rows", n) != n:
            raise FormatError(path, f"{n} images, {labels.shape[0]} labels, "
                                    f"{meta.get('rows')} rows in the attributes")
        for arr in (images, labels):
            self._check_stored(path, arr, n)
        return images, labels

    @staticmethod
    def _check_stored(path: Path, arr: Any, n: int) -> None:
        """Every chunk (or shard) file exists and is not empty: zarr would read a missing one,
        or an empty shard, as fill values."""
        outer = arr.shards or arr.chunks
        if tuple(outer[1:]) != tuple(arr.shape[1:]):
            raise FormatError(path, f"{arr.path} is chunked {outer} along more than its first axis")
        zeros = (0,) * (arr.ndim - 1)
        for i in range(-(-n // outer[0])):
            key = arr.metadata.encode_chunk_key((i, *zeros))
            try:
                size = os.stat(path / arr.path / key).st_size
            except FileNotFoundError:
                raise FormatError(path, f"chunk file {arr.path}/{key} is missing") from None
            if size == 0:
                raise FormatError(path, f"chunk file {arr.path}/{key} is empty")

    def _both(self, images: Any, labels: Any) -> Batch:
        """Await both selections together; an IndexError here is a damaged file, not a bad index."""
        async def gather() -> list[Any]:
            return await asyncio.gather(images, labels)

        try:
            found = _sync(gather())
        except IndexError as exc:
            raise FormatError(self.path, exc) from exc
        return found[0], found[1]

    def _read(self, indices: np.ndarray) -> Batch:
        if len(indices) == 1:
            row = slice(int(indices[0]), int(indices[0]) + 1)
            return self._both(self._images.getitem(row), self._labels.getitem(row))
        inverse = None
        if not bool(np.all(indices[1:] > indices[:-1])):
            indices, inverse = np.unique(indices, return_inverse=True)
        lo, hi = int(indices[0]), int(indices[-1]) + 1
        if hi - lo == len(indices):
            images, labels = self._both(self._images.getitem(slice(lo, hi)),
                                        self._labels.getitem(slice(lo, hi)))
        else:
            images, labels = self._both(self._images.get_orthogonal_selection((indices,)),
                                        self._labels.get_orthogonal_selection((indices,)))
        return (images, labels) if inverse is None else (images[inverse], labels[inverse])

    def _scan(self, batch_size: int) -> Iterator[Batch]:
        step = self._scan_rows
        block = max(step, -(-batch_size // step) * step)
        yield from rebatch((self._both(self._images.getitem(slice(start, start + block)),
                                       self._labels.getitem(slice(start, start + block)))
                            for start in range(0, self._n, block)), batch_size)

    def drop_caches(self) -> None:
        """Nothing to drop: zarr keeps no chunk cache, and reads files without mapping them."""

    def close(self) -> None:
        self._images = self._labels = None


class ZarrAdapter(Adapter):
    """Zarr v3 through zarr-python: chunk rows, codec, sharding and a crc32c are case options."""

    name: ClassVar[str] = "zarr"
    requires: ClassVar[tuple[str, ...]] = ("zarr",)
    install: ClassVar[str] = "pip install 'zarr>=3.1'"
    suffix: ClassVar[str] = ".zarr"
    writes_folder: ClassVar[bool] = True
    options = (
        Size("chunk", 1024, "rows per chunk along axis 0 (default 1024)", prefix="chunk"),
        Choice("compression", "zstd", "chunk codec (default zstd, zarr's own default)",
               {"zstd": "zstd", "none": "none", "blosclz4": "blosclz4"}),
        Size("shard", None, "rows per shard file, a multiple of chunk (absent: a file per chunk)",
             prefix="shard"),
        Flag("crc32c", help="crc32c checksum of every chunk, verified on every read"),
    )
    grid = (
        {},
        {"chunk": 64},
        {"chunk": 8192},
        {"compression": "none"},
        {"compression": "blosclz4"},
        {"chunk": 64, "shard": 8192},
        {"crc32c": True},
        {"chunk": 64, "shard": 8192, "crc32c": True},
    )
    representative = ({}, {"chunk": 64, "shard": 8192, "crc32c": True})

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        """A shard holds whole chunks."""
        shard, chunk = config["shard"], config["chunk"]
        if shard is not None and (shard % chunk or shard == chunk):
            raise InvalidCaseError(f"zarr: a shard of {shard} rows must hold several whole chunks "
                                   f"of {chunk} rows (a multiple of {chunk})")

    def _detection(self, damage: str) -> Detection:
        """Cuts: by the codec's own framing, the crc32c, or the shard index's crc32c; flips:
        only with crc32c."""
        comp, crc, shard = self.config["compression"], self.config["crc32c"], self.config["shard"]
        if damage == "flipped":
            if crc:
                return Detection(CHECKSUM_32, "a crc32c per chunk, verified on every read")
            return Detection(0.0, "no checksum over chunk data: raw and Blosc chunks read back "
                                  "changed, zstd frames (no content checksum) often do")
        if shard is not None:
            return Detection(CHECKSUM_32, "the crc32c of each shard's index, at the shard's end; "
                                          "an empty shard file at open")
        if comp in ("none", "zstd"):
            by = {"none": "a raw chunk's length against the chunk shape",
                  "zstd": "the zstd frame of each chunk"}[comp]
            return Detection(1.0, by + ("; the crc32c" if crc else "") + "; an empty file at open")
        if crc:
            return Detection(CHECKSUM_32, "a crc32c per chunk (Blosc alone misses small cuts)")
        return Detection(0.0, "Blosc decodes a chunk cut by a few bytes without error (it reads "
                              "past the end of the cut buffer)")

    def _codecs(self) -> list[Any]:
        from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

        comp = self.config["compression"]
        codecs: list[Any] = {
            "none": [],
            "zstd": [ZstdCodec(level=0, checksum=False)],
            "blosclz4": [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")],
        }[comp]
        return codecs + ([Crc32cCodec()] if self.config["crc32c"] else [])

    def _write(self, split: Split, path: Path) -> None:
        import zarr

        n, chunk, shard = len(split), self.config["chunk"], self.config["shard"]
        # Chunks and shards larger than the data would be stored padded to full size.
        rows = min(chunk, n) if n else chunk
        if shard is not None and n:
            shard = min(shard, -(-n // rows) * rows)
        meta = {"layout": LAYOUT, "rows": n, "case": self.case_id, "fmtbench_version": __version__}
        group = zarr.create_group(str(path), zarr_format=3, attributes={"fmtbench": meta})
        for name, data in ((LABELS, split.labels), (IMAGES, split.images)):
            rest = data.shape[1:]
            arr = group.create_array(
                name, shape=data.shape, dtype=data.dtype, chunks=(rows, *rest),
                shards=None if shard is None else (shard, *rest), filters=(), compressors=self._codecs(),
                fill_value=0, config={"write_empty_chunks": True})
            arr[...] = data

    def _open(self, path: Path) -> Reader:
        return ZarrReader(path)

    def observed(self, path: Path) -> dict[str, Any]:
        """From the images array's zarr.json (labels are written alike): ``compression`` and
        ``crc32c`` from its (inner) codecs, ``shard`` None when it has no sharding codec,
        ``chunk`` and ``shard`` from its chunk and shard shapes when the array spans two of
        them or more (the writer caps both at the row count, so one chunk or shard does not
        show the option). Reads the metadata only, no chunk."""
        import zarr
        from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

        path = Path(path)
        if not path.is_dir():
            raise FormatError(path, "no such folder")
        with library_errors(path):
            group = zarr.open_group(str(path), mode="r", zarr_format=3, use_consolidated=False)
            images = group.get(IMAGES)
            if not isinstance(images, zarr.Array):
                raise FormatError(path, f"no {IMAGES!r} array")
            n, chunk, shards = images.shape[0], images.chunks[0], images.shards
            codecs = images.compressors  # after the bytes serializer; a shard's inner codecs
        names = []
        for codec in codecs:
            if isinstance(codec, ZstdCodec):
                names.append("zstd")
            elif isinstance(codec, BloscCodec):
                names.append("blosc" + str(getattr(codec.cname, "value", codec.cname)))
            elif not isinstance(codec, Crc32cCodec):
                names.append(type(codec).__name__)
        found: dict[str, Any] = {}
        if n > chunk:
            found["chunk"] = chunk
        found["compression"] = "+".join(names) or "none"
        if shards is None:
            found["shard"] = None
        elif n > shards[0]:
            found["shard"] = shards[0]
        found["crc32c"] = any(isinstance(codec, Crc32cCodec) for codec in codecs)
        return found
