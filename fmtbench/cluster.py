"""Run the units on a `dask.distributed` cluster: one unit per worker at a time, each in a fresh process.

The client (`DaskExecutor`) only plans and stores; every figure is taken on a worker by the same
`LocalExecutor` a local run uses, so each unit still runs in a fresh process forked from a zygote
that only imported the preamble, and a new zygote starts when a worker sees a new round.

* One unit per worker: workers declare the resource ``unit=1`` and every task asks for it, and
  the client keeps at most one unit in flight per worker, so two units never share a worker's
  cores and nothing queues where the scheduler could steal it.
* Files: paths are the client's ``--data-dir`` paths, read on each worker's own filesystem (a
  worker's ``FMTBENCH_DATA_DIR`` replaces that root). A case's units go to the worker that ran
  its first unit (its *home*), and never two of them at once: cold units evict the case's pages,
  which would disturb a warm unit of the same case next to them. A unit whose file is missing
  on its worker (a worker's own disk, a home lost to a dead worker) writes it first, untimed.
  On a shared ``--data-dir`` every file is written once and read by all.
* Data: each worker loads the dataset by name (`DataRef.source`) and checks its digest; a worker
  whose copy differs refuses the run. Code: each worker's provenance (`worker_info`: the same
  `provenance.collect()`, libraries of every format included) names its fmtbench; a worker of
  other code than the client's refuses the run (`other_code`), since records name the client's.
* Faults: a worker that dies takes only its unit in flight; the scheduler runs that unit again
  on another worker, and the runner stores every unit-round once.
* Many clients (`fmtbench.clients`): a clients unit runs after the round's other units, alone,
  with one client pinned to each of N workers.
"""
from __future__ import annotations

import dataclasses
import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any

from fmtbench.errors import FmtbenchError
from fmtbench.executor import DataRef, LocalExecutor, Outcome, Task, Unit, error_record

RESOURCE = "unit"
WORKER_COMMAND = "dask worker SCHEDULER --nthreads 1 --resources unit=1 --no-nanny"
_WAIT_S = 30.0  # how long to wait for a worker with the unit resource (at start, or after all died)
_worker: dict[str, Any] = {"executor": None, "round": None}  # per dask worker process


class DatasetMismatchError(FmtbenchError):
    """A worker's copy of the dataset differs from the client's (another digest)."""


# --- on the worker ---------------------------------------------------------------------------

def _host() -> str:
    return socket.gethostname()


def _worker_name() -> str:
    from distributed import get_worker

    try:
        return get_worker().address
    except ValueError:  # not in a dask worker (called directly)
        return f"{_host()}:{os.getpid()}"


def _local(path: str | None, client_root: str | None) -> str | None:
    """`path` under this worker's FMTBENCH_DATA_DIR instead of the client's data root, if set."""
    mine = os.environ.get("FMTBENCH_DATA_DIR")
    if path is None or not mine or not client_root or not path.startswith(client_root.rstrip("/") + "/"):
        return path
    return str(Path(mine) / Path(path).relative_to(client_root))


def localize_dataset(ref: DataRef) -> DataRef:
    """This worker's saved copy of `ref`'s dataset: saved once per digest, loaded by name and
    checked against the client's digest when missing (DatasetMismatchError when it differs)."""
    from fmtbench.worker import save_dataset

    stamp = Path(ref.folder) / "digest"
    if stamp.is_file() and stamp.read_text() == ref.digest:
        return ref
    if ref.source is None:
        raise DatasetMismatchError(f"worker {_worker_name()} ({_host()}) has no copy of dataset {ref.name!r} "
                                   f"in {ref.folder} and no way to load it by name")
    from fmtbench import datasets

    src = ref.source
    try:
        ds = datasets.load(src["name"], path=src.get("path"), n=src.get("n"))
    except FmtbenchError as exc:
        first = str(exc).splitlines()[0]
        raise DatasetMismatchError(f"worker {_worker_name()} ({_host()}) cannot load dataset "
                                   f"{src['name']!r}: {first}") from None
    if ds.digest != ref.digest:
        raise DatasetMismatchError(
            f"worker {_worker_name()} ({_host()}) refuses: its dataset {src['name']!r} "
            f"({ds.provenance}) has digest {ds.digest[:12]}, the client's is {ref.digest[:12]}; "
            f"give every worker the same copy (--dataset-path)")
    save_dataset(dataclasses.replace(ds, name=ref.name), Path(ref.folder))
    return ref


