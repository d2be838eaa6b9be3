"""The `fmtbench` command line: list cases and datasets, convert, verify, run, report."""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import click
import numpy as np

from fmtbench.errors import FmtbenchError, FormatError, RunIncomplete
from fmtbench.profiles import PROFILES

DEFAULT_DATASET = "auto"

# TensorFlow's C++ log (graph-version notices at ERROR level among them) would bury the progress
# bar; real TF failures still surface as Python exceptions. A user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _load_dataset(name: str, path: str | None, n: int | None):
    """Load a dataset; `auto` is MNIST when reachable, else its offline stand-in Fashion-MNIST."""
    from fmtbench import datasets
    from fmtbench.errors import DatasetNotFoundError

    def load(which: str):
        try:
            return datasets.load(which, path=path, n=n)
        except ValueError as exc:  # the loaders' own checks of the data (shape, dtype, archive)
            if isinstance(exc, FmtbenchError):
                raise
            raise FmtbenchError(f"dataset {which!r}: {exc}") from exc

    if name != "auto":
        return load(name)
    try:
        return load("mnist")
    except DatasetNotFoundError as exc:
        looked = "; ".join(exc.looked) if exc.looked else str(exc).splitlines()[0]
        click.echo(f"note: MNIST is not reachable here, using Fashion-MNIST (same shape). "
                   f"Looked in: {looked}", err=True)
        return load("fashion-mnist")


def _dataset_options(fn):
    fn = click.option("--n", "n", type=click.IntRange(min=1), default=None,
                      help="Use only the first N training samples (quick runs).")(fn)
    fn = click.option("--dataset-path", "dataset_path", type=click.Path(), default=None,
                      help="Explicit file or folder for the dataset (mnist.npz, IDX folder, .npz/.npy/.h5).")(fn)
    fn = click.option("--dataset", "-d", default=DEFAULT_DATASET, show_default=True,
                      help="mnist, fashion-mnist, synthetic, arrays, or auto (MNIST, else Fashion-MNIST).")(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fmtbench")
def main() -> None:
    """Benchmark storage formats for ML training data.

    Writes one dataset through many format cases (every registered format across its grid of
    options, plugins included: see `fmtbench cases`), drives identical workloads through each,
    and reports the trade-offs. Run `fmtbench COMMAND --help` for each command.
    """


@main.command("cases")
@click.argument("patterns", nargs=-1)
@click.option("--representative", is_flag=True, help="Only the representative subset (the quick and default profiles, and the default tests).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--matrix", is_flag=True, help="The damage-detection matrix as a Markdown table (README's).")
def cases_cmd(patterns: tuple[str, ...], representative: bool, as_json: bool, matrix: bool) -> None:
    """List the registered cases (optionally matching PATTERNS such as 'hdf5/*gzip*'), with
    the damage each is sure to detect on read."""
    from fmtbench.formats import DAMAGE, broken, cases, formats, missing_dependency, origin

    found = cases(patterns or None, full=not representative)
    unloadable = {name: why for name in formats() if (why := broken(name))}
    if matrix:
        click.echo(detection_matrix(found))
        return
    # The adapters declare detection; this only shows it ("detected", "not detected" or
    # "detected with probability 1 - 2^-32"), with the check behind each entry.
    rows = [{"case": c.case_id, "format": c.name, "origin": origin(c.name), "config": c.config,
             "random_access": c.random_access, "missing": missing_dependency(c.name),
             "detects": {kind: c.detection(kind).label for kind in DAMAGE},
             "detected_by": {kind: c.detection(kind).by for kind in DAMAGE}} for c in found]
    if as_json:
        rows += [{"case": None, "format": name, "origin": origin(name), "missing": why}
                 for name, why in unloadable.items() if not patterns]
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    width = max(len(r["case"]) for r in rows)
    click.echo(f"{'case':<{width}}  {'random':<6}  damage detected on read")
    for r in rows:
        note = f"  [unavailable: {r['missing']}]" if r["missing"] else ""
        if r["origin"] != "built-in":
            note += f"  [{r['origin']}]"
        detects = ", ".join(f"{kind}: {label.replace('detected with probability ', 'p=')}"
                            for kind, label in r["detects"].items())
        click.echo(f"{r['case']:<{width}}  {r['random_access']:<6}  {detects}{note}")
    per_format: dict[str, int] = {}
    for r in rows:
        per_format[r["format"]] = per_format.get(r["format"], 0) + 1
    click.echo(f"\n{len(rows)} cases: " + ", ".join(f"{k} {v}" for k, v in per_format.items())
               + "\nrandom: native = the library seeks by itself; index = fmtbench builds a record index on open",
               err=True)
    for name, why in unloadable.items():
        click.echo(f"unavailable: {why}", err=True)


def detection_matrix(found) -> str:
    """Case x damage kind as a Markdown table: "detected", "not detected" or the probability."""
    from fmtbench.formats import DAMAGE

    def cell(label: str) -> str:
        return label.replace("detected with probability ", "")

    lines = ["| case | " + " | ".join(DAMAGE) + " |", "| --- |" + " --- |" * len(DAMAGE)]
    lines += [f"| `{c.case_id}` | " + " | ".join(cell(c.detection(k).label) for k in DAMAGE) + " |" for c in found]
    return "\n".join(lines)


@main.command("datasets")
def datasets_cmd() -> None:
    """List the datasets and say which are available on this machine, and from where."""
    from fmtbench import datasets

    for a in datasets.availability():
        mark = "yes" if a.available else "no "
        click.echo(f"{a.name:<14} {mark}  {a.where}")


def _progress(items, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="case", file=sys.stderr, dynamic_ncols=True,
                disable=None if sys.stderr.isatty() else False)


@main.command("convert")
@_dataset_options
@click.option("--case", "-c", "case_patterns", multiple=True, required=True,
              help="Case id or pattern (repeatable), e.g. 'hdf5/chunk1024-gzip4', 'parquet', 'all'.")
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True)
@click.option("--out", "out", type=click.Path(), required=True,
              help="Output file for one case; a folder (one subfolder per case) for several.")
