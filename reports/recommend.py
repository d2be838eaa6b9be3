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
    #: cases whose interval overlaps the pick's: the pick is a tie with them, not a winner.
    tied: list[str] = field(default_factory=list)


def show(frame: Frame, case: str, metric: str, cache: str | None = None) -> str:
    """'scan throughput 1.2 M samples/s' for a case, or '' when not measured."""
    row = frame.get(case, metric, cache)
    if row is None or row.median is None:
        return ""
    return f"{METRICS[metric].label} {scale_for(row.unit, [row.median]).text(row.median, True)}"


def _figures(frame: Frame, case: str, metrics: tuple[str, ...]) -> list[str]:
    return [s for m in metrics if (s := show(frame, case, m))]


def tied_with(frame: Frame, metric: str, cases: list[str], winner: str) -> list[str]:
    """The cases that cannot be told from the winner: intervals overlap, or within 1%."""
    top = frame.get(winner, metric)
    out = []
    for c in cases:
        row = frame.get(c, metric)
        if c == winner or row is None or row.median is None:
            continue
        if outcome(top, row) == "same" or goodness(metric, row.median, top.median) < 1 + TIE:
            out.append(c)
    return out


def _runner_up(frame: Frame, metric: str, cases: list[str], winner: str, tied: list[str]) -> str:
    """How the next best compares: the tie, or 'runner-up X at V (n times worse)'."""
    if tied:
        names = ", ".join(tied[:4]) + (f" and {len(tied) - 4} more" if len(tied) > 4 else "")
        return f"a tie: {names} cannot be told apart from it (intervals overlap, or within 1%)"
    second = best_row(frame, metric, [c for c in cases if c != winner])
    if second is None:
        return ""
    g = goodness(metric, second.median, frame.get(winner, metric).median)
    return f"runner-up {second.case}: {show(frame, second.case, metric)} ({times(g)} worse, intervals apart)"


def _by_metric(frame: Frame, use: str, metric: str, cases: list[str], what: str,
               figures: tuple[str, ...], exclude: set = frozenset()) -> Recommendation:
    eligible = [c for c in cases if not any((c, metric, k) in exclude for k in ("warm", "cold", "n/a"))]
    top = best_row(frame, metric, eligible)
    if top is None:
        why = ("every figure is flagged as past what this machine can do (see 'How these numbers were taken')"
               if any(frame.get(c, metric) is not None for c in cases) else "not measured in this run")
        return Recommendation(use, None, f"{METRICS[metric].label}: {why}")
    reason = f"{what}: {show(frame, top.case, metric)}"
    tied = tied_with(frame, metric, eligible, top.case)
    extra = _runner_up(frame, metric, eligible, top.case, tied)
    return Recommendation(use, top.case, reason + (f"; {extra}" if extra else ""),
                          _figures(frame, top.case, figures), tied)


#: The two training questions, each its own pick: (use, metric, what the pick answers).
SHUFFLED = ("shuffled training", "train_samples_per_s",
            "fastest feed when every epoch reads a fresh random permutation (random access, the shared "
            "order; same weights as in memory)")
STREAMING = ("streaming training", "native_samples_per_s",
             "fastest feed read in the format's own order through its own pipeline and a shuffle buffer")


def recommend(frame: Frame, exclude: set = frozenset()) -> list[Recommendation]:
    """Smallest file, fastest random access, shuffled training, streaming training, best balance;
    figures in `exclude` ((case, metric, cache) flagged as not credible) are never picked."""
    cases = frame.cases()
    out = [
        _by_metric(frame, "smallest file", "file_bytes", cases, "smallest on disk",
                   ("compression_ratio", "write_s", "scan_samples_per_s", "random_p50_s")),
        _by_metric(frame, "fastest random access", "random_p50_s", cases, "lowest single-sample read latency",
                   ("random_p99_s", "batch_unsorted_samples_per_s", "file_bytes"), exclude),
    ]
    use, metric, what = SHUFFLED
    trained = [c for c in cases if frame.get(c, metric) is not None
               and frame.get(c, metric).extra.get("weights_match_baseline") is not False]
    if trained:
        out.append(_by_metric(frame, use, metric, trained, what, ("epoch_s", "data_wait_share", "file_bytes"),
                              exclude))
    else:
        out.append(_by_metric(frame, use, "batch_unsorted_samples_per_s", cases,
                              "training not measured in this run; by random-batch throughput instead",
                              ("random_p50_s", "file_bytes"), exclude))
    use, metric, what = STREAMING
    if any(frame.get(c, metric) is not None for c in cases):
        out.append(_by_metric(frame, use, metric, cases, what, ("scan_samples_per_s", "file_bytes"), exclude))
    else:
        out.append(_by_metric(frame, use, "scan_samples_per_s", cases,
                              "streaming training not measured in this run; by sequential scan throughput instead",
                              ("file_bytes",), exclude))
    out.append(balance(frame, exclude))
    return out


def balance(frame: Frame, exclude: set = frozenset()) -> Recommendation:
    """The case closest to the best on every measured axis at once (lowest geometric-mean shortfall);
    a case with a flagged figure is not ranked."""
    cases = [c for c in frame.cases() if not any(k[0] == c for k in exclude)]
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
