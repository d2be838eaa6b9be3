"""One summary card per format: its best case for each use with the figure and how it ranks among
all cases, what its options did in this run, its caveats, and what it detects when damaged."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fmtbench.metrics import METRICS

from .analysis import TIE, Frame, best_row, goodness, judge, not_cold, outcome
from .effects import Effect, configs, effects
from .recommend import USES, value
from .units import scale_for, times


@dataclass
class Best:
    """A format's best case for one use, its figure, and how it stands against every case."""

    use: str
    case: str
    figure: str  # its value: "2.67 µs"
    standing: str  # "best of all 30" | "tie for best" | "×1.8 the best (zarr)"
    top: bool


@dataclass
class Card:
    """Everything the report says about one format."""

    fmt: str
    cases: list[str]
    best: list[Best] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)
    damage: list[str] = field(default_factory=list)
    orders: str = ""  # its own order against random access, in training


def _best(frame: Frame, use: Any, mine: list[str], every: list[str]) -> Best | None:
    row, top = best_row(frame, use.metric, mine), best_row(frame, use.metric, every)
    if row is None or top is None:
        return None
    g = goodness(use.metric, row.median, top.median)
    kind = judge(row, top, frame.margin).kind if row.case != top.case else "better"
    tie = row.case != top.case and (kind in ("equivalent", "undecided") or g < 1 + TIE)
    if row.case == top.case:
        standing = f"best of all {sum(frame.get(c, use.metric) is not None for c in every)}"
    elif tie:
        standing = (f"equivalent within {frame.margin:.0%} to the best ({top.case})" if kind == "equivalent"
                    else f"undecided against the best ({top.case})")
    else:
        standing = f"{times(g)} the best ({top.case})"
    return Best(use.short, row.case, value(row), standing, row.case == top.case or tie)


def _orders(frame: Frame, mine: list[str]) -> str:
    """Streaming (its own order) against shuffled (random access) training, for the case that
    streams fastest: what indexed access costs this format."""
    both = [c for c in mine if frame.median(c, "native_samples_per_s") and frame.median(c, "train_samples_per_s")]
    if not both:
        return ""
    c = max(both, key=lambda x: frame.median(x, "native_samples_per_s"))
    stream, shuffled = frame.get(c, "native_samples_per_s"), frame.get(c, "train_samples_per_s")
    sc = scale_for(stream.unit, [stream.median, shuffled.median])
    f = stream.median / shuffled.median
    how = (f"streaming is {times(f)} faster" if f >= 1.05 and outcome(stream, shuffled, frame.margin) != "same" else
           f"shuffled is {times(1 / f)} faster" if f <= 1 / 1.05 and outcome(stream, shuffled, frame.margin) != "same" else
           "the same within the noise")
    return (f"{c} trains at {sc.text(stream.median, True)} in its own order (streaming) and "
            f"{sc.text(shuffled.median, True)} in a random order (shuffled, by index): {how}")


def _caveats(frame: Frame, mine: list[str], flagged: set) -> list[str]:
    out = []
    for p in frame.problems:
        if p.case in mine:
            what = "failed" if p.kind == "failure" else "skipped"
            out.append(f"{p.case} {p.workload} ({p.cache}) {what}: {p.reason.splitlines()[0][:160]}")
    for case, metric, cache in sorted(flagged):
        if case in mine:
            out.append(f"{case}: {metric} ({cache}) flagged as past what this machine can do; never picked")
    for c in mine:
        r = frame.get(c, "train_samples_per_s")
        if r is not None and r.extra.get("weights_match_baseline") is False:
            out.append(f"{c}: shuffled training did not reproduce the in-memory weights")
        bad = [(row, why) for row in frame.rows if row.case == c and row.cache == "cold" and (why := not_cold(row))]
        if bad:
            row, why = bad[0]
            more = f" and {len(bad) - 1} more cold figures" if len(bad) > 1 else ""
            out.append(f"{c}: cold {METRICS[row.metric].label} ({row.workload}){more} not cold: {why}")
    return out


def _damage(mine: list[str], matrix: dict[str, Any]) -> list[str]:
    """Per damage kind: which of the format's cases are sure to raise on it, and by which check
    (from the report's damage matrix, `sections.damage`)."""
    rows = [r for r in matrix["rows"] if r["case"] in mine]
    out = []
    for k, kind in enumerate(matrix["kinds"]):
        sure = [r["case"] for r in rows if r["cells"][k]["label"] != "not detected"]
        by = next((r["cells"][k]["by"] for r in rows if r["case"] in sure), "")
        if not rows:
            continue
        if len(sure) == len(rows):
            out.append(f"{kind}: detected by every case ({by})")
        elif not sure:
            out.append(f"{kind}: not detected (a damaged file can read back as wrong samples)")
        else:
            out.append(f"{kind}: detected only by {', '.join(sure)} ({by})")
    return out


def cards(frame: Frame, damage: dict[str, Any], flagged: set = frozenset()) -> list[Card]:
    """A card per format measured in this run, in registry order; `damage` is the report's
    damage matrix (`sections.damage`)."""
    every = frame.cases()
    conf = configs(frame)
    out: list[Card] = []
    for fmt in dict.fromkeys(c.split("/", 1)[0] for c in every):
        mine = [c for c in every if c.split("/", 1)[0] == fmt]
        usable = [c for c in mine if not any(k[0] == c for k in flagged)] or mine
        card = Card(fmt, mine, [b for u in USES if (b := _best(frame, u, usable, every))],
                    [e for e in effects(frame, fmt, conf) if e.factors], _caveats(frame, mine, flagged),
                    _damage(mine, damage), _orders(frame, mine))
        out.append(card)
    return out
