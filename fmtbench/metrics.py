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

    def is_better(self, a: float, b: float) -> bool:
        """Whether value a beats value b."""
        return a > b if self.better == "higher" else a < b


_METRICS = [
    # write
    Metric("write_s", "s", "lower", "write time"),
    Metric("file_bytes", "bytes", "lower", "file size"),
    Metric("compression_ratio", "x", "higher", "compression ratio (raw / on disk)"),
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
