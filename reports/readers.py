"""View model of the concurrent-readers section: scaling curves, verdicts with their reasons,
the scaling table and the fork-after-open findings, all computed from the `readers` rows."""
from __future__ import annotations

import statistics
from html import escape
from typing import Any

from fmtbench.metrics import (CLIENT_COUNTS, READER_COUNTS, READER_MODES, READER_PATTERNS, clients_metric,
                              readers_metric)
from fmtbench.workloads.readers import SLOWER

from . import svg, trust
from .analysis import Frame
from .load import Results
from .units import number, scale_for, times

SCALES, SERIALIZES = 0.7, 1.15  # efficiency at 2 readers that scales; speed-up below which it serializes
PAST_CORES = 1.3  # gain from `cores` to the most readers that says the reads wait on I/O
PATTERN_TITLE = {"random": "random batches", "scan": "disjoint shards"}
COLORS = {"processes": svg.SERIES[0], "threads": svg.SERIES[1]}


def _cores(results: Results) -> int:
    machine = next((p.get("machine") or {} for p in reversed(results.provenance) if p.get("machine")), {})
    return int(machine.get("usable_cores") or machine.get("logical_cores") or 2)


def _curve(frame: Frame, case: str, pattern: str, mode: str, cache: str) -> dict[int, float]:
    out = {}
    for n in READER_COUNTS:
        row = frame.get(case, readers_metric(pattern, mode, n), cache)
        if row is not None and row.median:
            out[n] = row.median
    return out


def _median(row_extra: dict[str, Any], key: str) -> float | None:
    vals = [v for v in row_extra.get(key) or [] if v is not None]
    return statistics.median(vals) if vals else None


def chart(case: str, pattern: str, curves: dict[tuple[str, str], dict[int, float]]) -> str:
    """Readers (log2) vs samples/s (log) for one case and pattern: a line per (mode, cache), and
    each warm mode's ideal (its 1-reader rate x readers) dotted."""
    W, H, L, R, T, B = 360, 200, 52, 10, 22, 34
    counts = sorted({n for c in curves.values() for n in c})
    ideals = {mode: {n: c[1] * n for n in counts} for (mode, cache), c in curves.items() if cache == "warm" and 1 in c}
    vals = [v for c in curves.values() for v in c.values()] + [v for c in ideals.values() for v in c.values()]
    sc = scale_for("samples/s", vals)
    xa = svg.Axis([float(n) for n in counts] or [1.0], L, W - R, log=True)
    ya = svg.Axis([sc.value(v) for v in vals] or [1.0], H - B, T + 16, log=True)  # below the legend
    title = f"{case}: {PATTERN_TITLE[pattern]}"
    body = [f'<text x="4" y="14" class="tick">{escape(f"{title} ({sc.unit.strip()}, log)")}</text>']
    for t in ya.ticks():
        y = ya.px(t)
        body.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="{svg.GRID}"/>'
                    f'<text x="{L - 4}" y="{y + 4:.1f}" text-anchor="end" class="tick">{svg.tick(t)}</text>')
    for n in counts:
        x = xa.px(float(n))
        body.append(f'<text x="{x:.1f}" y="{H - B + 14}" text-anchor="middle" class="tick">{n}</text>')
    body.append(f'<text x="{(L + W - R) / 2}" y="{H - 4}" text-anchor="middle" class="axis">readers →</text>')

    def line(points: dict[int, float], color: str, dash: str, tip: str) -> None:
        xy = " ".join(f"{xa.px(float(n)):.1f},{ya.px(sc.value(v)):.1f}" for n, v in sorted(points.items()))
        body.append(f'<polyline points="{xy}" fill="none" stroke="{color}" stroke-width="1.6" '
                    f'stroke-dasharray="{dash}"><title>{escape(tip)}</title></polyline>')
        for n, v in points.items():
            body.append(f'<circle cx="{xa.px(float(n)):.1f}" cy="{ya.px(sc.value(v)):.1f}" r="2.5" fill="{color}">'
                        f'<title>{escape(f"{tip}, {n} readers: {sc.text(v, True)}")}</title></circle>')

    for mode, pts in ideals.items():
        xy = " ".join(f"{xa.px(float(n)):.1f},{ya.px(sc.value(v)):.1f}" for n, v in sorted(pts.items()))
        body.append(f'<polyline points="{xy}" fill="none" stroke="{COLORS[mode]}" stroke-opacity="0.7" '
                    f'stroke-dasharray="1 3"><title>ideal for {mode}: 1-reader rate × readers</title></polyline>')
    for (mode, cache), pts in curves.items():
        if pts:
            line(pts, COLORS[mode], "" if cache == "warm" else "5 3", f"{mode}, {cache} cache")
    x = 4
    for mode in READER_MODES:
        body.append(f'<rect x="{x}" y="{T - 2}" width="8" height="8" fill="{COLORS[mode]}"/>'
                    f'<text x="{x + 11}" y="{T + 6}" class="tick">{mode}</text>')
        x += 20 + len(mode) * 6.3  # 11px sans-serif characters
    key = "dotted: ideal" + ("; dashed: cold" if any(cache == "cold" for _, cache in curves) else "")
    body.append(f'<text x="{x}" y="{T + 6}" class="tick">{key}</text>')
    return svg.figure(W, H, title, body)


