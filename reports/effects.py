"""What each case option did in this run: cases of one format that differ in exactly one option,
compared figure by figure (HDF5's chunk size, compression, shuffle and chunk cache; Parquet's
row-group size; TFRecord's gzip; ...). Only differences beyond the noise are reported."""
from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from fmtbench.formats import adapter_class

from .analysis import Frame, goodness, outcome
from .units import times

#: The figures an option's effect is told by, with the words for "better" and "worse".
EFFECT_METRICS = {
    "file_bytes": ("smaller file", "larger file"),
    "write_s": ("faster write", "slower write"),
    "scan_samples_per_s": ("faster scan", "slower scan"),
    "random_p50_s": ("faster single reads", "slower single reads"),
    "batch_unsorted_samples_per_s": ("faster random batches", "slower random batches"),
    "train_samples_per_s": ("faster shuffled training", "slower shuffled training"),
}
NOISE = 0.05  # changes under 5% are not called effects, whatever the intervals say


def _word(fmt: str, option: str, value: Any) -> str:
    """The value as case ids spell it ('chunk64', 'cacheauto'), 'default' for the library's default."""
    try:
        opt = next(o for o in adapter_class(fmt).options if o.name == option)
        return opt.token(value) or getattr(opt, "default_word", None) or "default"
    except Exception:  # a format, option or value this checkout does not know: the raw value
        return "none" if value is None else ("on" if value else "off") if isinstance(value, bool) else str(value)


def _words(fmt: str, options: list[str], config: dict[str, Any]) -> str:
    """Several options' values as one id fragment ('rg1024-zstd'); 'default' where all are."""
    words = [_word(fmt, k, config.get(k)) for k in options]
    return "-".join(w for w in words if w != "default") or "default"


@dataclass
class Effect:
    """Changing `option` from `old` to `new` in `pairs` case pairs: per figure, the median factor
    (>1 = better) over the pairs that measured it, when beyond the noise in all of them."""

    fmt: str
    option: str
    old: str
    new: str
    pairs: list[tuple[str, str]]
    factors: dict[str, float] = field(default_factory=dict)

    def parts(self) -> list[str]:
        """Each figure's change in words: '×2.10 smaller file'."""
        out = []
        for m, f in self.factors.items():
            good, bad = EFFECT_METRICS[m]
            out.append(f"{times(f)} {good}" if f >= 1 else f"{times(1 / f)} {bad}")
        return out

    def text(self) -> str:
        """'compression none → gzip4 (2 pairs): ×2.1 smaller file, ×38 slower single reads'."""
        what = ", ".join(self.parts()) or "no change beyond the noise"
        n = len(self.pairs)
        pairs = f"{self.pairs[0][0]} → {self.pairs[0][1]}" if n == 1 else f"{n} pairs of cases"
        return f"{self.option} {self.old} → {self.new} ({pairs}): {what}"


def _factor(frame: Frame, metric: str, a: str, b: str) -> float | None:
    """How many times better b is than a (>1 better, <1 worse); 1.0 within the noise; None unmeasured."""
    ra, rb = frame.get(a, metric), frame.get(b, metric)
    if ra is None or rb is None or not ra.median or not rb.median:
        return None
    if outcome(rb, ra) == "same":
        return 1.0
    f = goodness(metric, ra.median, rb.median)  # a's shortfall against b: >1 when b is better
    return 1.0 if abs(f - 1) < NOISE else f


def effects(frame: Frame, fmt: str, configs: dict[str, dict[str, Any]]) -> list[Effect]:
    """Every one-option change between two cases of `fmt` measured in this run, grouped by
    (option, old value, new value); `configs` maps case id to its parsed options. Where two
    options only ever change together (no pair tells them apart, as in a run of a few
    representative cases), the two-option change is reported as one, naming both."""
    cases = sorted(c for c in configs if c.split("/", 1)[0] == fmt)
    base = configs.get(fmt, {})
    found: dict[int, list[tuple[str, str, list[str]]]] = {1: [], 2: []}
    for i, a in enumerate(cases):
        for b in cases[i + 1:]:
            diff = sorted(k for k in configs[a].keys() | configs[b].keys() if configs[a].get(k) != configs[b].get(k))
            if len(diff) in found:
                found[len(diff)].append((a, b, diff))
    alone = {d[0] for _, _, d in found[1]}
    groups: dict[tuple[str, str, str], list[tuple[str, str]]] = defaultdict(list)
    for a, b, diff in found[1] + [p for p in found[2] if not set(p[2]) & alone]:
        ca, cb = configs[a], configs[b]
        # the direction from the library's defaults (the plain case's values) to the variant
        if sum(cb.get(k) == base.get(k) for k in diff) > sum(ca.get(k) == base.get(k) for k in diff):
            a, b, ca, cb = b, a, cb, ca
        groups[(" and ".join(diff), _words(fmt, diff, ca), _words(fmt, diff, cb))].append((a, b))
    out = []
    for (k, old, new), pairs in sorted(groups.items()):
        e = Effect(fmt, k, old, new, pairs)
        for m in EFFECT_METRICS:
            fs = [f for a, b in pairs if (f := _factor(frame, m, a, b)) is not None]
            if fs and all(f > 1 for f in fs) or fs and all(f < 1 for f in fs):
                e.factors[m] = statistics.median(fs)
        out.append(e)
    return out


def configs(frame: Frame) -> dict[str, dict[str, Any]]:
    """Each measured case's options as its rows record them."""
    out: dict[str, dict[str, Any]] = {}
    cases = set(frame.cases())
    for r in frame.rows:
        if r.case in cases and r.case not in out:
            out[r.case] = dict(r.config)
    return out
