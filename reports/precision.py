"""How precise this run's figures are: per workload and cache, the between-round range of each
figure over its median, against the target a figure must meet to decide anything.

Targets (issue "Answers that say what they know"): 5% for write, scan, random access and
shuffled training, 10% for concurrent readers and streaming training. Sizes are exact and memory
is no timing, so neither counts; a figure of one round has no range.
"""
from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from fmtbench.metrics import METRICS

from .analysis import Frame
from .load import BASELINE, Row

TARGETS = {"write": 0.05, "scan": 0.05, "random": 0.05, "train": 0.05, "native": 0.10, "readers": 0.10,
           "clients": 0.10}
NOT_TIMINGS = ("peak_rss_bytes", "write_peak_rss_bytes", "read_bytes", "final_loss", "final_accuracy",
               "data_wait_share")
#: figures reported but held to no target: latency tails (a p99.9 of a few thousand reads is a
#: handful of them) and a file's open (one call per unit); they form a group of their own
UNTARGETED = ("random_p95_s", "random_p99_s", "random_p999_s", "open_s")


@dataclass
class Precision:
    """One workload and cache: how many figures, the median and worst range/median, the target."""

    workload: str
    cache: str
    figures: int
    median: float  # median over its figures of (max - min) / median of the rounds
    worst: float
    worst_figure: str
    over: int  # figures whose range/median exceeds the target
    target: float | None

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.median <= self.target


def relative_range(row: Row) -> float | None:
    """(max - min) / median of the row's rounds, or None for one round, sizes and memory."""
    if len(row.values) < 2 or not row.median or METRICS[row.metric].exact or row.metric in NOT_TIMINGS:
        return None
    return (max(row.values) - min(row.values)) / abs(row.median)


def precision(rows: Iterable[Row]) -> list[Precision]:
    """Per (workload, cache), in the order of `TARGETS`, the spread of the timed figures."""
    groups: dict[tuple[str, str], list[tuple[float, Row]]] = {}
    for r in rows:
        if r.case != BASELINE and (x := relative_range(r)) is not None:
            w = f"{r.workload} (tails, open)" if r.metric in UNTARGETED else r.workload
            groups.setdefault((w, r.cache), []).append((x, r))
    order = list(TARGETS)
    out = []
    rank = lambda w: order.index(w.split(" ")[0]) if w.split(" ")[0] in order else 99  # noqa: E731
    for (w, c), items in sorted(groups.items(), key=lambda kv: (rank(kv[0][0]), kv[0])):
        target = TARGETS.get(w)
        worst, row = max(items, key=lambda t: t[0])
        out.append(Precision(w, c, len(items), statistics.median(x for x, _ in items), worst,
                             f"{row.case} {METRICS[row.metric].label}", sum(x > target for x, _ in items)
                             if target is not None else 0, target))
    return out


def section(frame: Frame) -> list[Precision]:
    """The precision table of the report's method section."""
    return precision(frame.rows)


def text_table(rows: list[Precision]) -> str:
    """The table as plain text (benchmarks/precision.py prints it)."""
    lines = [f"{'workload':<22} {'cache':<5} {'figures':>7} {'median range/median':>20} {'target':>7} "
             f"{'over':>5}  worst"]
    for p in rows:
        target = f"{p.target:.0%}" if p.target is not None else "-"
        lines.append(f"{p.workload:<22} {p.cache:<5} {p.figures:>7} {p.median:>19.1%} {target:>7} {p.over:>5}  "
                     f"{p.worst:.0%} ({p.worst_figure})")
    return "\n".join(lines)
