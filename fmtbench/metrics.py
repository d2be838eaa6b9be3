"""The one table of metrics: unit, which direction is better, and a label for reports."""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from fmtbench.errors import UnknownNameError


@dataclass(frozen=True)
class Metric:
    """A measured quantity: its unit, whether higher or lower is better, and its label."""

    name: str
    unit: str
    better: str  # "higher" | "lower"
    label: str
    #: an exact count (bytes), the same in every round: compared by value, not by a test
    exact: bool = False

    def is_better(self, a: float, b: float) -> bool:
        """Whether value a beats value b."""
        return a > b if self.better == "higher" else a < b


#: the concurrent-readers grid (a profile picks its counts among READER_COUNTS): one metric per point
READER_PATTERNS = ("random", "scan")
READER_MODES = ("processes", "threads")
READER_COUNTS = (1, 2, 4, 8)


def readers_metric(pattern: str, mode: str, n: int) -> str:
    """The metric of `n` concurrent readers (threads or processes) reading random batches or shards."""
    return f"readers_{pattern}_{mode}{n}_samples_per_s"


#: many clients (`fmtbench.clients`): N readers, one per cluster worker; the counts a run may ask for
CLIENT_COUNTS = (*range(1, 17), 24, 32, 48, 64)


def clients_metric(pattern: str, n: int) -> str:
    """The metric of `n` clients, each on its own cluster worker, reading one shared file at once."""
    return f"clients_{pattern}{n}_samples_per_s"


def _readers_label(pattern: str, mode: str, n: int) -> str:
    what = "random batches" if pattern == "random" else "disjoint shards"
    return f"{what}, {n} reader {mode if n > 1 else {'processes': 'process', 'threads': 'thread'}[mode]}"


_METRICS = [
    # write
    Metric("write_s", "s", "lower", "write time"),
    Metric("file_bytes", "bytes", "lower", "file size", exact=True),
    Metric("compression_ratio", "x", "higher", "compression ratio (raw / on disk)", exact=True),
    Metric("write_peak_rss_bytes", "bytes", "lower", "memory a write adds (peak above the worker's start)"),
    # scan
    Metric("scan_samples_per_s", "samples/s", "higher", "scan throughput"),
    Metric("scan_mb_per_s", "MB/s", "higher", "scan throughput (decoded MB)"),
    # random access
    Metric("random_p50_s", "s", "lower", "single-sample read p50"),
    Metric("random_p95_s", "s", "lower", "single-sample read p95"),
    Metric("random_p99_s", "s", "lower", "single-sample read p99"),
    Metric("random_p999_s", "s", "lower", "single-sample read p99.9"),
    Metric("batch_sorted_samples_per_s", "samples/s", "higher", "random batches, sorted indices"),
    Metric("batch_unsorted_samples_per_s", "samples/s", "higher", "random batches, unsorted indices"),
    Metric("open_s", "s", "lower", "open time (includes any index build)"),
    # training
    Metric("epoch_s", "s", "lower", "shuffled-training pass time"),
    Metric("train_samples_per_s", "samples/s", "higher", "shuffled-training throughput"),
    Metric("data_wait_share", "fraction", "lower", "share of step time waiting for data"),
    Metric("final_loss", "", "lower", "final test loss"),
    Metric("final_accuracy", "", "higher", "final test accuracy"),
    Metric("native_samples_per_s", "samples/s", "higher", "streaming-training throughput"),
    # concurrent readers: aggregate over all readers (latency percentiles in each record's extra)
    *(Metric(readers_metric(p, m, n), "samples/s", "higher", _readers_label(p, m, n))
      for p in READER_PATTERNS for m in READER_MODES for n in READER_COUNTS),
    Metric("readers_fork_after_open_samples_per_s", "samples/s", "higher",
           "random batches, processes sharing a handle opened before fork"),
    # many clients: aggregate over N clients on N workers (per-client latencies in each record's extra)
    *(Metric(clients_metric(p, n), "samples/s", "higher",
             f"{'random batches' if p == 'random' else 'disjoint shards'}, {n} client{'s' if n > 1 else ''} "
             f"on {n} worker{'s' if n > 1 else ''}")
      for p in READER_PATTERNS for n in CLIENT_COUNTS),
    # checkpoints: a Keras model saved (durable: fsynced) and loaded, warm or cold
    Metric("checkpoint_save_s", "s", "lower", "checkpoint save time (fsynced)"),
    Metric("checkpoint_load_s", "s", "lower", "checkpoint load time"),
    Metric("checkpoint_bytes", "bytes", "lower", "checkpoint file size", exact=True),
    # limits of the machine (provenance, not cases): no reader can beat them
    Metric("memcpy_mb_per_s", "MB/s", "higher", "memcpy bandwidth"),
    Metric("page_cache_read_mb_per_s", "MB/s", "higher", "read(2) of a page-cached file"),
    # resources
    Metric("peak_rss_bytes", "bytes", "lower", "peak resident memory"),
    Metric("read_bytes", "bytes", "lower", "bytes read from storage"),
]
METRICS = MappingProxyType({m.name: m for m in _METRICS})


def metric(name: str) -> Metric:
    """The Metric called `name`; an unknown name lists the valid ones."""
    try:
        return METRICS[name]
    except KeyError:
        raise UnknownNameError("metric", name, METRICS) from None
