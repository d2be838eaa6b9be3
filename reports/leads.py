"""What the figures teach, in sentences drawn from this run's numbers: one lead per section, and the
list of what this run did not measure (with the option or profile that would)."""
from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from .analysis import OWN_SECTION, Frame, ratio
from .effects import Effect
from .load import BASELINE
from .recommend import value
from .units import times

WITHIN = 1.1  # "close to memory": at most this many times the in-memory pass time


def _fig(frame: Frame, case: str, metric: str) -> str:
    row = frame.get(case, metric)
    return value(row) if row and row.median is not None else "–"


def _effect_sentence(e: Effect, limit: int = 3) -> str:
    """'chunk contiguous → chunk64: ×2.20 slower scan, ×1.43 slower single reads'."""
    return f"{e.option} {e.old} → {e.new}: {', '.join(e.parts()[:limit])}"


def fronts(frame: Frame, charts: list[dict[str, Any]]) -> str:
    on = Counter(p["case"] for c in charts for p in c.get("front", []))
    drawn = sum(1 for c in charts if c.get("svg"))
    if not on:
        return ""
    top, n = on.most_common(1)[0]
    return (f"{len(on)} of {len(frame.cases())} cases sit on at least one of the {drawn} fronts; "
            f"{top} is on {n} of them. A case off every front is beaten on both axes of every chart by some "
            f"other case: keep it only for a reason these figures do not show.")


def hdf5(found: list[Effect]) -> str:
    """What HDF5's options did, from its card's effects (one sentence per option)."""
    es = list(found)
    if not es:
        return ""
    order = {"chunk": 0, "compression": 1, "shuffle": 2, "cache": 3}
    es.sort(key=lambda e: (order.get(e.option, 9), -len(e.pairs)))
    picked, seen = [], set()
    for e in es:
        if e.option not in seen:
            picked.append(_effect_sentence(e))
            seen.add(e.option)
    return "In this run, changing one HDF5 option at a time did this: " + "; ".join(picked) + "."


def training(frame: Frame) -> str:
    base = frame.median(BASELINE, "epoch_s")
    cases = [c for c in frame.cases() if frame.median(c, "epoch_s")]
    if not base or not cases:
        return ""
    vs = {c: frame.median(c, "epoch_s") / base for c in cases}
    close = sorted((c for c in cases if vs[c] <= WITHIN), key=vs.get)
    slow = max(cases, key=vs.get)
    wait = {c: frame.median(c, "data_wait_share") for c in cases if frame.median(c, "data_wait_share") is not None}
    waiting = sorted(c for c, w in wait.items() if w > 0.5)
    named = f" ({', '.join(close[:4])}{' …' if len(close) > 4 else ''})" if close else ""
    out = (f"A shuffled pass from memory takes {_fig(frame, BASELINE, 'epoch_s')}; {len(close)} of {len(cases)} "
           f"cases feed it within {WITHIN:g}× of that{named}, the slowest is {slow} at {times(vs[slow])}.")
    if waiting:
        out += (f" In {len(waiting)} cases the train step waits for data more than half the time: their reads, "
                f"not the model, set the pace.")
    stream = [c for c in frame.cases() if frame.median(c, "native_samples_per_s")]
    if stream and cases:
        both = [c for c in cases if c in stream and frame.median(c, "train_samples_per_s")]
        gains = {c: ratio(frame.median(c, "native_samples_per_s"), frame.median(c, "train_samples_per_s")) for c in both}
        gains = {c: g for c, g in gains.items() if g}
        if gains:
            g = max(gains, key=gains.get)
            out += (f" Streaming in the format's own order helps most where random access is costly: "
                    f"{g} streams {times(gains[g])} faster than it shuffles.")
    return out


def warm_cold(frame: Frame) -> str:
    metric = "random_p50_s"
    pairs = {c: (frame.median(c, metric, "warm"), frame.median(c, metric, "cold")) for c in frame.cases()}
    pairs = {c: (w, k) for c, (w, k) in pairs.items() if w and k}
    if not pairs:
        return ""
    f = {c: k / w for c, (w, k) in pairs.items()}
    worst, best = max(f, key=f.get), min(f, key=f.get)
    return (f"From storage instead of the page cache, a single-sample read costs a median {times(statistics.median(f.values()))} "
            f"more across {len(f)} cases: {times(f[best])} for {best}, {times(f[worst])} for {worst}. Cold figures are "
            f"what the first epoch of a dataset larger than memory sees.")


