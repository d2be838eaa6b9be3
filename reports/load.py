"""Read result stores into normalized rows, problems (failures and skips) and provenance records."""
from __future__ import annotations

import functools
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fmtbench.errors import FmtbenchError
from fmtbench.metrics import METRICS
from fmtbench.results import BASELINE, FILENAME, read_records
from fmtbench.stats import median_ci_coverage, summarize

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
    host: str | None = None  # the machine that measured it (None in stores written before hosts)
    #: one value per round (what the median, its interval and every verdict stand on)
    values: list[float] = field(default_factory=list)
    #: the probability that [ci_low, ci_high] holds the true median (fmtbench.stats.median_ci_coverage)
    coverage: float | None = None
    #: the round of each of `values` (None for a record written before rounds): verdicts pair
    #: two figures' values of one round (`fmtbench.stats.paired_verdict`)
    rounds: list[int | None] = field(default_factory=list)
    #: the fmtbench that measured it (fmtbench.provenance.code_id(); "unknown" before stores named it)
    code: str | None = None

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
    # The configuration stored with the record is what was measured; records written before
    # it was stored fall back to parsing the id with this checkout's options.
    config = rec["config"] if "config" in rec else case_config(rec["case"])
    return Row(
        case=rec["case"], format=rec.get("format") or rec["case"].split("/", 1)[0],
        config=config or {}, dataset=rec.get("dataset") or "?", digest=rec.get("dataset_digest"),
        workload=rec.get("workload") or "?", metric=rec["metric"], cache=rec.get("cache") or "n/a",
        median=rec.get("median"), q1=rec.get("q1"), q3=rec.get("q3"),
        ci_low=rec.get("ci_low"), ci_high=rec.get("ci_high"),
        unit=m.unit if m else rec.get("unit", ""), better=m.better if m else rec.get("better", "lower"),
        n=int(rec.get("n") or 0), extra=rec.get("extra") or {}, run_id=rec.get("run_id", ""), source=source,
        host=rec.get("host"), values=[v for v in rec.get("values") or [] if v is not None],
        coverage=median_ci_coverage(int(rec.get("n") or 0)) if rec.get("ci_low") is not None else None,
        code=rec.get("code"),
    )


def _problem(rec: dict[str, Any], source: int) -> Problem:
    if rec["kind"] == "failure":
        err = rec.get("error") or {}
        reason = f"{err.get('type', 'Error')}: {err.get('message', '')}".rstrip(": ")
    else:
        reason = rec.get("reason") or "skipped"
    return Problem(rec["kind"], rec["case"], rec.get("dataset"), rec.get("workload") or "?",
                   rec.get("cache") or "n/a", reason, source)


def _number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _bad_names(rec: dict[str, Any], required: tuple[str, ...]) -> str | None:
    """Why the naming fields of a record (case, metric, workload...) cannot be read, or None."""
    for key in required:
        if not isinstance(rec.get(key), str) or not rec.get(key):
            return f"{key!r} must be a non-empty string, got {rec.get(key)!r}"
    for key in ("dataset", "dataset_digest", "workload", "cache", "reason", "run_id", "code", "settings"):
        if rec.get(key) is not None and not isinstance(rec[key], str):
            return f"{key!r} must be a string, got {rec[key]!r}"
    if "error" in rec and not isinstance(rec["error"], (dict, type(None))):
        return f"'error' must be an object, got {rec['error']!r}"
    return None


def _malformed(rec: dict[str, Any]) -> str | None:
    """Why a measurement record cannot be read, or None."""
    if (why := _bad_names(rec, ("case", "metric"))) is not None:
        return why
    for key in ("median", "q1", "q3", "ci_low", "ci_high"):
        if not _number(rec.get(key)):
            return f"{key!r} must be a number or null, got {rec.get(key)!r}"
    for key in ("n", "round"):
        v = rec.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            return f"{key!r} must be a whole number, got {v!r}"
    values = rec.get("values", [])
    if not isinstance(values, list) or not all(_number(v) for v in values):
        return f"'values' must be a list of numbers, got {values!r}"
    if not isinstance(rec.get("extra") or {}, dict):
        return f"'extra' must be an object, got {rec.get('extra')!r}"
    if "config" in rec and not isinstance(rec["config"], dict):
        return f"'config' must be an object, got {rec['config']!r}"
    return None


def merge_extra(extras: list[dict[str, Any]]) -> dict[str, Any]:
    """One `extra` from the rounds of a unit: lists are joined in round order, booleans must all
    hold (None when any round has none), anything else is the last round's."""
    out: dict[str, Any] = {}
    for key in dict.fromkeys(k for e in extras for k in e):
        vals = [e[key] for e in extras if key in e]
        if all(isinstance(v, list) for v in vals):
            out[key] = [x for v in vals for x in v]
        elif all(isinstance(v, bool) for v in vals):
            out[key] = all(vals)
        elif any(isinstance(v, bool) for v in vals) and any(v is None for v in vals):
            out[key] = None
        else:
            out[key] = vals[-1]
    return out


