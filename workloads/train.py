"""The train workload: real Keras ``model.fit`` fed from a case's Reader, one seeded order for all.

This answers "what does shuffled random-access training cost from this format?" (the
`native` workload answers the streaming question). Epoch ``e`` uses
``np.random.default_rng([seed, e]).permutation(n)`` cut into full batches (the last partial one
dropped; ``steps_per_epoch`` keeps the first that many). A case feeds the reader's own tf.data
pipeline over all epochs' batches (`Reader.tf_batches`): by default each batch is
``reader.read(batch)`` inside ``tf.numpy_function`` on a tf.data thread, prefetched, so reads
overlap the train step (several in flight for thread-safe readers); TFRecord parses in the
graph, contiguous HDF5 gathers from its mapped bytes. Then the graph scale `tf_scale` and
``prefetch``. The in-memory baseline gathers the same permutation into
``from_tensor_slices(...).batch(...)``. With Keras/TF determinism on, every path ends with
byte-identical weights (``weights_digest``) for equal thread counts (1 and 2 intra-op threads
give other digests).

Timing: ``epoch_s`` is ``on_epoch_begin`` to ``on_epoch_end``; the step is traced on a zero
batch first (weights and optimizer state restored), so no epoch pays for tracing. The first
``warmup_epochs`` epochs are trained (and are part of the shared order and of the weights) but
not reported: a first epoch also pays for TensorFlow's thread pools, the pipeline's start and
first touches, which moved a 40-step pass from memory between 82 and 136 ms from run to run.
``data_wait_share``: per step ``batch ready - step begin`` (when the reader returned the batch,
from the pipeline's `Probe`, vs ``on_train_batch_begin``, floored at 0), summed, over
``epoch_s``: near zero when reads keep ahead of the model. ``data_read_share``: seconds inside
reader calls during the epoch over ``epoch_s`` (above 1 is possible with parallel reads).
Neither exists for the in-graph baseline (empty lists).
TensorFlow is imported inside functions only; ``threads`` applies only before TF initializes.
"""
from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fmtbench.datasets._base import Split
from fmtbench.errors import UnknownNameError

from ._base import Observation

MODELS = ("mlp", "cnn")
DEFAULT_BATCH = {"mlp": 128, "cnn": 50}


@dataclass
class TrainResult:
    """What one training run measured, per epoch, and the digest of its final weights."""

    source: str
    model: str
    epochs: int
    steps_per_epoch: int
    batch_size: int
    seed: int
    epoch_s: list[float] = field(default_factory=list)
    samples_per_s: list[float] = field(default_factory=list)
    data_wait_share: list[float] = field(default_factory=list)  # empty: not measurable
    data_read_share: list[float] = field(default_factory=list)
    final_loss: float = float("nan")
    final_accuracy: float = float("nan")
    weights_digest: str = ""
    threads: tuple[int, int] = (0, 0)  # (intra, inter) op threads; 0 is TF's default
    pipeline: str = ""  # the input pipeline, in words
    warmup_epochs: int = 0  # trained before `epochs`, untimed

    def drop_warmup(self) -> TrainResult:
        """Forget the warm-up epochs' figures (they were trained, and count in the weights)."""
        k = self.warmup_epochs
        self.epoch_s, self.samples_per_s = self.epoch_s[k:], self.samples_per_s[k:]
        self.data_wait_share, self.data_read_share = self.data_wait_share[k:], self.data_read_share[k:]
        return self


def epoch_batches(n: int, batch_size: int, epoch: int, seed: int,
                  steps_per_epoch: int | None = None) -> np.ndarray:
    """The (steps, batch_size) sample indices of `epoch`: one seeded permutation, full batches."""
    steps = n // batch_size if steps_per_epoch is None else min(steps_per_epoch, n // batch_size)
    if steps < 1:
        raise ValueError(f"{n} samples make no full batch of {batch_size}")
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return perm[: steps * batch_size].reshape(steps, batch_size)


def scale(images: np.ndarray, model: str) -> np.ndarray:
    """Integer pixels to float32 x / 255 (floats are taken as already in [0, 1]); a channel
    axis is added for the CNN. `tf_scale` is its graph twin."""
    x = images.astype(np.float32)
    if np.issubdtype(images.dtype, np.integer):
        x /= np.float32(255.0)
    return x[..., None] if model == "cnn" and x.ndim == 3 else x


def tf_scale(tf: Any, x: Any, cnn: bool) -> Any:
    """The graph twin of `scale`: the same IEEE float32 division, so the same bytes."""
    y = tf.cast(x, tf.float32) / tf.constant(255.0) if x.dtype.is_integer else tf.cast(x, tf.float32)
    return y[..., None] if cnn else y


