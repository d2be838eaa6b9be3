"""Fairness: every case's reader against a plain-library reference reader of the same file.

For each chosen case that has a reference (``benchmarks/reference/<format>_ref.py``) the case's
file is written once, and a fresh Python process (one per case: no case inherits another's
imports, thread pools or mappings) opens it with three readers, checks that they return
identical data, then times single reads, random batches of 64 and scans in interleaved
repeats (the readers' order rotates every repeat, so drift and cache state hit them alike):

* ``fmtbench``: the case's reader as the workloads time it: each set of indices checked once
  (`Reader.checked`, untimed), then `Reader.fetch` per read (the adapter's read, error
  translation), its output checked by `Reader.verified` outside the clock; `scan` with its
  per-batch checks and count;
* ``reference``: the plain library as an expert reads that file;
* ``adapter``: the same fmtbench reader called past the layer every format shares (its own
  `_read_one`/`_read`/`_scan`).

fmtbench / reference is what fmtbench's reader costs beyond the library (1.1 is the target);
adapter / reference is the format's own code against the library. Reads are timed one call at
a time (a batch figure is the sum of its calls) for all three alike.

    python -m benchmarks.fairness -c npy -c 'hdf5/*' --dataset fashion-mnist --repeats 7

Timings are warm (the file was just written and read). Each repeat opens a fresh reader of
each kind (untimed), so library caches start equally empty for all three, and collects garbage
first; what the imports left is frozen out of the collector's reach before any timing
(`fmtbench.harness.freeze_imports`). Without both, whichever reader's scan triggered a full
collection ran 12-19% slower than its twin (SQLite).
"""
from __future__ import annotations

import gc
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import numpy as np

from benchmarks import child, reference
from fmtbench.atomic import atomic_path, remove
from fmtbench.errors import FmtbenchError
from fmtbench.formats import Reader, cases, import_libraries, missing_dependency
from fmtbench.harness import freeze_imports
from fmtbench.workloads.random import checked

METRICS = ("single_p50_us", "batch64_us", "scan_us")
_TITLES = {"single_p50_us": "single read (p50)", "batch64_us": "random batch of 64", "scan_us": "scan"}
TARGET = 1.1  # fmtbench / reference, per case and metric


def _single_p50(read: Callable, check: Callable, ones: list[np.ndarray]) -> float:
    times = []
    for idx in ones:
        t0 = time.perf_counter()
        got = read(idx)
        times.append(time.perf_counter() - t0)
        check(got, 1)
    return statistics.median(times) * 1e6


def _batches(read: Callable, check: Callable, batches: list[np.ndarray]) -> float:
    clock, seconds = time.perf_counter, 0.0
    for b in batches:
        t0 = clock()
        got = read(b)
        seconds += clock() - t0
        check(got, len(b))
    return seconds / len(batches) * 1e6


def _unchecked(got, n: int):
    return got


def _scan(scan: Callable[[int], Iterator]) -> float:
    t0 = time.perf_counter()
    for _ in scan(1024):
        pass
    return (time.perf_counter() - t0) * 1e6


def _same(a, b, what: str) -> None:
    if not (np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[0].dtype == b[0].dtype):
        raise AssertionError(f"{what}: the reference and fmtbench returned different data")


class _Adapter:
    """fmtbench's reader past the shared layer: the adapter's `_read_one`/`_read`/`_scan` as they
    are, for indices the caller knows to be valid."""

    def __init__(self, reader):
        self._reader, one, many = reader, reader._read_one, reader._read
        self.read = many if one is None else (lambda idx: one(idx.item()) if len(idx) == 1 else many(idx))
        self.scan = reader._scan

    def close(self) -> None:
        self._reader.close()


def _timed_read(reader, single_idx: np.ndarray, batch_idx: list[np.ndarray]) -> tuple[Callable, Callable]:
    """The read to time and the untimed check of what it returns: fmtbench's reader as the
    workloads time it (every index checked once, untimed, then `fetch` per call and `verified`
    after the clock), the others' `read` and nothing."""
    if isinstance(reader, Reader):
        checked(reader, [single_idx, *batch_idx])
        return reader.fetch, reader.verified
    return reader.read, _unchecked


