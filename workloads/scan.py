"""Scan workload: one full sequential pass in batches; samples/s and MB/s of decoded data."""
from __future__ import annotations

from fmtbench.formats import Reader
from fmtbench.harness import measure
from fmtbench.profiles import Profile

from ._base import Hook, Observation, resources


def _full_pass(reader: Reader, batch_size: int) -> tuple[int, int]:
    samples = nbytes = 0
    for images, labels in reader.scan(batch_size):
        samples += len(labels)
        nbytes += images.nbytes + labels.nbytes
    return samples, nbytes


def run_scan(reader: Reader, profile: Profile, before_each: Hook = None) -> list[Observation]:
    """Time `profile.repeats` full passes over an open reader."""
    m = measure(lambda: _full_pass(reader, profile.scan_batch), repeats=profile.repeats,
                warmup=profile.warmup, before_each=before_each, files=reader.path, min_time=profile.min_time)
    samples, nbytes = m.results[0]
    secs = m.seconds.values
    extra = {"batch_size": profile.scan_batch, **resources(m)}
    return [
        Observation("scan_samples_per_s", [samples / s for s in secs], extra),
        Observation("scan_mb_per_s", [nbytes / s / 1e6 for s in secs], extra),
    ]
