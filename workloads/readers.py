"""Concurrent readers: aggregate samples/s and per-read latency with 1-8 readers, threads and processes.

Each point is (pattern, mode, n): n readers read at once for `profile.readers_window_s` seconds
from one synchronized start, and the point's value is the samples all of them read over the wall
time from the first start to the last finish. *random*: reader k reads batches of
`random_batch_size` from its own seeded permutations of the file (a shuffling loader's worker);
*scan*: reader k reads the k-th of n disjoint contiguous shards in batches of `scan_batch`
through `read` (a reader's `scan` has no start offset), until its shard or the window ends.
Every read is timed alone (per-read latency p50/p95/p99) and every reader checks its first
batch against the dataset, so a reader that returns wrong data fails the unit.

Handles: a *process* is forked before anything is opened and opens its own handle (the safe
pattern for every library). A *thread* opens its own handle too: the Reader contract promises
one call at a time from any thread, not concurrent calls on one handle, and no adapter documents
more. One reader crew (up to the largest count) serves every point of its mode; under a cold
cache every handle drops its caches and the file is evicted (and its residency recorded) before
each point.

The fork-after-open mistake (a loader that opens the file in `__init__`, then forks workers that
use the inherited handle) is measured too, with `readers_fork_count` processes verifying every
batch: a crash, an error, wrong data, a hang (killed after a grace period) or a slowdown against
handles opened after the fork is a *finding* in every observation's `extra`, never a failure of
the unit.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from fmtbench import cache as page_cache
from fmtbench.datasets._base import Split
from fmtbench.formats import Adapter, Reader
from fmtbench.metrics import READER_PATTERNS, readers_metric
from fmtbench.profiles import Profile
from fmtbench.stats import percentiles

from ._base import Observation

HANDLES = {"threads": "one per thread (the Reader contract allows one call at a time, not concurrent calls)",
           "processes": "one per process, opened after fork (forked before the parent opened anything)"}
SLOWER = 0.8  # a shared handle below this share of own handles' rate is a finding
_LEAD_S = 0.02  # the start every reader of a point waits for: time to hand out the work
_GRACE_S = 30.0  # beyond the window, how long a crew reader may take (opens that build an index) before it fails
_HANG_S = 10.0  # beyond the window, how long a child with an inherited handle may take before it counts as hung
_PCTS = (50, 95, 99)


@dataclass(frozen=True)
class Work:
    """What reader k of n reads in one point: seeded, the same for every case."""

    pattern: str
    n: int
    k: int
    size: int  # samples in the file
    batch_size: int
    seed: int
    # scan: read the shard again from its start when done (a sharded loader's next epoch), so a
    # client of fmtbench.clients reads for the whole window; readers read their shard once
    epochs: bool = False

    def batches(self) -> Iterator[np.ndarray]:
        """Index batches (int64, 1-D) in the order this reader asks for them."""
        if self.pattern == "scan":
            lo, hi = self.size * self.k // self.n, self.size * (self.k + 1) // self.n
            while True:
                for a in range(lo, hi, self.batch_size):
                    yield np.arange(a, min(a + self.batch_size, hi), dtype=np.int64)
                if not self.epochs or hi <= lo:
                    return
        rng = np.random.default_rng([self.seed, 12, self.n, self.k])
        bs = min(self.batch_size, self.size)
        while True:  # epochs of a shuffling loader: without repeats inside one
            perm = rng.permutation(self.size)
            for a in range(0, self.size - bs + 1, bs):
                yield perm[a:a + bs]


def read_window(reader: Reader, work: Work, t_go: float, window_s: float, truth: Split,
                check_all: bool = False) -> dict[str, Any]:
    """Wait for t_go, read `work`'s batches until the window or the work ends; what it did."""
    batches = work.batches()
    # Every index Work yields lies in [0, work.size): checking those once, untimed, stands for
    # the per-call index checks; each timed read is `fetch`, its output `verified` after the clock.
    reader.checked(np.arange(work.size))
    fetch, verified = reader.fetch, reader.verified
    if (delay := t_go - time.perf_counter()) > 0:
        time.sleep(delay)
    io0 = page_cache.io_counters().get("read_bytes")
    start = time.perf_counter()
    deadline = start + window_s
    lat: list[float] = []
    samples = wrong = 0
    first = None
    for idx in batches:
        t0 = time.perf_counter()
        got = fetch(idx)
        t1 = time.perf_counter()
        images, labels = verified(got, len(idx))
        lat.append(t1 - t0)
        samples += len(idx)
        if check_all:
            wrong += not _same(truth, idx, images, labels)
        elif first is None:
            first = (idx, images, labels)
        if t1 >= deadline:
            break
    end = time.perf_counter()
    io1 = page_cache.io_counters().get("read_bytes")
    if first is not None:
        wrong += not _same(truth, *first)
    return {"start": start, "end": end, "samples": samples, "latencies": np.asarray(lat), "wrong": wrong,
            "read_bytes": None if io0 is None or io1 is None else io1 - io0}


