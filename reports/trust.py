"""How far the figures can be trusted: figures past a physical limit, units taken on a busy machine.

A figure that beats the in-memory training baseline, or a scan that decodes faster than this
machine copies memory or reads a page-cached file, is a measurement error to chase, never a
winner: it is flagged and left out of every pick. A unit during which other processes used a
large share of the CPUs (or that started with the load average above the core count) is named,
so a reader can weigh its figure.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .analysis import Frame
from .load import BASELINE, Results, Row

BUSY_SHARE = 0.25  # others used more than a quarter of all cores during the unit
BUSY_MIN_WALL_S = 0.5  # /proc/stat counts 10 ms ticks: shorter units cannot tell
_BEATS_BASELINE = ("train_samples_per_s", "native_samples_per_s")


@dataclass(frozen=True)
class Flag:
    """A figure that is not credible, and why."""

    case: str
    metric: str
    cache: str
    reason: str


def limits(results: Results) -> dict[str, float]:
    """The machine's measured limits (MB/s) from the newest provenance that has them."""
    for p in reversed(results.provenance):
        found = ((p.get("machine") or {}).get("limits")) or {}
        out = {k: v["median"] for k, v in found.items() if isinstance(v, dict) and v.get("median")}
        if out:
            return out
    return {}


def _spread(row: Row) -> float:
    """The row's range of rounds (0 for one round)."""
    return max(row.values) - min(row.values) if row.values else 0.0


def _low(row: Row) -> float:
    return row.ci_low if row.ci_low is not None else row.median


def flags(frame: Frame, machine_limits: dict[str, float]) -> list[Flag]:
    """Every figure beyond what this machine can do: past the in-memory baseline by more than the
    baseline's own spread (its range of rounds; whatever the intervals say: the baseline bounds
    every pipeline by construction), or a scan faster than both memcpy and a page-cache read(2)."""
    out = []
    # every pipeline is held to the in-memory one measured the same way (shuffled to shuffled,
    # streaming to streaming)
    bases = {m: frame.get(BASELINE, m) for m in _BEATS_BASELINE}
    ceiling = max(machine_limits.values()) if machine_limits else None
    for row in frame.rows:
        if row.case == BASELINE or row.median is None:
            continue
        b = bases.get(row.metric)
        if b is not None and b.median and row.median - b.median > _spread(b):
            out.append(Flag(row.case, row.metric, row.cache,
                            f"{row.median:,.0f} samples/s beats the in-memory baseline ({b.median:,.0f}): "
                            f"no input pipeline outruns data already in memory: a different amount of work "
                            f"or a measurement error, to chase before it ranks"))
        if row.metric == "scan_mb_per_s" and ceiling and _low(row) > ceiling:
            out.append(Flag(row.case, row.metric, row.cache,
                            f"{row.median:,.0f} MB/s decoded is past this machine's memcpy and page-cache "
                            f"read limit ({ceiling:,.0f} MB/s): the scan cannot have produced every byte"))
    return out


def flagged_keys(frame: Frame, machine_limits: dict[str, float]) -> set[tuple[str, str, str]]:
    """(case, metric, cache) of every flagged figure, and its twin throughput metric."""
    keys = set()
    for f in flags(frame, machine_limits):
        keys.add((f.case, f.metric, f.cache))
        if f.metric == "scan_mb_per_s":
            keys.add((f.case, "scan_samples_per_s", f.cache))
    return keys


def _busy(state: dict[str, Any], cores: int) -> str | None:
    """Why a unit-round counts as taken on a busy machine, or None. Other processes' CPU share
    during the unit decides where it was measured; the load average when it began (a minute's
    trailing mean that also holds this run's own earlier units) only where the unit was too
    short for /proc/stat to tell."""
    share, wall = state.get("others_cpu_share"), state.get("wall_s") or 0
    if share is not None and wall >= BUSY_MIN_WALL_S:
        return f"other processes used {share:.0%} of the CPUs" if share > BUSY_SHARE else None
    load = state.get("loadavg_before")
    if load is not None and load > cores:
        return f"load average {load:.1f} on {cores} cores when it began"
    return None


def busy_units(frame: Frame, cores: int) -> list[dict[str, Any]]:
    """Unit-rounds measured while the machine was busy: case, workload, cache, round, why."""
    seen, out = set(), []
    for row in frame.rows:
        for rnd, state in enumerate(row.extra.get("machine") or []):
            key = (row.case, row.workload, row.cache, state.get("pid"))
            why = _busy(state or {}, cores)
            if why and key not in seen:
                seen.add(key)
                out.append({"case": row.case, "workload": row.workload, "cache": row.cache,
                            "round": rnd, "why": why})
    return out


def rounds_of(frame: Frame) -> int:
    """How many rounds the figures of this frame have (the most common n of timed rows)."""
    ns = [r.n for r in frame.rows if r.metric not in ("file_bytes", "compression_ratio")]
    return max(set(ns), key=ns.count) if ns else 0