def _undo_nanny_environment(worker: Any = None) -> None:
    """Remove what a dask nanny put into this worker's environment, so units start as they would
    locally: MALLOC_TRIM_THRESHOLD_=65536 changes how glibc allocates batch buffers (an npy scan
    ran at 1.7M samples/s under it, 9.7M without), the thread caps change library parallelism,
    and a fixed PYTHONHASHSEED would stop the rounds from sampling the hash seed."""
    from distributed import get_worker

    try:
        nanny = (worker or get_worker()).nanny
    except ValueError:  # not in a dask worker
        return
    if not nanny:
        return
    import dask

    injected = {str(k): str(v) for k, v in (dask.config.get("distributed.nanny.pre-spawn-environ") or {}).items()}
    injected.setdefault("PYTHONHASHSEED", "6640")  # distributed's fixed seed for its workers
    for key, value in injected.items():
        if os.environ.get(key) == value:
            del os.environ[key]


def _executor(rnd: int, run: str | None = None, profile: object | None = None) -> LocalExecutor:
    """This worker's LocalExecutor, with a new zygote whenever the round (or the client's run) changes."""
    import multiprocessing

    if multiprocessing.current_process().daemon:
        raise FmtbenchError("this dask worker runs as a daemonic process, which may not start the unit's "
                            f"own process: start workers with `{WORKER_COMMAND}`, or set "
                            "DASK_DISTRIBUTED__WORKER__DAEMON=False where a nanny starts them")
    if _worker["executor"] is None:
        _undo_nanny_environment()
        _worker["executor"] = LocalExecutor()
    # the time limit travels with each task's profile (--unit-timeout)
    _worker["executor"].timeout_s = getattr(profile, "unit_timeout_s", None) if profile is not None else None
    if _worker["round"] != (run, rnd):
        _worker["executor"].begin_round(rnd)
        _worker["round"] = (run, rnd)
    return _worker["executor"]


def run_unit(task: Task, client_root: str | None = None, run: str | None = None) -> Outcome:
    """Run `task` on this dask worker in a fresh process; never raises. The outcome's state
    names the host and worker that measured it."""
    here = {"host": _host(), "worker": _worker_name()}
    try:
        data = task.data and dataclasses.replace(task.data, folder=_local(task.data.folder, client_root))
        task = dataclasses.replace(task, data=data, path=_local(task.path, client_root),
                                   scratch=_local(task.scratch, client_root))
        ex = _executor(task.unit.round, run, task.profile)
        if data is not None:
            localize_dataset(data)
        reads_file = task.unit.workload not in ("write", "prepare", "limits")
        if reads_file and task.path is not None and not Path(task.path).exists():
            made = ex.run(dataclasses.replace(task, unit=Unit(task.unit.case, "prepare", "n/a", task.unit.round)))
            if made.error is not None:
                made.state.update(here)
                return made
        out = ex.run(task)
    except Exception as exc:  # noqa: BLE001  (recorded as the unit's failure)
        out = Outcome(error=error_record(exc))
    out.state.update(here)
    return out


def worker_info(data_root: str | None, dask_worker: Any = None) -> dict[str, Any]:
    """Where this worker measures: its host's provenance and the process state of its units."""
    from fmtbench import provenance

    _undo_nanny_environment(dask_worker)
    root = os.environ.get("FMTBENCH_DATA_DIR") or data_root
    if root:
        Path(root).mkdir(parents=True, exist_ok=True)
    return {"host": _host(), "data_dir": root, "provenance": provenance.collect(data_dir=root),
            "executor": (_worker["executor"] or LocalExecutor()).describe()}


# --- on the client ---------------------------------------------------------------------------

def _lost(task: Task, exc: BaseException) -> Outcome:
    return Outcome(error={"type": "WorkerDied", "message": f"{task.unit.label}: {type(exc).__name__}: {exc}",
                          "traceback": ""})


