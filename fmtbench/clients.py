"""Many clients: the readers workload spread over a Dask cluster, one client per worker, one shared file.

How many training clients can this storage and format feed at once? A `clients` unit (case,
cache) measures, for each pattern (random batches, disjoint shards) and each count N, N clients
reading the case's file under the shared ``--data-dir`` at once, each pinned to its own worker
(`workers=[address]`, no other worker allowed, the ``unit`` resource: nothing else runs there).
A client reads like one reader of the readers workload (`workloads.readers.Work` and
`read_window`, the same seeded batches and shards; a shard read before the window ends starts
over), in a fresh process on its worker as every unit is, and returns its samples, its first and
last timestamps and its per-read latency percentiles. Timing happens on the workers only; this
side only aggregates: the point's value is all samples over the wall time from the first
client's start to the last one's finish.

One start for all: the client picks a wall-clock instant (now + a lead), and each worker waits
for it on its own clock, corrected by the offset measured here with round trips (so hosts'
clocks need not agree; the residual is at most half a round trip, recorded as
``clock_uncertainty_s``). The lead learns from the last point how long clients take to be ready
(fork, load, open, page-cache state); a point where any client was ready only after the start
is measured again with a longer lead.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fmtbench.errors import FmtbenchError
from fmtbench.executor import Outcome, Task, Unit, error_record
from fmtbench.metrics import CLIENT_COUNTS, READER_PATTERNS, clients_metric
from fmtbench.stats import percentiles
from fmtbench.workloads._base import Observation

if TYPE_CHECKING:
    from collections.abc import Callable

    from fmtbench.cluster import DaskExecutor
    from fmtbench.datasets._base import Split
    from fmtbench.formats import Reader

NEEDS_CLUSTER = ("many clients need a Dask cluster: run with --cluster ADDRESS (or local:N), one client "
                 "per worker; README 'Running on a cluster'")
_FIRST_LEAD_S = 1.0  # before a lead was learnt: the worker's zygote is up (the warm-up), the rest is open
_MIN_LEAD_S = 0.2
_TRIES = 3  # starts of one point, each with a longer lead, before the unit fails
_GRACE_S = 120.0  # beyond lead + window, how long a client may take before the unit fails
_PCTS = (50, 95, 99)


class ClientsError(FmtbenchError):
    """A clients unit could not measure (too few workers, a client failed, hung or started late)."""


@dataclass(frozen=True)
class ClientSpec:
    """What client k of n reads, and when it starts (time.time() on its worker's own clock)."""

    pattern: str
    n: int
    k: int
    t_go: float
    window_s: float


@dataclass(frozen=True)
class ClientTask(Task):
    """A task that runs one client of a clients point (workload ``client``) on one worker."""

    client: ClientSpec | None = None


def parse_counts(text: str) -> tuple[int, ...]:
    """`--clients 1,2,4` as sorted distinct counts, each one of metrics.CLIENT_COUNTS."""
    counts = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if not part.isdigit() or int(part) not in CLIENT_COUNTS:
            raise FmtbenchError(f"--clients {text}: {part!r} is no client count; choose among "
                                f"{', '.join(map(str, CLIENT_COUNTS))}, comma-separated")
        counts.add(int(part))
    if not counts:
        raise FmtbenchError("--clients: give counts such as 1,2,4")
    return tuple(sorted(counts))


# --- on the worker, in the client's own fresh process ----------------------------------------

def read_as_client(reader: Reader, task: ClientTask, truth: Split,
                   cold: Callable[[], float] | None) -> list[Observation]:
    """Wait for the shared start, read one window like one reader of the readers workload; what it did."""
    from fmtbench.workloads.readers import Work, read_window

    spec, p = task.client, task.profile
    state = {} if cold is None else {"residency_before": cold()}
    work = Work(spec.pattern, spec.n, spec.k, len(reader), p.random_batch_size if spec.pattern == "random"
                else p.scan_batch, task.seed, epochs=True)  # a shard read before the window ends starts over
    ready = time.time()
    to_wall = time.time() - time.perf_counter()  # perf_counter times the reads; wall time lines up clients
    r = read_window(reader, work, spec.t_go - to_wall, spec.window_s, truth)
    lat = r["latencies"]
    pct = percentiles(lat, _PCTS) if lat.size else {float(q): None for q in _PCTS}
    return [Observation(clients_metric(spec.pattern, spec.n), [r["samples"] / (r["end"] - r["start"])], {
        "k": spec.k, "ready": ready, "t_go": spec.t_go, "start": r["start"] + to_wall, "end": r["end"] + to_wall,
        "samples": r["samples"], "reads": int(lat.size), "wrong": r["wrong"], "read_bytes": r["read_bytes"],
        "path": task.path, **{f"p{q}_s": pct[float(q)] for q in _PCTS}, **state})]


# --- on the client ---------------------------------------------------------------------------

def run_clients(executor: DaskExecutor, task: Task) -> Outcome:
    """Measure a clients unit on the executor's cluster; a failure is the outcome's error."""
    try:
        obs, state = _measure(executor, task)
    except ClientsError as exc:
        return Outcome(error=error_record(exc))
    return Outcome(observations=obs, state=state)


def _measure(executor: DaskExecutor, task: Task) -> tuple[list[Observation], dict[str, Any]]:
    workers = executor.workers()
    counts = task.profile.clients_counts or tuple(n for n in CLIENT_COUNTS if n <= len(workers))
    if not counts or max(counts) > len(workers):
        raise ClientsError(f"{max(counts or (1,))} clients asked for, but {len(workers)} Dask workers offer the "
                           f"resource unit=1: start more workers, or ask for fewer (--clients)")
    used = workers[:max(counts)]
    offsets = _clock_offsets(executor, used)
    ready = _warm_up(executor, task, used)
    lead, obs = _FIRST_LEAD_S, []
    for pattern in READER_PATTERNS:
        for n in counts:
            ob, lead = _point(executor, task, pattern, used[:n], offsets, lead)
            obs.append(ob)
    hosts = sorted({ready[w]["host"] for w in used})
    loads = [c["loadavg_before"] for ob in obs for c in ob.extra["per_client"] if c["loadavg_before"] is not None]
    return obs, {"host": ",".join(hosts), "worker": ",".join(used), "hosts": hosts,
                 "loadavg_before": max(loads, default=None), "clock_offsets_s": {w: offsets[w][0] for w in used}}


def _clock_offsets(executor: DaskExecutor, workers: list[str], tries: int = 3) -> dict[str, tuple[float, float]]:
    """Each worker's clock minus this one's, and its uncertainty (half the best round trip)."""
    out = {}
    for w in workers:
        for _ in range(tries):
            t0 = time.time()
            there = executor.client.run(time.time, workers=[w])[w]
            t1 = time.time()
            guess = (there - (t0 + t1) / 2, (t1 - t0) / 2)
            if w not in out or guess[1] < out[w][1]:
                out[w] = guess
    return out


def _warm_up(executor: DaskExecutor, task: Task, workers: list[str]) -> dict[str, dict[str, Any]]:
    """Untimed, on each worker: start its zygote for the round and write the file where it is missing."""
    prep = dataclasses.replace(task, unit=Unit(task.unit.case, "prepare", "n/a", task.unit.round))
    outs = _gather(executor, [(prep, w) for w in workers], _GRACE_S)
    for w, out in zip(workers, outs):
        if out.error is not None:
            raise ClientsError(f"worker {w} could not prepare {task.unit.case}: {out.error['message']}")
    return {w: out.state for w, out in zip(workers, outs)}


def _gather(executor: DaskExecutor, pinned: list[tuple[Task, str]], timeout: float) -> list[Outcome]:
    """Run each task on its own worker (and nowhere else); their outcomes, in order."""
    from distributed import wait
    from distributed.scheduler import KilledWorker

    futures = [executor.submit(t, w, pinned=True) for t, w in pinned]
    deadline = time.monotonic() + timeout
    while True:
        try:
            wait(futures, timeout=1.0)
            break
        except TimeoutError:  # a task pinned to a worker that is gone would wait for it forever
            late = [w for (_, w), f in zip(pinned, futures) if not f.done()]
            gone = sorted(set(late) - set(executor.workers()))
            if gone or time.monotonic() > deadline:
                executor.client.cancel([f for f in futures if not f.done()])
                why = f"worker {', '.join(gone)} left the cluster" if gone else \
                    f"no result from worker {', '.join(late)} within {timeout:.0f} s (stuck)"
                raise ClientsError(f"{why}, during a clients unit") from None
    outs = []
    for (_, w), fut in zip(pinned, futures):
        try:
            outs.append(fut.result())
        except KilledWorker as exc:
            raise ClientsError(f"worker {w} died running a client: {exc}") from None
    return outs


def _point(executor: DaskExecutor, task: Task, pattern: str, workers: list[str],
           offsets: dict[str, tuple[float, float]], lead: float) -> tuple[Observation, float]:
    """One (pattern, N) point: N clients from one start; the observation and the next point's lead."""
    n, window = len(workers), task.profile.readers_window_s
    for _ in range(_TRIES):
        sent = time.time()
        t_go = sent + lead
        tasks = [(_client_task(task, ClientSpec(pattern, n, k, t_go + offsets[w][0], window)), w)
                 for k, w in enumerate(workers)]
        outs = _gather(executor, tasks, lead + window + _GRACE_S)
        for k, (w, out) in enumerate(zip(workers, outs)):
            if out.error is not None:
                raise ClientsError(f"client {k} of {n} on worker {w}: {out.error['type']}: {out.error['message']}")
        clients = [dict(out.observations[0].extra, worker=w, host=out.state.get("host"), offset=offsets[w][0],
                        loadavg_before=out.state.get("loadavg_before")) for w, out in zip(workers, outs)]
        needed = max(c["ready"] - c["offset"] for c in clients) - sent  # on this clock
        if all(c["ready"] <= c["t_go"] for c in clients):  # each on its own clock: no client started late
            return _summary(pattern, clients, window, lead, max(offsets[w][1] for w in workers)), \
                max(_MIN_LEAD_S, 1.5 * needed)
        lead = max(2 * lead, 1.5 * needed)
    raise ClientsError(f"{n} clients could not start together: one was ready only {needed:.2f} s after "
                       f"the start was sent, past the last lead")


def _client_task(task: Task, spec: ClientSpec) -> ClientTask:
    fields = {f.name: getattr(task, f.name) for f in dataclasses.fields(Task)}
    unit = Unit(task.unit.case, "client", task.unit.cache, task.unit.round)
    return ClientTask(**(fields | {"unit": unit}), client=spec)


def _summary(pattern: str, clients: list[dict[str, Any]], window: float, lead: float,
             clock_uncertainty: float) -> Observation:
    """The point from its clients: aggregate samples/s, each client's figures, their spread."""
    if (wrong := [c["k"] for c in clients if c["wrong"]]):
        raise ClientsError(f"client {wrong[0]} read back different data than the dataset")
    starts = [c["start"] - c["offset"] for c in clients]  # on this side's clock
    ends = [c["end"] - c["offset"] for c in clients]
    first, samples = min(starts), sum(c["samples"] for c in clients)
    wall = max(ends) - first
    rates = [c["samples"] / (e - s) for c, s, e in zip(clients, starts, ends)]
    per_client = [{"k": c["k"], "worker": c["worker"], "host": c["host"], "samples": c["samples"],
                   "reads": c["reads"], "samples_per_s": rate, "start_s": s - first, "end_s": e - first,
                   "read_bytes": c["read_bytes"], "path": c["path"], "verified": not c["wrong"],
                   "loadavg_before": c["loadavg_before"],
                   **{f"p{q}_s": c[f"p{q}_s"] for q in _PCTS},
                   **({"residency_before": c["residency_before"]} if "residency_before" in c else {})}
                  for c, rate, s, e in zip(clients, rates, starts, ends)]
    p50 = [c["p50_s"] for c in clients if c["p50_s"] is not None]
    p99 = [c["p99_s"] for c in clients if c["p99_s"] is not None]
    n = len(clients)
    extra = {"pattern": pattern, "clients": n, "hosts": sorted({c["host"] for c in clients}),
             "workers": [c["worker"] for c in clients], "per_client": per_client, "samples": samples,
             "wall_s": wall, "window_s": window, "lead_s": lead, "start_spread_s": max(starts) - first,
             "clock_uncertainty_s": clock_uncertainty,
             # one value per round (lists join over rounds): medians over clients, and the extremes
             "client_p50_s": [statistics.median(p50) if p50 else None],
             "client_p99_s": [statistics.median(p99) if p99 else None],
             "worst_client_p99_s": [max(p99) if p99 else None],
             "client_rate_spread": [max(rates) / min(rates) if min(rates) > 0 else None]}
    return Observation(clients_metric(pattern, n), [samples / wall], extra)