def damage(rows: list[dict[str, Any]], kinds: list[str]) -> str:
    if not rows:
        return ""
    parts = []
    for i, k in enumerate(kinds):
        caught = sum(1 for r in rows if r["cells"][i]["label"] != "not detected")
        parts.append(f"{caught} of {len(rows)} cases are sure to raise an error on a {k} file")
    return "; ".join(parts) + ". The rest can hand a training job wrong samples without a word."


def table(frame: Frame) -> str:
    rel = [(r.q3 - r.q1) / r.median for r in frame.rows if r.case != BASELINE and r.median and r.q1 is not None
           and r.q3 is not None and r.n >= 2 and r.workload not in OWN_SECTION]
    if not rel:
        return ""
    wide = sum(1 for x in rel if x > 0.2)
    return (f"{len(rel)} figures with a spread: their interquartile range is a median {statistics.median(rel):.1%} "
            f"of the figure; {wide} are wider than 20% (hover a cell for its interval; a ★ within such a spread "
            f"may be undecided, not a win).")


def leads(frame: Frame, ctx: dict[str, Any]) -> dict[str, str]:
    """The opening sentences of each section, '' where the run has nothing to say."""
    card = next((c for c in ctx["cards"] if c.fmt == "hdf5"), None)
    return {"fronts": fronts(frame, ctx["fronts"]), "hdf5": hdf5(card.effects if card else []),
            "training": training(frame),
            "warm_cold": warm_cold(frame), "damage": damage(ctx["damage"]["rows"], ctx["damage"]["kinds"]),
            "table": table(frame)}


#: The workloads a run can leave out: name, what it measures, and the option that runs it.
_WORKLOADS = (
    ("write", "conversion time and file size", "-w write"),
    ("scan", "sequential scans", "-w scan"),
    ("random", "random single reads and batches", "-w random"),
    ("train", "shuffled Keras training from each format", "-w train"),
    ("native", "streaming training through each format's own pipeline", "-w native"),
    ("readers", "1-8 concurrent readers (threads and processes)", "-w readers (default and full profiles)"),
    ("clients", "many clients at once on shared storage, one per cluster worker",
     "--cluster tcp://SCHEDULER:8786 -w clients (README: Running on a cluster)"),
    ("checkpoint", "Keras checkpoint save and load", "-w checkpoint (full profile)"),
)


def not_measured(frame: Frame, samples: int | None = None) -> list[dict[str, str]]:
    """What this run did not measure, each with how to measure it: workloads, cache states, cases
    and formats, then what no profile measures yet."""
    from fmtbench.formats import formats

    out = []
    workloads = {r.workload for r in frame.rows}
    for name, what, how in _WORKLOADS:
        if name not in workloads:
            out.append({"what": what, "why": "not in this run", "how": f"fmtbench run {how}"})
    caches = {r.cache for r in frame.rows} - {"n/a"}
    if "cold" not in caches:
        out.append({"what": "cold page cache (reads from storage, the first epoch of data larger than memory)",
                    "why": "this run read warm files only", "how": "fmtbench run --cache both"})
    measured = {c.split("/", 1)[0] for c in frame.cases()}
    missing = [f for f in formats() if f not in measured]
    if missing:
        out.append({"what": f"formats {', '.join(missing)}", "why": "no case of them in this run",
                    "how": "fmtbench run -c " + " -c ".join(f"'{f}'" for f in missing[:3])})
    rounds = max((r.n for r in frame.rows), default=0)
    if rounds and rounds < 5:
        out.append({"what": "narrow intervals", "why": f"{rounds} rounds per figure: many close picks stay undecided",
                    "how": "fmtbench run --rounds 7 (the full profile)"})
    out += [
        {"what": "network and object storage (NFS, S3, GCS)", "why": "files lived on this machine's "
         "local filesystem", "how": "point --data-dir at a mounted network filesystem; object stores are not "
         "supported yet"},
        {"what": "other data shapes and sizes", "why": f"one dataset: {frame.dataset}"
         + (f", {samples:,} samples" if samples else ""),
         "how": "-d synthetic --n N, or your own arrays: fmtbench.benchmark(images, labels) (README)"},
        {"what": "GPU training and larger models", "why": "training is a Keras MLP on the CPU; a GPU step is "
         "faster, so reads matter more", "how": "--model cnn on CPU; GPUs are not measured yet"},
    ]
    return out