@click.option("--verify/--no-verify", default=False, help="Read every file back and compare bit for bit.")
def convert_cmd(dataset: str, dataset_path: str | None, n: int | None, case_patterns: tuple[str, ...],
                split: str, out: str, verify: bool) -> None:
    """Write a dataset split through one or more cases."""
    from fmtbench.formats import cases, import_libraries, require

    chosen = cases(None if "all" in case_patterns else case_patterns)
    require({c.name for c in chosen})
    for name in sorted({c.name for c in chosen}):  # the per-case seconds time the write alone
        import_libraries(name)
    ds = _load_dataset(dataset, dataset_path, n)
    data = ds.split(split)
    click.echo(f"{ds.name}: {ds.provenance}; {split} {len(data)} x {data.image_shape}", err=True)
    single = len(chosen) == 1 and not Path(out).is_dir()
    targets = [Path(out) if single else case.default_path(out, split) for case in chosen]
    source = Path(dataset_path) if dataset_path else None
    for path in targets:  # before any write: the dataset must survive its own conversion
        if source is not None and path.exists() and source.exists() and os.path.samefile(path, source):
            raise click.UsageError(f"--out {path} is the dataset's own file (--dataset-path); "
                                   f"choose another output path")
    failures = 0
    bar = _progress(chosen, "convert")
    for case, path in zip(bar, targets):
        bar.set_postfix_str(case.case_id)
        t0 = time.perf_counter()
        info = case.write(data, path)
        seconds = time.perf_counter() - t0
        line = f"{case.case_id:<40} {seconds:8.2f} s  {info.nbytes / 2**20:9.2f} MiB  {path}"
        if verify:
            problem = _verify(case, path, data)
            failures += problem is not None
            line += "  verified" if problem is None else f"  MISMATCH: {problem}"
        bar.write(line)
    if failures:
        raise click.ClickException(f"{failures} case(s) failed verification")


def _verify(case, path: Path, data, batch_size: int = 4096, seed: int = 0) -> str | None:
    """None when the file holds exactly `data`, else a description of the first difference."""
    with case.open(path) as reader:
        if len(reader) != len(data):
            return f"{len(reader)} samples in file, {len(data)} expected"
        start = 0
        for images, labels in reader.scan(batch_size):
            stop = start + len(labels)
            bad = _first_difference(images, labels, data.images[start:stop], data.labels[start:stop])
            if bad is not None:
                return f"scan: sample {start + bad} differs"
            start = stop
        idx = np.random.default_rng(seed).integers(0, len(data), size=min(1000, len(data)))
        images, labels = reader.read(idx)
        bad = _first_difference(images, labels, data.images[idx], data.labels[idx])
        if bad is not None:
            return f"read: sample {int(idx[bad])} (position {bad} of a seeded random read) differs"
    return None


