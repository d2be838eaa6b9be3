"""The Python API: benchmark your own arrays, from a notebook, exactly as `fmtbench run` does.

    import numpy as np, fmtbench
    images, labels = np.load("images.npy"), np.load("labels.npy")   # (N, H, W[, C]), (N,)
    done = fmtbench.benchmark(images, labels, cases=["npy", "hdf5/chunk64", "parquet/rg1024-zstd"])
    print(done.summary)          # the table `fmtbench run` prints
    done.report                  # the self-contained HTML page

It is the `run` command itself (same profiles, same fresh worker process per unit, same store and
report), given the arrays through an ``.npz`` saved in the results folder (the `arrays`
dataset: the last 10% become the test split). Errors are `fmtbench.errors.FmtbenchError`.
"""
from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmtbench.atomic import atomic_path
from fmtbench.errors import FmtbenchError, RunIncomplete


@dataclass(frozen=True)
class Benchmark:
    """Where a benchmark left its results and report, and its summary table."""

    results: Path  # the results store (results.jsonl), appended to as each unit finished
    report: Path | None  # the HTML page (None with report=False)
    summary: str  # the medians per case, as `fmtbench run` prints them


def benchmark(images: np.ndarray | None = None, labels: np.ndarray | None = None, *,
              dataset: str | None = None, cases: Sequence[str] = (), workloads: Sequence[str] | None = None,
              profile: str = "quick", results: str | os.PathLike[str] = "fmtbench-results",
              report: str | os.PathLike[str] | bool = True, rounds: int | None = None,
              seed: int = 0, resume: bool = False) -> Benchmark:
    """Measure `images`/`labels` (or the named `dataset`) through `cases` and report.

    `cases` are ids or patterns (``fmtbench cases`` lists them; none: the profile's), `workloads`
    any of write, scan, random, train, native, readers, checkpoint (none: the profile's);
    `report` a path, True (``RESULTS/report.html``) or False.
    """
    from fmtbench.cli import main
    from fmtbench.results import FILENAME

    folder = Path(results)
    args = ["run", "--profile", profile, "--results", str(folder), "--seed", str(seed)]
    if images is not None or labels is not None:
        if images is None or labels is None or dataset is not None:
            raise FmtbenchError("give images and labels together, or a dataset name instead of both")
        folder.mkdir(parents=True, exist_ok=True)
        source = folder / "input.npz"
        with atomic_path(source) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, images=np.asarray(images), labels=np.asarray(labels))
        args += ["--dataset", "arrays", "--dataset-path", str(source)]
    elif dataset is not None:
        args += ["--dataset", dataset]
    for case in cases:
        args += ["--cases", case]
    if workloads is not None:
        args += ["--workloads", ",".join(workloads)]
    if rounds is not None:
        args += ["--rounds", str(rounds)]
    if resume:
        args.append("--resume")
    page = None if report is False else Path(folder / "report.html" if report is True else report)
    args += ["--no-report"] if page is None else ["--report", str(page)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # the run prints its summary table: returned, not printed
        try:
            main.main(args=args, standalone_mode=False)
        except RunIncomplete as exc:  # measured and reported, some unit-rounds failed: say so, return it
            warnings.warn(str(exc), stacklevel=2)
        except SystemExit as exc:  # click's own usage errors
            if exc.code:
                raise FmtbenchError(f"fmtbench run {' '.join(args[1:])}: exit {exc.code}") from None
    return Benchmark(folder / FILENAME, page, out.getvalue().rstrip("\n"))