def _mode_verdict(curve: dict[int, float]) -> tuple[str, float | None]:
    if 1 not in curve or 2 not in curve:
        return "not measured", None
    s2 = curve[2] / curve[1]
    return ("scales" if s2 / 2 >= SCALES else "serializes" if s2 < SERIALIZES else "scales partly"), s2


def verdict(case: str, curves: dict[str, dict[int, float]], cores: int) -> dict[str, Any]:
    """Whether `case`'s random-batch reads scale, per mode, and why, from its own figures."""
    (pv, ps), (tv, ts) = _mode_verdict(curves["processes"]), _mode_verdict(curves["threads"])
    if "not measured" in (pv, tv):
        word = pv if tv == "not measured" else tv
    elif pv == tv:
        word = pv
    elif pv != "serializes" and tv == "serializes":
        word = "serializes in one process, scales with processes"
    else:
        word = f"{pv} with processes, {tv} with threads"
    why = []
    if pv != "serializes" and tv == "serializes":
        lock = "h5py holds one lock around every call" if case.startswith("hdf5") else \
            "the GIL or a library-wide lock is held while a read runs"
        why.append(f"threads gain ×{ts:.2f} at 2 readers where processes gain ×{ps:.2f}: one lock serializes "
                   f"reads inside a process ({lock})")
    elif pv == "serializes" and tv == "serializes":
        why.append(f"neither a second process (×{ps:.2f}) nor a second thread (×{ts:.2f}) adds throughput: "
                   f"the bottleneck is shared by processes (storage, or a machine already busy)")
    for mode, curve in curves.items():
        top = max(curve, default=None)
        if top and top > cores and cores in curve and curve[1] and curve[cores] / curve[1] > SERIALIZES:
            gain = curve[top] / curve[cores]
            how = ("reads wait outside the CPU (storage, system calls) and the waits overlap"
                   if gain >= PAST_CORES else f"CPU-bound: it stops at the {cores} cores")
            why.append(f"{mode}: ×{gain:.2f} from {cores} to {top} readers on {cores} cores — {how}")
    effs = {m: f"{(c[2] / c[1]) / 2:.0%}" for m, c in curves.items() if 1 in c and 2 in c}
    return {"case": case, "verdict": word, "class": word.split()[0].split(",")[0], "why": why,
            "efficiency": effs}


def _busy(frame: Frame, case: str, cache: str) -> float | None:
    """The median CPU share other processes used during the case's readers unit-rounds, if busy."""
    row = frame.get(case, readers_metric("random", "processes", 1), cache)
    shares = [m.get("others_cpu_share") for m in (row.extra.get("machine") or []) if isinstance(m, dict)] if row else []
    shares = [x for x in shares if x is not None]
    share = statistics.median(shares) if shares else None
    return share if share is not None and share > trust.BUSY_SHARE else None


def _finding(frame: Frame, case: str, cache: str) -> dict[str, Any] | None:
    """The fork-after-open finding over rounds: a breakage in any round, else the median slowdown."""
    rows = [r for r in frame.rows if r.case == case and r.cache == cache and r.workload == "readers"
            and r.metric != "readers_fork_after_open_samples_per_s"]  # that one only has the rounds it worked
    found = [f for r in rows[:1] for f in r.extra.get("fork_after_open") or [] if isinstance(f, dict)]
    if not found:
        return None
    broken = [f for f in found if f.get("outcome") not in ("ok", "slower")]
    ratios = [f["ratio_to_own_handles"] for f in found if f.get("ratio_to_own_handles") is not None]
    ratio = statistics.median(ratios) if ratios else None
    if broken:
        outcome, detail, bad = broken[-1].get("outcome", "?"), broken[-1].get("detail", ""), len(broken)
    else:
        outcome = "slower" if ratio is not None and ratio < SLOWER else "ok"
        detail = f"{found[-1].get('readers')} processes sharing a handle opened before fork: median " \
                 f"×{ratio:.2f} of the rate with handles opened after fork" if ratio is not None else ""
        bad = sum(f.get("outcome") == "slower" for f in found)
    return {"case": case, "cache": cache, "outcome": outcome, "detail": detail,
            "rounds": f"{bad} of {len(found)}", "readers": found[-1].get("readers")}