def _opens_as(path: Path, not_this: str) -> str | None:
    """The first other registered format whose default case opens `path`, or None."""
    from fmtbench.formats import adapter_class, formats, missing_dependency

    for name in formats():
        if name == not_this or missing_dependency(name):
            continue
        try:
            adapter_class(name)().open(path).close()
        except Exception:  # noqa: BLE001  (any failure means: not this format)
            continue
        return name
    return None


def _first_difference(images, labels, want_images, want_labels) -> int | None:
    """The first row whose bytes differ (byte-exact, so NaN pixels equal themselves), else None."""
    if images.shape != want_images.shape or images.dtype != want_images.dtype:
        return 0
    n = len(images)

    def raw(a):
        return np.ascontiguousarray(a).reshape(n, -1).view(np.uint8)

    rows = np.flatnonzero((raw(images) != raw(want_images)).any(axis=1) | (labels != want_labels))
    return int(rows[0]) if rows.size else None


@main.command("verify")
@_dataset_options
@click.option("--case", "-c", "case_id", required=True, help="The case id the file was written with.")
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True)
@click.argument("path", type=click.Path(exists=True))
def verify_cmd(dataset: str, dataset_path: str | None, n: int | None, case_id: str, split: str, path: str) -> None:
    """Check that PATH holds exactly the dataset split: full scan plus seeded random reads."""
    from fmtbench.formats import get_case, require

    case = get_case(case_id)
    require([case.name])
    data = _load_dataset(dataset, dataset_path, n).split(split)
    try:
        problem = _verify(case, Path(path), data)
    except FormatError as exc:
        if (other := _opens_as(Path(path), case.name)) is not None:
            raise FmtbenchError(f"{path} is not in {case.name} format: it opens as {other} "
                                f"(see `fmtbench cases {other}` for its case ids)") from exc
        raise
    if problem is None and (wrong := case.mismatches(Path(path))):
        problem = "the file was written with " + ", ".join(
            f"{option}={found!r}, not {asked!r}" for option, (asked, found) in wrong.items())
    if problem:
        raise click.ClickException(f"{path} does not match {case.case_id}: {problem}")
    click.echo(f"OK: {path} holds the {split} split exactly ({len(data)} samples, {case.case_id})")


@main.command("run")
@_dataset_options
@click.option("--cases", "-c", "case_patterns", multiple=True,
              help="Case ids or patterns (repeatable; default: the profile's cases); checkpoint ids "
                   "such as 'checkpoint/cnn/keras' or 'checkpoint/mlp/*' pick the checkpoint workload's.")
@click.option("--workloads", "-w", default=None,
              help="Comma-separated (default: the profile's): write, scan, random, train (shuffled training "
                   "in one shared seeded order), native (streaming training: each format's own pipeline), "
                   "readers (1-8 concurrent readers as threads and processes; default and full profiles), "
                   "clients (with --cluster: 1..N clients, one per worker, reading one file on shared "
                   "storage at once; aggregate samples/s and per-client latency), "
                   "checkpoint (Keras model save and load, warm and cold: .keras, .h5, .weights.h5, h5py "
                   "layouts; full profile).")
@click.option("--profile", "-p", "profile_name", type=click.Choice(list(PROFILES)),
              default="default", show_default=True,
              help="quick: representative cases on 4,000 samples, warm (minutes); default: representative "
                   "cases on the full dataset, warm and cold, concurrent readers, 3 rounds and settling (~36 min); grid: "
                   "every case, warm, 3 rounds; full: every case, both caches, 7 rounds, scaling sizes, "
                   "checkpoints. README has measured times.")
@click.option("--cache", type=click.Choice(["warm", "cold", "both"]), default=None,
              help="Page-cache state for reads (default: the profile's).")
@click.option("--results", "results_dir", type=click.Path(file_okay=False), default="results", show_default=True,
              help="Folder of the results store (results.jsonl) and, under data/, the case files.")
@click.option("--resume", is_flag=True, help="Skip units already finished in this results store (refused "
              "when its run measured other data, settings or code; more --rounds or -w is fine).")