def _merged(rounds: dict[Any, tuple[int, dict[str, Any]]], source: int) -> Row:
    """One row from a unit's per-round records (a legacy record without rounds stands alone)."""
    recs = [rec for _, (_, rec) in sorted(rounds.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))]
    if len(recs) == 1:
        row = _row(recs[0], source)
        row.rounds = [recs[0].get("round")] if len(row.values) == 1 else []
        return row
    pairs = [(rec.get("round"), v) for rec in recs for v in rec.get("values") or [] if v is not None]
    if not pairs:
        return _row(recs[-1], source)
    values = [v for _, v in pairs]
    s = summarize(values)
    rec = {**recs[-1], "values": values, "median": s.median, "q1": s.q1, "q3": s.q3, "ci_low": s.ci_low,
           "ci_high": s.ci_high, "n": s.n, "extra": merge_extra([r.get("extra") or {} for r in recs])}
    row = _row(rec, source)
    one_each = len({r for r, _ in pairs}) == len(pairs) and None not in {r for r, _ in pairs}
    row.rounds = [r for r, _ in pairs] if one_each else []
    return row


def load(paths: list[str | os.PathLike[str]]) -> Results:
    """Read every store in order; the rounds of a unit's metric combine into one row (one value
    per round), and a later measurement of the same round replaces an earlier one.

    A failure or skip is kept unless the same unit was measured after it (a later, successful run).

    Rounds of other code or other figure settings (the records' ``code`` and ``settings``) never
    merge into one median, as rounds of other hosts never do; of each dataset (name and digest)
    the rows and problems of its latest measured (code, settings) are kept, so a store that two
    versions of fmtbench appended to reports the latest's. To set two versions side by side,
    compare their stores (`fmtbench report OLD NEW`: each store is loaded on its own).
    """
    rows: dict[tuple, dict[Any, tuple[int, dict[str, Any]]]] = {}
    sources_of: dict[tuple, int] = {}
    problems: dict[tuple, tuple[int, Problem]] = {}
    versions: dict[tuple, tuple[tuple[str, str], str | None]] = {}  # problem -> (code, settings), digest
    latest: dict[tuple, tuple[str, str]] = {}  # (dataset, digest) and (dataset,) -> the last measured version
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
                why = _malformed(rec)
                if why:
                    raise FmtbenchError(f"{p}: measurement record {seq} is malformed: {why}")
                if rec["metric"] not in METRICS:
                    warnings.warn(f"{p}: skipping metric {rec['metric']!r}, which this fmtbench does not know",
                                  stacklevel=2)
                    continue
                # one median per host: a cluster's machines are never mixed in one figure; nor
                # are two versions of the code or of the settings
                key = (rec["case"], rec.get("dataset") or "?", rec.get("dataset_digest"),
                       rec.get("workload") or "?", rec["metric"], rec.get("cache") or "n/a", rec.get("host"),
                       rec["code"], rec["settings"])
                rows.setdefault(key, {})[rec.get("round")] = (seq, rec)
                sources_of[key] = source
                latest[key[1:3]] = latest[key[1:2]] = (rec["code"], rec["settings"])
            elif kind in ("failure", "skip"):
                if (why := _bad_names(rec, ("case",))) is not None:
                    raise FmtbenchError(f"{p}: {kind} record {seq} is malformed: {why}")
                prob = _problem(rec, source)
                problems[(prob.case, prob.dataset, prob.workload, prob.cache)] = (seq, prob)
                versions[(prob.case, prob.dataset, prob.workload, prob.cache)] = (
                    (rec["code"], rec["settings"]), rec.get("dataset_digest"))
            elif kind == "provenance":
                provenance.append({**rec, "source": source})
    rows = {key: rounds for key, rounds in rows.items() if key[7:] == latest[key[1:3]]}

    def current(pkey: tuple) -> bool:  # a problem of the version its dataset was last measured by
        version, digest = versions[pkey]
        last = latest.get((pkey[1], digest)) if digest is not None else None
        last = last or latest.get((pkey[1] or "?",))
        return last is None or version == last

    last_measured: dict[tuple, int] = {}
    for (case, dataset, _, workload, _, cache, *_), rounds in rows.items():
        key = (case, dataset, workload, cache)
        last_measured[key] = max(max(s for s, _ in rounds.values()), last_measured.get(key, 0))
    kept = [p for k, (s, p) in problems.items()
            if last_measured.get((p.case, p.dataset, p.workload, p.cache), 0) < s and current(k)]
    merged = [_merged(rounds, sources_of[key]) for key, rounds in rows.items()]
    return Results(sources, merged, kept, provenance)


def _records(path: Path) -> list[dict[str, Any]]:
    """Every record of the store file at `path`, read without creating or repairing anything."""
    return read_records(path)