def _table_rows(frame: Frame, case: str, cache: str, counts: list[int]) -> list[dict[str, Any]]:
    out = []
    for pattern in READER_PATTERNS:
        for mode in READER_MODES:
            cells, one = [], None
            for n in counts:
                row = frame.get(case, readers_metric(pattern, mode, n), cache)
                if row is None or not row.median:
                    cells.append({"rate": "–", "eff": "", "p99": ""})
                    continue
                one = row.median if n == 1 else one
                sc = scale_for("samples/s", [row.median])
                p99 = _median(row.extra, "p99_s")
                cells.append({"rate": sc.text(row.median, True),
                              "eff": f"{row.median / (one * n):.0%}" if one else "",
                              "p99": f"p99 {number(p99 * 1e3)} ms" if p99 is not None else ""})
            if any(c["rate"] != "–" for c in cells):
                out.append({"case": case, "cache": cache, "pattern": PATTERN_TITLE[pattern], "mode": mode,
                            "cells": cells})
    return out


def section(frame: Frame, results: Results) -> dict[str, Any]:
    """Everything the readers section shows; `missing` when no readers unit was measured."""
    rows = [r for r in frame.rows if r.workload == "readers"]
    if not rows:
        return {"missing": "not measured in this run (fmtbench run -w readers)", "clients": many_clients(frame)}
    cores = _cores(results)
    caches = [c for c in ("warm", "cold") if any(r.cache == c for r in rows)]
    cases = [c for c in frame.cases() if any(r.case == c for r in rows)]
    counts = sorted({int(r.extra["readers"]) for r in rows if isinstance(r.extra.get("readers"), int)}
                    & set(READER_COUNTS))
    figures, verdicts, table, findings = [], [], [], []
    for case in cases:
        charts = []
        for pattern in READER_PATTERNS:
            curves = {(m, c): _curve(frame, case, pattern, m, c) for m in READER_MODES for c in caches}
            if any(curves.values()):
                charts.append(chart(case, pattern, curves))
        figures.append({"case": case, "charts": charts})
        for cache in caches:
            v = verdict(case, {m: _curve(frame, case, "random", m, cache) for m in READER_MODES}, cores)
            if (busy := _busy(frame, case, cache)) is not None:
                v["why"].append(f"taken on a busy machine: other processes used {busy:.0%} of the CPUs "
                                f"(median over rounds), so readers competed with them for the cores")
            verdicts.append(v | {"cache": cache})
            table += _table_rows(frame, case, cache, counts)
            if (f := _finding(frame, case, cache)) is not None:
                findings.append(f)
    groups: dict[str, list[str]] = {}
    for v in verdicts:
        if v["cache"] == caches[0]:
            groups.setdefault(v["verdict"], []).append(v["case"])
    return {"cores": cores, "caches": caches, "counts": counts, "figures": figures, "verdicts": verdicts,
            "groups": sorted(groups.items(), key=lambda kv: -len(kv[1])), "table": table,
            "findings": [f for f in findings if f["outcome"] != "ok"],
            "findings_ok": [c for c in cases if {f["outcome"] for f in findings if f["case"] == c} == {"ok"}],
            "fork_count": next((f["readers"] for f in findings), None),
            "thresholds": {"scales": SCALES, "serializes": SERIALIZES, "slower": SLOWER},
            "clients": many_clients(frame)}


# --- many clients: the clients workload (fmtbench.clients), one client per cluster worker ----

_CHART_COUNTS = 4  # bars per case in a chart (the table has every count)
_OVERLAP = 0.1  # clients whose starts spread over more than this share of the wall time overlapped poorly


def _clients_row(frame: Frame, case: str, pattern: str, n: int, cache: str) -> dict[str, Any] | None:
    row = frame.get(case, clients_metric(pattern, n), cache)
    if row is None or not row.median:
        return None
    x = row.extra
    return {"rate": row.median, "p50": _median(x, "client_p50_s"), "p99": _median(x, "client_p99_s"),
            "spread": _median(x, "client_rate_spread"), "hosts": sorted(set(x.get("hosts") or [])),
            "start_spread": x.get("start_spread_s"), "wall": x.get("wall_s")}


def _clients_sentence(case: str, pattern: str, cache: str, points: dict[int, dict[str, Any]]) -> dict[str, str]:
    """What the figures say: the gain from 1 to the most clients against the ideal, the p99 change."""
    return {"case": case, "text": _clients_text(f"({PATTERN_TITLE[pattern]}, {cache})", points)}


