"""Plan the units of a run, schedule them in interleaved rounds, and store each as it finishes.

A *unit* is (case, workload, cache) in one *round*. The runner never measures: every unit runs
in a worker through an `Executor` (`fmtbench.executor`; by default a fresh process per unit),
so no figure depends on what ran before it. Round r runs every unit once, in an order shuffled
with seed (seed, r), before round r + 1 starts: a slow minute of the machine spreads over all
cases instead of landing on one, and a figure's spread is between rounds (between processes),
not between back-to-back repeats. In each round the in-memory training baseline runs first, as
the reference that round's training units are checked against.

Before the rounds, every case's file is written once (untimed, in a worker); reads use that
file, and write units write a scratch copy beside it, so every round reads the same bytes.
Each unit-round stores its measurements (one value per metric: the median of its in-process
repeats), or its failure, then a "done" record; `resume=True` skips unit-rounds that are done
on the same data (digest), with the same figure settings and by the same code: every record
names its code and settings (`ResultStore.stamp`).
"""
from __future__ import annotations

import dataclasses
import os
import socket
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmtbench.clients import NEEDS_CLUSTER
from fmtbench.datasets._base import Dataset
from fmtbench.errors import FmtbenchError, UnknownNameError
from fmtbench.executor import DataRef, Executor, LocalExecutor, Outcome, Task, Unit
from fmtbench.formats import Adapter, missing_dependency
from fmtbench.formats._base import read_twins
from fmtbench import provenance
from fmtbench.profiles import Profile, figure_settings
from fmtbench.results import BASELINE, ResultStore
from fmtbench.workloads.checkpoint import is_checkpoint

WORKLOADS = ("write", "scan", "random", "train", "native", "readers", "clients", "checkpoint")
CACHES = ("warm", "cold")
_ORDER_SALT = 7919  # keeps the round order's random stream apart from the workloads' index streams


def check_workloads(names: Sequence[str]) -> tuple[str, ...]:
    """Validate workload names before any work starts."""
    for name in names:
        if name not in WORKLOADS:
            raise UnknownNameError("workload", name, WORKLOADS)
    return tuple(w for w in WORKLOADS if w in names)


@dataclass
class Plan:
    """The cases, workloads and caches of a run; `units()` lists them once (rounds repeat them).

    `checkpoints` are the checkpoint workload's cases (``checkpoint/<model>/<variant>``): no
    format, no file to prepare; they load both warm and cold, whatever `caches` says.
    """

    cases: list[Adapter]
    workloads: tuple[str, ...]
    caches: tuple[str, ...]
    checkpoints: Sequence[str] = ()

    def units(self) -> list[tuple[str, str, str]]:
        """Every (case, workload, cache) once. A case that differs from another planned case only
        in read-side options (HDF5's chunk cache) has no write unit: its file is the same bytes."""
        out = []
        for w in ("train", "native"):  # the in-memory baselines every pipeline is held to
            if w in self.workloads:
                out.append((BASELINE, w, "warm"))
        twins = read_twins(self.cases)
        for case in self.cases:
            twin = case.case_id in twins
            for w in (w for w in self.workloads if w != "checkpoint" and not (w == "write" and twin)):
                for c in (("n/a",) if w == "write" else ("warm",) if w in ("train", "native") else self.caches):
                    out.append((case.case_id, w, c))
        if "checkpoint" in self.workloads:
            out += [(case_id, "checkpoint", c) for case_id in self.checkpoints for c in CACHES]
        return out


def round_order(units: Sequence[tuple[str, str, str]], seed: int, rnd: int) -> list[tuple[str, str, str]]:
    """The order of round `rnd`: the baseline first, every other unit in a seeded shuffle."""
    first = [u for u in units if u[0] == BASELINE]
    rest = [u for u in units if u[0] != BASELINE]
    perm = np.random.default_rng([seed, _ORDER_SALT, rnd]).permutation(len(rest))
    return first + [rest[i] for i in perm]


