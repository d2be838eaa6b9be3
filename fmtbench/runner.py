"""Drive the workloads through every chosen case and append results as each unit finishes.

A *unit* is (case, workload, cache). Each unit's measurements are stored, then a "done" record;
`resume=True` skips units that are done, so an interrupted run goes on where it stopped.
A unit that raises is stored as a failure and the run goes on.

Every timed repeat (and warm-up) of a read workload starts with the reader's in-process caches
empty (`Reader.drop_caches`: the HDF5 chunk cache, SQLite's page cache, mapped pages). *warm*
means the operating system's page cache holds the file; *cold* evicts it as well. Without the
reset, a 64 MiB HDF5 chunk cache holds all of decoded MNIST after the warm-up and a "gzip scan"
would time memcpy, not gzip.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fmtbench import cache as page_cache
from fmtbench.datasets._base import Dataset
from fmtbench.errors import UnknownNameError
from fmtbench.formats import Adapter, Reader, missing_dependency
from fmtbench.profiles import Profile
from fmtbench.results import ResultStore
from fmtbench.workloads._base import Observation

WORKLOADS = ("write", "scan", "random", "train")
CACHES = ("warm", "cold")
BASELINE = "memory"  # the case id of the in-memory training baseline


def check_workloads(names: Sequence[str]) -> tuple[str, ...]:
    """Validate workload names before any work starts."""
    for name in names:
        if name not in WORKLOADS:
            raise UnknownNameError("workload", name, WORKLOADS)
    return tuple(w for w in WORKLOADS if w in names)


@dataclass
class Plan:
    """The units of a run, in execution order."""

    cases: list[Adapter]
    workloads: tuple[str, ...]
    caches: tuple[str, ...]

    def units(self) -> list[tuple[str, str, str]]:
        out = []
        if "train" in self.workloads:
            out.append((BASELINE, "train", "warm"))
        for case in self.cases:
            for w in self.workloads:
                for c in (("n/a",) if w == "write" else ("warm",) if w == "train" else self.caches):
                    out.append((case.case_id, w, c))
        return out


class Runner:
    """Runs a Plan on one dataset into one ResultStore."""

    def __init__(self, dataset: Dataset, profile: Profile, store: ResultStore, data_dir: Path,
                 seed: int = 0, resume: bool = False, on_unit: Callable[[str], None] | None = None):
        self.ds, self.profile, self.store, self.seed = dataset, profile, store, seed
        self.data_dir = Path(data_dir)
        self.done = store.done_keys() if resume else set()
        self.on_unit = on_unit or (lambda label: None)
        self.baseline_digest: str | None = self._stored_baseline() if resume else None

    def _stored_baseline(self) -> str | None:
        """The in-memory baseline's weights digest from an earlier, resumed run of this dataset."""
        for rec in reversed(self.store.records("measurement")):
            if (rec["case"], rec["metric"], rec["dataset_digest"]) == (BASELINE, "epoch_s", self.ds.digest):
                return rec["extra"].get("weights_digest")
        return None

    def _key(self, case_id: str, workload: str, cache: str) -> tuple:
        return (case_id, self.ds.name, workload, cache)

    def _unit(self, case_id: str, workload: str, cache: str, body: Callable[[], list[Observation]]) -> None:
        """Run one unit unless done; store its observations, or its failure, then mark it done."""
        label = f"{case_id} {workload} {cache}"
        if self._key(case_id, workload, cache) in self.done:
            self.on_unit(label + " (done before)")
            return
        common = dict(case=case_id, workload=workload, cache=cache, dataset=self.ds.name)
        try:
            observations = body()
            for ob in observations:
                if not ob.values:
                    raise ValueError(f"{label}: metric {ob.metric} produced no values")
        except Exception as exc:  # recorded, and the run goes on
            observations, failure = [], exc
        else:
            failure = None
        with self.store.unit():
            if failure is not None:
                self.store.add_failure(**common, error=failure)
            for ob in observations:
                self.store.add_measurement(**common, metric=ob.metric, values=ob.values,
                                           dataset_digest=self.ds.digest, extra=ob.extra)
            self.store.mark_done(**common)
        self.on_unit(label)

    def run(self, plan: Plan) -> None:
        """Execute every unit of `plan`."""
        if "train" in plan.workloads:
            self._unit(BASELINE, "train", "warm", self._train_baseline)
        for case in plan.cases:
            missing = missing_dependency(case.name)
            if missing:
                for cid, w, c in plan.units():
                    if cid == case.case_id and self._key(cid, w, c) not in self.done:
                        self.store.add_skip(case=cid, workload=w, cache=c, dataset=self.ds.name, reason=missing)
                        self.store.mark_done(case=cid, workload=w, cache=c, dataset=self.ds.name)
                        self.on_unit(f"{cid} {w} {c} (skipped)")
                continue
            self._run_case(case, plan)

    def _run_case(self, case: Adapter, plan: Plan) -> None:
        path = case.default_path(self.data_dir, "train")
        split = self.ds.train
        if "write" in plan.workloads:
            from fmtbench.workloads.write import run_write

            self._unit(case.case_id, "write", "n/a", lambda: run_write(case, split, path, self.profile))
        try:
            if not path.exists():  # resumed run, or write not asked for: reads need the file
                case.write(split, path)
            t0 = time.perf_counter()
            reader = case.open(path)
            if len(reader) != len(split):
                found = len(reader)
                reader.close()
                raise RuntimeError(f"{path} holds {found} samples, expected {len(split)}")
        except Exception as exc:  # every read unit of this case fails with the same cause
            for cid, w, c in plan.units():
                if cid == case.case_id and w != "write":
                    self._unit(cid, w, c, _raiser(exc))
            return
        open_s = time.perf_counter() - t0
        with reader:
            for cache in plan.caches:
                hook = self._cold_hook(reader, path) if cache == "cold" else reader.drop_caches
                if "scan" in plan.workloads:
                    from fmtbench.workloads.scan import run_scan

                    self._unit(case.case_id, "scan", cache, lambda: run_scan(reader, self.profile, hook))
                if "random" in plan.workloads:
                    from fmtbench.workloads.random import run_random

                    def body(hook=hook) -> list[Observation]:
                        obs = run_random(reader, self.profile, self.seed, hook)
                        index = {"random_access": reader.random_access,
                                 "index_seconds": reader.index_seconds, "index_bytes": reader.index_bytes}
                        return [*obs, Observation("open_s", [open_s], index)]

                    self._unit(case.case_id, "random", cache, body)
            if "train" in plan.workloads:
                self._unit(case.case_id, "train", "warm", lambda: self._train_case(case, reader, path))

    @staticmethod
    def _cold_hook(reader: Reader, path: Path) -> Callable[[], float]:
        def evict() -> float:
            reader.drop_caches()
            return page_cache.cold([path])

        return evict

    def _train_kwargs(self) -> dict:
        p = self.profile
        return dict(model=p.train_model, epochs=p.train_epochs, batch_size=p.train_batch,
                    steps_per_epoch=p.train_steps, seed=self.seed)

    def _train_baseline(self) -> list[Observation]:
        from fmtbench.workloads.train import train_in_memory

        result = train_in_memory(self.ds.train, self.ds.test, **self._train_kwargs())
        self.baseline_digest = result.weights_digest
        return train_observations(result, baseline=None)

    def _train_case(self, case: Adapter, reader: Reader, path: Path) -> list[Observation]:
        from fmtbench.workloads.train import native_pipeline, train_case

        result = train_case(reader, self.ds.test, **self._train_kwargs())
        obs = train_observations(result, baseline=self.baseline_digest)
        native = native_pipeline(case, path, model=self.profile.train_model,
                                 batch_size=self.profile.train_batch,
                                 steps=self.profile.native_steps, seed=self.seed)
        obs.append(Observation("native_samples_per_s", [native["samples_per_s"]],
                               {k: v for k, v in native.items() if k != "samples_per_s"}
                               | {"order_identical": False}))
        return obs


def _raiser(exc: BaseException) -> Callable[[], list[Observation]]:
    def body() -> list[Observation]:
        raise exc

    return body


def train_observations(result, baseline: str | None) -> list[Observation]:
    """Observations of a TrainResult; `extra` carries the weights digest and its check."""
    extra = {"weights_digest": result.weights_digest, "model": result.model, "epochs": result.epochs,
             "threads": result.threads,
             "batch_size": result.batch_size, "steps_per_epoch": result.steps_per_epoch,
             "weights_match_baseline": None if baseline is None else result.weights_digest == baseline}
    obs = [
        Observation("epoch_s", result.epoch_s, extra),
        Observation("train_samples_per_s", result.samples_per_s, extra),
        Observation("final_loss", [result.final_loss], extra),
        Observation("final_accuracy", [result.final_accuracy], extra),
    ]
    if result.data_wait_share:  # the in-graph baseline has no Python feeder to time
        obs.append(Observation("data_wait_share", result.data_wait_share,
                               extra | {"data_read_share": result.data_read_share}))
    return obs
