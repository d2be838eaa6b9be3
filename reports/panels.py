"""View models of the report's panels: HDF5 maps, training, warm vs cold, and the two-store comparison."""
from __future__ import annotations

import statistics
from typing import Any

from fmtbench.metrics import METRICS

from . import hdf5grid, svg
from .analysis import PREFERRED_CACHES, Frame, case_sort_key, goodness, not_cold, spread_label
from .compare import Comparison
from .load import BASELINE
from .units import label, scale_for, times

MAP_METRICS = ("file_bytes", "scan_mb_per_s", "random_p50_s")
CACHE_METRICS = ("random_p50_s", "batch_sorted_samples_per_s", "scan_mb_per_s")
WARM_COLD = ("scan_samples_per_s", "random_p50_s", "random_p99_s", "batch_unsorted_samples_per_s")
NOT_MEASURED = "not measured in this run"


def _why_missing(frame: Frame, fmt: str) -> str:
    probs = [p for p in frame.problems if p.case.split("/", 1)[0] == fmt]
    return NOT_MEASURED + (f" ({probs[0].case}: {probs[0].kind} — {probs[0].reason})" if probs else "")


def _cache_text(value: Any) -> str:
    if value is None:
        return "library default"
    if value == 0 or value == "auto":  # formats/hdf5.py: cache0, cacheauto
        return "none" if value == 0 else "the working set"
    if isinstance(value, int) and value >= 2**20 and value % 2**20 == 0:
        return f"{value >> 20} MiB"
    return scale_for("bytes", [value]).text(value, True) if isinstance(value, int) else str(value)


def hdf5(frame: Frame, chunk_cache: dict | None) -> dict[str, Any]:
    """Chunk x compression heatmaps per shuffle setting, what a chunk-cache setting is worth
    against the default on the same layout, and the effect of the chunk-cache size."""
    lays = hdf5grid.layouts(frame)
    unknown = [c for c in frame.cases() if c.startswith("hdf5") and c not in lays and
               any(r.case == c for r in frame.rows)]
    out: dict[str, Any] = {"maps": [], "cache": [], "unknown": unknown, "default_cache": chunk_cache,
                           "worth": _cache_worth(frame, lays)}
    if not lays:
        out["missing"] = _why_missing(frame, "hdf5")
        return out
    for shuffle, grid in hdf5grid.maps(lays).items():
        rows = sorted({k[0] for k in grid}, key=lambda r: hdf5grid.chunk_order(
            next(lay.chunk for lay in lays.values() if lay.chunk_label == r)))
        cols = sorted({k[1] for k in grid}, key=hdf5grid.compression_order)
        charts = []
        for metric in MAP_METRICS:
            vals = {k: frame.median(c, metric) for k, c in grid.items()}
            sc = scale_for(METRICS[metric].unit, vals.values())
            cells = {k: _cell(frame.get(grid[k], metric), sc) for k, v in vals.items() if v is not None}
            if cells:
                title = f"{METRICS[metric].label} ({sc.unit.strip()}) — shuffle: {shuffle}"
                charts.append({"title": title, "svg": svg.heatmap(rows, cols, cells, METRICS[metric].better,
                                                                  title, "chunk", "compression")})
        out["maps"].append({"shuffle": shuffle, "charts": charts, "cases": f"{len(grid)} case{'s' * (len(grid) > 1)}"})
    groups = hdf5grid.cache_groups(lays)
    for metric in CACHE_METRICS if groups else ():
        labels, values = [], []
        for name, members in groups.items():
            for cache, case in members:
                labels.append(f"{name} · cache {_cache_text(cache)}")
                values.append(frame.median(case, metric))
        if any(v is not None for v in values):
            sc = scale_for(METRICS[metric].unit, values)
            out["cache"].append({"title": f"{METRICS[metric].label} by chunk-cache size", "svg": svg.bars(
                labels, [(metric, [sc.value(v) for v in values])], label(metric, sc),
                f"{METRICS[metric].label} by chunk-cache size",
                texts=[[sc.text(v, True) for v in values]])})
    return out