def _same(truth: Split, idx: np.ndarray, images: np.ndarray, labels: np.ndarray) -> bool:
    return np.array_equal(truth.labels[idx], labels) and np.array_equal(truth.images[idx], images)


def _member(case: Adapter, path: str, truth: Split, conn: Any) -> None:
    """A crew process: open its own handle after the fork, then serve commands until 'stop'."""
    try:
        reader = case.open(path)
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ok", len(reader)))
    with reader:
        while True:
            cmd, *args = conn.recv()
            if cmd == "stop":
                return
            try:
                if cmd == "drop":
                    reader.drop_caches()
                    conn.send(("ok", None))
                else:
                    conn.send(("ok", read_window(reader, *args, truth)))
            except Exception as exc:  # reported to the parent, which fails the unit
                conn.send(("error", f"{type(exc).__name__}: {exc}"))


class ProcessCrew:
    """`size` processes forked before anything is opened, each with its own reader handle."""

    mode = "processes"

    def __init__(self, case: Adapter, path: str, truth: Split, size: int):
        ctx = multiprocessing.get_context("fork")
        self.conns, self.procs = [], []
        for _ in range(size):
            here, there = ctx.Pipe()
            proc = ctx.Process(target=_member, args=(case, path, truth, there), daemon=True)
            with quiet_fork():
                proc.start()
            there.close()
            self.conns.append(here)
            self.procs.append(proc)
        try:
            for conn in self.conns:
                self._answer(conn, _GRACE_S)
        except BaseException:
            self.close()
            raise

    def _answer(self, conn: Any, timeout: float) -> Any:
        if not conn.poll(timeout):
            raise RuntimeError(f"a reader process gave no answer within {timeout:.0f} s")
        try:
            status, value = conn.recv()
        except EOFError:
            raise RuntimeError("a reader process died (its own handle, opened after fork)") from None
        if status != "ok":
            raise RuntimeError(f"a reader process failed: {value}")
        return value

    def drop(self) -> None:
        """Every handle drops its caches (and maps: a mapped page survives eviction)."""
        for conn in self.conns:
            conn.send(("drop",))
        for conn in self.conns:
            self._answer(conn, _GRACE_S)

    def run(self, works: list[Work], t_go: float, window_s: float) -> list[dict[str, Any]]:
        for conn, work in zip(self.conns, works):
            conn.send(("read", work, t_go, window_s))
        return [self._answer(conn, window_s + _GRACE_S) for conn in self.conns[:len(works)]]

    def close(self) -> None:
        for conn, proc in zip(self.conns, self.procs):
            try:
                conn.send(("stop",))
            except OSError:
                pass
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()
            conn.close()


class ThreadCrew:
    """`size` handles opened here, each read by its own thread during a point."""

    mode = "threads"

    def __init__(self, case: Adapter, path: str, truth: Split, size: int):
        self.case, self.path, self.truth, self.readers = case, path, truth, []
        self._open(size)

    def _open(self, size: int) -> None:
        try:
            for _ in range(size):
                self.readers.append(self.case.open(self.path))
        except BaseException:
            self.close()
            raise

    def drop(self) -> None:
        """Every handle closed, then opened again: no library cache and no mapped page left (a
        mapped page survives eviction). Dropping one handle at a time is not enough where a
        library shares one mapping among a process's handles (LMDB must: it unmaps only when the
        last handle closes, so the file stayed 100% cached before every cold point)."""
        size = len(self.readers)
        self.close()
        self.readers = []
        self._open(size)

    def run(self, works: list[Work], t_go: float, window_s: float) -> list[dict[str, Any]]:
        out: list[Any] = [None] * len(works)

        def one(k: int) -> None:
            try:
                out[k] = read_window(self.readers[k], works[k], t_go, window_s, self.truth)
            except Exception as exc:
                out[k] = exc

        threads = [threading.Thread(target=one, args=(k,), name=f"reader {k}") for k in range(len(works))]
        io0 = page_cache.io_counters().get("read_bytes")
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        io1 = page_cache.io_counters().get("read_bytes")
        for r in out:
            if isinstance(r, Exception):
                raise RuntimeError(f"a reader thread failed: {type(r).__name__}: {r}") from r
        # /proc/self/io counts every thread: each reader's own delta holds the others' reads too
        for k, r in enumerate(out):
            r["read_bytes"] = (None if io0 is None or io1 is None else io1 - io0) if k == 0 else 0
        return out

    def close(self) -> None:
        for reader in self.readers:
            reader.close()


