"""Recommendations per use, derived from the measurements, each with its reason and figures."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from fmtbench.metrics import METRICS

from .analysis import TIE, Frame, best_row, goodness, outcome
from .units import scale_for, times

BALANCE = ("file_bytes", "write_s", "scan_samples_per_s", "random_p50_s",
           "batch_unsorted_samples_per_s", "train_samples_per_s")


@dataclass
class Recommendation:
    """A use, the case chosen for it (None when not measured), why, and the figures behind it."""

    use: str
    case: str | None
    reason: str
    figures: list[str] = field(default_factory=list)


def show(frame: Frame, case: str, metric: str, cache: str | None = None) -> str:
    """'scan throughput 1.2 M samples/s' for a case, or '' when not measured."""
    row = frame.get(case, metric, cache)
    if row is None or row.median is None:
        return ""
    return f"{METRICS[metric].label} {scale_for(row.unit, [row.median]).text(row.median, True)}"


def _figures(frame: Frame, case: str, metrics: tuple[str, ...]) -> list[str]:
    return [s for m in metrics if (s := show(frame, case, m))]


def _runner_up(frame: Frame, metric: str, cases: list[str], winner: str) -> str:
    """How the second best compares: 'runner-up X at V (tied within noise)'."""
    second = best_row(frame, metric, [c for c in cases if c != winner])
    if second is None:
        return ""
    top = frame.get(winner, metric)
    text = f"runner-up {second.case}: {show(frame, second.case, metric)}"
    g = goodness(metric, second.median, top.median)
    if outcome(top, second) == "same" or g < 1 + TIE:
        return text + " — tied (within the measured noise or 1%)"
    return text + f" ({times(g)} worse)"


def _by_metric(frame: Frame, use: str, metric: str, cases: list[str], what: str,
               figures: tuple[str, ...]) -> Recommendation:
    top = best_row(frame, metric, cases)
    if top is None:
        return Recommendation(use, None, f"{METRICS[metric].label}: not measured in this run")
    reason = f"{what}: {show(frame, top.case, metric)}"
    extra = _runner_up(frame, metric, cases, top.case)
    return Recommendation(use, top.case, reason + (f"; {extra}" if extra else ""),
                          _figures(frame, top.case, figures))


def recommend(frame: Frame) -> list[Recommendation]:
    """Smallest file, fastest random access, fastest training input, best balance."""
    cases = frame.cases()
    out = [
        _by_metric(frame, "smallest file", "file_bytes", cases, "smallest on disk",
                   ("compression_ratio", "write_s", "scan_samples_per_s", "random_p50_s")),
        _by_metric(frame, "fastest random access", "random_p50_s", cases, "lowest single-sample read latency",
                   ("random_p99_s", "batch_unsorted_samples_per_s", "file_bytes")),
    ]
    trained = [c for c in cases if frame.get(c, "train_samples_per_s") is not None
               and frame.get(c, "train_samples_per_s").extra.get("weights_match_baseline") is not False]
    if trained:
        out.append(_by_metric(frame, "fastest training input", "train_samples_per_s", trained,
                              "highest training throughput with the same weights as in memory",
                              ("epoch_s", "data_wait_share", "file_bytes")))
    else:
        rec = _by_metric(frame, "fastest training input", "scan_samples_per_s", cases,
                         "training not measured in this run; by sequential scan throughput instead",
                         ("batch_unsorted_samples_per_s", "file_bytes"))
        out.append(rec)
    out.append(balance(frame))
    return out


def balance(frame: Frame) -> Recommendation:
    """The case closest to the best on every measured axis at once (lowest geometric-mean shortfall)."""
    cases = frame.cases()
    used = [m for m in BALANCE
            if sum(frame.median(c, m) is not None for c in cases) >= max(2, math.ceil(len(cases) / 2))]
    cands = [c for c in cases if all(frame.median(c, m) is not None for m in used)]
    if len(used) < 2 or not cands:
        return Recommendation("best balance", None, "not measured in this run (needs two or more metrics)")
    best = {m: best_row(frame, m, cands).median for m in used}
    shortfall = {c: {m: goodness(m, frame.median(c, m), best[m]) for m in used} for c in cands}
    score = {c: math.exp(sum(math.log(max(v, 1e-300)) for v in s.values()) / len(used))
             for c, s in shortfall.items() if all(math.isfinite(v) for v in s.values())}
    if not score:
        return Recommendation("best balance", None, "not measured in this run")
    win = min(score, key=score.get)
    parts = ", ".join(f"{METRICS[m].label} {times(shortfall[win][m])}" for m in used)
    reason = (f"closest to the best on {len(used)} axes at once: on average {times(score[win])} "
              f"from the best of each ({parts}; ×1 = best)")
    return Recommendation("best balance", win, reason, _figures(frame, win, tuple(used)))
