"""What runs inside a worker: one unit, from a task to an outcome.

Importing this module is the end of the preamble (see `fmtbench.executor.PREAMBLE`). A unit
starts with the case's file in one defined page-cache state:

* *warm*: evicted, then read once from start to end (`cache.warm`); the library's own caches
  start empty before every timed repeat and the warm-up.
* *cold*: evicted before every timed repeat and the warm-up, and checked non-resident (mincore).

Around the unit the worker records the machine's state: the load average before and after, and
the share of the machine's CPU that other processes used meanwhile (`/proc/stat` less this
worker's own CPU time), so a report can say which figures were taken on a busy machine.
"""
from __future__ import annotations

import gc
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fmtbench import cache as page_cache
from fmtbench.atomic import atomic_path, disk_full, remove
from fmtbench.datasets._base import Split
from fmtbench.executor import DataRef, Outcome, Task, error_record
from fmtbench.formats import Reader, get_case
from fmtbench.workloads._base import Observation

LIMIT_BYTES = 256 << 20  # memcpy and page-cache read limits: well past every CPU cache


def load_split(ref: DataRef, which: str) -> Split:
    """One split of a saved dataset, read fully into memory."""
    folder = Path(ref.folder)
    return Split(which, np.load(folder / f"{which}_images.npy"), np.load(folder / f"{which}_labels.npy"))


def save_dataset(ds, folder: Path) -> DataRef:
    """Save `ds`'s splits as .npy arrays in `folder` (once per digest) for workers to load."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "digest"
    if not stamp.is_file() or stamp.read_text() != ds.digest:
        stamp.unlink(missing_ok=True)  # the stamp goes last: a half-saved copy is never trusted
        for which in ("train", "test"):
            split = ds.split(which)
            for name, arr in ((f"{which}_images.npy", split.images), (f"{which}_labels.npy", split.labels)):
                with atomic_path(folder / name) as tmp, open(tmp, "wb") as fh:
                    np.save(fh, arr, allow_pickle=False)
        with atomic_path(stamp) as tmp:
            tmp.write_text(ds.digest)
    return DataRef(str(folder), ds.name, ds.digest, len(ds.train))


def _open(task: Task) -> Reader:
    reader = get_case(task.unit.case).open(task.path)
    if task.data is not None and len(reader) != task.data.train_len:
        found = len(reader)
        reader.close()
        raise RuntimeError(f"{task.path} holds {found} samples, expected {task.data.train_len}")
    return reader


def _cache_state(reader: Reader | None, path: str, cache: str) -> tuple[Callable[[], object], dict]:
    """Put `path` into the unit's page-cache state; return the hook to run before every call."""
    drop = reader.drop_caches if reader is not None else (lambda: None)
    if cache == "cold":
        def evict() -> float:
            drop()
            return page_cache.cold([path])

        return evict, {}
    drop()  # unmap first: pages mapped into this process survive eviction
    return drop, {"residency_after_warm": page_cache.warm([path])}


SAMPLE = 64  # seeded samples every reading unit checks against the dataset before it is timed


def check_content(reader: Reader, truth: Split, seed: int = 0) -> None:
    """Refuse a reader whose bytes differ from the dataset (a plugin that flips a bit passes the
    shape checks): `SAMPLE` seeded samples by `read` and the first batch of `scan` must equal the
    dataset's, before anything is timed; else a FormatError names the first sample that differs."""
    from fmtbench.errors import FormatError

    n = len(truth)
    idx = np.sort(np.random.default_rng([seed, 11]).choice(n, size=min(SAMPLE, n), replace=False))
    images, labels = reader.read(idx)
    batches = reader.scan(SAMPLE)
    try:
        first = next(iter(batches), None)
    finally:
        getattr(batches, "close", lambda: None)()  # a generator left open holds the reader's scan state
    for how, got, want in (("read", (images, labels), idx),
                           ("scan", first, np.arange(0 if first is None else len(first[1])))):
        if got is None:
            continue
        bad = [k for k, i in enumerate(want) if not (np.array_equal(got[0][k], truth.images[i])
                                                     and got[1][k] == truth.labels[i])]
        if bad:
            raise FormatError(reader.path, f"{how} returned sample {int(want[bad[0]])} with other bytes than the "
                                           f"dataset holds ({len(bad)} of {len(want)} checked differ): not measured")