def batch_size_for(model: str, batch_size: int | None) -> int:
    """`batch_size`, or the model's default (mlp 128, cnn 50); an unknown model lists the valid."""
    if model not in MODELS:
        raise UnknownNameError("model", model, MODELS)
    return int(batch_size or DEFAULT_BATCH[model])


def configure_tf(seed: int, threads: int | None = None) -> tuple[int, int]:
    """Seed everything and turn determinism on; set thread counts when TF is not yet running."""
    import keras
    import tensorflow as tf

    try:
        if threads is not None:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        warnings.warn(f"TensorFlow already initialized: cannot set threads={threads}", stacklevel=2)
    keras.backend.clear_session()  # drop earlier models (memory, layer names, traces)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    th = tf.config.threading
    return th.get_intra_op_parallelism_threads(), th.get_inter_op_parallelism_threads()


def build_model(model: str, image_shape: tuple[int, ...], batch_size: int) -> Any:
    """The compiled Keras model (Adam, sparse categorical crossentropy), traced and reset."""
    import keras
    from keras import layers

    shape = (*image_shape, 1) if model == "cnn" and len(image_shape) == 2 else tuple(image_shape)
    convs = [layers.Conv2D(f, 3, activation="relu") for f in (32, 64, 128)] if model == "cnn" else []
    net = keras.Sequential([keras.Input(shape), *convs, layers.Flatten(),
                            layers.Dense(128, activation="relu"), layers.Dense(10, activation="softmax")])
    net.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy",
                metrics=["accuracy"], jit_compile=False)
    _trace(net, shape, batch_size)
    return net


def _trace(net: Any, shape: tuple[int, ...], batch_size: int) -> None:
    """Trace the train step on one zero batch, then restore weights and optimizer state."""
    import tensorflow as tf

    net.optimizer.build(net.trainable_variables)
    weights = net.get_weights()
    opt_state = [v.numpy() for v in net.optimizer.variables]
    # A static batch dimension, as every pipeline gives (full batches only): one trace serves all.
    zeros = (np.zeros((batch_size, *shape), np.float32), np.zeros(batch_size, np.int64))
    net.fit(tf.data.Dataset.from_tensor_slices(zeros).batch(batch_size, drop_remainder=True), verbose=0,
            shuffle=False)
    net.set_weights(weights)
    for var, value in zip(net.optimizer.variables, opt_state):
        var.assign(value)


