"""The format registry: one table line per adapter; modules are imported only when used.

Adding a format is one module in this folder plus one line in `_REGISTRY`.
"""
from __future__ import annotations

import fnmatch
import importlib
import importlib.util
from collections.abc import Iterable
from types import MappingProxyType
from typing import NamedTuple

from fmtbench.errors import MissingDependencyError, UnknownNameError

from ._base import DAMAGE, Adapter, Detection, Reader, WriteInfo, library_errors

__all__ = [
    "Adapter", "Reader", "WriteInfo", "REGISTRY", "adapter_class", "get_case", "cases",
    "missing_dependency", "library_errors", "import_libraries", "DAMAGE", "Detection",
]


class Entry(NamedTuple):
    """Where an adapter lives, which modules it needs and how to install them."""

    target: str
    requires: tuple[str, ...]
    install: str


_REGISTRY = {
    "csv": Entry("fmtbench.formats.csv:CsvAdapter", (), ""),
    "hdf5": Entry("fmtbench.formats.hdf5:HDF5Adapter", ("h5py", "hdf5plugin"), "pip install 'h5py<3.15' hdf5plugin"),
    "npy": Entry("fmtbench.formats.npy:NpyAdapter", (), ""),
    "parquet": Entry("fmtbench.formats.parquet:ParquetAdapter", ("pyarrow",), "pip install pyarrow"),
    "sqlite": Entry("fmtbench.formats.sqlite:SqliteAdapter", (), ""),
    "tfrecord": Entry("fmtbench.formats.tfrecord:TFRecordAdapter", ("tensorflow",), "pip install tensorflow-cpu"),
}
REGISTRY = MappingProxyType(_REGISTRY)


def _entry(name: str) -> Entry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError("format", name, _REGISTRY) from None


def adapter_class(name: str) -> type[Adapter]:
    """The adapter class registered as `name` (imports its module, not its library)."""
    module, _, cls = _entry(name).target.partition(":")
    return getattr(importlib.import_module(module), cls)


def missing_dependency(name: str) -> str | None:
    """None when format `name` can run here, else the reason with its install hint."""
    entry = _entry(name)
    absent = [m for m in entry.requires if importlib.util.find_spec(m) is None]
    if not absent:
        return None
    return f"{name} needs {', '.join(absent)}: {entry.install}"


def import_libraries(name: str) -> None:
    """Import the libraries format `name` needs, so no timed region pays for the import
    (``import tensorflow`` alone takes ~3.4 s here)."""
    for module in _entry(name).requires:
        importlib.import_module(module)


def require(names: Iterable[str]) -> None:
    """Raise one MissingDependencyError that collects the install hint of every missing format."""
    hints = [h for h in (missing_dependency(n) for n in sorted(set(names))) if h]
    if hints:
        raise MissingDependencyError("missing optional libraries:\n  " + "\n  ".join(hints))


def get_case(case_id: str) -> Adapter:
    """Parse a case id such as ``hdf5/chunk64-gzip4`` into a configured adapter."""
    name, _, rest = case_id.strip().partition("/")
    cls = adapter_class(name)
    return cls.from_tokens([t for t in rest.split("-") if t] if rest else [])


def cases(patterns: Iterable[str] | None = None, *, full: bool = True) -> list[Adapter]:
    """Every registered case (the full grid, or the representative subset) matching `patterns`.

    A pattern is a case id, a format name, or a glob over ids (``hdf5/*gzip*``). A pattern that
    matches nothing is an error listing the formats, so typos never silently run nothing.
    """
    found: list[Adapter] = []
    for name in _REGISTRY:
        cls = adapter_class(name)
        for config in (cls.grid if full else cls.representative):
            found.append(cls(config))
    if not patterns:
        return found
    chosen: dict[str, Adapter] = {}
    for pattern in patterns:
        hits = [c for c in found if fnmatch.fnmatchcase(c.case_id, pattern) or c.name == pattern]
        if not hits and not any(ch in pattern for ch in "*?["):
            hits = [get_case(pattern)]  # an exact id off the grid is fine; a bad one raises
        if not hits:
            raise UnknownNameError("case pattern", pattern, sorted(_REGISTRY))
        for c in hits:
            chosen.setdefault(c.case_id, c)
    return list(chosen.values())
