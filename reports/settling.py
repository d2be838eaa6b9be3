"""What the settling rounds did: how many extra rounds each figure took (`fmtbench.settle`)."""
from __future__ import annotations

from .analysis import Frame


def extra_rounds(frame: Frame) -> dict[tuple[str, str, str], int]:
    """(case, metric, cache) -> rounds measured by settling (records marked ``extra.settle``)."""
    return {(r.case, r.metric, r.cache): n for r in frame.rows
            if (n := sum(1 for s in r.extra.get("settle") or [] if s))}


def summary(frame: Frame) -> str:
    """One sentence on the settling rounds, or '' when none ran."""
    extra = extra_rounds(frame)
    if not extra:
        return ""
    units = {(c, k) for c, _, k in extra}
    return (f"After the planned rounds, {max(extra.values())} settling round{'s' if max(extra.values()) > 1 else ''} "
            f"re-measured {len(units)} case/cache unit{'s' if len(units) > 1 else ''} behind undecided picks.")


def annotate(recs: list, frame: Frame) -> None:
    """Say on each pick how many settling rounds its figures took, and whether they settled it."""
    extra = extra_rounds(frame)
    if not extra:
        return
    from .recommend import USES

    for rec in recs:
        if rec.case is None:
            continue
        metrics = [rec.metric] if rec.metric else [u.metric for u in USES]
        cases = [rec.case, *rec.tied]
        n = max((k for (c, m, _), k in extra.items() if c in cases and m in metrics), default=0)
        if n:
            rec.extra_rounds = (f"{'decided' if rec.decided else 'still undecided'} after {n} settling "
                                f"round{'s' if n > 1 else ''}")