class Runner:
    """Runs a Plan on one dataset into one ResultStore, unit by unit through an executor."""

    def __init__(self, dataset: Dataset, profile: Profile, store: ResultStore, data_dir: Path,
                 seed: int = 0, resume: bool = False, on_unit: Callable[[str], None] | None = None,
                 executor: Executor | None = None, on_note: Callable[[str], None] | None = None,
                 source: dict | None = None):
        self.ds, self.profile, self.store, self.seed = dataset, profile, store, seed
        self.data_dir = Path(data_dir)
        self.source = source  # how a cluster worker loads the dataset by name: {"name", "path", "n"}
        settings = store.use_settings(figure_settings(profile, seed))  # named in every record it stores
        self.code = provenance.code_id()
        self.done = store.done_keys(self.code, settings) if resume else set()
        self.on_unit = on_unit or (lambda label: None)
        self.on_note = on_note or (lambda label: None)
        self.executor = executor or LocalExecutor()
        self.baseline_digest: str | None = self._stored_baseline() if resume else None
        self._data: DataRef | None = None

    def _stored_baseline(self) -> str | None:
        """The in-memory baseline's weights digest from an earlier, resumed run of this dataset."""
        mine = (BASELINE, "epoch_s", self.ds.digest, self.code, self.store.stamp["settings"])
        for rec in reversed(self.store.records("measurement")):
            if (rec["case"], rec["metric"], rec["dataset_digest"], rec["code"], rec["settings"]) == mine:
                return rec["extra"].get("weights_digest")
        return None

    def _key(self, unit: Unit) -> tuple:
        """A unit-round as `ResultStore.done_keys` names it (of this runner's code and settings)."""
        return (unit.case, self.ds.name, self.ds.digest, unit.workload, unit.cache, unit.round)

    def _config(self, case_id: str) -> dict:
        """The case's full configuration, stored with each of its measurements."""
        from fmtbench.formats import get_case

        if is_checkpoint(case_id):
            from fmtbench.workloads.checkpoint import config

            return config(case_id)
        return {} if case_id == BASELINE else get_case(case_id).config

    def _path(self, case_id: str) -> Path:
        from fmtbench.formats import get_case

        return get_case(case_id).default_path(self.data_dir, "train")

    def task(self, unit: Unit) -> Task:
        """The task that runs `unit` on this runner's dataset, files and profile."""
        if self._data is None:
            from fmtbench.worker import save_dataset

            self._data = dataclasses.replace(save_dataset(self.ds, self.data_dir / "_dataset"), source=self.source)
        if is_checkpoint(unit.case):  # like the baseline, no case file: a folder it saves into
            # one folder per unit: a concurrent executor may run its warm and cold units at once
            scratch = self.data_dir / "checkpoints" / f"{unit.case.replace('/', '-')}-{unit.cache}"
            return Task(unit, self.profile, self.seed, self._data, None, str(scratch))
        baseline = unit.case == BASELINE
        path = None if baseline else self._path(unit.case)
        scratch = None if baseline else path.with_name(f"write-probe{path.suffix}")
        return Task(unit, self.profile, self.seed, self._data, None if path is None else str(path),
                    None if scratch is None else str(scratch), self.baseline_digest)

    def run(self, plan: Plan) -> None:
        """Prepare every case's file, then run `profile.rounds` interleaved rounds of every unit."""
        units = plan.units()
        skipped = {c.case_id: why for c in plan.cases if (why := missing_dependency(c.name))}

        def skip(case_id: str, w: str) -> str | None:  # clients run on a cluster's workers, one each
            alone = w == "clients" and not getattr(self.executor, "runs_clients", False)
            return skipped.get(case_id) or (NEEDS_CLUSTER if alone else None)

        for rnd in range(self.profile.rounds):
            for case_id, w, c in units:
                unit = Unit(case_id, w, c, rnd)
                if (why := skip(case_id, w)) and self._key(unit) not in self.done:
                    with self.store.unit():
                        self.store.add_skip(case=case_id, workload=w, cache=c, dataset=self.ds.name,
                                            reason=why, round=rnd, dataset_digest=self.ds.digest)
                        if case_id in skipped:  # not done for want of a cluster: --resume on one measures it
                            self.store.mark_done(case=case_id, workload=w, cache=c, dataset=self.ds.name,
                                                 round=rnd, dataset_digest=self.ds.digest)
                    self.on_unit(unit.label + " (skipped)")
        todo = [u for u in units if not skip(u[0], u[1])]
        broken = self.prepare({case_id for case_id, w, _ in todo
                               if case_id != BASELINE and w not in ("write", "checkpoint")})
        run_many = getattr(self.executor, "run_many", None)
        for rnd in range(self.profile.rounds):
            self.executor.begin_round(rnd)
            together = []
            for case_id, w, c in round_order(todo, self.seed, rnd):
                unit = Unit(case_id, w, c, rnd)
                if self._key(unit) in self.done:
                    self.on_unit(unit.label + " (done before)")
                elif case_id in broken and w != "write":
                    self._store(unit, Outcome(error=broken[case_id]))
                elif run_many is not None and case_id != BASELINE:  # the baseline first, alone
                    together.append(unit)
                else:
                    out = self.executor.run(self.task(unit))
                    self._stop_if_disk_full(out.error)
                    self._store(unit, out)
            # A concurrent executor (a cluster) runs the round's units at once and the round ends
            # when the last arrives; each is stored as it arrives.
            for task, out in run_many([self.task(u) for u in together]) if together else ():
                self._stop_if_disk_full(out.error)
                self._store(task.unit, out)

    def settle(self, undecided: Callable[[], tuple[list[tuple[str, str, str]], list[str]]], budget_s: float,
               max_extra: int = 6) -> dict:
        """Extra rounds for the units `undecided()` names (those behind undecided picks:
        `fmtbench.settle`), asked again after every round, until it names none, `budget_s`
        seconds are spent (checked before each unit) or `max_extra` rounds ran. Each extra round
        runs its units in a seeded shuffle and stores them as round ``profile.rounds + k``, marked
        ``extra.settle``. Returns what it did: rounds, unit-rounds, seconds, and the uses left
        undecided."""
        t0, done_units, rounds, uses = time.perf_counter(), 0, 0, []
        for k in range(max_extra):
            units, uses = undecided()
            if not units or time.perf_counter() - t0 >= budget_s:
                break
            rnd = self.profile.rounds + k
            self.executor.begin_round(rnd)
            ran = False
            for case_id, w, c in round_order(units, self.seed, rnd):
                unit = Unit(case_id, w, c, rnd)
                if self._key(unit) in self.done:
                    continue
                if time.perf_counter() - t0 >= budget_s:
                    break
                out = self.executor.run(self.task(unit))
                self._stop_if_disk_full(out.error)
                self._store(unit, out)
                done_units, ran = done_units + 1, True
            rounds += ran
        else:
            uses = undecided()[1]
        return {"rounds": rounds, "unit_rounds": done_units, "seconds": time.perf_counter() - t0,
                "undecided": uses}

    def _stop_if_disk_full(self, error: dict | None) -> None:
        stop_if_disk_full(error, self.store.path)

    def prepare(self, case_ids: set[str]) -> dict[str, dict]:
        """Write each case's file once (in a worker); the errors of those that could not be."""
        broken = {}
        missing = [case_id for case_id in sorted(case_ids) if not self._path(case_id).exists()]

        def one(case_id: str) -> tuple[Task, Outcome]:
            self.on_note(f"writing {case_id}")
            task = self.task(Unit(case_id, "prepare", "n/a"))
            return task, self.executor.run(task)

        run_many = getattr(self.executor, "run_many", None)
        written = run_many([self.task(Unit(c, "prepare", "n/a")) for c in missing]) if run_many and missing \
            else map(one, missing)
        for task, out in written:
            self._stop_if_disk_full(out.error)
            if out.error is not None:
                broken[task.unit.case] = out.error
        if missing:
            # Flush the new files' dirty pages now: written back during round 0 instead, they
            # slowed its units (measured: shuffled-training figures 10-30% low in round 0 only).
            os.sync()
        return broken

    def _store(self, unit: Unit, out: Outcome) -> None:
        """Store a unit-round's measurements (each metric's median over its repeats), or its error;
        once: a unit-round already done (an executor's retry) is not stored again."""
        if self._key(unit) in self.done:
            return
        common = dict(case=unit.case, workload=unit.workload, cache=unit.cache, dataset=self.ds.name,
                      round=unit.round, dataset_digest=self.ds.digest)
        host = out.state.get("host") or socket.gethostname()  # a cluster worker names its own
        with self.store.unit():
            if out.error is not None:
                self.store.add_failure(**common, error=out.error, host=host)
            for ob in out.observations:
                extra = ob.extra | {"inner": [ob.values], "machine": [out.state]}
                if unit.round >= self.profile.rounds:  # a settling round (Runner.settle)
                    extra["settle"] = [True]
                self.store.add_measurement(**common, metric=ob.metric, values=[statistics.median(ob.values)],
                                           extra=extra, config=self._config(unit.case), host=host)
                if unit.case == BASELINE and ob.metric == "epoch_s":
                    self.baseline_digest = ob.extra.get("weights_digest")
            self.store.mark_done(**common)
        self.done.add(self._key(unit))
        self.on_unit(unit.label)


def stop_if_disk_full(error: dict | None, store: Path) -> None:
    """A full disk is no property of a case: stop the run before the unit is stored as done
    (so --resume measures it again), with the worker's message and the way on."""
    if error is not None and error.get("type") == "DiskFullError":
        raise FmtbenchError(f"{error['message']}.\nEvery unit finished so far is saved in "
                            f"{store}: free space, then rerun the same command with --resume")


def measure_limits(executor: Executor, profile: Profile, scratch: Path, seed: int = 0) -> dict[str, dict]:
    """memcpy and page-cache read bandwidth, measured in a worker: what no reader can beat here."""
    scratch.mkdir(parents=True, exist_ok=True)
    out = executor.run(Task(Unit("machine", "limits", "warm"), profile, seed,
                            scratch=str(scratch / "limit-probe.bin")))
    if out.error is not None:  # e.g. no room for the probe file: the run goes on without limits
        return {"error": out.error["message"]}
    return {ob.metric: {"median": statistics.median(ob.values), "min": min(ob.values), "max": max(ob.values),
                        "n": len(ob.values)} for ob in out.observations}
