"""The format registry: a format's name and where its adapter class lives.

Adapter modules are imported only when used, and import their storage library only when a
case runs, so listing cases never pays for ``import tensorflow``. Formats come from three
places, in this order:

- built in: one module in this folder plus one line in ``_BUILTIN``;
- plugins: packages that declare an entry point in the group ``fmtbench.formats``
  (``myformat = "my_package.module:MyAdapter"``), found when the registry is first used;
- ``register(...)`` at run time (a notebook, a test).

An adapter class declares what it needs (`Adapter.requires`, `Adapter.install`); a format
whose library is missing is listed with its install hint and skipped by runs and tests.
"""
from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import re
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from typing import NamedTuple

from fmtbench.errors import FmtbenchError, MissingDependencyError, UnknownNameError

from fmtbench.datasets._base import Split

from ._base import CHECKSUM_32, DAMAGE, Adapter, Batch, Detection, Reader, WriteInfo, library_errors
from ._options import Choice, Flag, Option, Size

__all__ = [
    # what an adapter (built in or a plugin) is made of
    "Adapter", "Reader", "WriteInfo", "Detection", "DAMAGE", "CHECKSUM_32", "Batch", "Split",
    "Option", "Choice", "Flag", "Size", "ENTRY_POINT_GROUP",
    "register", "unregister", "formats", "origin", "adapter_class", "get_case", "cases",
    "missing_dependency", "broken", "library_errors", "import_libraries", "require",
]

ENTRY_POINT_GROUP = "fmtbench.formats"

_BUILTIN = {
    "arrayrecord": "fmtbench.formats.arrayrecord:ArrayRecordAdapter",
    "arrow": "fmtbench.formats.arrow:ArrowAdapter",
    "csv": "fmtbench.formats.csv:CsvAdapter",
    "hdf5": "fmtbench.formats.hdf5:HDF5Adapter",
    "jsonl": "fmtbench.formats.jsonl:JsonlAdapter",
    "lance": "fmtbench.formats.lance:LanceAdapter",
    "lmdb": "fmtbench.formats.lmdb:LmdbAdapter",
    "npy": "fmtbench.formats.npy:NpyAdapter",
    "parquet": "fmtbench.formats.parquet:ParquetAdapter",
    "sqlite": "fmtbench.formats.sqlite:SqliteAdapter",
    "tfrecord": "fmtbench.formats.tfrecord:TFRecordAdapter",
    "zarr": "fmtbench.formats.zarr:ZarrAdapter",
}

_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


class Entry(NamedTuple):
    """Where a format's adapter lives (``module:Class``, or the class) and where it came from."""

    target: str | type[Adapter]
    origin: str


_registry: dict[str, Entry] = {}
_plugins_loaded = False


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise FmtbenchError(
            f"format name {name!r} is not valid: use lower-case letters, digits and '_', "
            "starting with a letter (it becomes the first part of every case id)"
        )


def register(name: str, adapter: str | type[Adapter], *, replace: bool = False,
             origin: str = "registered at run time") -> None:
    """Add format `name`, served by `adapter` (the class, or ``"module:Class"`` to import it
    lazily). Registering a name twice is an error unless `replace` is true."""
    _check_name(name)
    _load_plugins()
    if isinstance(adapter, str):
        module, sep, cls = adapter.partition(":")
        if not (module and sep and cls):
            raise FmtbenchError(f"adapter target {adapter!r} is not of the form 'module:Class'")
    elif not (isinstance(adapter, type) and issubclass(adapter, Adapter)):
        raise FmtbenchError(f"adapter for {name!r} must be an Adapter subclass or 'module:Class', got {adapter!r}")
    elif adapter.name != name:
        raise FmtbenchError(f"adapter {adapter.__name__} is named {adapter.name!r}, not {name!r}")
    if name in _registry and not replace:
        raise FmtbenchError(f"format {name!r} is already registered ({_registry[name].origin}); pass replace=True to override it")
    _registry[name] = Entry(adapter, origin)


def unregister(name: str) -> None:
    """Remove format `name` (plugins and tests that registered one for a while)."""
    _entry(name)  # an unknown name is an error listing the valid ones
    del _registry[name]


def _load_plugins() -> None:
    """Fill the registry once: built-in formats, then every ``fmtbench.formats`` entry point."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for name, target in _BUILTIN.items():
        _registry[name] = Entry(target, "built-in")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "an unknown distribution"
        if ep.name in _registry:
            # A plugin never silently shadows a format: the first one keeps the name.
            continue
        try:
            _check_name(ep.name)
        except FmtbenchError:
            continue
        _registry[ep.name] = Entry(ep.value, f"plugin {dist}")


def formats() -> Mapping[str, str]:
    """Every registered format name, in registry order, with where it came from."""
    _load_plugins()
    return {name: entry.origin for name, entry in _registry.items()}


def origin(name: str) -> str:
    """Where format `name` came from: "built-in", "plugin <distribution>" or "registered at run time"."""
    return _entry(name).origin


def _entry(name: str) -> Entry:
    _load_plugins()
    try:
        return _registry[name]
    except KeyError:
        raise UnknownNameError("format", name, _registry) from None


def adapter_class(name: str) -> type[Adapter]:
    """The adapter class registered as `name` (imports its module, not its library)."""
    target = _entry(name).target
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except Exception as exc:  # a plugin's module may raise anything at import: it is that plugin's fault
        raise FmtbenchError(f"format {name!r} ({origin(name)}): cannot load {target}: "
                            f"{type(exc).__name__}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Adapter)) or cls.name != name:
        raise FmtbenchError(f"format {name!r} ({origin(name)}): {target} is not an Adapter named {name!r}")
    return cls


def broken(name: str) -> str | None:
    """Why format `name` cannot even be loaded (a plugin whose module is missing or raises, or
    names no Adapter), else None. One broken plugin never stops the others: listing skips it."""
    try:
        adapter_class(name)
    except FmtbenchError as exc:
        return str(exc)
    return None


def missing_dependency(name: str) -> str | None:
    """None when format `name` can run here, else the reason: it cannot be loaded, or a library
    it needs is missing (with its install hint)."""
    if (why := broken(name)) is not None:
        return why
    cls = adapter_class(name)
    absent = [m for m in cls.requires if importlib.util.find_spec(m) is None]
    if not absent:
        return None
    return f"{name} needs {', '.join(absent)}: {cls.install or 'install ' + ' '.join(absent)}"


def import_libraries(name: str) -> None:
    """Import the libraries format `name` needs, so no timed region pays for the import
    (``import tensorflow`` alone takes ~3.4 s here)."""
    for module in adapter_class(name).requires:
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
    matches nothing is an error listing the formats, so typos never silently run nothing. A
    format that cannot be loaded (`broken`) has no cases here; naming it is its error.
    """
    found: list[Adapter] = []
    for pattern in patterns or ():
        name = pattern.partition("/")[0]
        if name in formats() and (why := broken(name)) is not None:
            raise FmtbenchError(why)
    for name in formats():
        if broken(name) is not None:
            continue
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
            raise UnknownNameError("case pattern", pattern, sorted(formats()))
        for c in hits:
            chosen.setdefault(c.case_id, c)
    return list(chosen.values())