@click.option("--rounds", type=click.IntRange(min=1), default=None,
              help="Interleaved rounds (default: the profile's): every unit runs once per round, each "
                   "time in a fresh worker; a figure's spread is between rounds.")
@click.option("--repeats", type=click.IntRange(min=1), default=None,
              help="Timed calls inside one unit-round (default: the profile's); the round's value is their median.")
@click.option("--executor", "executor_name", type=click.Choice(["local", "inline"]), default="local",
              show_default=True, help="local: a fresh worker process per unit (every figure from the same "
                                      "process state); inline: all in this process (debugging only).")
@click.option("--cluster", "cluster", default=None, metavar="ADDRESS",
              help="Run the units on a Dask cluster: a scheduler address (tcp://host:8786), or local:N "
                   "for N local workers. One unit per worker at a time; README: 'Running on a cluster'.")
@click.option("--clients", "clients", default=None, metavar="COUNTS",
              help="Client counts of the clients workload (-w clients, --cluster), comma-separated, "
                   "e.g. 1,2,4 (default: every count up to the cluster's workers).")
@click.option("--data-dir", "data_root", type=click.Path(file_okay=False), default=None,
              help="Where case files live (default: RESULTS/data). With --cluster, the path on every "
                   "worker: shared storage is written once and read by all.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every index order and of training.")
@click.option("--model", type=click.Choice(["mlp", "cnn"]), default=None,
              help="Model of the train workload (default: the profile's, mlp). cnn is the seed's "
                   "Conv2D 32-64-128 network: ~100x slower on CPU, so pair it with --train-steps.")
@click.option("--train-steps", type=click.IntRange(min=1), default=None,
              help="Limit training to this many steps per epoch.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default="reports/fmtbench-report.html",
              show_default=True, help="Where the HTML report of this run goes (CSV and JSON beside it).")
@click.option("--no-report", is_flag=True, help="Only measure; render later with `fmtbench report`.")
@click.option("--margin", type=click.FloatRange(min=0.1, max=50), default=5.0, show_default=True, metavar="PERCENT",
              help="Equivalence margin of every verdict: two figures within this many percent of each other "
                   "(at the interval's coverage) are 'equivalent' (docs/statistics.md).")
@click.option("--unit-timeout", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="Kill a unit still running after this long and store it as a failure; the run goes on "
                   "(default: the profile's, 600 s; full: 3600 s).")
@click.option("--settle-budget", type=click.FloatRange(min=0), default=None, metavar="SHARE",
              help="After the planned rounds, extra rounds of the units behind undecided picks, until each is "
                   "decided or this share of the planned rounds' time is spent (default: the profile's, 0.2; "
                   "quick: 0; 0 turns it off).")
