"""Display units: pick one scale per column or axis, then format every value in it."""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from fmtbench.metrics import METRICS

_BYTES = [(2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"), (1, "B")]
_SECONDS = [(1, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns")]
_RATE = [(1e6, "M "), (1e3, "k "), (1, "")]


@dataclass(frozen=True)
class Scale:
    """Divide by `factor` and append `unit` (e.g. bytes shown in MiB)."""

    factor: float
    unit: str

    def value(self, v: float | None) -> float | None:
        """The value in this scale's unit."""
        return None if v is None else v / self.factor

    def text(self, v: float | None, with_unit: bool = False) -> str:
        """The value formatted with 3 significant digits (and the unit, if asked)."""
        if v is None or not math.isfinite(v):
            return "–"
        s = number(v / self.factor)
        if not with_unit:
            return s
        return f"{s}{self.unit}" if self.unit in ("×", "%") else f"{s} {self.unit}".rstrip()


def number(x: float) -> str:
    """3 significant digits, no exponent below 1e7, thousands separated."""
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1e7 or a < 1e-3:
        return f"{x:.2e}"
    digits = max(0, 2 - int(math.floor(math.log10(a))))
    return f"{x:,.{digits}f}"


def _pick(table: list[tuple[float, str]], typical: float) -> tuple[float, str]:
    for factor, unit in table:
        if typical >= factor:
            return factor, unit
    return table[-1]


def scale_for(unit: str, values: Iterable[float | None]) -> Scale:
    """One scale for all `values` of `unit`, chosen from their median magnitude."""
    vals = sorted(abs(v) for v in values if v is not None and math.isfinite(v) and v != 0)
    typical = vals[len(vals) // 2] if vals else 1.0
    if unit == "bytes":
        return Scale(*_pick(_BYTES, typical))
    if unit == "s":
        return Scale(*_pick(_SECONDS, typical))
    if unit.endswith("/s") and unit != "MB/s":
        factor, prefix = _pick(_RATE, typical)
        return Scale(factor, f"{prefix}{unit}")
    if unit == "fraction":
        return Scale(0.01, "%")
    if unit == "x":
        return Scale(1, "×")
    return Scale(1, unit)


def label(metric: str, scale: Scale | None = None, arrow: str = "") -> str:
    """Axis or column label: 'file size (MiB, lower is better ←)'."""
    m = METRICS[metric]
    unit = (scale.unit if scale else m.unit).strip()
    better = f"{m.better} is better" + (f" {arrow}" if arrow else "")
    return f"{m.label} ({unit + ', ' if unit else ''}{better})"


def times(factor: float) -> str:
    """A ratio as '×1.04', '×12' or '×310'."""
    return f"×{factor:.2f}" if factor < 10 else f"×{factor:.0f}"