def _with_reader(task: Task, body: Callable[[Reader, Callable[[], object]], list[Observation]]) -> list[Observation]:
    t0 = time.perf_counter()
    with _open(task) as reader:
        open_s = time.perf_counter() - t0
        if task.data is not None:
            check_content(reader, load_split(task.data, "train"), task.seed)
        hook, state = _cache_state(reader, task.path, task.unit.cache)
        obs = body(reader, hook)
    for ob in obs:
        ob.extra.update(state)
    if task.unit.workload == "random":
        obs.append(Observation("open_s", [open_s], {"random_access": reader.random_access,
                                                    "index_seconds": reader.index_seconds,
                                                    "index_bytes": reader.index_bytes}))
    return obs


def _prepare(task: Task) -> list[Observation]:
    """Write the case's file the reads use, unless it is there already (untimed)."""
    if not Path(task.path).exists():
        get_case(task.unit.case).write(load_split(task.data, "train"), task.path)
    return []


def _write(task: Task) -> list[Observation]:
    from fmtbench.workloads.write import run_write

    scratch = Path(task.scratch)
    try:
        return run_write(get_case(task.unit.case), load_split(task.data, "train"), scratch, task.profile)
    finally:
        remove(scratch)


def _scan(task: Task) -> list[Observation]:
    from fmtbench.workloads.scan import run_scan

    return _with_reader(task, lambda reader, hook: run_scan(reader, task.profile, hook))


def _random(task: Task) -> list[Observation]:
    from fmtbench.workloads.random import run_random

    return _with_reader(task, lambda reader, hook: run_random(reader, task.profile, task.seed, hook))


def _train_kwargs(task: Task) -> dict:
    p = task.profile
    return dict(model=p.train_model, epochs=p.train_epochs, batch_size=p.train_batch,
                steps_per_epoch=p.train_steps, seed=task.seed, warmup_epochs=p.train_warmup_epochs)


def _train(task: Task) -> list[Observation]:
    from fmtbench.workloads.train import train_case, train_in_memory, train_observations

    test = load_split(task.data, "test")
    if task.path is None:  # the in-memory baseline
        result = train_in_memory(load_split(task.data, "train"), test, **_train_kwargs(task))
        return train_observations(result, baseline=None)
    with _open(task) as reader:
        _cache_state(reader, task.path, task.unit.cache)
        result = train_case(reader, test, **_train_kwargs(task))
    return train_observations(result, baseline=task.baseline_digest)


def _readers(task: Task) -> list[Observation]:
    from fmtbench.workloads.readers import run_readers

    truth = load_split(task.data, "train")  # what every reader's batches are checked against
    evict, state = _cache_state(None, task.path, task.unit.cache)  # readers open after this
    obs = run_readers(get_case(task.unit.case), task.path, truth, task.profile, task.seed,
                      evict if task.unit.cache == "cold" else None)
    for ob in obs:
        ob.extra.update(state)
    return obs


def _client(task: Task) -> list[Observation]:
    """One client of a clients point (`fmtbench.clients`): its own handle, one shared start."""
    from fmtbench.clients import read_as_client

    truth = load_split(task.data, "train")
    with _open(task) as reader:
        hook, state = _cache_state(reader, task.path, task.unit.cache)
        obs = read_as_client(reader, task, truth, hook if task.unit.cache == "cold" else None)
    for ob in obs:
        ob.extra.update(state)
    return obs


def _checkpoint(task: Task) -> list[Observation]:
    from fmtbench.workloads.checkpoint import run_checkpoint

    return run_checkpoint(task.unit.case, load_split(task.data, "train"), Path(task.scratch), task.profile,
                          task.unit.cache, task.seed)  # it removes its folder


