"""Write workload: convert a split through a case; time, size, compression ratio, peak memory."""
from __future__ import annotations

from pathlib import Path

from fmtbench.datasets._base import Split
from fmtbench.formats import Adapter, import_libraries
from fmtbench.harness import measure
from fmtbench.profiles import Profile

from ._base import Observation


def run_write(case: Adapter, split: Split, path: Path, profile: Profile) -> list[Observation]:
    """Write `split` to `path` `profile.repeats` times (each atomic, each replacing the last)."""
    import_libraries(case.name)
    m = measure(lambda: case.write(split, path), repeats=profile.write_repeats, warmup=0,
                min_time=profile.write_min_time)
    info = m.results[-1]
    return [
        Observation("write_s", m.seconds.values, {"rows": info.rows, "loops": [m.loops]}),
        Observation("file_bytes", [info.nbytes]),
        Observation("compression_ratio", [split.nbytes / info.nbytes], {"raw_bytes": split.nbytes}),
        Observation("write_peak_rss_bytes", [m.peak_rss_bytes]),
    ]
