"""Random-access workload: seeded single-sample reads (latency percentiles) and random batches.

Every case sees the same indices in the same order: they come from `numpy.random.default_rng`
seeded with (seed, purpose), never from the format. Within a batch, indices are read sorted
(the friendly case for chunked and paged layouts) and unsorted (what a shuffling loader asks).
The reader checks every index once, before any timing (`Reader.checked`); each timed call is
`Reader.fetch`, the format's read, and what it returned is checked right after, outside the
clock (`Reader.verified`): every read is checked, and a figure is the format's read alone.
"""
from __future__ import annotations

import time

import numpy as np

from fmtbench.formats import Reader
from fmtbench.harness import measure
from fmtbench.profiles import Profile
from fmtbench.stats import percentiles

from ._base import Hook, Observation, resources

_PCTS = {"random_p50_s": 50, "random_p95_s": 95, "random_p99_s": 99, "random_p999_s": 99.9}


def single_indices(n: int, k: int, seed: int) -> np.ndarray:
    """The K seeded sample indices every case reads one at a time."""
    return np.random.default_rng([seed, 1]).integers(0, n, size=k)


def batch_indices(n: int, batches: int, size: int, seed: int) -> list[np.ndarray]:
    """The seeded random batches (unsorted, without repeats inside a batch) every case reads."""
    rng = np.random.default_rng([seed, 2])
    return [rng.choice(n, size=min(size, n), replace=False) for _ in range(batches)]


def checked(reader: Reader, batches: list[np.ndarray]) -> list[np.ndarray]:
    """`batches` with their indices checked by the reader once, before any timing, so each
    timed read is `fetch`: a figure is the format's read."""
    return [reader.checked(b) for b in batches]


def checked_singles(reader: Reader, indices: np.ndarray) -> list[np.ndarray]:
    """Each of `indices` as its own 1-element array (what input pipelines pass), all checked
    by the reader in one call before any timing."""
    idx = reader.checked(indices)
    return [idx[k:k + 1] for k in range(len(idx))]


def _latencies(reader: Reader, singles: list[np.ndarray]) -> list[float]:
    fetch, verified, out = reader.fetch, reader.verified, []
    for one in singles:
        t0 = time.perf_counter()
        got = fetch(one)
        out.append(time.perf_counter() - t0)
        verified(got, 1)
    return out


def _batches(reader: Reader, batches: list[np.ndarray]) -> float:
    """Seconds spent in the reads (`fetch`) of `batches`, each checked (`verified`) untimed."""
    fetch, verified, clock, seconds = reader.fetch, reader.verified, time.perf_counter, 0.0
    for b in batches:
        t0 = clock()
        got = fetch(b)
        seconds += clock() - t0
        verified(got, len(b))
    return seconds


def run_random(reader: Reader, profile: Profile, seed: int, before_each: Hook = None) -> list[Observation]:
    """Latency percentiles of single reads, and samples/s of sorted and unsorted random batches."""
    n = len(reader)
    singles = checked_singles(reader, single_indices(n, profile.random_singles, seed))
    m = measure(lambda: _latencies(reader, singles), repeats=profile.repeats, warmup=profile.warmup,
                before_each=before_each, files=reader.path, min_time=profile.min_time, timed=sum)
    # every read of a repeat's calls: a value lasts min_time, the percentiles stand on all of it
    per_repeat = [percentiles(np.concatenate(outs), tuple(_PCTS.values())) for outs in m.outputs]
    extra = {"k": len(singles), **resources(m)}
    obs = [Observation(name, [p[pct] for p in per_repeat], extra) for name, pct in _PCTS.items()]

    unsorted = checked(reader, batch_indices(n, profile.random_batches, profile.random_batch_size, seed))
    for name, batches in (("batch_unsorted_samples_per_s", unsorted),
                          ("batch_sorted_samples_per_s", [np.sort(b) for b in unsorted])):
        m = measure(lambda: _batches(reader, batches), repeats=profile.repeats, warmup=profile.warmup,
                    before_each=before_each, files=reader.path, min_time=profile.min_time, timed=float)
        total = sum(len(b) for b in batches)
        obs.append(Observation(name, [total / s for s in m.seconds.values],
                               {"batches": len(batches), "batch_size": profile.random_batch_size,
                                **resources(m)}))
    return obs
