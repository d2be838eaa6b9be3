"""Run profiles: how much data, which cases, how many repeats; `quick` for CI, `default`, `full`."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from fmtbench.errors import UnknownNameError


@dataclass(frozen=True)
class Profile:
    """Everything a profile decides; the CLI may override single fields."""

    name: str
    n: int | None  # training samples (None = the whole split)
    full_grid: bool  # every registered case, or the representative subset
    caches: tuple[str, ...]
    rounds: int  # interleaved rounds: every unit runs once per round, in a fresh worker
    repeats: int  # timed calls inside one unit-round; the round's value is their median
    write_repeats: int  # the same for writes, the slowest units (gzip9 ~25 s on 60k)
    warmup: int  # untimed calls inside one unit-round before its timed ones
    scan_batch: int
    random_singles: int  # K single-sample reads per repeat
    random_batches: int  # random batches per repeat
    random_batch_size: int
    train_model: str
    train_epochs: int
    train_steps: int | None  # steps per epoch (None = the whole split)
    train_batch: int
    native_steps: int
    # epochs trained before the timed ones and not reported (thread pools, pipeline start)
    train_warmup_epochs: int = 0
    # calibration (fmtbench.harness.measure): every timed value of write, scan and random lasts
    # at least this many seconds (a millisecond call is repeated, its mean per call the value)
    min_time: float = 0.0
    # the same for write units: a write ends in fsync, whose latency swings with the disk (an npy
    # write measured 61-154 ms across rounds), so a write value lasts longer
    write_min_time: float = 0.0
    # training units (train, native and their baselines) run pinned to this many CPUs (None: all);
    # see fmtbench.worker._pin for why
    train_cpus: int | None = 1
    # settling (fmtbench.settle): after the planned rounds, extra rounds of the units behind
    # undecided picks within this share of the planned rounds' time (0: none); --settle-budget
    settle_budget: float = 0.2
    # a unit (or a case file's preparation) still running after this many seconds is killed and
    # stored as a failure naming the limit; the run goes on (--unit-timeout)
    unit_timeout_s: float = 600.0
    sizes: tuple[int, ...] = ()  # synthetic scaling sizes (full profile)
    # the workloads `fmtbench run` measures when -w is not given
    workloads: tuple[str, ...] = ("write", "scan", "random", "train", "native")
    # readers workload: concurrent reader counts (among metrics.READER_COUNTS), the seconds every
    # point reads for (16 points and a fork-after-open probe per unit-round), the probe's readers
    readers_counts: tuple[int, ...] = (1, 2, 4, 8)
    readers_window_s: float = 0.25
    readers_fork_count: int = 2
    # clients workload (--cluster): counts of clients, one per worker, among metrics.CLIENT_COUNTS;
    # () = every such count up to the cluster's workers. Each point reads for readers_window_s.
    clients_counts: tuple[int, ...] = ()
    # checkpoint workload: its models and variants ("representative" or "all", see workloads.checkpoint)
    checkpoint_models: tuple[str, ...] = ("mlp", "cnn")
    checkpoint_grid: str = "representative"

    def as_dict(self) -> dict:
        return asdict(self)


# Budgets on a 2-core machine (every unit-round is a fresh worker, so a profile takes rounds of
# one warm-up and one timed call each, and the spread comes from the rounds):
# * quick (~9 min, 518 s measured for 30 cases): the representative cases on 4,000 samples, warm.
# * default (~36 min measured, 35:34 in a fresh clone): the representative cases on the whole dataset, warm AND cold for scan,
#   random and concurrent readers (1, 2, 4 readers: 8 only in full), training and streaming.
#   The whole grid warm (the old default: 70 cases took 34.3 min, 110 would take ~55) is the
#   `grid` profile. Slow tails are trimmed: a shuffled-training unit on 1024-row gzip chunks
#   under the default 1 MiB chunk cache took ~20 s at 100 steps, and 300 single reads from
#   one-row-group Parquet ~27 s; so 40 training steps, 60 streaming steps, 200 single reads.
#   A warm-up pass of 40 steps comes before the timed one (~12 s a round over 30 cases).
# * full: every case, both caches, 7 rounds, whole epochs, synthetic sizes to 1M, checkpoints.
PROFILES = {
    "quick": Profile("quick", n=4000, full_grid=False, caches=("warm",), rounds=3, repeats=3, write_repeats=1, warmup=1,
                     scan_batch=512, random_singles=200, random_batches=50, random_batch_size=64,
                     train_model="mlp", train_epochs=1, train_steps=None, train_batch=128, native_steps=20,
                     checkpoint_models=("mlp",), settle_budget=0.0),
    "default": Profile("default", n=None, full_grid=False, caches=("warm", "cold"), rounds=3, repeats=1,
                       write_repeats=1, warmup=1, scan_batch=1024, random_singles=200, random_batches=10,
                       random_batch_size=64, train_model="mlp", train_epochs=3, train_steps=40, train_batch=128,
                       native_steps=200, train_warmup_epochs=1, readers_counts=(1, 2, 4), min_time=0.1,
                       write_min_time=0.5,
                       workloads=("write", "scan", "random", "train", "native", "readers")),
    "grid": Profile("grid", n=None, full_grid=True, caches=("warm",), rounds=3, repeats=1, write_repeats=1,
                    warmup=1, scan_batch=1024, random_singles=200, random_batches=10, random_batch_size=64,
                    train_model="mlp", train_epochs=3, train_steps=40, train_batch=128, native_steps=200,
                    train_warmup_epochs=1, min_time=0.1, write_min_time=0.5),
    "full": Profile("full", n=None, full_grid=True, caches=("warm", "cold"), rounds=7, repeats=3, write_repeats=1, warmup=1,
                    scan_batch=1024, random_singles=2000, random_batches=50, random_batch_size=64,
                    train_model="mlp", train_epochs=2, train_steps=None, train_batch=128, native_steps=400,
                    train_warmup_epochs=1, min_time=0.1, write_min_time=0.5,
                    sizes=(10_000, 100_000, 1_000_000), readers_window_s=1.0,
                    checkpoint_grid="all", unit_timeout_s=3600.0,
                    workloads=("write", "scan", "random", "train", "native", "readers", "checkpoint")),
}


#: The Profile fields that shape a figure: how each unit is measured. A resumed run must have the
#: same (with the same seed), or its units are not the ones measured before.
FIGURE_FIELDS = ("repeats", "write_repeats", "warmup", "scan_batch", "random_singles", "random_batches",
                 "random_batch_size", "train_model", "train_epochs", "train_steps", "train_batch",
                 "native_steps", "train_warmup_epochs", "readers_counts", "readers_window_s",
                 "readers_fork_count", "clients_counts", "min_time", "write_min_time", "train_cpus")
#: The fields that choose which units run, not how: more rounds, workloads, caches, cases or
#: sizes is what a resumed run adds. `n` is in the dataset's digest, `name` in none of it.
#: Every field is in one of the two lists (tests/test_resume_safety.py checks).
SELECTION_FIELDS = ("name", "n", "full_grid", "caches", "rounds", "sizes", "workloads",
                    "checkpoint_models", "checkpoint_grid", "settle_budget", "unit_timeout_s")


def figure_settings(profile: Profile | dict, seed: int) -> dict:
    """What shapes every figure of a run besides the data and the code: the profile's
    FIGURE_FIELDS and the seed (index orders, training), as plain JSON values."""
    values = profile.as_dict() if isinstance(profile, Profile) else dict(profile)
    out = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items() if k in FIGURE_FIELDS}
    out["seed"] = seed
    return out


def settings_id(settings: dict) -> str:
    """A short stable hash of `figure_settings(...)`: what every store record names as ``settings``."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def settings_differ(old: dict, new: dict) -> list[str]:
    """The settings two runs differ in, as "name=old->new" (a field one of them lacks shows as '?')."""
    return [f"{k}={old.get(k, '?')}->{new.get(k, '?')}".replace(" ", "")
            for k in sorted(set(old) | set(new)) if old.get(k, "?") != new.get(k, "?")]


def get_profile(name: str) -> Profile:
    """The profile called `name`; an unknown name lists the valid ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownNameError("profile", name, PROFILES) from None
