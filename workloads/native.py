"""The native train mode: each format's idiomatic streaming input pipeline into the same model.

Not order-identical: every pipeline shuffles its own way (shuffle buffers, shuffled chunks),
so only its throughput is comparable, reported as ``native_samples_per_s``. Pipelines:

* ``tfrecord``: ``tf.data.TFRecordDataset`` over the shard files (interleaved when there are
  several), a shuffle buffer of serialized records, ``batch``, then one
  ``tf.io.parse_example`` per batch (the fast way; see DESIGN) and a ``decode_raw``.
* ``hdf5``: h5py on the adapter's file (datasets ``images``/``labels``), blocks of whole chunks
  (at least 1024 rows: one row per read would make 1-row chunks run at ~2.4k samples/s) read
  in a seeded shuffled order, then a shuffle buffer over samples.
* any other format: ``Dataset.from_generator`` over ``reader.scan`` (file order), then a
  shuffle buffer over samples.

All end in ``batch`` (full batches) -> scale (the graph twin of the feeder's) -> ``prefetch``
and feed ``model.fit`` for a fixed number of steps; the train step is traced beforehand.
Thread-safety: the generator-fed pipelines call the reader (or h5py) from a tf.data thread.
"""
from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from fmtbench.workloads.train import batch_size_for, build_model, configure_tf, tf_scale

DEFAULT_BUFFER = 10_000  # samples in the shuffle buffer (about 8 MB of MNIST)
HDF5_BLOCK = 1024  # least rows per HDF5 read (rounded up to whole chunks)


def native_pipeline(case: Any, path: str | Path, *, model: str = "mlp",
                    batch_size: int | None = None, steps: int = 100, seed: int = 0,
                    shuffle_buffer: int = DEFAULT_BUFFER, threads: int | None = None) -> dict[str, Any]:
    """Train `steps` steps from `case`'s native pipeline over `path`; samples/s and what ran.

    ``samples_per_s`` is the steady rate after the first step; ``first_step_s`` (pipeline
    start-up, shuffle-buffer fill, the first step) is reported apart.
    """
    import tensorflow as tf

    if steps < 2:
        raise ValueError(f"native_pipeline needs at least 2 steps, got {steps}")
    bs = batch_size_for(model, batch_size)
    configure_tf(seed, threads)
    build = _PIPELINES.get(case.name, _generic)
    batches, shape, describe, close = build(case, Path(path), bs, shuffle_buffer, seed)
    try:
        cnn = model == "cnn" and len(shape) == 2
        ds = batches.map(lambda x, y: (tf_scale(tf, x, cnn), tf.cast(y, tf.int64)),
                         num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
        net = build_model(model, shape, bs)
        stamps: list[float] = []
        net.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False,
                callbacks=[_clock(stamps)])
    finally:
        close()
    start, first_end, end = stamps[0], stamps[1], stamps[-1]
    return {"samples_per_s": (steps - 1) * bs / (end - first_end), "first_step_s": first_end - start,
            "seconds": end - start, "steps": steps, "batch_size": bs, "model": model, "seed": seed,
            "shuffle_buffer": shuffle_buffer, "pipeline": describe, "order_identical": False}


def _clock(stamps: list[float]) -> Any:
    """A callback that appends the epoch start, the start of step 1 (the first step's end) and
    the epoch end to `stamps`."""
    import keras

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            stamps.append(time.perf_counter())

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            if batch == 1:
                stamps.append(time.perf_counter())

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            stamps.append(time.perf_counter())

    return Clock()


# A builder returns an endless tf.data Dataset of full (images, labels) batches in the stored
# dtype, the image shape, a description, and a close() for whatever it opened.
Built = tuple[Any, tuple[int, ...], str, Callable[[], None]]


def _from_batches(gen: Callable[[], Iterator[Any]], shape: tuple[int, ...], dtype: np.dtype,
                  bs: int, buffer: int, seed: int) -> Any:
    """Batches from a Python generator -> samples -> shuffle buffer -> full batches, endless."""
    import tensorflow as tf

    spec = (tf.TensorSpec((None, *shape), tf.as_dtype(dtype)), tf.TensorSpec((None,), tf.int64))
    ds = tf.data.Dataset.from_generator(gen, output_signature=spec).unbatch().repeat()
    return ds.shuffle(buffer, seed=seed).batch(bs, drop_remainder=True)


def _generic(case: Any, path: Path, bs: int, buffer: int, seed: int) -> Built:
    """reader.scan in file order through from_generator, then a shuffle buffer over samples."""
    reader = case.open(path)
    shape = tuple(reader.image_shape)

    def scan() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield from reader.scan(1024)

    ds = _from_batches(scan, shape, reader.image_dtype, bs, buffer, seed)
    return ds, shape, "from_generator(reader.scan(1024)) + shuffle buffer", reader.close


def hdf5_block_rows(chunk_rows: int | None) -> int:
    """Rows per read of the native HDF5 pipeline: whole chunks, at least HDF5_BLOCK rows."""
    step = chunk_rows or 1
    return -(-HDF5_BLOCK // step) * step


def _hdf5(case: Any, path: Path, bs: int, buffer: int, seed: int) -> Built:
    """h5py: blocks of whole chunks in a seeded shuffled order (new each pass), then a shuffle buffer."""
    import h5py

    f = h5py.File(path, "r")
    images, labels = f["images"], f["labels"][...].astype(np.int64)
    shape = tuple(images.shape[1:])
    rows = hdf5_block_rows(images.chunks[0] if images.chunks else None)
    starts = np.arange(0, images.shape[0], rows)
    passes = itertools.count()

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        # tf.data calls this once per pass (repeat): a fresh generator, a fresh chunk order
        for s in np.random.default_rng([seed, next(passes)]).permutation(starts):
            yield images[s: s + rows], labels[s: s + rows]

    ds = _from_batches(chunks, shape, images.dtype, bs, buffer, seed)
    layout = f"{images.chunks[0]}-row chunks" if images.chunks else "contiguous"
    return ds, shape, f"h5py blocks of {rows} rows ({layout}) in shuffled order + shuffle buffer", f.close


def _tfrecord(case: Any, path: Path, bs: int, buffer: int, seed: int) -> Built:
    """TFRecordDataset -> shuffle serialized records -> batch -> one parse_example per batch."""
    import tensorflow as tf

    compression = "GZIP" if case.config.get("compression") == "gzip" else ""
    records = tf.data.TFRecordDataset([str(path)], compression_type=compression,
                                      num_parallel_reads=tf.data.AUTOTUNE)  # interleaves shards
    first = tf.train.Example.FromString(next(iter(records.take(1))).numpy()).features.feature
    shape = tuple(first["shape"].int64_list.value)
    dtype = tf.as_dtype(np.dtype(first["dtype"].bytes_list.value[0].decode()))
    spec = {"image": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([], tf.int64)}

    def parse(serialized: Any) -> tuple[Any, Any]:
        ex = tf.io.parse_example(serialized, spec)
        return tf.reshape(tf.io.decode_raw(ex["image"], dtype), (-1, *shape)), ex["label"]

    ds = records.repeat().shuffle(buffer, seed=seed).batch(bs, drop_remainder=True)
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    describe = f"TFRecordDataset({compression or 'plain'}) + record shuffle buffer + parse_example"
    return ds, shape, describe, lambda: None


_PIPELINES: dict[str, Callable[..., Built]] = {"hdf5": _hdf5, "tfrecord": _tfrecord}