def run_cmd(dataset: str, dataset_path: str | None, n: int | None, case_patterns: tuple[str, ...],
            workloads: str, profile_name: str, cache: str | None, results_dir: str, resume: bool,
            rounds: int | None, repeats: int | None, executor_name: str, cluster: str | None,
            data_root: str | None, clients: str | None, seed: int, model: str | None,
            train_steps: int | None, report_path: str, no_report: bool, margin: float,
            settle_budget: float | None, unit_timeout: float | None) -> None:
    """Measure write, scan, random access and training for every chosen case, then report.

    Results are appended to RESULTS/results.jsonl as each unit finishes; --resume continues
    an interrupted run. The report is one self-contained HTML page (see `fmtbench report`).
    """
    import dataclasses

    from fmtbench import provenance
    from fmtbench.executor import EXECUTORS
    from fmtbench.formats import cases
    from fmtbench.harness import harness_overhead
    from fmtbench.profiles import figure_settings, get_profile
    from fmtbench.results import ResultStore
    from fmtbench.runner import Plan, Runner, check_workloads, measure_limits
    from fmtbench.workloads.checkpoint import is_checkpoint
    from fmtbench.workloads.checkpoint import select as checkpoint_cases

    profile = get_profile(profile_name)
    if rounds:
        profile = dataclasses.replace(profile, rounds=rounds)
    if repeats:
        profile = dataclasses.replace(profile, repeats=repeats)
    if cache:
        profile = dataclasses.replace(profile, caches=("warm", "cold") if cache == "both" else (cache,))
    if model:
        profile = dataclasses.replace(profile, train_model=model, train_batch=50 if model == "cnn" else 128)
    if train_steps:
        profile = dataclasses.replace(profile, train_steps=train_steps)
    if settle_budget is not None:
        profile = dataclasses.replace(profile, settle_budget=settle_budget)
    if unit_timeout is not None:
        profile = dataclasses.replace(profile, unit_timeout_s=unit_timeout)
    caches = profile.caches
    chosen_workloads = check_workloads([w.strip() for w in workloads.split(",") if w.strip()]
                                       if workloads is not None else profile.workloads)
    ck_patterns = [p for p in case_patterns if is_checkpoint(p)]
    fmt_patterns = [p for p in case_patterns if not is_checkpoint(p)]
    if clients is not None:
        from fmtbench.clients import parse_counts

        if "clients" not in chosen_workloads:
            raise FmtbenchError("--clients sets the counts of the clients workload: add -w clients")
        profile = dataclasses.replace(profile, clients_counts=parse_counts(clients))
    if "clients" in chosen_workloads and not cluster:
        from fmtbench.clients import NEEDS_CLUSTER

        click.echo(f"note: clients units are skipped: {NEEDS_CLUSTER}", err=True)
    if ck_patterns and "checkpoint" not in chosen_workloads:
        raise FmtbenchError(f"{ck_patterns[0]} is a checkpoint case: add the workload (-w checkpoint)")
    # named cases come from the whole grid; without names, the profile's (whole or representative)
    chosen = (cases(fmt_patterns, full=True) if fmt_patterns else
              cases(None, full=profile.full_grid) if not ck_patterns else [])
    checkpoints = (checkpoint_cases(ck_patterns, profile) if "checkpoint" in chosen_workloads
                   and (ck_patterns or not fmt_patterns) else [])
    if "checkpoint" in chosen_workloads and not checkpoints:
        click.echo("note: -w checkpoint has nothing to do: its cases are Keras models, not formats; choose them "
                   "with -c 'checkpoint/mlp/*' (or -c 'checkpoint/*'), or name no case", err=True)
    idle = [w for w in chosen_workloads if w != "checkpoint"]
    if idle and not chosen:
        click.echo(f"note: -w {','.join(idle)} has nothing to do: no format case is chosen (only checkpoint "
                   f"cases); add format cases with -c (e.g. -c npy/ -c 'hdf5/*')", err=True)
    store = ResultStore(results_dir)  # fails now, before any work, if the folder is unwritable
    store.claim()  # and if another run is writing it
    if resume:
        store.done_keys()  # a corrupt store fails here, before this run appends anything to it
    ds = _load_dataset(dataset, dataset_path, n if n is not None else profile.n)
    settings = figure_settings(profile, seed)
    if resume:  # before any work: units of other data, settings or code are no part of this run
        store.check_resume(ds.name, ds.digest, settings)
    click.echo(f"{ds.name}: {ds.provenance}; train {len(ds.train)}, test {len(ds.test)}", err=True)
    machine = provenance.collect(data_dir=results_dir)
    overhead = harness_overhead(repeats=15)
    machine["harness_overhead"] = {
        "seconds_per_call": overhead.seconds_per_call, "fraction": overhead.fraction,
        "raw_pass_median_s": overhead.raw.median, "timer_floor_s": overhead.timer_floor_s,
        "bookkeeping_s": overhead.bookkeeping_s,
    }
    data_root = Path(data_root or Path(results_dir) / "data")
    if cluster:
        from fmtbench.cluster import DaskExecutor

        if executor_name != "local":
            raise click.UsageError("--cluster runs every unit in a fresh process on a worker: drop --executor")
        data_root = data_root.absolute()  # the same path on every worker
        executor = DaskExecutor(cluster, data_root)
        if "clients" in chosen_workloads and max(profile.clients_counts, default=0) > (k := len(executor.workers())):
            executor.close()
            raise FmtbenchError(f"--clients {clients}: the cluster has {k} workers with the resource unit=1, "
                                f"one per client: start more, or ask for fewer")
    else:
        executor = EXECUTORS[executor_name](**({"timeout_s": profile.unit_timeout_s} if executor_name == "local" else {}))
    machine["executor"] = executor.describe()
    machine["limits"] = measure_limits(executor, profile, data_root, seed)
    store.start_run(machine, argv=sys.argv, profile=profile.as_dict(), dataset=ds.name,
                    dataset_digest=ds.digest, settings=settings)
    # The main dataset through every chosen case; then (full profile) how costs grow with N,
    # on seeded synthetic data through the representative cases, without training.
    jobs = [(lambda: ds, Plan(chosen, chosen_workloads, caches, checkpoints))]
    scaling = tuple(w for w in chosen_workloads if w not in ("train", "checkpoint"))
    for size in profile.sizes if scaling else ():
        jobs.append((lambda size=size: dataclasses.replace(
            _load_dataset("synthetic", None, size), name=f"synthetic-{size}"),
            Plan(cases(None, full=False), scaling, caches)))
    from tqdm import tqdm

    total = sum(len(plan.units()) for _, plan in jobs) * profile.rounds
    # smoothing=0: the ETA from the mean rate since the start. Units differ 100-fold (a scan
    # ~0.5 s, a gzip training unit ~20 s) and each round visits them shuffled, so the mean is
    # stable where tqdm's moving average swung (4:58 to 51:04 in one run).
    with tqdm(total=total, desc=f"fmtbench {profile.name}", unit="unit", file=sys.stderr,
              dynamic_ncols=True, smoothing=0) as bar:
        def advance(label: str) -> None:
            bar.set_postfix_str(label[:60])
            bar.update(1)

        def note(label: str) -> None:
            bar.set_postfix_str(label[:60])

        for load, plan in jobs:
            data = load()  # one scaling dataset in memory at a time
            data_dir = data_root / f"{data.name}-{data.digest[:12]}"
            source = ({"name": ds.name if dataset == "auto" else dataset,
                       "path": dataset_path and str(Path(dataset_path).absolute()),
                       "n": n if n is not None else profile.n} if data is ds
                      else {"name": "synthetic", "path": None, "n": len(data.train)})
            runner = Runner(data, profile, store, data_dir, seed=seed, resume=resume, on_unit=advance,
                            executor=executor, on_note=note, source=source)
            t0 = time.perf_counter()
            runner.run(plan)
            if data is ds and profile.settle_budget > 0:
                _settle(runner, store, ds.name, margin / 100, profile.settle_budget * (time.perf_counter() - t0), bar)
            if data is not ds:
                shutil.rmtree(data_dir, ignore_errors=True)  # scaling files can be gigabytes
    click.echo(summary_table(store))
    if cluster:
        from fmtbench.cluster import hosts_table, units_per_worker

        click.echo("unit-rounds per worker: " + ", ".join(f"{w} {k}" for w, k in
                                                         units_per_worker(store.records()).items()))
        click.echo(hosts_table([store.path]) or "", nl=False)
        executor.close()
    click.echo(f"results: {store.path}", err=True)
    if data_root.is_dir() and not cluster:
        from fmtbench.atomic import path_size

        click.echo(f"data:    {data_root} ({path_size(data_root) / 2**20:,.0f} MiB of case files, kept for "
                   f"--resume and later runs; delete the folder to free the space)", err=True)
    if not no_report:
        from fmtbench.reports.render import write_report

        try:
            done = write_report([store.path], report_path, dataset=ds.name, argv=sys.argv, margin=margin / 100)
        except FmtbenchError as exc:
            raise FmtbenchError(f"{exc}\nThe measurements are saved: render them with "
                                f"`fmtbench report {store.folder} -o OTHER.html`") from exc
        click.echo(f"report:  {done.html} ({done.html_bytes / 1024:.0f} KiB)", err=True)
    mine = [r for r in store.records() if r.get("run_id") == store.run_id]
    failed = sum(r["kind"] == "failure" for r in mine)
    if failed:
        raise RunIncomplete(failed, sum(r["kind"] == "done" for r in mine), str(store.path))