def _cell(row: Any, sc: Any) -> svg.Cell:
    """A heat-map cell: the median, its IQR and its median's interval for the tooltip, marked when that is wide."""
    v = row.median
    if row.n < 2 or row.q1 is None:
        return svg.Cell(v, sc.text(v), f"n={row.n}: one round, no spread")
    ci = (row.ci_low, row.ci_high) if row.ci_low is not None and row.ci_high is not None else (row.q1, row.q3)
    wide = bool(v) and (ci[1] - ci[0]) / abs(v) > svg.WIDE
    spread = (f"median {sc.text(v, True)}; IQR {sc.text(row.q1)}–{sc.text(row.q3)}; {spread_label(row)} "
              f"{sc.text(row.ci_low)}–{sc.text(row.ci_high)}" + (" (wide)" if wide else ""))
    return svg.Cell(v, sc.text(v), spread, wide)


def _cache_worth(frame: Frame, lays: dict) -> dict[str, Any]:
    """Per layout with a cache twin: each CACHE_METRICS median with the default cache and the
    twin's, and how many times faster (or slower) the twin is."""
    pairs = hdf5grid.worth(frame, lays, CACHE_METRICS)
    scales = {m: scale_for(METRICS[m].unit, [v for *_, ws in pairs for w in ws if w.metric == m
                                             for v in (w.default, w.other)]) for m in CACHE_METRICS}
    rows = []
    for name, base, cache, case, ws in pairs:
        cells = []
        for w in ws:
            sc = scales[w.metric]
            if w.factor is None:
                word, ratio = "", "–"
            else:
                ratio = times(w.factor if w.factor >= 1 else 1 / w.factor)
                word = "same within noise" if w.noise else "faster" if w.factor >= 1 else "slower"
            cells.append({"default": sc.text(w.default, True), "other": sc.text(w.other, True), "ratio": ratio,
                          "word": word, "better": w.factor is not None and w.factor > 1 and not w.noise})
        rows.append({"layout": name, "cache": _cache_text(cache), "case": case, "base": base, "cells": cells})
    default = hdf5grid.default_cache(lays) if lays else None
    return {"rows": rows, "default": _cache_text(default), "columns": [METRICS[m].label for m in CACHE_METRICS]}


def shuffle_quality(frame: Frame, case: str) -> str:
    """'0.28 of a full shuffle; 6.6% neighbours (full: 2.1%)': how shuffled the streaming pipeline's
    delivered order was (`fmtbench.workloads.shuffle`), or '' when not measured."""
    row = frame.get(case, "native_samples_per_s")
    q = row.extra.get("shuffle") if row is not None else None
    if not isinstance(q, dict) or q.get("displacement") is None:
        return ""
    return (f"displaced {q['displacement']:.2f} of a full shuffle; {q['neighbour_share']:.1%} file neighbours "
            f"(full shuffle {q['full_neighbour_share']:.1%})")


