"""Where units run: the executor seam, and the local executor that forks one fresh worker per unit.

A *unit* is one (case, workload, cache, round). The runner only plans, schedules and stores; an
`Executor` turns a `Task` (everything a unit needs, picklable) into an `Outcome` (observations,
or the error, plus the machine's state around the unit).

Why a process per unit: measured in one long process, a figure depended on what ran before it
(glibc's adaptive malloc/mmap thresholds left by earlier units decided whether batch buffers
were page-faulted: npy scans ran at 7.9M samples/s fresh and 19-21M/s after a training unit;
HDF5 shares one chunk cache between all handles to a file in a process; TensorFlow's thread
pools). `LocalExecutor` therefore forks every unit from one *zygote* process that has imported
the `PREAMBLE` and done nothing else (multiprocessing's forkserver with preloaded modules): each
unit starts from the same memory image, with the same imports and environment, and pays no
import time (``import tensorflow`` alone is ~3 s here; a fork is milliseconds). The zygote never
runs TensorFlow, so forking it is safe. `InlineExecutor` runs units in the calling process, for
tests that need to patch code and for debugging: its figures carry the process-state bias.

A script that drives `LocalExecutor` itself must guard its entry point with
``if __name__ == "__main__":``: the zygote imports the script's main module, as every
multiprocessing start method but fork does.
"""
from __future__ import annotations

import importlib.util
import multiprocessing
import os
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Protocol

from fmtbench.profiles import Profile
from fmtbench.workloads._base import Observation

#: What every worker has imported before its unit starts (those installed; the rest are skipped).
PREAMBLE = ("numpy", "h5py", "hdf5plugin", "pyarrow", "pyarrow.parquet", "pandas", "sqlite3",
            "tensorflow", "keras", "fmtbench.worker")
#: Environment variables that change how a worker computes or allocates, recorded in provenance.
_ENV_PREFIXES = ("MALLOC_", "OMP_", "MKL_", "OPENBLAS_", "TF_", "KMP_", "PYTHONHASHSEED", "HDF5_")
_TRACEBACK_LINES = 30


@dataclass(frozen=True)
class Unit:
    """One schedulable piece of measurement: a case, a workload, a page-cache state, a round."""

    case: str
    workload: str
    cache: str
    round: int = 0

    @property
    def label(self) -> str:
        return f"{self.case} {self.workload} {self.cache} r{self.round}"


@dataclass(frozen=True)
class DataRef:
    """A dataset saved as .npy arrays in `folder`, so a worker loads only the splits it needs."""

    folder: str
    name: str
    digest: str
    train_len: int
    # How to load it by name where `folder` holds no copy (a cluster worker): {"name", "path", "n"}
    source: dict[str, Any] | None = None


@dataclass(frozen=True)
class Task:
    """Everything a worker needs to run one unit."""

    unit: Unit
    profile: Profile
    seed: int
    data: DataRef | None = None
    path: str | None = None  # the case's file, read by scan/random/train/native
    scratch: str | None = None  # where a write unit writes (removed afterwards)
    baseline_digest: str | None = None  # the in-memory baseline's weights, for the train check


@dataclass
class Outcome:
    """What a unit produced: observations, or an error, and the machine's state around it."""

    observations: list[Observation] = field(default_factory=list)
    error: dict[str, str] | None = None  # {"type", "message", "traceback"}
    state: dict[str, Any] = field(default_factory=dict)


def error_record(exc: BaseException) -> dict[str, str]:
    """An exception as plain strings, so it crosses a process boundary intact."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {"type": type(exc).__name__, "message": str(exc),
            "traceback": "\n".join(tb.rstrip("\n").splitlines()[-_TRACEBACK_LINES:])}


class Executor(Protocol):
    """Runs tasks one at a time and describes the process state every unit starts from."""

    name: str

    def run(self, task: Task) -> Outcome: ...

    def begin_round(self, rnd: int) -> None: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...

    # Optional, for executors that run several units at once (`fmtbench.cluster.DaskExecutor`):
    # run_many(tasks) -> Iterator[tuple[Task, Outcome]], each pair as it finishes. The runner
    # uses it where present; without it, units run one at a time through run().


def _environment() -> dict[str, str]:
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(_ENV_PREFIXES)}


def _preamble() -> list[str]:
    return [m for m in PREAMBLE if importlib.util.find_spec(m.split(".")[0]) is not None]


class InlineExecutor:
    """Runs every unit in this process (tests, debugging): figures depend on what ran before."""

    name = "inline"

    def run(self, task: Task) -> Outcome:
        from fmtbench.worker import execute

        return execute(task)

    def begin_round(self, rnd: int) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "isolation": "none: every unit shares this process",
                "environment": _environment()}

    def close(self) -> None:
        pass


def _child(task: Task, conn: Any) -> None:
    from fmtbench.worker import execute

    conn.send(execute(task))
    conn.close()


class LocalExecutor:
    """A fresh worker process per unit, forked from a zygote that imported the preamble."""

    name = "local"

    def __init__(self, timeout_s: float | None = None):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before the zygote imports TensorFlow
        self._hash_seed = os.environ.get("PYTHONHASHSEED")  # the user's, if any, holds for every round
        self.timeout_s = timeout_s
        self.preamble = _preamble()
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(["fmtbench.preamble"])  # imports PREAMBLE, quietly

    def run(self, task: Task) -> Outcome:
        """Run `task` in a new worker; a worker that dies or hangs is an Outcome with an error."""
        recv, send = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=_child, args=(task, send), name=f"fmtbench {task.unit.label}")
        proc.start()
        send.close()  # the worker holds the only write end: its death is EOF here
        try:
            if recv.poll(self.timeout_s):
                return recv.recv()
            reason = (f"no result within the unit time limit of {self.timeout_s:g} s (--unit-timeout): killed"
                      if proc.is_alive() else "worker exited")
        except EOFError:
            reason = "worker exited"
        finally:
            recv.close()
            if proc.is_alive() and self.timeout_s is not None:
                proc.kill()
            proc.join()
        code = proc.exitcode
        died = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return Outcome(error={"type": "WorkerDied", "message": f"{task.unit.label}: {reason} ({died})",
                              "traceback": ""})

    def begin_round(self, rnd: int) -> None:
        """Start the round's units from a new zygote (a new exec, so a new address-space layout).

        Units forked from one zygote share its layout (ASLR places heap, libraries and stacks once
        per exec), and layout alone moves CPU-bound timings by several percent: with one zygote
        per run, every round shares that bias and the spread hides it; with one per round, the
        rounds sample it. The stdlib's forkserver is a per-process singleton; stopping it makes
        the next unit start a new one.
        """
        from multiprocessing import forkserver

        forkserver._forkserver._stop()
        # The hash seed shapes the zygote's heap too: with a random one per run, the memory a
        # write adds differed by 2% between two identical runs while each run's rounds agreed to
        # the page. Seeded by round, the rounds sample it and identical runs repeat it.
        os.environ["PYTHONHASHSEED"] = self._hash_seed or str(rnd + 1)

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name,
                "isolation": "one fresh process per unit, forked from a zygote (a new one each round) "
                             "that only imported the preamble",
                "start_method": "forkserver", "preamble": self.preamble, "python": sys.executable,
                "gc": "on; what the preamble's imports left is frozen out of its reach (gc.freeze in the zygote)",
                "hash_seed": self._hash_seed or "round + 1",
                "environment": _environment()}

    def close(self) -> None:
        pass  # the forkserver exits with this process


EXECUTORS = {"local": LocalExecutor, "inline": InlineExecutor}
