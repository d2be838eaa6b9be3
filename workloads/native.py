"""Streaming training: each format's own input pipeline into the same model, in its own order.

This answers "how fast can this format feed training when it streams?" (sequential reading
with a shuffle buffer, as most production pipelines read), where the shared-order `train`
workload answers "what does shuffled random-access training cost from it?". Not
order-identical: every pipeline shuffles its own way (shuffle buffers, shuffled blocks), so only
its throughput is comparable, reported as ``native_samples_per_s``.

The pipeline is the adapter's (`Adapter.native_dataset`, returning a
`fmtbench.formats._tfdata.Native`): TFRecord brings ``TFRecordDataset`` + ``parse_example``,
HDF5 shuffled blocks of whole chunks, and every other format the default, ``reader.scan``
through ``from_generator`` and a shuffle buffer over samples. Here they all end in the same
graph scale (`tf_scale`) -> ``prefetch`` and feed ``model.fit`` for a fixed number of steps;
the train step is traced beforehand. The in-memory baseline streams the same way from arrays
(`native_in_memory`): the bound every streaming figure is held to.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from fmtbench.workloads.train import batch_size_for, build_model, configure_tf, tf_scale

DEFAULT_BUFFER = 10_000  # samples in the shuffle buffer (about 8 MB of MNIST)
QUALITY_STEPS = 60  # batches whose order the shuffle-quality scores read (7,680 MNIST samples at 128)


def native_pipeline(case: Any, path: str | Path, *, model: str = "mlp",
                    batch_size: int | None = None, steps: int = 100, seed: int = 0,
                    shuffle_buffer: int = DEFAULT_BUFFER, threads: int | None = None,
                    truth: Any | None = None) -> dict[str, Any]:
    """Train `steps` steps from `case`'s streaming pipeline over `path`; samples/s and what ran.

    ``samples_per_s`` is the steady rate after the first step; ``first_step_s`` (pipeline
    start-up, shuffle-buffer fill, the first step) is reported apart. With `truth` (the split
    the file holds), ``shuffle`` scores the order the same pipeline delivers (`delivered`).
    """
    bs = _check(model, batch_size, steps)
    configure_tf(seed, threads)
    out = _fit(case.native_dataset(Path(path), bs, shuffle_buffer, seed), model, bs, steps, seed, shuffle_buffer)
    if truth is not None:
        out["shuffle"] = delivered(case.native_dataset(Path(path), bs, shuffle_buffer, seed), min(steps, QUALITY_STEPS),
                                   truth, seed)
    return out


def native_in_memory(split: Any, *, model: str = "mlp", batch_size: int | None = None, steps: int = 100,
                     seed: int = 0, shuffle_buffer: int = DEFAULT_BUFFER, threads: int | None = None) -> dict[str, Any]:
    """The streaming baseline: the same shuffle buffer and steps over arrays already in memory
    (``from_tensor_slices``), timed like every format's pipeline; none should outrun it."""
    import tensorflow as tf

    from fmtbench.formats._tfdata import Native

    bs = _check(model, batch_size, steps)
    configure_tf(seed, threads)

    def make() -> Native:
        ds = tf.data.Dataset.from_tensor_slices((split.images, split.labels)).repeat()
        ds = ds.shuffle(shuffle_buffer, seed=seed).batch(bs, drop_remainder=True)
        return Native(ds, tuple(split.image_shape), "from_tensor_slices(arrays) + shuffle buffer", lambda: None)

    out = _fit(make(), model, bs, steps, seed, shuffle_buffer)
    out["shuffle"] = delivered(make(), min(steps, QUALITY_STEPS), split, seed)
    return out


def delivered(native: Any, steps: int, truth: Any, seed: int) -> dict[str, Any]:
    """How shuffled the first `steps` batches of `native` are (`fmtbench.workloads.shuffle`),
    read untimed after the timed pass: the same pipeline and seed, so the same kind of order
    (the first `QUALITY_STEPS` batches: the shuffle buffer's start, where a stream is least mixed,
    weighs in as it does in a short epoch)."""
    from fmtbench.workloads.shuffle import quality

    try:
        images, labels = [], []
        for x, y in native.dataset.take(steps):
            images.append(x.numpy())
            labels.append(y.numpy())
    finally:
        native.close()
    return quality(np.concatenate(images), np.concatenate(labels), truth.images, truth.labels, seed)


def _check(model: str, batch_size: int | None, steps: int) -> int:
    if steps < 2:
        raise ValueError(f"native_pipeline needs at least 2 steps, got {steps}")
    return batch_size_for(model, batch_size)


def _fit(native: Any, model: str, bs: int, steps: int, seed: int, shuffle_buffer: int) -> dict[str, Any]:
    """Scale in the graph, prefetch, fit `steps` steps; the steady rate after the first step."""
    import tensorflow as tf

    try:
        cnn = model == "cnn" and len(native.image_shape) == 2
        ds = native.dataset.map(lambda x, y: (tf_scale(tf, x, cnn), tf.cast(y, tf.int64)),
                                num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
        net = build_model(model, native.image_shape, bs)
        stamps: list[float] = []
        net.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False,
                callbacks=[_clock(stamps)])
    finally:
        native.close()
    start, end = stamps[0], stamps[-1]
    first_end = stamps[1]
    return {"samples_per_s": segment_rates(stamps[1:], bs), "first_step_s": first_end - start,
            "seconds": end - start, "steps": steps, "batch_size": bs, "model": model, "seed": seed,
            "shuffle_buffer": shuffle_buffer, "pipeline": native.describe, "order_identical": False}


SEGMENTS = 4  # the steady steps are timed as this many equal segments: a round's value is their median


def segment_rates(stamps: list[float], batch_size: int, segments: int = SEGMENTS) -> list[float]:
    """Samples/s of each of `segments` equal runs of steps between step-begin `stamps` (the last
    is the pass's end): a stall in one segment (a buffer refill) moves one value, not the median."""
    steps = len(stamps) - 1
    k = max(1, min(segments, steps))
    cuts = [round(i * steps / k) for i in range(k + 1)]
    return [(cuts[i + 1] - cuts[i]) * batch_size / (stamps[cuts[i + 1]] - stamps[cuts[i]]) for i in range(k)]


def _clock(stamps: list[float]) -> Any:
    """A callback that appends the epoch start, the start of every step after the first (the
    first step's end is step 1's start) and the epoch end to `stamps`."""
    import keras

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            stamps.append(time.perf_counter())

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            if batch >= 1:
                stamps.append(time.perf_counter())

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            stamps.append(time.perf_counter())

    return Clock()