def _settle(runner, store, dataset: str, margin: float, budget_s: float, bar) -> None:
    """Extra rounds for the units behind undecided picks (`fmtbench.settle`), within `budget_s`."""
    from fmtbench.settle import MAX_EXTRA, undecided_units

    def undecided():
        units, uses = undecided_units(store.path, dataset, margin)
        if units:
            bar.total += len(units)
            bar.set_postfix_str(f"settling {len(uses)} undecided pick{'s' * (len(uses) != 1)}")
        return units, uses

    done = runner.settle(undecided, budget_s, MAX_EXTRA)
    bar.total = bar.n  # what settling asked for but the budget did not run
    bar.refresh()
    if done["unit_rounds"]:
        left = f"; still undecided: {', '.join(done['undecided'])}" if done["undecided"] else "; every pick decided"
        click.echo(f"settling: {done['rounds']} extra round{'s' * (done['rounds'] != 1)}, {done['unit_rounds']} "
                   f"unit-rounds, {done['seconds']:.0f} s of a {budget_s:.0f} s budget{left}", err=True)


def _number(v: float) -> str:
    """A figure for a terminal: three significant digits, thousands separated, never an exponent."""
    a = abs(v)
    return f"{v:,.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}" if a >= 1 else f"{v:.3f}"


def summary_table(store) -> str:
    """A plain-text table of the main medians per case over the rounds (warm cache where measured, else cold)."""
    from fmtbench.reports.load import load

    results = load([store.path])
    rows: dict[str, dict[str, float]] = {}
    failures = []
    for row in results.rows:
        if row.workload == "checkpoint":
            continue  # a table of its own, below
        if row.metric == "epoch_s" and row.extra.get("weights_match_baseline") is False:
            failures.append(f"WEIGHTS DIFFER {row.case}: training through it did not reproduce "
                            f"the in-memory baseline's weights, so its batches were not identical")
        vals = rows.setdefault(row.case, {})
        if row.cache != "cold" or row.metric not in vals:  # warm wins where both ran
            vals[row.metric] = row.median
    for prob in results.problems:
        if prob.kind == "failure":
            failures.append(f"FAILED {prob.case} {prob.workload} {prob.cache}: {prob.reason}")
    cols = [("file_bytes", "size", "MiB", 2**-20), ("write_s", "write", "s", 1),
            ("scan_samples_per_s", "scan", "k/s", 1e-3), ("random_p50_s", "read p50", "µs", 1e6),
            ("random_p99_s", "read p99", "µs", 1e6), ("batch_unsorted_samples_per_s", "batches", "k/s", 1e-3),
            ("train_samples_per_s", "shuffled", "k/s", 1e-3), ("native_samples_per_s", "streaming", "k/s", 1e-3)]
    cols = [c for c in cols if any(c[0] in vals for vals in rows.values())]  # only what was measured
    width = max([len(c) for c in rows] + [4])
    lines = [f"{'case':<{width}} " + " ".join(f"{h:>10}" for _, h, _, _ in cols),
             f"{'':<{width}} " + " ".join(f"{u:>10}" for _, _, u, _ in cols)]
    for case, vals in rows.items():
        cells = [f"{_number(vals[k] * f):>10}" if vals.get(k) is not None else f"{'-':>10}" for k, _, _, f in cols]
        lines.append(f"{case:<{width}} " + " ".join(cells))
    if rows:
        lines.append("k/s: thousand samples per second; medians over rounds, warm page cache where measured; "
                     "shuffled and streaming: training")
    from fmtbench.reports.checkpoint import text_lines

    return "\n".join((lines if rows else []) + text_lines(results) + failures)