def _native(task: Task) -> list[Observation]:
    from fmtbench.workloads.native import native_in_memory, native_pipeline

    p = task.profile
    kwargs = dict(model=p.train_model, batch_size=p.train_batch, steps=p.native_steps, seed=task.seed)
    if task.path is None:  # the in-memory streaming baseline
        native, state = native_in_memory(load_split(task.data, "train"), **kwargs), {}
    else:
        _, state = _cache_state(None, task.path, task.unit.cache)
        native = native_pipeline(get_case(task.unit.case), task.path, truth=load_split(task.data, "train"), **kwargs)
    extra = {k: v for k, v in native.items() if k != "samples_per_s"} | state
    return [Observation("native_samples_per_s", native["samples_per_s"], extra)]


def _limits(task: Task, repeats: int = 5) -> list[Observation]:
    """What no reader can beat here: memcpy bandwidth and reading a warm file with read(2)."""
    src = np.ones(LIMIT_BYTES, dtype=np.uint8)
    dst = np.empty_like(src)
    copy = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        copy.append(LIMIT_BYTES / (time.perf_counter() - t0) / 1e6)
    path = Path(task.scratch)
    buf = bytearray(1 << 20)
    reads = []
    try:
        try:
            path.write_bytes(memoryview(src))
        except OSError as exc:
            if (full := disk_full(exc, path)) is not None:
                raise full from exc
            raise
        page_cache.warm(path)
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            with open(path, "rb", buffering=0) as fh:
                while fh.readinto(buf):
                    pass
            reads.append(LIMIT_BYTES / (time.perf_counter() - t0) / 1e6)
    finally:
        path.unlink(missing_ok=True)
    return [Observation("memcpy_mb_per_s", copy[1:], {"bytes": LIMIT_BYTES}),
            Observation("page_cache_read_mb_per_s", reads[1:], {"bytes": LIMIT_BYTES, "block": len(buf)})]


WORKLOADS: dict[str, Callable[[Task], list[Observation]]] = {
    "prepare": _prepare, "write": _write, "scan": _scan, "random": _random,
    "train": _train, "native": _native, "readers": _readers, "client": _client, "checkpoint": _checkpoint,
    "limits": _limits,
}


def _own_cpu() -> float:
    """CPU seconds of this worker and of the children it waited for (a readers unit's reader
    processes are the unit's own work, not another process's load)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def execute(task: Task) -> Outcome:
    """Run one unit; never raises: an error is part of the outcome."""
    load0, busy0, own0, t0 = os.getloadavg(), page_cache.machine_busy_seconds(), _own_cpu(), time.perf_counter()
    out = Outcome()
    pinned = _pin(task)
    try:
        out.observations = WORKLOADS[task.unit.workload](task)
        for ob in out.observations:
            if not ob.values:
                raise ValueError(f"{task.unit.label}: metric {ob.metric} produced no values")
    except Exception as exc:  # recorded; the run goes on
        out.observations, out.error = [], error_record(exc)
    wall, own, busy1 = time.perf_counter() - t0, _own_cpu() - own0, page_cache.machine_busy_seconds()
    others = None if busy0 is None or busy1 is None else max(0.0, (busy1 - busy0) - own)
    cores = os.cpu_count() or 1
    out.state = {"loadavg_before": load0[0], "loadavg_after": os.getloadavg()[0], "wall_s": wall,
                 "cpu_s": own, "others_cpu_share": None if others is None or wall <= 0 else others / (wall * cores),
                 "pid": os.getpid(), "zygote": os.getppid(),
                 # objects the zygote froze out of the collector's reach (0: not forked from one)
                 "gc_frozen": gc.get_freeze_count(), "cpus": pinned}
    return out


#: the units a profile's ``train_cpus`` pins: every training pipeline and its in-memory baseline
_TRAINING = ("train", "native")


def _pin(task: Task) -> list[int]:
    """Pin a training unit to `profile.train_cpus` CPUs before TensorFlow starts its threads
    (they inherit it, and TF sizes its pools by it); the CPUs the unit may use.

    Measured on this project's 2-vCPU machine: the same in-memory 40-step pass ran at 40-70k
    samples/s between fresh processes (within one process ±5%) with TF's threads spread over
    both CPUs, and at 80-90k pinned to one."""
    cpus = sorted(os.sched_getaffinity(0))
    want = getattr(task.profile, "train_cpus", None)
    if task.unit.workload in _TRAINING and want and want < len(cpus):
        cpus = cpus[:want]
        os.sched_setaffinity(0, cpus)
    return cpus