def _clients_text(where: str, points: dict[int, dict[str, Any]]) -> str:
    top = max(points)
    if 1 not in points or top == 1:
        return f"{where}: {top} client{'s' if top > 1 else ''} only, no gain to compute."
    one, many = points[1], points[top]
    gain = many["rate"] / one["rate"]
    text = (f"{where}: aggregate grows {times(gain)} from 1 to {top} clients ({gain / top:.0%} of the ideal "
            f"×{top})" if gain >= 1 else f"{where}: aggregate falls to {times(gain)} from 1 to {top} clients")
    if one["p99"] is not None and many["p99"] is not None:
        text += f"; per-client p99 {number(one['p99'] * 1e3)} → {number(many['p99'] * 1e3)} ms"
    if many["start_spread"] and many["wall"] and many["start_spread"] > _OVERLAP * many["wall"]:
        text += (f"; their starts spread over {number(many['start_spread'] * 1e3)} ms of a "
                 f"{number(many['wall'] * 1e3)} ms wall, so they overlapped only in part (a longer window helps)")
    return text + "."


def _pick_counts(counts: list[int]) -> list[int]:
    """At most _CHART_COUNTS counts, the first and the last among them."""
    if len(counts) <= _CHART_COUNTS:
        return counts
    step = (len(counts) - 1) / (_CHART_COUNTS - 1)
    return sorted({counts[round(i * step)] for i in range(_CHART_COUNTS)})


def many_clients(frame: Frame) -> dict[str, Any] | None:
    """The many-clients panel: aggregate samples/s vs clients, per-client p50/p99 per case, a
    sentence per case from its figures, and the table; None when no clients unit was measured."""
    rows = [r for r in frame.rows if r.workload == "clients"]
    if not rows:
        return None
    caches = [c for c in ("warm", "cold") if any(r.cache == c for r in rows)]
    cases = [c for c in frame.cases() if any(r.case == c for r in rows)]
    counts = sorted({n for n in CLIENT_COUNTS for p in READER_PATTERNS for c in cases
                     if any(frame.get(c, clients_metric(p, n), cache) for cache in caches)})
    shown = _pick_counts(counts)
    charts, sentences, table = [], [], []
    for pattern in READER_PATTERNS:
        for cache in caches:
            got = {case: pts for case in cases
                   if (pts := {n: pt for n in counts if (pt := _clients_row(frame, case, pattern, n, cache))})}
            if not got:
                continue
            labels = list(got)
            series = [(f"{n} client{'s' if n > 1 else ''}", [got[c].get(n, {}).get("rate") for c in labels])
                      for n in shown]
            title = f"{PATTERN_TITLE[pattern].capitalize()}, {cache} cache"
            charts.append({"title": f"{title}: aggregate samples/s", "svg": svg.bars(
                labels, series, "samples/s, all clients together", f"{title}: aggregate samples/s",
                texts=[[scale_for("samples/s", [v]).text(v, True) for v in vs] for _, vs in series])})
            lat = [(c, n) for c in labels for n in shown if n in got[c]]
            charts.append({"title": f"{title}: per-client read latency", "svg": svg.bars(
                [f"{c}, {n} client{'s' if n > 1 else ''}" for c, n in lat],
                [(q, [_ms(got[c][n][q]) for c, n in lat]) for q in ("p50", "p99")],
                "ms per read (median over clients)", f"{title}: per-client read latency")})
            for case, pts in got.items():
                sentences.append(_clients_sentence(case, pattern, cache, pts))
                table.append({"case": case, "cache": cache, "pattern": PATTERN_TITLE[pattern], "cells": [
                    _clients_cell(pts.get(n), pts.get(1), n) for n in counts]})
    hosts = sorted({h for r in rows for h in r.extra.get("hosts") or []})
    shared = (f"Every client ran on one host ({hosts[0]}): with more than one, they shared its cores and its "
              f"page cache, so this measures that machine, not the storage." if len(hosts) == 1 else "")
    return {"counts": counts, "caches": caches, "charts": charts, "sentences": sentences, "table": table,
            "hosts": hosts, "one_host": shared}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


def _clients_cell(pt: dict[str, Any] | None, one: dict[str, Any] | None, n: int) -> dict[str, str]:
    if pt is None:
        return {"rate": "–", "detail": ""}
    sc = scale_for("samples/s", [pt["rate"]])
    detail = [f"{pt['rate'] / (one['rate'] * n):.0%} of ideal"] if one and n > 1 else []
    if pt["p50"] is not None and pt["p99"] is not None:
        detail.append(f"p50 {number(pt['p50'] * 1e3)} · p99 {number(pt['p99'] * 1e3)} ms")
    if pt["spread"] and n > 1:
        detail.append(f"fastest/slowest client {times(pt['spread'])}")
    return {"rate": sc.text(pt["rate"], True), "detail": " · ".join(detail)}
