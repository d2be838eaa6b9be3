"""Timing: warm-up, repeats, and the resources each repeat used.

Inside the timed region (time.perf_counter just before and just after) is only the call
``fn()``: the workload, everything it allocates, and any garbage collection it triggers (GC
stays on, as in real training). What a collection costs is kept the call's own: a process that
measures first moves what its imports left (TensorFlow's ~300k objects) out of the collector's
reach (`freeze_imports`), else whichever call happens to trigger a full collection pays ~130 ms
for walking them. Outside it, per call: the ``before_each`` hook (cache eviction),
the residency check of ``files``, the reset of the peak-RSS mark and the reads of
/proc/self/io. Warm-up calls run the same hook but are neither timed nor recorded.

**Calibration** (`min_time`, as pyperf calibrates its loops): a value that lasts a few
milliseconds moves 20-40% between processes, so each repeat calls ``fn`` `loops` times, each call
after its own ``before_each`` (so a cold call stays cold, and the library caches start empty
every time), and its value is the mean time per call. `loops` is the fewest calls whose timed
seconds reach `min_time`: estimated from the warm-up call, then extended inside the first
repeat until the total is reached, and fixed for the other repeats (recorded as
``Measurement.loops``). A call that returns its own timed seconds (a loop that times only the
reads inside it) names them with ``timed=``.
"""
from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fmtbench import cache
from fmtbench.stats import Summary, summarize


@dataclass
class Measurement:
    """Seconds per repeat (summarized), what each call returned, and the resources it used."""

    seconds: Summary
    results: list[Any]
    #: memory each repeat added: its peak RSS (VmHWM, reset before the call) less the RSS just
    #: before the call, bytes. What the process held before is not the call's.
    peak_rss: list[int]
    #: False when the peak could not be reset: then peak_rss is the process-lifetime peak.
    peak_rss_reset: bool
    #: bytes this process fetched from storage during each repeat (/proc/self/io); None if unknown.
    read_bytes: list[int | None]
    #: page-cache residency of `files` right before each repeat (after before_each); [] without files.
    residency: list[float] = field(default_factory=list)
    #: calls per repeat (calibration): a repeat's seconds are the mean per call
    loops: int = 1
    #: what every call of each repeat returned (`results` holds each repeat's first)
    outputs: list[list[Any]] = field(default_factory=list)

    @property
    def peak_rss_bytes(self) -> int:
        """Most memory any repeat added above its starting RSS."""
        return max(self.peak_rss)


def freeze_imports() -> None:
    """Collect, then move every object alive now to the collector's permanent generation
    (`gc.freeze`): later full collections walk only what was made after, so a timed call is not
    charged for the imports. Call it once, in a process that has imported and set up what it
    measures and timed nothing yet (the zygote, a benchmark's child); a forked child inherits it."""
    gc.collect()
    gc.freeze()


def _read_bytes() -> int | None:
    return cache.io_counters().get("read_bytes")


MAX_LOOPS = 10_000  # calibration never calls fn more often than this per repeat


def loops_for(seconds: float | None, min_time: float) -> int:
    """The calls one value needs to last `min_time`, from one call's `seconds` (1 when unknown)."""
    if not min_time or not seconds or seconds <= 0:
        return 1
    return max(1, min(MAX_LOOPS, math.ceil(min_time / seconds)))


def measure(fn: Callable[[], Any], *, repeats: int, warmup: int = 1,
            before_each: Callable[[], Any] | None = None,
            files: cache.PathArg | Iterable[cache.PathArg] | None = None,
            min_time: float = 0.0, timed: Callable[[Any], float] | None = None) -> Measurement:
    """Call `fn` `warmup` times untimed, then `repeats` timed values of `loops` calls each (see
    Calibration above); `before_each` runs before every call.

    When `files` is given, their page-cache residency is checked after `before_each` and before
    each repeat's first call, so a cold run records that its files really were evicted.
    """
    if repeats < 1 or warmup < 0 or min_time < 0:
        raise ValueError(f"need repeats >= 1, warmup >= 0 and min_time >= 0, got {repeats}, {warmup} and {min_time}")
    file_list = None if files is None else list(cache.files(files))
    hook = before_each or (lambda: None)
    estimate = None
    for _ in range(warmup):
        hook()
        t0 = time.perf_counter()
        out = fn()
        estimate = timed(out) if timed is not None else time.perf_counter() - t0
    loops = loops_for(estimate, min_time)
    seconds: list[float] = []
    outputs: list[list[Any]] = []
    peaks: list[int] = []
    read: list[int | None] = []
    resident: list[float] = []
    reset_ok = True
    for rep in range(repeats):
        hook()
        if file_list is not None:
            resident.append(cache.residency(file_list))
        reset_ok = cache.reset_peak_rss() and reset_ok
        rss0 = cache.rss_bytes() or 0
        io0 = _read_bytes()
        total, outs = 0.0, []
        while True:
            t0 = time.perf_counter()
            out = fn()
            t1 = time.perf_counter()
            total += timed(out) if timed is not None else t1 - t0
            outs.append(out)
            more = len(outs) < loops or (rep == 0 and total < min_time and len(outs) < MAX_LOOPS)
            if not more:
                break
            hook()
        loops = len(outs)  # the first repeat fixes it for the rest
        io1 = _read_bytes()
        peaks.append(max(0, cache.peak_rss_bytes() - rss0))
        seconds.append(total / loops)
        outputs.append(outs)
        read.append(None if io0 is None or io1 is None else (io1 - io0) // loops)
    return Measurement(summarize(seconds), [o[0] for o in outputs], peaks, reset_ok, read, resident,
                       loops, outputs)


@dataclass(frozen=True)
class Overhead:
    """What the harness adds to a call: timed bias in seconds and as a fraction, plus bookkeeping."""

    harness: Summary
    raw: Summary
    #: median(harness) - median(raw): time the harness adds inside the timed figure (noise-level).
    seconds_per_call: float
    #: seconds_per_call / median(raw).
    fraction: float
    #: median wall time per measure() call spent outside the timed region (residency, RSS reset,
    #: /proc reads, summary): what a benchmark run pays, never part of a reported figure.
    bookkeeping_s: float
    #: median timed seconds of a no-op fn: the floor the timer itself puts in every figure.
    timer_floor_s: float


def harness_overhead(repeats: int = 30, n: int = 60_000, batch_size: int = 256,
                     seed: int = 0) -> Overhead:
    """Time one in-memory pass over an (n, 784) uint8 array, copying batches, via measure() and raw.

    Raw and harness timings alternate pass by pass, so drift in machine load hits both alike.
    """
    data = np.random.default_rng(seed).integers(0, 256, size=(n, 784), dtype=np.uint8)

    def one_pass() -> int:
        count = 0
        for i in range(0, n, batch_size):
            count += len(data[i:i + batch_size].copy())
        return count

    one_pass()
    raw: list[float] = []
    timed: list[float] = []
    outside: list[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        one_pass()
        raw.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        m = measure(one_pass, repeats=1, warmup=0)
        wall = time.perf_counter() - t0
        timed.append(m.seconds.values[0])
        outside.append(wall - m.seconds.values[0])
    raw_s, harness_s = summarize(raw), summarize(timed)
    bias = harness_s.median - raw_s.median
    floor = measure(lambda: None, repeats=100, warmup=0).seconds.median
    return Overhead(harness_s, raw_s, bias, bias / raw_s.median, summarize(outside).median, floor)