class DaskExecutor:
    """Runs units on a dask.distributed cluster (an address, or ``local:N`` for a LocalCluster)."""

    name = "dask"
    runs_clients = True  # the clients workload: one client per worker (fmtbench.clients)

    def __init__(self, address: str, data_root: str | os.PathLike[str] | None = None):
        import dask
        from distributed import Client, LocalCluster

        self.address, self.data_root = address, None if data_root is None else str(data_root)
        self._cluster = None
        self._homes: dict[str, str] = {}  # case -> the worker that holds its file
        self._checked: set[str] = set()  # dataset digests every worker has confirmed
        self._run = uuid.uuid4().hex  # a worker starts a new zygote for each round of each run
        if address.startswith("local:"):
            try:
                n = int(address.split(":", 1)[1])
            except ValueError:
                n = 0
            if n < 1:
                raise FmtbenchError(f"--cluster {address}: write local:N with N >= 1 workers")
            with dask.config.set({"distributed.worker.daemon": False}):  # units start processes
                self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                             resources={RESOURCE: 1}, dashboard_address=None)
            self.client = Client(self._cluster)
        else:
            try:
                self.client = Client(address, timeout=10)
            except (OSError, TimeoutError) as exc:
                raise FmtbenchError(f"cannot reach the Dask scheduler at {address} ({type(exc).__name__}: "
                                    f"{exc}); start one with `dask scheduler`") from None
        self.workers(wait=_WAIT_S)

    def workers(self, wait: float = 0.0) -> list[str]:
        """Addresses of the workers that offer the unit resource (waiting up to `wait` s for one)."""
        deadline = time.monotonic() + wait
        while True:
            info = self.client.scheduler_info(n_workers=-1)["workers"]
            found = sorted(a for a, w in info.items() if (w.get("resources") or {}).get(RESOURCE, 0) >= 1)
            if found or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        if not found and wait:
            raise FmtbenchError(f"no Dask worker with the resource {RESOURCE}=1 at {self.address} after "
                                f"{wait:.0f} s; start workers with `{WORKER_COMMAND}` (--resume goes on "
                                f"where a run stopped)")
        return found

    def submit(self, task: Task, worker: str | None = None, pinned: bool = False):
        """Submit `task` to `worker` (only there when `pinned`: a client of a clients point)."""
        u = task.unit  # a readable key: the scheduler's logs and dashboard name the unit
        key = f"fmtbench {u.case} {u.workload} {u.cache} r{u.round} {uuid.uuid4().hex[:12]}"
        return self.client.submit(run_unit, task, self.data_root, self._run, key=key,
                                  resources={RESOURCE: 1}, pure=False,
                                  workers=None if worker is None else [worker], allow_other_workers=not pinned)

    def _check_data(self, tasks: Iterable[Task]) -> None:
        """Every worker loads each new dataset (by name) and confirms its digest, before any unit."""
        for ref in {t.data.digest: t.data for t in tasks if t.data is not None}.values():
            if ref.digest in self._checked:
                continue
            futures = [self.client.submit(_localize_on_worker, ref, self.data_root, workers=[w],
                                          allow_other_workers=True, resources={RESOURCE: 1}, pure=False)
                       for w in self.workers(_WAIT_S)]
            refusals = [r for r in self.client.gather(futures) if r]
            if refusals:
                raise DatasetMismatchError(refusals[0] + (f" (and {len(refusals) - 1} more workers)"
                                                          if len(refusals) > 1 else ""))
            self._checked.add(ref.digest)

    def run(self, task: Task) -> Outcome:
        """Run one task on some worker (the case's home, when it has one)."""
        return next(self.run_many([task]))[1]

    def run_many(self, tasks: list[Task]) -> Iterator[tuple[Task, Outcome]]:
        """Run `tasks`, at most one per worker and one per case at a time, in the order given
        where they can; yield each (task, outcome) as it finishes. Clients units come last, one
        at a time, each with the whole cluster to itself."""
        try:
            self._check_data(tasks)
            yield from self._run_many(tasks)
        except (OSError, CancelledError) as exc:  # the scheduler went away: nothing more is stored
            first = (str(exc).splitlines() or [""])[0].rstrip(":")
            raise FmtbenchError(f"lost the Dask scheduler at {self.address} ({type(exc).__name__}: {first}); "
                                f"every unit stored so far is kept: rerun with --resume") from None

    def _run_many(self, tasks: list[Task]) -> Iterator[tuple[Task, Outcome]]:
        from distributed import wait
        from distributed.scheduler import KilledWorker

        from fmtbench.clients import run_clients

        clients = [t for t in tasks if t.unit.workload == "clients"]
        pending, running = [t for t in tasks if t.unit.workload != "clients"], {}  # future -> (task, worker)
        lonely_since = None
        while pending or running:
            workers = self.workers()
            busy = {w for _, w in running.values()}
            cases = {t.unit.case for t, _ in running.values()}
            for w in (w for w in workers if w not in busy):
                pick = self._pick(pending, w, workers, cases)
                if pick is not None:
                    pending.remove(pick)
                    self._homes[pick.unit.case] = w
                    cases.add(pick.unit.case)
                    running[self.submit(pick, w)] = (pick, w)
            if not workers:  # all gone: the scheduler holds the units in flight until one comes back
                lonely_since = lonely_since or time.monotonic()
                if time.monotonic() - lonely_since > _WAIT_S:
                    self.workers(wait=1.0)  # raises, naming the command that starts a worker
            else:
                lonely_since = None
            if not running:
                time.sleep(0.2)
                continue
            try:  # wakes up every second to hand idle (and new) workers their next unit
                done, _ = wait(list(running), timeout=1.0, return_when="FIRST_COMPLETED")
            except TimeoutError:
                continue
            for fut in done:
                task, _ = running.pop(fut)
                try:
                    out = fut.result()
                except KilledWorker as exc:  # the unit took several workers down with it: a failure
                    out = _lost(task, exc)
                yield task, out
        for task in clients:
            yield task, run_clients(self, task)

    def _pick(self, pending: list[Task], worker: str, workers: list[str], running_cases: set[str]) -> Task | None:
        """The first pending task this idle worker should run: one of its own cases, else one of a
        case without a (live) home; never a case with a unit in flight."""
        for task in pending:
            home = self._homes.get(task.unit.case)
            if task.unit.case not in running_cases and (home == worker or home not in workers):
                return task
        return None

    def begin_round(self, rnd: int) -> None:
        pass  # each worker starts a new zygote when it first sees the round (run_unit)

    def describe(self) -> dict[str, Any]:
        workers = self.client.run(worker_info, self.data_root, workers=self.workers())
        if (why := other_code(workers)) is not None:
            raise FmtbenchError(why)
        return {"executor": self.name, "scheduler": self.address,
                "isolation": "one unit per dask worker at a time (resource unit=1); on the worker, one "
                             "fresh process per unit, forked from a zygote (a new one each round) that only "
                             "imported the preamble",
                "data_dir": self.data_root, "workers": workers}

    def close(self) -> None:
        """Disconnect (and stop a local:N cluster); the workers of an address keep running."""
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def other_code(workers: dict[str, dict[str, Any]]) -> str | None:
    """Why a worker may not measure for this client, when its fmtbench is other code than the
    client's (every record names the client's code, `provenance.code_id()`), else None."""
    from fmtbench import provenance

    mine = provenance.code_id()
    for address, info in sorted(workers.items()):
        theirs = ((info.get("provenance") or {}).get("code") or {}).get("id")
        if theirs != mine:
            return (f"worker {address} ({info.get('host')}) runs other code (fmtbench {theirs}, this client "
                    f"fmtbench {mine}): install the same fmtbench on every worker")
    return None