from fmtbench.reports.asv_history import asv_report_cmd  # noqa: E402  (both light to import)
from fmtbench.reports.cli import report_cmd  # noqa: E402

main.add_command(report_cmd)
main.add_command(asv_report_cmd)


class _Stopped(BaseException):
    """SIGTERM or SIGHUP, raised in the main thread so that every `finally` and atomic write
    cleans up (the default action would end the process with its temporary files left)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, frame: object) -> None:
    raise _Stopped(signum)


def _interrupted(how: str, code: int) -> None:
    hint = ("; every finished unit is saved: the same `fmtbench run` with --resume continues"
            if len(sys.argv) > 1 and sys.argv[1] == "run" else "")
    click.echo(f"{how}{hint}", err=True)
    sys.exit(code)


def run() -> None:
    """Entry point that turns fmtbench's own errors into one clear line and exit code 2."""
    import signal

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    try:
        main(standalone_mode=False)
    except _Stopped as stop:
        _interrupted(f"stopped by {signal.Signals(stop.signum).name}", 128 + stop.signum)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _interrupted("interrupted", 130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FormatError as exc:
        click.echo(f"error: corrupt or unreadable file: {exc}", err=True)
        sys.exit(2)
    except RunIncomplete as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.EXIT_CODE)
    except FmtbenchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    run()
