"""What every workload returns: observations of named metrics, one value per repeat."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fmtbench.metrics import metric


@dataclass
class Observation:
    """Values of one metric (one per repeat) plus context that explains them."""

    metric: str
    values: list[float]
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        metric(self.metric)  # unknown metric names fail here, not in the report
        self.values = [float(v) for v in self.values]


def resources(m: Any) -> dict[str, Any]:
    """The resource figures of a harness Measurement, for an observation's `extra`."""
    return {
        "peak_rss_above_start_bytes": m.peak_rss_bytes,
        "read_bytes": m.read_bytes,
        "residency_before": m.residency,
        "loops": [m.loops],  # calls per value (harness calibration), one entry per round once merged
    }


Hook = Callable[[], object] | None