def _read_everything(reader, single_idx: np.ndarray, batch: np.ndarray) -> list:
    scanned = list(reader.scan(1024))
    return [reader.read(batch), reader.read(single_idx[:1]),
            (np.concatenate([x[0] for x in scanned]), np.concatenate([x[1] for x in scanned]))]


def compare(case, path: Path, n: int, *, repeats: int, singles: int, batches: int, seed: int = 0) -> dict:
    """Time `case`'s reader and its reference on `path`, interleaved; per metric the median
    ratio fmtbench / reference over repeats, its range, and both medians (microseconds).

    Each repeat opens one reader, times it, closes it, then the next (their order rotates):
    some libraries (LMDB) refuse a second handle on one file in a process. Opening is not timed.
    """
    ref_mod = reference.module(case.name)
    rng = np.random.default_rng(seed)
    single_idx = rng.integers(0, n, size=singles)
    ones = [single_idx[k:k + 1] for k in range(singles)]  # int64 arrays of one, as pipelines pass
    batch_idx = [rng.integers(0, n, size=64) for _ in range(batches)]
    opener = {"fmtbench": lambda: case.open(path), "reference": lambda: ref_mod.Reference(path),
              "adapter": lambda: _Adapter(case.open(path))}
    names = list(opener)
    seen = {}
    for who in names:
        reader = opener[who]()
        try:
            seen[who] = _read_everything(reader, single_idx, batch_idx[0])
        finally:
            reader.close()
    for who in ("fmtbench", "adapter"):
        for what, ours, ref in zip(("batch", "single", "scan"), seen[who], seen["reference"]):
            _same(ours, ref, f"{case.case_id} {what} ({who})")
    runs: dict[str, dict[str, list[float]]] = {m: {who: [] for who in names} for m in METRICS}
    for r in range(repeats):
        for who in names[r % 3:] + names[:r % 3]:  # each reader goes first in turn
            rd = opener[who]()
            gc.collect()  # no reader inherits another's garbage, or its turn to pay for it
            try:
                read, check = _timed_read(rd, single_idx, batch_idx)
                runs["single_p50_us"][who].append(_single_p50(read, check, ones))
                runs["batch64_us"][who].append(_batches(read, check, batch_idx))
                runs["scan_us"][who].append(_scan(rd.scan))
            finally:
                rd.close()
    out = {}
    for m in METRICS:
        ratios = [f / r for f, r in zip(runs[m]["fmtbench"], runs[m]["reference"])]
        own = [a / r for a, r in zip(runs[m]["adapter"], runs[m]["reference"])]
        out[m] = {"ratio": statistics.median(ratios), "low": min(ratios), "high": max(ratios),
                  "adapter_ratio": statistics.median(own),
                  **{f"{who}_us": statistics.median(runs[m][who]) for who in opener}}
    return out


def markdown_page(table: dict, dataset: str, n: int, repeats: int, command: str) -> str:
    """The table as a Markdown page: per case and metric the median ratio fmtbench / reference,
    its range over repeats, and both medians; a ratio above `TARGET` in bold."""
    def us(v: float) -> str:
        return f"{v:.2f}" if v < 100 else f"{v:,.0f}"

    lines = [
        "# Readers against plain-library references",
        "",
        "Written by `benchmarks/fairness.py` (do not edit by hand; run it again):",
        "",
        f"    {command}",
        "",
        f"{time.strftime('%Y-%m-%d', time.gmtime())}, {dataset} train ({n} samples), {os.cpu_count()} cores, "
        f"Python {platform.python_version()}. Each cell: the median over {repeats} interleaved repeats of "
        "fmtbench / reference (1.00 = the plain library's cost; the target is at most "
        f"{TARGET}), the range over repeats in brackets, then both medians in microseconds "
        "(fmtbench / reference). fmtbench is timed as the workloads time it (indices checked "
        "once untimed, `Reader.fetch` per call, every result checked by `Reader.verified` "
        "outside the clock); the reference is `benchmarks/reference/<format>_ref.py`.",
        "",
        "| case | " + " | ".join(_TITLES[m] for m in METRICS) + " |",
        "|---|" + "---|" * len(METRICS),
    ]
    for case_id, row in table.items():
        cells = []
        for m in METRICS:
            c = row[m]
            ratio = f"{c['ratio']:.2f}"
            cells.append(f"{f'**{ratio}**' if c['ratio'] > TARGET else ratio} [{c['low']:.2f}, {c['high']:.2f}] "
                         f"({us(c['fmtbench_us'])} / {us(c['reference_us'])})")
        lines.append(f"| `{case_id}` | " + " | ".join(cells) + " |")
    over = [f"{c} {_TITLES[m]}" for c, row in table.items() for m in METRICS if row[m]["ratio"] > TARGET]
    lines += ["", f"Above {TARGET}: " + (", ".join(over) if over else "none") + "."]
    return "\n".join(lines) + "\n"


