"""The train workload: real Keras ``model.fit`` fed from a case's Reader, one seeded order for all.

Every epoch ``e`` draws ``np.random.default_rng([seed, e]).permutation(n)`` and cuts it into
full batches (the last partial batch is dropped, so every step has the same static shape; with
``steps_per_epoch`` only the first that many batches are used). A case is fed through a
``keras.utils.PyDataset`` whose ``__getitem__(i)`` is ``reader.read(batch_i)`` then `scale`; the
in-memory baseline gathers the same arrays with the same permutation and feeds
``tf.data.Dataset.from_tensor_slices(...).batch(...).map(scale)``. With Keras/TF determinism
on, both paths end with byte-identical weights, whose sha256 is ``weights_digest``.

Timing: ``epoch_s`` runs from ``on_epoch_begin`` to ``on_epoch_end``; the train step is traced
on a zero batch before ``fit`` (weights and optimizer state restored), so no epoch pays for
tracing. Keras runs a PyDataset with ``workers=1`` through ``tf.data`` with prefetch, so reads
overlap compute. ``data_read_share`` is the time spent inside ``__getitem__`` (read + scale) over
the epoch; ``data_wait_share`` is the time the model actually waited: per step,
``max(0, batch ready - step begin)`` (from a callback's ``on_train_batch_begin`` and the
feeder's timestamps), summed over the epoch's steps, over the epoch. The baseline's pipeline
runs inside TF, so both shares are None there.

TensorFlow is imported inside functions only. Thread counts (``threads``) can only be set
before TF initializes in this process; training runs in-process, so ask for them in a fresh
process (the harness's worker) or leave them at TF's defaults, which are deterministic too.
"""
from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from fmtbench.datasets._base import Split

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
    data_wait_share: list[float] | None = None
    data_read_share: list[float] | None = None
    final_loss: float = float("nan")
    final_accuracy: float = float("nan")
    weights_digest: str = ""
    threads: tuple[int, int] = (0, 0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)


def epoch_batches(n: int, batch_size: int, epoch: int, seed: int,
                  steps_per_epoch: int | None = None) -> np.ndarray:
    """The (steps, batch_size) sample indices of `epoch`: one seeded permutation, full batches."""
    steps = n // batch_size if steps_per_epoch is None else min(steps_per_epoch, n // batch_size)
    if steps < 1:
        raise ValueError(f"{n} samples make no full batch of {batch_size}")
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return perm[: steps * batch_size].reshape(steps, batch_size)


def scale(images: np.ndarray, model: str) -> np.ndarray:
    """Pixels to float32 in [0, 1] (x / 255), with a channel axis added for the CNN."""
    x = images.astype(np.float32) / np.float32(255.0)
    return x[..., None] if model == "cnn" and x.ndim == 3 else x


def _resolve(model: str, batch_size: int | None) -> int:
    if model not in MODELS:
        from fmtbench.errors import UnknownNameError

        raise UnknownNameError("model", model, MODELS)
    return int(batch_size or DEFAULT_BATCH[model])


def configure_tf(seed: int, threads: int | None = None) -> tuple[int, int]:
    """Seed everything and turn determinism on; set thread counts when TF is not yet running."""
    import keras
    import tensorflow as tf

    if threads is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            warnings.warn(f"TensorFlow already initialized: cannot set threads={threads}", stacklevel=2)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    return (tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads())


def build_model(model: str, image_shape: tuple[int, ...], batch_size: int) -> Any:
    """The compiled Keras model (Adam, sparse categorical crossentropy), traced and reset."""
    import keras
    from keras import layers

    shape = (*image_shape, 1) if model == "cnn" and len(image_shape) == 2 else tuple(image_shape)
    if model == "mlp":
        body = [layers.Flatten(), layers.Dense(128, activation="relu")]
    else:
        body = [layers.Conv2D(f, 3, activation="relu") for f in (32, 64, 128)]
        body += [layers.Flatten(), layers.Dense(128, activation="relu")]
    net = keras.Sequential([keras.Input(shape), *body, layers.Dense(10, activation="softmax")])
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
    zeros = tf.data.Dataset.from_tensors(
        (np.zeros((batch_size, *shape), np.float32), np.zeros(batch_size, np.int64)))
    net.fit(zeros, epochs=1, verbose=0, shuffle=False)
    net.set_weights(weights)
    for var, value in zip(net.optimizer.variables, opt_state):
        var.assign(value)


def weights_digest(net: Any) -> str:
    """sha256 over dtype, shape and bytes of every weight, in layer order."""
    h = hashlib.sha256()
    for w in net.get_weights():
        w = np.ascontiguousarray(w)
        h.update(f"{w.dtype.str}{w.shape}".encode())
        h.update(memoryview(w).cast("B"))
    return h.hexdigest()