def _localize_on_worker(ref: DataRef, client_root: str | None) -> str | None:
    """The worker's refusal of the dataset, as one line, or None when its copy is the client's."""
    try:
        localize_dataset(dataclasses.replace(ref, folder=_local(ref.folder, client_root)))
    except FmtbenchError as exc:
        return str(exc)
    return None


def units_per_worker(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    """How many unit-rounds each worker (host:address) measured, from a store's measurement records."""
    seen: dict[tuple, str] = {}
    for rec in records:
        if rec.get("kind") == "measurement":
            machine = (rec.get("extra") or {}).get("machine") or [{}]
            key = (rec["case"], rec.get("dataset"), rec["workload"], rec["cache"], rec.get("round"))
            seen[key] = machine[-1].get("worker") or machine[-1].get("host") or rec.get("host") or "?"
    counts: dict[str, int] = {}
    for workers in seen.values():
        for worker in workers.split(","):  # a clients unit-round names each worker it ran on
            counts[worker] = counts.get(worker, 0) + 1
    return dict(sorted(counts.items()))


def hosts_table(paths: list) -> str:
    """Each figure's median per host, side by side (empty when one host measured everything)."""
    from fmtbench.reports.load import load

    by_key: dict[tuple, dict[str, float | None]] = {}
    for row in load(paths).rows:
        by_key.setdefault((row.case, row.workload, row.metric, row.cache), {})[row.host or "?"] = row.median
    hosts = sorted({h for per in by_key.values() for h in per})
    if len(hosts) < 2:
        return ""
    head = ["case", "workload", "metric", "cache", *hosts]
    lines = [[*key, *("-" if per.get(h) is None else f"{per[h]:.4g}" for h in hosts)]
             for key, per in sorted(by_key.items())]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    return "".join("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip() + "\n"
                   for line in [head, *lines])