def _spawn(case_id: str, path: Path, rows: int, repeats: int, singles: int, batches: int) -> dict:
    """`compare` for one case in a fresh Python process (all three readers of one case share it)."""
    return child.run("benchmarks.fairness", [case_id, str(path), rows],
                     {"repeats": repeats, "singles": singles, "batches": batches}, case_id)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--cases", "patterns", multiple=True, help="Case ids, format names or globs (default: every case with a reference).")
@click.option("--full", is_flag=True, help="Choose from each format's whole grid (110 HDF5 cases), not its representative cases.")
@click.option("--dataset", default="fashion-mnist", show_default=True, help="Dataset name (see `fmtbench datasets`).")
@click.option("--n", type=click.IntRange(min=100), default=None, help="Use only the first N training samples.")
@click.option("--repeats", type=click.IntRange(min=1), default=7, show_default=True, help="Interleaved repeats per case.")
@click.option("--singles", type=click.IntRange(min=1), default=200, show_default=True, help="Single reads per repeat.")
@click.option("--batches", type=click.IntRange(min=1), default=20, show_default=True, help="Random batches of 64 per repeat.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write the table as JSON here.")
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the table as a Markdown page here (docs/fairness.md).")
@click.option("--one", default=None, hidden=True)
def main(patterns, full, dataset, n, repeats, singles, batches, out, markdown, one) -> None:
    """Ratio of each case's reader to a plain-library reference reader of the same file."""
    from fmtbench import datasets
    from fmtbench.formats import get_case

    if one is not None:  # a child: one case's comparison in this fresh process
        case_id, path, rows = json.loads(one)
        case = get_case(case_id)
        import_libraries(case.name)
        freeze_imports()  # before any timing; not in `compare`, which tests call in their process
        print(json.dumps(compare(case, Path(path), rows, repeats=repeats, singles=singles, batches=batches)))
        return

    try:
        chosen = [c for c in cases(list(patterns) or None, full=full) if reference.module(c.name) is not None]
    except FmtbenchError as exc:  # a bad pattern: one line naming the valid choices
        raise click.UsageError(str(exc)) from None
    if not chosen:
        raise click.UsageError("no chosen case has a reference reader in benchmarks/reference/")
    try:
        split = datasets.load(dataset).train
    except FmtbenchError as exc:
        raise click.UsageError(str(exc)) from None
    if n:
        split = split.head(n)
    table = {}
    with tempfile.TemporaryDirectory(prefix="fmtbench-fairness-") as tmp:
        for case in chosen:
            if (why := missing_dependency(case.name)):
                click.echo(f"{case.case_id}: skipped ({why})", err=True)
                continue
            path = case.write(split, case.default_path(tmp)).path
            table[case.case_id] = row = _spawn(case.case_id, path, len(split), repeats, singles, batches)
            remove(path)  # the next case's file does not share the page cache with this one
            click.echo(f"{case.case_id:<28} " + "  ".join(
                f"{m} {row[m]['ratio']:.2f} [{row[m]['low']:.2f}, {row[m]['high']:.2f}] "
                f"(adapter {row[m]['adapter_ratio']:.2f})" for m in METRICS))
            sys.stdout.flush()
    if out:
        with atomic_path(out) as tmp_out:
            tmp_out.write_text(json.dumps({"dataset": dataset, "n": len(split), "repeats": repeats, "cases": table}, indent=1))
    if markdown:
        command = shlex.join(["python", "-m", "benchmarks.fairness", *sys.argv[1:]])
        with atomic_path(markdown) as tmp_md:
            tmp_md.write_text(markdown_page(table, dataset, len(split), repeats, command))


if __name__ == "__main__":
    main()
