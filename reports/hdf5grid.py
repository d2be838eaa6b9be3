"""The HDF5 case grid read from each case's parsed config: chunk x compression maps, chunk-cache
groups and what a cache setting is worth against the library default."""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fmtbench.formats.hdf5 import DEFAULT_CACHE
from fmtbench.metrics import METRICS

from .analysis import Frame, outcome


@dataclass(frozen=True)
class Layout:
    """Where an HDF5 case sits on the grid (see formats/hdf5.py options); `other`: options the maps do not vary."""

    chunk: int | None  # rows per chunk; None = contiguous
    compression: str  # "none", "gzip4", "lzf", "blosczstd", ...
    shuffle: str  # "none", "shuffle", "bitshuffle"
    cache: Any  # chunk-cache bytes (rdcc_nbytes) as configured: 0 none, "auto" the working set
    other: tuple[str, ...]

    @property
    def chunk_label(self) -> str:
        """'contiguous' or 'chunk 64'."""
        return "contiguous" if self.chunk is None else f"{self.chunk} row{'s' * (self.chunk != 1)}"


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
    """HDF5's own default (1 MiB) where a case uses it, else the chunk-cache setting most cases use."""
    if any(repr(lay.cache) == repr(DEFAULT_CACHE) for lay in lays.values()):
        return DEFAULT_CACHE
    counts = Counter(repr(lay.cache) for lay in lays.values())
    common = counts.most_common(1)
    return next((lay.cache for lay in lays.values() if repr(lay.cache) == common[0][0]), None) if common else None


def _cache_order(cache: Any) -> tuple[int, int]:
    """Unknown first, then sizes ascending (0: none), then ``auto`` (the working set)."""
    return (0, 0) if cache is None else (1, cache) if isinstance(cache, int) else (2, 0)


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
            out[name] = sorted(members, key=lambda m: _cache_order(m[0]))
    return out


@dataclass(frozen=True)
class Worth:
    """One metric of a cache setting against the default cache on the same layout."""

    metric: str
    default: float | None  # median with the default cache
    other: float | None  # median with the other cache
    factor: float | None  # how many times better the other cache is (< 1: worse)
    noise: bool  # the two intervals overlap: no difference beyond the noise


def worth(frame: Frame, lays: Mapping[str, Layout],
          metrics: tuple[str, ...]) -> list[tuple[str, str, Any, str, list[Worth]]]:
    """(group label, default-cache case, other cache, its case, per metric Worth) for every case
    that differs from a default-cache case only in its chunk cache (an expert's twin)."""
    dflt = default_cache(lays)
    out = []
    for name, members in cache_groups(lays).items():
        base = next((case for cache, case in members if repr(cache) == repr(dflt)), None)
        for cache, case in members if base else ():
            if case != base:
                out.append((name, base, cache, case, [_worth(frame, base, case, m) for m in metrics]))
    return out


def _worth(frame: Frame, base: str, case: str, metric: str) -> Worth:
    a, b = frame.get(base, metric), frame.get(case, metric)
    if a is None or b is None or not a.median or not b.median:
        return Worth(metric, a and a.median, b and b.median, None, False)
    factor = b.median / a.median if METRICS[metric].better == "higher" else a.median / b.median
    return Worth(metric, a.median, b.median, factor, outcome(b, a) == "same")
