"""Print how precise a run's figures are: per workload and cache, the median between-round
range/median of its timed figures against the target (reports/precision.py).

    python -m benchmarks.precision results [--dataset NAME]
"""
from __future__ import annotations

import argparse
import sys

from fmtbench.errors import FmtbenchError
from fmtbench.reports.analysis import frame
from fmtbench.reports.load import load
from fmtbench.reports.precision import section, text_table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="results folders (or results.jsonl files)")
    ap.add_argument("--dataset", help="which dataset of the store (default: the last measured)")
    args = ap.parse_args(argv)
    try:
        rows = section(frame(load(args.results), args.dataset))
    except FmtbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text_table(rows) if rows else "no figure with two or more rounds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
