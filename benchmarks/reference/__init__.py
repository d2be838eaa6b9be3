"""Plain-library reference readers: the fairness check of every adapter.

One module per format, named after the format (``benchmarks/reference/parquet_ref.py``; the
suffix keeps ``csv``, ``zarr``... from shadowing the libraries they read with), each
defining ``Reference``: the way an expert user of that library reads a file the adapter wrote,
with the library alone (no ``fmtbench`` import), so the ratio fmtbench / reference measures
what fmtbench's reader costs beyond the library::

    class Reference:
        def __init__(self, path: pathlib.Path): ...          # open once, like the adapter
        def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
            # images (n, *shape) in the file's dtype and labels (n,) int64, in the order asked
        def scan(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...
            # every sample once, in file order
        def close(self) -> None: ...

It returns exactly what the adapter returns (tests check the bytes), and it is as fast as
the library allows: no validation beyond what the library does itself. The library is imported
inside the class, never at module level: asv imports every module of the suite up front.
"""
from __future__ import annotations

import importlib
from types import ModuleType


def module(format_name: str) -> ModuleType | None:
    """The reference module of `format_name`, or None when the repo has none for it."""
    try:
        return importlib.import_module(f"{__name__}.{format_name}_ref")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{format_name}_ref":
            return None
        raise