def training(frame: Frame) -> dict[str, Any]:
    """Epoch time against the in-memory baseline, data-wait share, weights check, native pipeline."""
    cases = [c for c in frame.cases() if frame.get(c, "epoch_s") or frame.get(c, "native_samples_per_s")]
    base = frame.get(BASELINE, "epoch_s")
    out: dict[str, Any] = {"charts": [], "rows": [], "baseline": None}
    if not cases:
        out["missing"] = NOT_MEASURED + (" (only the in-memory baseline was trained)" if base else "")
        return out
    s = scale_for("s", [frame.median(c, "epoch_s") for c in cases] + [base.median if base else None])
    if base is not None:
        out["baseline"] = {"epoch": s.text(base.median, True),
                           "rate": scale_for("samples/s", [frame.median(BASELINE, "train_samples_per_s")])
                           .text(frame.median(BASELINE, "train_samples_per_s"), True),
                           "digest": (base.extra.get("weights_digest") or "")[:12],
                           "stream": scale_for("samples/s", [frame.median(BASELINE, "native_samples_per_s")])
                           .text(frame.median(BASELINE, "native_samples_per_s"), True)
                           if frame.get(BASELINE, "native_samples_per_s") else None,
                           "shuffle": shuffle_quality(frame, BASELINE)}
    rates = scale_for("samples/s", [frame.median(c, m) for c in cases for m in ("train_samples_per_s",
                                                                                "native_samples_per_s")])
    matches = []
    for c in cases:
        ep = frame.get(c, "epoch_s")
        match = ep.extra.get("weights_match_baseline") if ep else None
        matches.append(match)
        wait, wrow = frame.median(c, "data_wait_share"), frame.get(c, "data_wait_share")
        read = (wrow.extra.get("data_read_share") if wrow else None) or []
        read = [v for v in (read if isinstance(read, list) else [read]) if isinstance(v, (int, float))]
        vs = ep.median / base.median if ep and base and base.median else None
        out["rows"].append({
            "case": c, "epoch": s.text(ep.median if ep else None, True), "vs": f"×{vs:.2f}" if vs else "–",
            "rate": rates.text(frame.median(c, "train_samples_per_s"), True),
            "wait": "–" if wait is None else f"{wait:.0%}",
            "read": f"{sorted(read)[len(read) // 2]:.0%}" if read else "–",
            "pipeline": (ep.extra.get("pipeline") or "") if ep else "",
            "loss": _plain(frame.median(c, "final_loss")), "acc": _plain(frame.median(c, "final_accuracy")),
            "match": match, "digest": ((ep.extra.get("weights_digest") or "") if ep else "")[:8],
            "native": rates.text(frame.median(c, "native_samples_per_s"), True),
            "shuffle": shuffle_quality(frame, c)})
    out["identical"] = sum(m is True for m in matches)
    out["differ"] = [c for c, m in zip(cases, matches) if m is False]
    out["unchecked"] = sum(m is None for m in matches)
    timed = [c for c in cases if frame.get(c, "epoch_s")]
    if timed:
        vals = [s.value(frame.median(c, "epoch_s")) for c in timed]
        ref = (s.value(base.median), f"in memory {s.text(base.median, True)}") if base else None
        out["charts"].append({"title": "Shuffled training: time per pass", "svg": svg.bars(
            timed, [("pass", vals)], label("epoch_s", s), "Shuffled-training time per pass against the in-memory baseline",
            ref=ref, texts=[[s.text(frame.median(c, "epoch_s"), True) for c in timed]])})
        waits = [frame.median(c, "data_wait_share") for c in timed]
        if any(w is not None for w in waits):
            out["charts"].append({"title": "Data-wait share", "svg": svg.bars(
                timed, [("data wait", [None if w is None else 100 * w for w in waits])],
                label("data_wait_share", scale_for("fraction", [])), "Share of step time waiting for data", log=False,
                texts=[["–" if w is None else f"{w:.1%}" for w in waits]])})
    native = [c for c in cases if frame.get(c, "native_samples_per_s")]
    if native:
        series = [("shuffled (shared random order)", [rates.value(frame.median(c, "train_samples_per_s")) for c in native]),
                  ("streaming (own pipeline)", [rates.value(frame.median(c, "native_samples_per_s")) for c in native])]
        out["charts"].append({"title": "Streaming vs shuffled training", "svg": svg.bars(
            native, series, f"samples/s ({rates.unit.strip()}, higher is better →)",
            "Training throughput: shuffled random access vs each format's streaming pipeline")})
    return out


def _plain(v: float | None) -> str:
    return "–" if v is None else f"{v:.4g}"


