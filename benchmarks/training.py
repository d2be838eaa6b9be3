"""Shared-order training input: each case's pipeline against the in-memory baseline and a plain one.

Every pipeline feeds the same Keras model the identical seeded batch order (so all must end in
identical weights, which is checked), for `--epochs` whole epochs; the figure is the last
epoch's time (the first pays for thread pools and first touches) as a ratio to the in-memory
baseline's last epoch **in the same round**. Pipelines:

* ``memory``: ``from_tensor_slices`` over gathered arrays (`train_in_memory`), the baseline;
* ``<case>``: fmtbench's training input for the case (`Reader.tf_batches`: the adapter's own
  pipeline, reads ahead of the train step), as the `train` workload runs it;
* ``plain <case>``: the format's plain-library reference reader (``benchmarks/reference``)
  called through ``tf.numpy_function`` in the same tf.data shape, one batch per call, one call in
  flight, prefetched: what a user writes first without fmtbench.

Every run is its own fresh Python process (nothing carries over; what its imports left is frozen
out of the garbage collector's reach before training, as in fmtbench's zygote), rounds are
interleaved (round r runs every pipeline once in a seeded shuffled order), and the table quotes
the median ratio over rounds with its range.

    python -m benchmarks.training -c npy/ -c hdf5/ -c tfrecord/ --dataset fashion-mnist --rounds 5
"""
from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import click
import numpy as np

from benchmarks import child

BASELINE = "memory"


def _reference(case_id: str) -> Any:
    """The format's reference reader class, or None where the repo has none."""
    from benchmarks import reference

    mod = reference.module(case_id.split("/", 1)[0])
    return None if mod is None else mod.Reference


def _one(kind: str, case_id: str, path: str, dataset: str, model: str, epochs: int, seed: int) -> dict:
    """Train once in this process and return what it measured."""
    import keras  # noqa: F401  (imported before the freeze below, as in fmtbench's zygote)
    import tensorflow  # noqa: F401

    from fmtbench.datasets import load
    from fmtbench.formats import get_case
    from fmtbench.harness import freeze_imports
    from fmtbench.workloads.train import train_case, train_in_memory

    ds = load(dataset)
    freeze_imports()
    if kind == BASELINE:
        r = train_in_memory(ds.train, ds.test, model=model, epochs=epochs, seed=seed)
    elif kind == "case":
        with get_case(case_id).open(path) as reader:
            r = train_case(reader, ds.test, model=model, epochs=epochs, seed=seed)
    else:
        ref = _reference(case_id)(Path(path))
        try:
            r = train_case(_PlainReader(ref, ds.train), ds.test, model=model, epochs=epochs, seed=seed)
        finally:
            ref.close()
    return {"epoch_s": r.epoch_s, "wait": r.data_wait_share, "read": r.data_read_share,
            "digest": r.weights_digest, "pipeline": r.pipeline}


class _PlainReader:
    """Just enough of a Reader for `train_case`: the reference's read in the generic pipeline."""

    def __init__(self, ref: Any, like: Any):
        self._ref, self.image_shape, self.image_dtype = ref, like.image_shape, like.images.dtype
        self._n = len(like)

    def __len__(self) -> int:
        return self._n

    def tf_batches(self, batches: np.ndarray, probe: Any = None) -> Any:
        from fmtbench.formats._tfdata import indexed_batches

        def read(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            images, labels = self._ref.read(idx)
            return np.asarray(images, self.image_dtype), np.asarray(labels, np.int64)

        signature = ((self.image_dtype, (None, *self.image_shape)), (np.int64, (None,)))
        # what a user writes first: one batch per call, one call in flight, prefetched
        return indexed_batches(read, batches, signature, probe=probe, describe="plain reference read",
                               block=1, parallel=1)


def _spawn(kind: str, case_id: str, path: str, dataset: str, model: str, epochs: int, seed: int) -> dict:
    return child.run("benchmarks.training", [kind, case_id, path],
                     {"dataset": dataset, "model": model, "epochs": epochs, "seed": seed}, f"{kind} {case_id}")


def _spread(values: list[float]) -> str:
    if not values:
        return "–"
    return f"{statistics.median(values):.2f} [{min(values):.2f}, {max(values):.2f}]"


@click.command()
@click.option("--case", "-c", "patterns", multiple=True, default=("npy/", "hdf5/", "tfrecord/"), show_default=True)
@click.option("--dataset", default="fashion-mnist", show_default=True)
@click.option("--model", type=click.Choice(["mlp", "cnn"]), default="mlp", show_default=True)
@click.option("--epochs", type=click.IntRange(min=2), default=2, show_default=True)
@click.option("--rounds", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-plain", is_flag=True, help="Skip the plain-reference pipelines.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Also write every run here.")
@click.option("--one", default=None, hidden=True)
def main(patterns: tuple[str, ...], dataset: str, model: str, epochs: int, rounds: int, seed: int,
         no_plain: bool, json_out: str | None, one: str | None) -> None:
    """Shared-order training epochs: fmtbench's pipelines and plain ones against in-memory."""
    if one is not None:
        kind, case_id, path = json.loads(one)
        print(json.dumps(_one(kind, case_id, path, dataset, model, epochs, seed)))
        return
    from fmtbench.datasets import load
    from fmtbench.errors import FmtbenchError
    from fmtbench.formats import cases

    try:
        chosen = cases(list(patterns))
        ds = load(dataset)
    except FmtbenchError as exc:  # a bad pattern or dataset: one line naming the valid choices
        raise click.UsageError(str(exc)) from None
    runs: list[tuple[str, str, str]] = [(BASELINE, "", "")]
    with tempfile.TemporaryDirectory(prefix="fmtbench-training-") as tmp:
        for case in chosen:
            path = case.default_path(Path(tmp), "train")
            case.write(ds.train, path)
            runs.append(("case", case.case_id, str(path)))
            if not no_plain and _reference(case.case_id) is not None:
                runs.append(("plain", case.case_id, str(path)))
        results: dict[tuple[str, str], list[dict]] = {(k, c): [] for k, c, _ in runs}
        for rnd in range(rounds):
            order = [runs[0]] + [runs[1:][i] for i in np.random.default_rng([seed, rnd]).permutation(len(runs) - 1)]
            for kind, case_id, path in order:
                click.echo(f"round {rnd + 1}/{rounds}: {kind} {case_id}", err=True)
                results[(kind, case_id)].append(_spawn(kind, case_id, path, dataset, model, epochs, seed))
    base = results[(BASELINE, "")]
    click.echo(f"\nShared-order training, {model}, {epochs} whole epochs x {rounds} rounds on {dataset}; "
               f"last epoch, ratio to in-memory in the same round: median [min, max]\n")
    click.echo("| pipeline | epoch vs in-memory | last epoch s | data wait share | read share | weights |")
    click.echo("|---|---|---|---|---|---|")
    for (kind, case_id), rs in results.items():
        ratios = [r["epoch_s"][-1] / b["epoch_s"][-1] for r, b in zip(rs, base)]
        same = all(r["digest"] == base[0]["digest"] for r in rs)
        name = "in-memory tf.data" if kind == BASELINE else (case_id if kind == "case" else f"plain {case_id}")
        click.echo(f"| {name} | {_spread(ratios)} | {_spread([r['epoch_s'][-1] for r in rs])} | "
                   f"{_spread([r['wait'][-1] for r in rs if r['wait']])} | "
                   f"{_spread([r['read'][-1] for r in rs if r['read']])} | {'identical' if same else 'DIFFER'} |")
    if json_out:
        Path(json_out).write_text(json.dumps({f"{k} {c}".strip(): v for (k, c), v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