def summarize_point(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One point from its readers' results: aggregate samples/s and per-read latency percentiles."""
    if any(r["wrong"] for r in results):
        raise RuntimeError(f"{sum(r['wrong'] for r in results)} batches read back different data")
    samples = sum(r["samples"] for r in results)
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    lat = np.concatenate([r["latencies"] for r in results])
    pct = percentiles(lat, _PCTS) if lat.size else {float(p): None for p in _PCTS}
    fetched = [r["read_bytes"] for r in results]
    return {"samples_per_s": samples / wall, "samples": samples, "wall_s": wall, "reads": int(lat.size),
            **{f"p{p}_s": pct[float(p)] for p in _PCTS},
            "read_bytes": None if None in fetched else sum(fetched)}


def _points(crew: ThreadCrew | ProcessCrew, profile: Profile, seed: int, size: int,
            cold: Callable[[], float] | None) -> list[Observation]:
    obs = []
    for pattern in READER_PATTERNS:
        bs = profile.random_batch_size if pattern == "random" else profile.scan_batch
        for n in profile.readers_counts:
            state: dict[str, Any] = {}
            if cold is not None:
                crew.drop()
                state["residency_before"] = [cold()]
            works = [Work(pattern, n, k, size, bs, seed) for k in range(n)]
            p = summarize_point(crew.run(works, time.perf_counter() + _LEAD_S, profile.readers_window_s))
            extra = {"pattern": pattern, "mode": crew.mode, "readers": n, "handles": HANDLES[crew.mode],
                     "batch_size": bs, "window_s": profile.readers_window_s, "reads": p["reads"],
                     "samples": p["samples"], "wall_s": p["wall_s"], "read_bytes": [p["read_bytes"]],
                     **{k: [p[k]] for k in ("p50_s", "p95_s", "p99_s")}, **state}
            obs.append(Observation(readers_metric(pattern, crew.mode, n), [p["samples_per_s"]], extra))
    return obs


def _fork_child(reader: Reader, work: Work, t_go: float, window_s: float, truth: Split, conn: Any,
                err: Any) -> None:
    # What a crashing library prints (Lance: a Rust panic and its backtrace) goes into the
    # finding, not onto the user's progress bar.
    os.dup2(err.fileno(), 2)
    try:
        conn.send(("ok", read_window(reader, work, t_go, window_s, truth, check_all=True)))
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))


