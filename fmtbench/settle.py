"""Settling: after the planned rounds, more rounds for the units behind undecided answers.

A pick that the rounds cannot separate from a rival (`fmtbench.stats.verdict` says
"undecided") is no answer; often one or two more rounds of just the few units involved settle
it, at a fraction of the run's time. `undecided_units` reads the store as the report does
(`fmtbench.reports`: the same frame, flags and picks) and names those units: per undecided pick,
the pick's unit and the unit of every case it is undecided against (closest first), on the
metric that decides the use; for the balanced pick, those units on every use it weighs. The
runner (`Runner.settle`) runs them in extra interleaved rounds, each stored like any round with
``extra.settle``, until every pick is decided, the budget is spent, or `MAX_EXTRA` rounds ran.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fmtbench.metrics import METRICS
from fmtbench.stats import MARGIN

#: settling never adds more rounds than this (by 9 rounds each, verdicts reach 99% coverage)
MAX_EXTRA = 6
#: rivals re-measured per undecided pick, the closest first: beyond them the pick stays undecided
RIVALS = 4


def undecided_units(store: Path, dataset: str, margin: float = MARGIN,
                    weights: Mapping[str, float] | None = None) -> tuple[list[tuple[str, str, str]], list[str]]:
    """((case, workload, cache) units behind the undecided picks, the uses they answer) of the
    store's latest run of `dataset`."""
    from fmtbench.reports import trust
    from fmtbench.reports.analysis import frame, goodness
    from fmtbench.reports.load import load
    from fmtbench.reports.recommend import BALANCED, USES, recommend

    results = load([store])
    fr = frame(results, dataset)
    fr.margin = margin
    recs = recommend(fr, trust.flagged_keys(fr, trust.limits(results)), weights)
    units: dict[tuple[str, str, str], None] = {}
    uses = []
    for rec in recs:
        if rec.verdict != "undecided" or rec.case is None:
            continue
        metrics = [u.metric for u in USES] if rec.use == BALANCED else [rec.metric]
        for metric in metrics:
            top = fr.get(rec.case, metric)
            if top is None or top.median is None or METRICS[metric].exact:  # a size needs no more rounds
                continue
            rivals = [r for c in rec.undecided if (r := fr.get(c, metric)) is not None and r.median]
            rivals.sort(key=lambda r: goodness(metric, r.median, top.median))
            for row in [top, *rivals[:RIVALS]]:
                units[(row.case, row.workload, row.cache)] = None
        uses.append(rec.use)
    return list(units), uses