def _make_feeder(reader: Any, model: str, batch_size: int, steps: int | None, seed: int) -> Any:
    """A PyDataset over `reader` in the shared order, recording its own read times."""
    import keras

    class Feeder(keras.utils.PyDataset):
        """Batch i of the current epoch: ``scale(reader.read(order[i]))``."""

        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.set_epoch(0)

        def set_epoch(self, epoch: int) -> None:
            self.order = epoch_batches(len(reader), batch_size, epoch, seed, steps)
            self.ready = [float("inf")] * len(self.order)
            self.busy = 0.0

        def __len__(self) -> int:
            return len(self.order)

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            t0 = time.perf_counter()
            images, labels = reader.read(self.order[i])
            batch = (scale(images, model), labels)
            self.ready[i] = t1 = time.perf_counter()
            self.busy += t1 - t0
            return batch

    return Feeder()


def _timer(result: TrainResult, feeder: Any | None) -> Any:
    """A callback that sets the feeder's epoch and records epoch time and data wait."""
    import keras

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            if feeder is not None:
                feeder.set_epoch(epoch)
            self.begin: list[float] = []
            self.t0 = time.perf_counter()

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            self.begin.append(time.perf_counter())

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            dt = time.perf_counter() - self.t0
            result.epoch_s.append(dt)
            result.samples_per_s.append(len(self.begin) * result.batch_size / dt)
            if feeder is not None:
                wait = sum(max(0.0, r - b) for r, b in zip(feeder.ready, self.begin))
                result.data_wait_share.append(wait / dt)
                result.data_read_share.append(feeder.busy / dt)

    return Timer()


def _finish(net: Any, result: TrainResult, test: Split) -> TrainResult:
    loss, acc = net.evaluate(scale(test.images, result.model), test.labels,
                             batch_size=256, verbose=0)
    result.final_loss, result.final_accuracy = float(loss), float(acc)
    result.weights_digest = weights_digest(net)
    return result


def train_case(reader: Any, test: Split, *, model: str = "mlp", epochs: int = 1,
               batch_size: int | None = None, steps_per_epoch: int | None = None,
               seed: int = 0, threads: int | None = None, source: str = "case") -> TrainResult:
    """Train `model` on every sample of `reader` in the shared seeded order; evaluate on `test`."""
    bs = _resolve(model, batch_size)
    used = configure_tf(seed, threads)
    feeder = _make_feeder(reader, model, bs, steps_per_epoch, seed)
    net = build_model(model, tuple(reader.image_shape), bs)
    result = TrainResult(source, model, epochs, len(feeder), bs, seed,
                         data_wait_share=[], data_read_share=[], threads=used)
    net.fit(feeder, epochs=epochs, verbose=0, shuffle=False, callbacks=[_timer(result, feeder)])
    return _finish(net, result, test)


def train_in_memory(train: Split, test: Split, *, model: str = "mlp", epochs: int = 1,
                    batch_size: int | None = None, steps_per_epoch: int | None = None,
                    seed: int = 0, threads: int | None = None) -> TrainResult:
    """The baseline: the same order through ``tf.data.Dataset.from_tensor_slices``, no shuffle op."""
    import tensorflow as tf

    bs = _resolve(model, batch_size)
    used = configure_tf(seed, threads)
    images, labels = train.images, train.labels
    ds = None
    for e in range(epochs):
        order = epoch_batches(len(train), bs, e, seed, steps_per_epoch)
        idx = order.reshape(-1)
        one = tf.data.Dataset.from_tensor_slices((images[idx], labels[idx]))
        one = one.batch(bs, drop_remainder=True)
        ds = one if ds is None else ds.concatenate(one)
    cnn = model == "cnn" and images.ndim == 3
    ds = ds.map(lambda x, y: (_tf_scale(tf, x, cnn), y)).prefetch(tf.data.AUTOTUNE)
    steps = len(order)
    net = build_model(model, train.image_shape, bs)
    result = TrainResult("in-memory", model, epochs, steps, bs, seed, threads=used)
    net.fit(ds, epochs=epochs, steps_per_epoch=steps, verbose=0, shuffle=False,
            callbacks=[_timer(result, None)])
    return _finish(net, result, test)


def _tf_scale(tf: Any, x: Any, cnn: bool) -> Any:
    """The graph twin of `scale` (the same IEEE float32 division, so the same bytes)."""
    x = tf.cast(x, tf.float32) / tf.constant(255.0, tf.float32)
    return x[..., None] if cnn else x