@contextlib.contextmanager
def quiet_fork() -> Iterator[None]:
    """Fork without a library's every-fork warning on the terminal (Lance warns "not fork-safe"
    on any fork): the crew forks before anything is opened, and the fork-after-open finding is
    measured and recorded, not warned about."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not fork-safe", category=UserWarning)
        yield


def _first_words(err: Any, limit: int = 240) -> str:
    """The first lines a child wrote to its stderr file, on one line, at most `limit` characters."""
    err.seek(0)
    lines = [line.strip() for line in err.read().decode(errors="replace").splitlines() if line.strip()]
    text = " ".join(lines[:2])
    return text if len(text) <= limit else text[:limit - 1] + "…"


def fork_after_open(case: Adapter, path: str, truth: Split, profile: Profile, seed: int,
                    cold: Callable[[], float] | None, own_rate: float | None) -> tuple[dict[str, Any], float | None]:
    """Open here, read once, fork `readers_fork_count` children that use the inherited handle:
    the finding (outcome, detail) and their aggregate samples/s when they all worked."""
    n, window = profile.readers_fork_count, profile.readers_window_s
    finding: dict[str, Any] = {"readers": n}
    ctx = multiprocessing.get_context("fork")
    with case.open(path) as shared:
        shared.read(np.arange(min(2, len(shared)), dtype=np.int64))  # the parent used it: len, a peek
        if cold is not None:
            shared.drop_caches()
            cold()
        works = [Work("random", n, k, len(shared), profile.random_batch_size, seed) for k in range(n)]
        # threads the library started by now do not exist in the children (a lock they held stays held)
        finding["threads_at_fork"] = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None
        t_go = time.perf_counter() + 0.2  # forking a big parent takes a while
        pairs = []
        for work in works:
            here, there = ctx.Pipe()
            err = tempfile.TemporaryFile()
            proc = ctx.Process(target=_fork_child, args=(shared, work, t_go, window, truth, there, err),
                               daemon=True)
            with quiet_fork():
                proc.start()
            there.close()
            pairs.append((here, proc, err))
        results, problems = [], []
        deadline = time.perf_counter() + 0.2 + window + _HANG_S
        for here, proc, err in pairs:
            if here.poll(max(0.0, deadline - time.perf_counter())):
                try:
                    status, value = here.recv()
                    (results if status == "ok" else problems).append(value)
                except EOFError:
                    proc.join(5)
                    problems.append(f"crashed ({_exit(proc.exitcode)})")
            else:
                proc.kill()
                problems.append(f"hung (killed after {_HANG_S + window:.0f} s)")
            proc.join(5)
            here.close()
        said = [w for w in (_first_words(err) for _, _, err in pairs) if w]
        for _, _, err in pairs:
            err.close()
        if problems and said:
            problems.append(f"a child's stderr: {said[0]}")
        try:  # and the parent's handle, after children used it
            idx = np.arange(min(64, len(shared)), dtype=np.int64)
            parent_ok = _same(truth, idx, *shared.read(idx))
        except Exception as exc:
            parent_ok = False
            problems.append(f"the parent's handle failed afterwards: {type(exc).__name__}: {exc}")
    wrong = sum(r["wrong"] for r in results)
    rate = None
    if problems:
        finding["outcome"] = "crashed" if any(p.startswith("crashed") for p in problems) else (
            "hung" if any(p.startswith("hung") for p in problems) else "error")
        finding["detail"] = "; ".join(dict.fromkeys(problems))
    elif wrong or not parent_ok:
        finding["outcome"] = "wrong data"
        finding["detail"] = (f"{wrong} of {sum(len(r['latencies']) for r in results)} batches differed"
                             + ("" if parent_ok else "; the parent's handle read wrong data afterwards"))
    else:
        rate = summarize_point(results)["samples_per_s"]
        ratio = None if not own_rate else rate / own_rate
        finding["outcome"] = "slower" if ratio is not None and ratio < SLOWER else "ok"
        finding["detail"] = (f"{n} processes sharing a handle opened before fork: {rate:,.0f} samples/s"
                             + ("" if ratio is None else f", {ratio:.2f}x of handles opened after fork"))
        finding["ratio_to_own_handles"] = ratio
    return finding, rate


def _exit(code: int | None) -> str:
    return f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"


def run_readers(case: Adapter, path: str, truth: Split, profile: Profile, seed: int,
                cold: Callable[[], float] | None = None) -> list[Observation]:
    """Every (pattern, mode, count) point, then the fork-after-open finding added to each `extra`.

    `cold` (evict and return the file's residency) runs before every point when the cache is cold.
    """
    size = len(truth.labels)
    obs = _crew_points(ProcessCrew, case, path, truth, profile, seed, size, cold)  # before any thread
    n = profile.readers_fork_count
    own = next((o.values[0] for o in obs if o.metric == readers_metric("random", "processes", n)), None)
    finding, rate = fork_after_open(case, path, truth, profile, seed, cold, own)
    obs += _crew_points(ThreadCrew, case, path, truth, profile, seed, size, cold)
    for ob in obs:
        ob.extra["fork_after_open"] = [finding]
    if rate is not None:
        obs.append(Observation("readers_fork_after_open_samples_per_s", [rate],
                               {"readers": n, "fork_after_open": [finding]}))
    return obs


def _crew_points(crew_type: type[ThreadCrew] | type[ProcessCrew], case: Adapter, path: str, truth: Split,
                 profile: Profile, seed: int, size: int, cold: Callable[[], float] | None) -> list[Observation]:
    crew = crew_type(case, path, truth, max(profile.readers_counts))
    try:
        return _points(crew, profile, seed, size, cold)
    finally:
        crew.close()