def warm_cold(frame: Frame) -> dict[str, Any]:
    """Each read metric measured with both caches, side by side, with how much slower cold is."""
    metrics = [m for m in WARM_COLD if any(frame.get(c, m, "warm") and frame.get(c, m, "cold")
                                          for c in frame.cases())]
    if not metrics:
        return {"missing": NOT_MEASURED + " (cold-cache runs need --cache both or cold)", "rows": [], "charts": []}
    scales = {m: scale_for(METRICS[m].unit, [r.median for r in frame.rows if r.metric == m]) for m in metrics}
    rows = []
    for c in frame.cases():
        cells, res, why = [], [], None
        for m in metrics:
            w, k = frame.get(c, m, "warm"), frame.get(c, m, "cold")
            if not (w and k and w.median and k.median):
                cells.append({"warm": "–", "cold": "–", "change": "–"})
                continue
            g = goodness(m, k.median, w.median)
            cells.append({"warm": scales[m].text(w.median), "cold": scales[m].text(k.median),
                          "change": f"{times(g)} slower" if g >= 1 else f"{times(1 / g)} faster"})
            res += [x for x in k.extra.get("residency_before") or [] if x is not None]
            why = why or not_cold(k)
        if any(cell["warm"] != "–" for cell in cells):
            rows.append({"case": c, "cells": cells, "residency": f"{statistics.median(res):.0%}" if res else "–",
                         "not_cold": why})
    charts = []
    for m in ("scan_samples_per_s", "random_p50_s"):
        cs = [c for c in frame.cases() if frame.get(c, m, "warm") and frame.get(c, m, "cold")]
        if cs:
            sc = scales[m]
            charts.append({"title": f"{METRICS[m].label}: warm vs cold", "svg": svg.bars(
                cs, [(cache, [sc.value(frame.median(c, m, cache)) for c in cs]) for cache in ("warm", "cold")],
                label(m, sc), f"{METRICS[m].label}: warm vs cold page cache")})
    columns = [{"label": METRICS[m].label, "unit": scales[m].unit.strip()} for m in metrics]
    return {"rows": rows, "charts": charts, "columns": columns, "not_cold": [(r["case"], r["not_cold"]) for r in rows if r["not_cold"]]}


def comparison(cmp: Comparison | None) -> dict[str, Any] | None:
    """Per-case ratios (new / old) as a matrix with flagged cells, plus the flagged changes as a list."""
    if cmp is None:
        return None
    cols = sorted({(c.metric, c.cache) for c in cmp.changes},
                  key=lambda k: (list(METRICS).index(k[0]), PREFERRED_CACHES.index(k[1])))
    index = {(c.case, c.metric, c.cache): c for c in cmp.changes}
    matrix = []
    for case in sorted({c.case for c in cmp.changes}, key=case_sort_key):
        cells = []
        for metric, cache in cols:
            ch = index.get((case, metric, cache))
            if ch is None:
                cells.append({"text": "", "flag": "", "title": "", "v": ""})
                continue
            sc = scale_for(ch.unit, [ch.old, ch.new])
            cells.append({"text": "–" if ch.ratio is None else f"×{ch.ratio:.2f}", "flag": ch.flag,
                          "v": "" if ch.ratio is None else ch.ratio,
                          "title": f"{case} {METRICS[metric].label} ({cache}): {sc.text(ch.old, True)} → "
                                   f"{sc.text(ch.new, True)}; {ch.verdict} ({ch.basis})"})
        matrix.append({"case": case, "cells": cells})
    flagged = []
    for ch in cmp.flagged():
        sc = scale_for(ch.unit, [ch.old, ch.new])
        flagged.append({"case": ch.case, "metric": METRICS[ch.metric].label, "cache": ch.cache,
                        "old": sc.text(ch.old, True), "new": sc.text(ch.new, True),
                        "ratio": "–" if ch.ratio is None else times(ch.ratio), "flag": ch.flag,
                        "basis": ch.basis})
    return {"old": cmp.old_label, "new": cmp.new_label, "warnings": cmp.warnings, "only_old": cmp.only_old,
            "only_new": cmp.only_new, "flagged": flagged, "n": len(cmp.changes), "matrix": matrix,
            "columns": [{"label": METRICS[m].label, "cache": c, "better": METRICS[m].better} for m, c in cols],
            "by_chance": cmp.expected_by_chance(), "counts": cmp.counts(),
            "better": sum(c.flag == "better" for c in cmp.changes),
            "worse": sum(c.flag == "worse" for c in cmp.changes)}
