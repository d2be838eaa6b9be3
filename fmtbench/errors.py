"""The errors fmtbench raises for bad input, each naming the problem and the valid choices."""
from __future__ import annotations

from collections.abc import Iterable
from os import PathLike


class FmtbenchError(Exception):
    """Base class of every error fmtbench raises on purpose."""


class FormatError(FmtbenchError):
    """A stored file is corrupt, truncated, mis-shaped or otherwise not what the adapter wrote."""

    def __init__(self, path: str | PathLike[str], cause: str | BaseException):
        self.path = str(path)
        self.cause = cause
        reason = f"{type(cause).__name__}: {cause}" if isinstance(cause, BaseException) else cause
        super().__init__(f"{self.path}: {reason}")


class UnknownNameError(FmtbenchError, KeyError):
    """A name (format, option, dataset, workload) that is not one of the valid choices."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]):
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; valid: {', '.join(self.valid)}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class InvalidCaseError(FmtbenchError, ValueError):
    """A case whose options are each valid but do not go together."""


class DatasetNotFoundError(FmtbenchError, FileNotFoundError):
    """A dataset that is on none of the places searched; says where it looked and what to do."""

    def __init__(self, name: str, looked: Iterable[str], hint: str):
        self.looked = list(looked)
        where = "\n".join(f"  - {place}" for place in self.looked)
        super().__init__(f"dataset {name!r} not found. Looked in:\n{where}\n{hint}")

    def __str__(self) -> str:
        return self.args[0]


class MissingDependencyError(FmtbenchError, ImportError):
    """An optional library a case needs is not installed; carries the install hint."""


class DiskFullError(FmtbenchError):
    """The filesystem ran out of space (or quota) while fmtbench wrote `path`; nothing was left
    half-written there. Says how much was written and how much is free."""

    def __init__(self, path: str | PathLike[str], written: int | None, free: int | None, where: str = ""):
        self.path, self.written, self.free = str(path), written, free
        mib = 1 << 20
        parts = [f"no space left on device writing {self.path}"]
        if written:
            parts.append(f"it stopped after {written / mib:.1f} MiB")
        if free is not None:
            parts.append(f"{free / mib:.1f} MiB free{' on ' + where if where else ''}")
        super().__init__("; ".join(parts) + ". Free space, or write somewhere else")


class ReaderClosedError(FmtbenchError, ValueError):
    """A read or scan on a reader after its `close` (like Python's I/O on a closed file)."""


class RunIncomplete(FmtbenchError):
    """A run that finished, with its store and report written, in which some unit-rounds failed:
    `fmtbench run` exits with `EXIT_CODE` (3), so a CI job can tell it from a run that measured
    every planned unit-round (0) and from bad input (2)."""

    EXIT_CODE = 3

    def __init__(self, failed: int, planned: int, store: str):
        self.failed, self.planned = failed, planned
        super().__init__(f"{failed} of {planned} unit-rounds failed (their errors are in the report's "
                         f"'Failures & skips' and in {store}); exit {self.EXIT_CODE}")
