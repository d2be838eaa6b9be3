"""The results store: a folder holding ``results.jsonl``, one JSON record per line, append-only.

Every record is flushed and fsynced as it is written, so a killed run loses nothing it had
written; a record torn by a kill mid-write is the last line, skipped with a warning on read
and cut off before the next append.

Schema (``SCHEMA_VERSION = 3``; version 1 had no rounds, version 2 no ``code`` and
``settings``). Every record has ``schema`` (int), ``kind``, ``run_id``, ``time`` (UTC, ISO
8601), ``code`` (the fmtbench that wrote it: ``fmtbench.provenance.code_id()``, e.g. "0.1.0
dfd3615a6441", "+dirty" when tracked package files differed from that commit, or "0.1.0
files:<hash>" outside a git checkout) and ``settings`` (a hash of the profile fields that shape
a figure and the seed: ``fmtbench.profiles.figure_settings``; not the rounds, workloads, caches
or cases, which a resumed run may add to; null in a store written without a run). By kind:

- ``provenance``: one per run: ``argv`` (command line), ``profile``, ``dataset`` and
  ``dataset_digest``, ``figure_settings`` (the dict ``settings`` hashes), ``machine`` (the dict
  from ``fmtbench.provenance.collect()``: libraries of every format, the code's fingerprint).
- ``measurement``: ``case`` (case id), ``format``, ``dataset``, ``dataset_digest``,
  ``workload`` ("write", "scan", "random", "train", ...), ``metric`` (a name in
  ``fmtbench.metrics.METRICS``), ``cache`` ("warm", "cold" or "n/a"), ``unit`` and ``better``
  (copied from the metrics table, never given by the caller), ``values`` (every repeat),
  ``median``, ``q1``, ``q3``, ``ci_low``, ``ci_high`` (a distribution-free interval of the
  median whose coverage depends on n, see ``fmtbench.stats.median_ci_coverage``), ``n``,
  ``host`` (the machine that measured it; absent in older stores),
  ``round`` (which interleaved round measured it; the runner stores
  one value per round, and readers combine the rounds of a unit into one figure), and ``extra``
  (a dict: residency, read_bytes, index cost, ``inner`` (the in-process repeats whose median
  is the value), ``machine`` (load average and others' CPU share around the unit), ...).
- ``failure``: ``case``, ``dataset``, ``dataset_digest``, ``workload``, ``cache``, ``round``,
  ``error`` ({"type", "message"}), ``traceback`` (its last lines).
- ``skip``: ``case``, ``dataset``, ``dataset_digest``, ``workload``, ``cache``, ``round``, ``reason``.
- ``done``: ``case``, ``dataset``, ``dataset_digest``, ``workload``, ``cache``, ``round``: written
  after every measurement of that unit. A resumed run skips the units that have one of its own
  dataset digest, settings and code (``done_keys``), and it is refused, before any work and in
  one line saying what differs, when no earlier run in the store has all three
  (``check_resume``): rounds measured on other data, with other settings or by other code never
  merge into one median. A unit's records are written together (``ResultStore.unit``); if a
  kill tears them, the resumed run measures the unit again, and readers take the last record of
  each (case, dataset, workload, metric, cache).

Older stores are read as they are, migrated on read: a record without ``code`` or ``settings``
(schema 1 and 2) reads as ``"unknown"`` for each. Reports load them as before (one version of
unknown code); resuming into one is refused, since its code and settings cannot be checked:
start a new store. ``reports.load`` keeps each (code, settings) apart, like hosts, and shows a
dataset's latest; ``tests/fixtures/stores`` holds stores of every schema, never regenerated.

Non-finite numbers are stored as null, so every line is strict JSON. A run holds the folder's
``.lock`` (``ResultStore.claim``) while it writes, so two runs never append to one store.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from fmtbench import provenance
from fmtbench.atomic import disk_full
from fmtbench.errors import FmtbenchError
from fmtbench.metrics import metric as lookup_metric
from fmtbench.profiles import settings_id
from fmtbench.stats import summarize

SCHEMA_VERSION = 3
UNKNOWN = "unknown"  # the code and settings of a record written before records named them
FILENAME = "results.jsonl"
BASELINE = "memory"  # the case id of the in-memory baselines: a case that is no format
LOCKNAME = ".lock"  # held by the run writing the store (see ResultStore.claim)
KINDS = ("provenance", "measurement", "failure", "skip", "done")
CACHES = ("warm", "cold", "n/a")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class ResultStore:
    """An append-only JSON Lines store of provenance, measurements, failures, skips and done marks."""

    def __init__(self, folder: str | os.PathLike[str], run_id: str | None = None):
        self.folder = Path(folder)
        self.path = self.folder / FILENAME
        self.run_id = run_id or f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        self._repaired = False
        self._pending: list[str] | None = None
        # what every record this store appends names: the figure settings' hash once known
        # (`use_settings`; null before); the code is always this process's (`provenance.code_id()`)
        self.stamp: dict[str, str] = {}
        self.figure_settings: dict[str, Any] | None = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise FmtbenchError(
                f"results folder {self.folder} is not writable ({type(exc).__name__}: "
                f"{exc.strerror or exc}); choose a writable folder"
            ) from exc

    def claim(self) -> None:
        """Hold this store for one run until the process ends; a second run is refused, naming
        the holder. Two runs appending to one store measured every unit twice and mixed their
        medians. flock(2) is released by the kernel however the holder dies, so no stale lock."""
        import fcntl

        fd = os.open(self.folder / LOCKNAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise FmtbenchError(f"results folder {self.folder} is in use by another fmtbench run "
                                f"(pid {holder}); wait for it to finish, or choose another --results folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._claim_fd = fd  # kept open: closing it would release the lock

    def _cut_torn_tail(self) -> None:
        """Drop a partial last line left by a kill mid-write, so the next record starts clean."""
        with open(self.path, "rb+") as fh:
            data = fh.read()
            if data and not data.endswith(b"\n"):
                keep = data.rfind(b"\n") + 1
                try:  # complete but for its newline: keep it
                    json.loads(data[keep:])
                    fh.write(b"\n")
                except ValueError:
                    warnings.warn(f"{self.path}: dropping a torn last record "
                                  f"({len(data) - keep} bytes)", stacklevel=3)
                    fh.truncate(keep)
                os.fsync(fh.fileno())
        self._repaired = True

    def append(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Write one record as one line, flushed and fsynced; fills in schema, run_id and time."""
        rec = {"schema": SCHEMA_VERSION, "run_id": self.run_id, "time": _now(), "code": provenance.code_id(),
               "settings": None, **self.stamp, **_jsonable(record)}
        if rec.get("kind") not in KINDS:
            raise FmtbenchError(f"record kind {rec.get('kind')!r} is not one of {', '.join(KINDS)}")
        line = json.dumps(rec, allow_nan=False, separators=(",", ":")) + "\n"
        if self._pending is not None:
            self._pending.append(line)
        else:
            self._write(line)
        return rec

    def _write(self, text: str) -> None:
        if not self._repaired:
            self._cut_torn_tail()
        try:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            # A torn last line is cut off by the next open (_cut_torn_tail): the store stays resumable.
            full = disk_full(exc, self.path)
            if full is not None:
                raise full from exc
            raise

    @contextlib.contextmanager
    def unit(self) -> Iterator[None]:
        """Buffer the records of one unit and write them in one write and one fsync, so a kill
        leaves all of a unit (its measurements and its "done") or, rarely, a prefix of it
        without "done" that a resumed run measures again: readers take a unit's last record."""
        self._pending = []
        try:
            yield
            self._write("".join(self._pending))
        finally:
            self._pending = None

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every record (of `kind`, if given), in the order written; a torn last line is skipped."""
        return read_records(self.path, kind)

    def done_keys(self, code: str | None = None,
                  settings: str | None = None) -> set[tuple[str, str, str | None, str, str, int]]:
        """(case, dataset, dataset_digest, workload, cache, round) of every unit-round marked done
        by `code` with `settings` (either None: by any), for --resume."""
        return {(r["case"], r["dataset"], r.get("dataset_digest"), r["workload"], r["cache"], r.get("round", 0))
                for r in self.records("done")
                if (code is None or r["code"] == code) and (settings is None or r["settings"] == settings)}

    def use_settings(self, settings: Mapping[str, Any]) -> str:
        """Name `settings` (``profiles.figure_settings``) in every record appended from now on;
        returns their hash."""
        self.figure_settings = dict(settings)
        self.stamp["settings"] = settings_id(self.figure_settings)
        return self.stamp["settings"]

    def check_resume(self, dataset: str, dataset_digest: str, settings: Mapping[str, Any]) -> None:
        """Refuse, in one line saying what differs, to resume into this store when none of its
        runs measured `dataset_digest` with `settings` (``profiles.figure_settings``) and this
        code: their units are no part of this run, and merging rounds of both would make one
        median of two measurements. A store without runs has nothing to resume: no conflict."""
        runs = self.records("provenance")
        code, sid = provenance.code_id(), settings_id(dict(settings))
        if not runs or any((r.get("dataset_digest"), r["code"], r["settings"]) == (dataset_digest, code, sid)
                           for r in runs):
            return
        last = next((r for r in reversed(runs) if r.get("dataset") == dataset), runs[-1])
        where = f"{str(self.folder).rstrip('/')}/"
        way_on = "start a new store with --results NEW or drop --resume"
        if last["code"] == UNKNOWN:
            machine = last.get("machine") if isinstance(last.get("machine"), dict) else {}
            git = machine.get("git") if isinstance(machine.get("git"), dict) else {}
            wrote = " ".join(str(x) for x in ("fmtbench", machine.get("fmtbench_version"),
                                              (git.get("commit") or "")[:12]) if x)
            raise FmtbenchError(f"cannot resume: {where} holds a run written before stores named their code and "
                                f"settings (schema {last.get('schema', 0)}, by {wrote}): its code is unknown; "
                                f"{way_on}")
        parts = []
        if last.get("dataset_digest") != dataset_digest:
            parts.append(f"other data ({last.get('dataset')} {str(last.get('dataset_digest'))[:12]}, this is "
                         f"{dataset} {dataset_digest[:12]}: another --n, --dataset or --dataset-path?)")
        if last["settings"] != sid:
            before = last.get("figure_settings")
            now = dict(settings)
            differ = ([f"{k} {before.get(k, '?')}, this is {now.get(k, '?')}"
                       for k in sorted(set(before) | set(now)) if before.get(k, "?") != now.get(k, "?")]
                      if isinstance(before, dict) else [])
            parts.append(f"other settings ({'; '.join(differ) or last['settings'] + ', this is ' + sid})")
        if last["code"] != code:
            parts.append(f"other code (fmtbench {last['code']}, this is fmtbench {code})")
        if not parts:  # the latest run of this dataset matches on none of them alone: name it whole
            parts.append(f"other data, settings or code (run {last.get('run_id')})")
        listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
        raise FmtbenchError(f"cannot resume: {where} holds a run of {listed}; {way_on}")

    def start_run(self, provenance: Mapping[str, Any], argv: Sequence[str], profile: str,
                  dataset: str, dataset_digest: str | None = None,
                  settings: Mapping[str, Any] | None = None) -> str:
        """Write this run's provenance record; return its run_id. `settings`
        (``profiles.figure_settings``) are named in it and in every record after it."""
        if settings is not None:
            self.use_settings(settings)
        self.append({"kind": "provenance", "argv": list(argv), "profile": profile,
                     "dataset": dataset, "dataset_digest": dataset_digest,
                     **({} if self.figure_settings is None else {"figure_settings": self.figure_settings}),
                     "machine": provenance})
        return self.run_id

    def add_measurement(self, case: str, workload: str, metric: str, cache: str,
                        values: Sequence[float], dataset: str, dataset_digest: str,
                        extra: Mapping[str, Any] | None = None, round: int = 0,
                        config: Mapping[str, Any] | None = None, host: str | None = None) -> dict[str, Any]:
        """Summarize `values` and store them; unit and direction come from the metrics table.
        `config` is the case's full configuration (every option, defaults included), so a
        report reads what was measured even after an option is renamed."""
        m = lookup_metric(metric)
        _check_cache(cache)
        s = summarize(values)
        return self.append({
            "kind": "measurement", "case": case, "format": case.split("/", 1)[0],
            **({} if config is None else {"config": dict(config)}),
            "dataset": dataset, "dataset_digest": dataset_digest, "workload": workload,
            "metric": m.name, "cache": cache, "unit": m.unit, "better": m.better,
            "values": s.values, "median": s.median, "q1": s.q1, "q3": s.q3,
            "ci_low": s.ci_low, "ci_high": s.ci_high, "n": s.n, "round": round, "extra": dict(extra or {}),
            **({} if host is None else {"host": host}),
        })

    def add_failure(self, case: str, workload: str, cache: str, error: BaseException | Mapping[str, str],
                    dataset: str | None = None, round: int = 0, host: str | None = None,
                    dataset_digest: str | None = None) -> dict[str, Any]:
        """Record that a unit failed: the error's type and message and the tail of its traceback
        (an exception, or the {"type", "message", "traceback"} a worker sent back)."""
        _check_cache(cache)
        if isinstance(error, BaseException):
            from fmtbench.executor import error_record

            error = error_record(error)
        return self.append({
            "kind": "failure", "case": case, "dataset": dataset, "dataset_digest": dataset_digest,
            "workload": workload, "cache": cache,
            "round": round, "error": {"type": error["type"], "message": error["message"]},
            "traceback": error.get("traceback", ""), **({} if host is None else {"host": host}),
        })

    def add_skip(self, case: str, workload: str, cache: str, reason: str,
                 dataset: str | None = None, round: int = 0, dataset_digest: str | None = None) -> dict[str, Any]:
        """Record that a unit was skipped, and why (e.g. a missing optional library)."""
        _check_cache(cache)
        return self.append({"kind": "skip", "case": case, "dataset": dataset, "dataset_digest": dataset_digest,
                            "workload": workload, "cache": cache, "round": round, "reason": reason})

    def mark_done(self, case: str, dataset: str, workload: str, cache: str, round: int = 0,
                  dataset_digest: str | None = None) -> dict[str, Any]:
        """Mark a unit-round finished, so --resume with the same data, settings and code skips it."""
        _check_cache(cache)
        return self.append({"kind": "done", "case": case, "dataset": dataset, "dataset_digest": dataset_digest,
                            "workload": workload, "cache": cache, "round": round})


def read_records(path: str | os.PathLike[str], kind: str | None = None) -> list[dict[str, Any]]:
    """Every record of the store file at `path` (of `kind`, if given), in the order written; a torn
    last line is skipped. Read-only: nothing is created, claimed or repaired (reports read stores
    that may be read-only or still being written)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line, parse_constant=lambda name: None)  # NaN/Infinity: as written, null
        except json.JSONDecodeError as exc:
            if number == len(lines):  # no newline after it: a write cut short by a kill
                warnings.warn(f"{path}:{number}: skipping a torn last record", stacklevel=2)
                continue
            raise FmtbenchError(f"{path}:{number}: corrupt record ({exc})") from exc
        if not isinstance(rec, dict):
            raise FmtbenchError(f"{path}:{number}: a record must be a JSON object, "
                                f"not {type(rec).__name__}")
        schema = rec.get("schema", 0)
        if not isinstance(schema, int) or isinstance(schema, bool):
            raise FmtbenchError(f"{path}:{number}: schema must be a whole number, got {schema!r}")
        if schema > SCHEMA_VERSION:
            raise FmtbenchError(f"{path}:{number}: schema {rec['schema']} is newer than "
                                f"this fmtbench reads ({SCHEMA_VERSION}); upgrade fmtbench")
        if kind is None or rec.get("kind") == kind:
            out.append(_migrate(rec))
    return out


def _migrate(rec: dict[str, Any]) -> dict[str, Any]:
    """A record of an older schema as this one reads it: no ``code`` or ``settings`` is "unknown"."""
    rec.setdefault("code", UNKNOWN)
    rec.setdefault("settings", UNKNOWN)
    return rec


def _check_cache(cache: str) -> None:
    if cache not in CACHES:
        raise FmtbenchError(f"cache {cache!r} is not one of {', '.join(CACHES)}")
