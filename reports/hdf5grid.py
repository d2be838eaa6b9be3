"""The HDF5 case grid read from each case's parsed config: chunk x compression maps and chunk-cache groups."""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .analysis import Frame


@dataclass(frozen=True)
class Layout:
    """Where an HDF5 case sits on the grid (see formats/hdf5.py options); `other`: options the maps do not vary."""

    chunk: int | None  # rows per chunk; None = contiguous
    compression: str  # "none", "gzip4", "lzf", "blosczstd", ...
    shuffle: str  # "none", "shuffle", "bitshuffle"
    cache: Any  # chunk-cache bytes (rdcc_nbytes), as configured
    other: tuple[str, ...]

    @property
    def chunk_label(self) -> str:
        """'contiguous' or 'chunk 64'."""
        return "contiguous" if self.chunk is None else f"{self.chunk} rows"


SHUFFLE = {"none": "none", "byte": "shuffle", "bit": "bitshuffle"}  # config value -> id token
_AXES = ("chunk", "compression", "shuffle", "cache")


def layout(config: Mapping[str, Any]) -> Layout:
    """Read the grid axes from an HDF5 case's config; options off the axes (fletcher32...) go to `other`."""
    chunk = config.get("chunk")
    shuffle = config.get("shuffle") or "none"
    other = tuple(k if v is True else f"{k}={v}" for k, v in config.items()
                  if k not in _AXES and v not in (None, False, "none"))
    return Layout(None if not chunk else int(chunk), str(config.get("compression") or "none"),
                  SHUFFLE.get(shuffle, str(shuffle)), config.get("cache"), other)


def layouts(frame: Frame) -> dict[str, Layout]:
    """Layout of every HDF5 case of the frame whose config this checkout can parse."""
    out = {}
    for case in frame.cases():
        if case.split("/", 1)[0] != "hdf5":
            continue
        row = next((r for r in frame.rows if r.case == case), None)
        if row is not None and (row.config or case == "hdf5"):
            out[case] = layout(row.config)
    return out


def default_cache(lays: Mapping[str, Layout]) -> Any:
    """The chunk-cache setting most HDF5 cases use (the library default in a normal grid)."""
    counts = Counter(repr(lay.cache) for lay in lays.values())
    common = counts.most_common(1)
    return next((lay.cache for lay in lays.values() if repr(lay.cache) == common[0][0]), None) if common else None


def chunk_order(chunk: int | None) -> tuple[int, int]:
    """Contiguous first, then chunks ascending."""
    return (0, 0) if chunk is None else (1, chunk)


def compression_order(label: str) -> tuple[int, str]:
    """'none' first, then by name."""
    return (0, "") if label == "none" else (1, label)


def maps(lays: Mapping[str, Layout]) -> dict[str, dict[tuple[str, str], str]]:
    """Per shuffle setting: (chunk label, compression) -> case, for cases with the default cache and no extras."""
    dflt = default_cache(lays)
    out: dict[str, dict[tuple[str, str], str]] = {}
    for case, lay in sorted(lays.items(), key=lambda kv: (chunk_order(kv[1].chunk), kv[0])):
        if lay.other or repr(lay.cache) != repr(dflt):
            continue
        out.setdefault(lay.shuffle, {}).setdefault((lay.chunk_label, lay.compression), case)
    return out


def cache_groups(lays: Mapping[str, Layout]) -> dict[str, list[tuple[Any, str]]]:
    """Cases that differ only in chunk-cache size: group label -> [(cache, case)], smallest cache first."""
    groups: dict[tuple, list[tuple[Any, str]]] = {}
    for case, lay in lays.items():
        groups.setdefault((lay.chunk, lay.compression, lay.shuffle, lay.other), []).append((lay.cache, case))
    out = {}
    for (chunk, comp, shuffle, other), members in sorted(groups.items(), key=lambda kv: chunk_order(kv[0][0])):
        if len({repr(c) for c, _ in members}) > 1:
            name = " · ".join(x for x in ("contiguous" if chunk is None else f"chunk {chunk}", comp,
                                          "" if shuffle == "none" else shuffle, *other) if x)
            out[name] = sorted(members, key=lambda m: (m[0] is not None, m[0] or 0))
    return out
