"""Read result stores into normalized rows, problems (failures and skips) and provenance records."""
from __future__ import annotations

import functools
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fmtbench.errors import FmtbenchError
from fmtbench.metrics import METRICS
from fmtbench.results import FILENAME, ResultStore
from fmtbench.runner import BASELINE  # the in-memory training baseline: a case id that is no format

__all__ = ["BASELINE", "Problem", "Results", "Row", "case_config", "load", "store_path"]


@dataclass
class Row:
    """One measured (case, workload, metric, cache) with its summary; `better` from the metrics table."""

    case: str
    format: str
    config: dict[str, Any]
    dataset: str
    digest: str | None
    workload: str
    metric: str
    cache: str
    median: float | None
    q1: float | None
    q3: float | None
    ci_low: float | None
    ci_high: float | None
    unit: str
    better: str
    n: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""
    source: int = 0  # index of the store it came from, in the order given

    def as_dict(self) -> dict[str, Any]:
        """The row as plain JSON-safe values (config and extra kept as dicts)."""
        return asdict(self)


@dataclass
class Problem:
    """A unit that did not produce numbers: a failure (with its error) or a skip (with its reason)."""

    kind: str  # "failure" | "skip"
    case: str
    dataset: str | None
    workload: str
    cache: str
    reason: str
    source: int = 0


@dataclass
class Results:
    """Everything a report needs from one or more stores; later stores win on duplicate keys."""

    sources: list[str]
    rows: list[Row]
    problems: list[Problem]
    provenance: list[dict[str, Any]]


@functools.lru_cache(maxsize=None)
def _config(case: str) -> tuple[tuple[str, Any], ...] | None:
    from fmtbench.formats import get_case

    try:
        return tuple(get_case(case).config.items())
    except Exception:  # an id this checkout no longer (or not yet) parses: config unknown
        return None


def case_config(case: str) -> dict[str, Any] | None:
    """The parsed configuration of a case id, or None when this checkout cannot parse it."""
    if case == BASELINE:
        return {}
    found = _config(case)
    return None if found is None else dict(found)


def store_path(path: str | os.PathLike[str]) -> Path:
    """The results.jsonl of a store given as its folder or as the file itself."""
    p = Path(path)
    p = p / FILENAME if p.is_dir() else p
    if not p.is_file():
        raise FmtbenchError(f"no results store at {path} (expected a folder holding {FILENAME}, or the file)")
    return p


def _row(rec: dict[str, Any], source: int) -> Row:
    m = METRICS.get(rec["metric"])
    config = case_config(rec["case"])
    return Row(
        case=rec["case"], format=rec.get("format") or rec["case"].split("/", 1)[0],
        config=config or {}, dataset=rec.get("dataset") or "?", digest=rec.get("dataset_digest"),
        workload=rec.get("workload") or "?", metric=rec["metric"], cache=rec.get("cache") or "n/a",
        median=rec.get("median"), q1=rec.get("q1"), q3=rec.get("q3"),
        ci_low=rec.get("ci_low"), ci_high=rec.get("ci_high"),
        unit=m.unit if m else rec.get("unit", ""), better=m.better if m else rec.get("better", "lower"),
        n=int(rec.get("n") or 0), extra=rec.get("extra") or {}, run_id=rec.get("run_id", ""), source=source,
    )


def _problem(rec: dict[str, Any], source: int) -> Problem:
    if rec["kind"] == "failure":
        err = rec.get("error") or {}
        reason = f"{err.get('type', 'Error')}: {err.get('message', '')}".rstrip(": ")
    else:
        reason = rec.get("reason") or "skipped"
    return Problem(rec["kind"], rec["case"], rec.get("dataset"), rec.get("workload") or "?",
                   rec.get("cache") or "n/a", reason, source)


def load(paths: list[str | os.PathLike[str]]) -> Results:
    """Read every store in order; a later measurement of the same unit and metric replaces an earlier one.

    A failure or skip is kept unless the same unit was measured after it (a later, successful run).
    """
    rows: dict[tuple, tuple[int, Row]] = {}
    problems: dict[tuple, tuple[int, Problem]] = {}
    provenance: list[dict[str, Any]] = []
    sources = []
    seq = 0
    for source, path in enumerate(paths):
        p = store_path(path)
        sources.append(str(p))
        for rec in _records(p):
            seq += 1
            kind = rec.get("kind")
            if kind == "measurement":
                row = _row(rec, source)
                rows[(row.case, row.dataset, row.digest, row.workload, row.metric, row.cache)] = (seq, row)
            elif kind in ("failure", "skip"):
                prob = _problem(rec, source)
                problems[(prob.case, prob.dataset, prob.workload, prob.cache)] = (seq, prob)
            elif kind == "provenance":
                provenance.append({**rec, "source": source})
    last_measured: dict[tuple, int] = {}
    for s, r in rows.values():
        key = (r.case, r.dataset, r.workload, r.cache)
        last_measured[key] = max(s, last_measured.get(key, 0))
    kept = [p for s, p in problems.values() if last_measured.get((p.case, p.dataset, p.workload, p.cache), 0) < s]
    return Results(sources, [r for _, r in rows.values()], kept, provenance)


def _records(path: Path) -> list[dict[str, Any]]:
    """Every record of the store file at `path`, read without creating or repairing anything."""
    store = ResultStore.__new__(ResultStore)  # not __init__: that creates files, and stores may be read-only
    store.folder, store.path = path.parent, path
    return store.records()