def weights_digest(net: Any) -> str:
    """sha256 over dtype, shape and bytes of every weight, in layer order."""
    h = hashlib.sha256()
    for w in net.get_weights():
        h.update(f"{w.dtype.str}{w.shape}".encode() + np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def epoch_timer(result: TrainResult, probe: Any | None = None) -> Any:
    """A callback that records epoch time and, with a pipeline `probe`, data wait and read share."""
    import keras

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.first = epoch * result.steps_per_epoch  # the global index of this epoch's batch 0
            self.begin: list[float] = []
            self.t0 = time.perf_counter()
            if probe is not None:
                probe.take_busy()  # reads done before this epoch (prefetch) are not its share

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            self.begin.append(time.perf_counter())

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            dt = time.perf_counter() - self.t0
            result.epoch_s.append(dt)
            result.samples_per_s.append(len(self.begin) * result.batch_size / dt)
            if probe is not None:
                ready = probe.ready
                wait = sum(max(0.0, ready.get(self.first + b, b0) - b0) for b, b0 in enumerate(self.begin))
                result.data_wait_share.append(wait / dt)
                result.data_read_share.append(probe.take_busy() / dt)

    return Timer()


def _finish(net: Any, result: TrainResult, test: Split) -> TrainResult:
    loss, acc = net.evaluate(scale(test.images, result.model), test.labels, batch_size=256, verbose=0)
    result.final_loss, result.final_accuracy = float(loss), float(acc)
    result.weights_digest = weights_digest(net)
    return result


def shared_order(n: int, batch_size: int, epochs: int, seed: int,
                 steps_per_epoch: int | None = None) -> np.ndarray:
    """Every epoch's batches, one after another: (epochs * steps, batch_size) sample indices."""
    return np.concatenate([epoch_batches(n, batch_size, e, seed, steps_per_epoch) for e in range(epochs)])


def _epochs(epochs: int, warmup_epochs: int) -> int:
    """Epochs to train in all; ValueError unless `epochs` >= 1 and `warmup_epochs` >= 0."""
    if epochs < 1 or warmup_epochs < 0:
        raise ValueError(f"need epochs >= 1 and warmup_epochs >= 0, got {epochs} and {warmup_epochs}")
    return warmup_epochs + epochs


def train_case(reader: Any, test: Split, *, model: str = "mlp", epochs: int = 1,
               batch_size: int | None = None, steps_per_epoch: int | None = None,
               seed: int = 0, threads: int | None = None, source: str = "case",
               warmup_epochs: int = 0) -> TrainResult:
    """Train `model` on `reader` in the shared seeded order through the reader's own tf.data
    pipeline (`Reader.tf_batches`: reads overlap the train step); evaluate on `test`.
    `warmup_epochs` more epochs come first, trained but not reported."""
    import tensorflow as tf

    from fmtbench.formats._tfdata import Probe

    bs = batch_size_for(model, batch_size)
    total = _epochs(epochs, warmup_epochs)
    used = configure_tf(seed, threads)
    order = shared_order(len(reader), bs, total, seed, steps_per_epoch)
    steps = len(order) // total
    probe = Probe()
    cnn = model == "cnn" and len(reader.image_shape) == 2
    ds = reader.tf_batches(order, probe).map(lambda x, y: (tf_scale(tf, x, cnn), y))
    ds = ds.prefetch(tf.data.AUTOTUNE)
    net = build_model(model, tuple(reader.image_shape), bs)
    result = TrainResult(source, model, epochs, steps, bs, seed, threads=used, pipeline=probe.pipeline,
                         warmup_epochs=warmup_epochs)
    net.fit(ds, epochs=total, steps_per_epoch=steps, verbose=0, shuffle=False,
            callbacks=[epoch_timer(result, probe)])
    return _finish(net, result.drop_warmup(), test)


def train_in_memory(train: Split, test: Split, *, model: str = "mlp", epochs: int = 1,
                    batch_size: int | None = None, steps_per_epoch: int | None = None,
                    seed: int = 0, threads: int | None = None, warmup_epochs: int = 0) -> TrainResult:
    """The baseline: the same order through ``tf.data.Dataset.from_tensor_slices``, no shuffle op."""
    import tensorflow as tf

    bs = batch_size_for(model, batch_size)
    total = _epochs(epochs, warmup_epochs)
    used = configure_tf(seed, threads)
    # Every batch of every epoch gathered before timing, one element per batch: the least work
    # any pipeline can do per step (a per-sample from_tensor_slices(...).batch() was slower
    # than some formats' pipelines, so it bounded nothing).
    order = shared_order(len(train), bs, total, seed, steps_per_epoch)
    ds = tf.data.Dataset.from_tensor_slices((train.images[order], train.labels[order].astype(np.int64)))
    cnn = model == "cnn" and train.images.ndim == 3
    ds = ds.map(lambda x, y: (tf_scale(tf, x, cnn), y)).prefetch(tf.data.AUTOTUNE)
    steps = len(order) // total
    net = build_model(model, train.image_shape, bs)
    result = TrainResult("in-memory", model, epochs, steps, bs, seed, threads=used,
                         pipeline="from_tensor_slices(batches gathered in advance) + prefetch",
                         warmup_epochs=warmup_epochs)
    net.fit(ds, epochs=total, steps_per_epoch=steps, verbose=0, shuffle=False,
            callbacks=[epoch_timer(result)])
    return _finish(net, result.drop_warmup(), test)


def native_pipeline(case: Any, path: Any, **kwargs: Any) -> dict[str, Any]:
    """The format's own streaming pipeline into the same model (see `workloads.native`)."""
    from fmtbench.workloads.native import native_pipeline as run

    return run(case, path, **kwargs)


def train_observations(result: TrainResult, baseline: str | None) -> list[Observation]:
    """Observations of a TrainResult; `extra` carries the weights digest and its check."""
    extra = {"weights_digest": result.weights_digest, "model": result.model, "epochs": result.epochs,
             "warmup_epochs": result.warmup_epochs,
             "threads": result.threads, "pipeline": result.pipeline,
             "batch_size": result.batch_size, "steps_per_epoch": result.steps_per_epoch,
             "weights_match_baseline": None if baseline is None else result.weights_digest == baseline}
    obs = [
        Observation("epoch_s", result.epoch_s, extra),
        Observation("train_samples_per_s", result.samples_per_s, extra),
        Observation("final_loss", [result.final_loss], extra),
        Observation("final_accuracy", [result.final_accuracy], extra),
    ]
    if result.data_wait_share:  # the in-graph baseline has no Python feeder to time
        obs.append(Observation("data_wait_share", result.data_wait_share,
                               extra | {"data_read_share": result.data_read_share}))
    return obs
