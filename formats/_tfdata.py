"""tf.data input pipelines over a Reader: the defaults behind the adapters' training hooks.

Two questions, two pipelines (an adapter may override either with its library's best practice):

* **Shared order** (`Reader.tf_batches`): the identical seeded batch order for every case, so
  training ends in identical weights. `indexed_batches` maps each batch's indices through
  ``tf.numpy_function(reader.read_checked)`` (the whole order checked once), ``deterministic=True``
  and prefetched, so reads run on a
  tf.data thread ahead of the train step (which runs in C++ without the GIL): reads overlap
  compute. Several reads are in flight at once only for readers that declare ``thread_safe``;
  the others get one at a time (a reader must not be tied to the thread that opened it, but
  need not take concurrent calls).
* **Streaming** (`Adapter.native_dataset`): the format's own order, as fast as it goes
  (`from_batches` + a shuffle buffer over samples is the default, fed by ``reader.scan``).

Both yield (images in the stored dtype, int64 labels); scaling to float32 happens after, in
the graph, identically for every case (`fmtbench.workloads.train.tf_scale`).
TensorFlow is imported inside functions only.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Reads in flight at once for a thread-safe reader: more than the cores only queue here.
PARALLEL_READS = 2
#: Batches per reader call in the shared-order pipeline. Measured (benchmarks/training.py, MLP,
#: Fashion-MNIST, 2 epochs x 4 rounds, last epoch vs in memory): npy 1.02 at 1 batch per call
#: with 2 calls in flight, 0.94 at 8 per call, 2 in flight; hdf5 1.08 vs 0.97 (against the old
#: per-sample in-memory baseline, which is why that baseline now slices whole batches).
BLOCK = 8


@dataclass
class Probe:
    """When each batch of a pipeline was ready and how long its reads took (for data-wait shares).

    ``ready[g]`` is the perf_counter time batch ``g`` (counted over all epochs) left the reader;
    ``busy`` the summed seconds inside the reader calls, which may exceed the wall time when
    reads run in parallel.
    """

    ready: dict[int, float] = field(default_factory=dict)
    busy: float = 0.0
    pipeline: str = ""  # what the pipeline does, in words (set by whoever builds it)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, g: int, t0: float, t1: float) -> None:
        with self._lock:
            self.ready[g] = t1
            self.busy += t1 - t0

    def take_busy(self) -> float:
        """The reader seconds since the last call (one epoch's share), reset to zero."""
        with self._lock:
            busy, self.busy = self.busy, 0.0
        return busy


def indexed_batches(read: Callable[[np.ndarray], tuple[np.ndarray, ...]], batches: np.ndarray,
                    signature: tuple[tuple[Any, tuple[int | None, ...]], ...], *, parallel: int = 1,
                    probe: Probe | None = None, describe: str = "reader.read", block: int | None = None,
                    decode: Callable[..., tuple[Any, ...]] | None = None) -> Any:
    """tf.data elements ``read(batches[g])`` for g = 0, 1, ... in order, read ahead of the consumer.

    `read` takes a 1-D int64 index array and returns arrays matching `signature` ((dtype, shape)
    per output, the first dimension one per index; a dtype may be ``object`` for bytes, which
    become tf.string). `block` consecutive batches are read by one call (their indices in order,
    then split): the hand-off into Python and the GIL are paid once per block, not per batch.
    `parallel` reads may be in flight at once; the output order stays that of `batches`.
    `decode`, a graph function, turns a whole block's outputs (first dimension one per index) into
    the elements' tensors before the block is split into batches: one op call per block, not per batch.
    """
    import tensorflow as tf

    batches = np.ascontiguousarray(batches, dtype=np.int64)
    steps, size = batches.shape
    block = max(1, min(int(block or BLOCK), steps))

    def fetch(k: np.ndarray) -> tuple[np.ndarray, ...]:
        g = int(k) * block
        part = batches[g: g + block]
        t0 = time.perf_counter()
        out = read(part.reshape(-1))
        t1 = time.perf_counter()
        if probe is not None:
            for j in range(len(part)):
                probe.record(g + j, t0 if j == 0 else t1, t1)
        return tuple(np.asarray(a).reshape(len(part), size, *np.shape(a)[1:]) for a in out)

    types = [tf.string if np.dtype(d) == object else tf.as_dtype(np.dtype(d)) for d, _ in signature]

    def mapped(k: Any) -> tuple[Any, ...]:
        out = tf.numpy_function(fetch, [k], types, stateful=False)
        # (batches, size, ...): after unbatch every batch has the static shape the step was traced with
        if decode is None:
            return tuple(tf.ensure_shape(t, (None, size, *shape[1:])) for t, (_, shape) in zip(out, signature))
        flat = decode(*(tf.reshape(t, (-1, *shape[1:])) for t, (_, shape) in zip(out, signature)))
        return tuple(tf.reshape(t, (-1, size, *t.shape[1:])) for t in flat)

    parallel = max(1, int(parallel))
    if probe is not None:
        probe.pipeline = (f"{describe} on a tf.data thread, {block} batches per call, {parallel} "
                          f"call{'s' if parallel > 1 else ''} in flight, prefetched")
    ds = tf.data.Dataset.range(-(-steps // block))
    return ds.map(mapped, num_parallel_calls=parallel, deterministic=True).unbatch()


def from_batches(gen: Callable[[], Iterator[Any]], shape: tuple[int, ...], dtype: np.dtype,
                 batch_size: int, buffer: int, seed: int) -> Any:
    """Batches from a Python generator -> samples -> shuffle buffer -> full batches, endless."""
    import tensorflow as tf

    spec = (tf.TensorSpec((None, *shape), tf.as_dtype(dtype)), tf.TensorSpec((None,), tf.int64))
    ds = tf.data.Dataset.from_generator(gen, output_signature=spec).unbatch().repeat()
    return ds.shuffle(buffer, seed=seed).batch(batch_size, drop_remainder=True)


@dataclass
class Native:
    """A streaming pipeline: an endless tf.data Dataset of full (images, labels) batches in the
    stored dtype, the image shape, what it does in words, and how to release what it opened."""

    dataset: Any
    image_shape: tuple[int, ...]
    describe: str
    close: Callable[[], None]


def scan_stream(reader: Any, batch_size: int, buffer: int, seed: int, block: int = 1024) -> Native:
    """The default streaming pipeline: ``reader.scan`` in file order through from_generator,
    then a shuffle buffer over samples. `reader` is closed by `Native.close`."""
    shape = tuple(reader.image_shape)

    def scan() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield from reader.scan(block)

    ds = from_batches(scan, shape, reader.image_dtype, batch_size, buffer, seed)
    return Native(ds, shape, f"from_generator(reader.scan({block})) + shuffle buffer", reader.close)
