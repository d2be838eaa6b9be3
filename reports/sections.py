"""View models of the report's general sections: header, table, Pareto fronts, problems, provenance."""
from __future__ import annotations

import shlex
from typing import Any

from fmtbench.metrics import METRICS

from . import svg
from .analysis import Frame, best_per_column, case_sort_key, pareto_front, spread_label
from .load import BASELINE, Results
from .units import label, scale_for

FRONTS = (  # (x metric, y metric, title)
    ("file_bytes", "scan_samples_per_s", "File size vs scan throughput"),
    ("file_bytes", "random_p99_s", "File size vs random-access p99 latency"),
    ("write_s", "file_bytes", "Write time vs file size"),
    ("file_bytes", "train_samples_per_s", "File size vs training throughput"),
)
NOT_MEASURED = "not measured in this run"
WORKLOADS = ("write", "scan", "random", "train")


def header(results: Results, frame: Frame, others: list[str]) -> dict[str, Any]:
    """What was measured, on which data and machine, when, with which profile and cache modes."""
    prov = [p for p in results.provenance if p.get("dataset") == frame.dataset] or results.provenance
    machine = (prov[-1].get("machine") or {}) if prov else {}
    mem = machine.get("memory_total_bytes")
    fs = machine.get("filesystem") or {}
    rows = next((r.extra["rows"] for r in frame.rows if r.extra.get("rows")), None)
    times = sorted(p.get("time", "") for p in prov)
    profiles = sorted({(p.get("profile") or {}).get("name", "?") if isinstance(p.get("profile"), dict)
                       else str(p.get("profile")) for p in prov})
    return {
        "dataset": frame.dataset, "digest": frame.digest, "rows": rows, "others": others,
        "workloads": sorted({r.workload for r in frame.rows}, key=lambda w: (WORKLOADS.index(w)
                                                                              if w in WORKLOADS else 9, w)),
        "n_cases": len(frame.cases()), "formats": sorted({c.split("/", 1)[0] for c in frame.cases()}),
        "caches": [c for c in ("warm", "cold") if any(r.cache == c for r in frame.rows)],
        "cpu": machine.get("cpu_model"), "cores": machine.get("usable_cores") or machine.get("logical_cores"),
        "memory": f"{mem / 2**30:.1f} GiB" if mem else None, "os": machine.get("os"),
        "fs": fs.get("fstype"), "dates": (times[0][:16].replace("T", " "), times[-1][:16].replace("T", " "))
        if times else None, "profiles": profiles, "sources": results.sources,
    }


def table(frame: Frame, flagged: set = frozenset()) -> dict[str, Any]:
    """Every case x (metric, cache): median with IQR, the best per column (and its ties) marked,
    `flagged` figures marked and never best, problems as text."""
    cols = frame.columns()
    best = best_per_column(frame, flagged)
    columns, groups = [], []
    for metric, cache in cols:
        m, wl = METRICS[metric], frame.workload_of(metric) or "?"
        vals = [r.median for r in frame.rows if r.metric == metric]  # one scale for warm and cold
        sc = scale_for(m.unit, vals)
        columns.append({"metric": metric, "cache": cache, "label": m.label, "unit": sc.unit.strip(),
                        "better": m.better, "workload": wl, "scale": sc})
        if groups and groups[-1]["workload"] == wl:
            groups[-1]["span"] += 1
        else:
            groups.append({"workload": wl, "span": 1})
    rows = []
    for case in frame.cases(baseline=True):
        cells = []
        for col in columns:
            row = frame.get(case, col["metric"], col["cache"])
            if row is None or row.median is None:
                prob = frame.problem(case, col["workload"], col["cache"])
                cells.append({"text": "", "spread": "", "best": False, "flagged": False, "v": "",
                              "status": prob.kind if prob else "", "title": prob.reason if prob else ""})
                continue
            sc = col["scale"]
            spread = f"IQR {sc.text(row.q3 - row.q1)}" if row.n > 1 and row.q1 is not None else ""
            title = (f"{case} · {col['label']} ({col['cache']}): median {sc.text(row.median, True)}; "
                     f"IQR {sc.text(row.q1)}–{sc.text(row.q3)}; {spread_label(row)} {sc.text(row.ci_low)}–"
                     f"{sc.text(row.ci_high)}")
            suspect = (case, col["metric"], col["cache"]) in flagged
            if suspect:
                title += " · FLAGGED: past what this machine can do (see 'How these numbers were taken')"
            cells.append({"text": sc.text(row.median), "spread": spread, "title": title, "v": row.median,
                          "best": case in best.get((col["metric"], col["cache"]), ()), "status": "",
                          "flagged": suspect})
        rows.append({"case": case, "baseline": case == BASELINE, "cells": cells})
    return {"columns": columns, "groups": groups, "rows": rows}


def _arrow(metric: str, axis: str) -> str:
    hi = METRICS[metric].better == "higher"
    return ("→" if hi else "←") if axis == "x" else ("↑" if hi else "↓")


def read_twins(frame: Frame) -> dict[str, str]:
    """The frame's cases that differ from another only in how the file is read -> that base case."""
    from fmtbench.formats import get_case
    from fmtbench.formats._base import read_twins as twins

    adapters = []
    for case in frame.cases():
        try:
            adapters.append(get_case(case))
        except Exception:  # an id this checkout no longer parses: no twin
            continue
    return twins(adapters)


def front(frame: Frame, xm: str, ym: str, title: str, twins: dict[str, str] | None = None) -> dict[str, Any]:
    """One Pareto chart: cases with both metrics; the non-dominated ones highlighted and listed.
    A read-side twin (same file as its base) is left off a chart of write figures only, and
    on the others shows its base's write figure (the same file) where it has none of its own."""
    pts: dict[str, tuple[float, float]] = {}
    caches = set()
    twins = read_twins(frame) if twins is None else twins
    writes = [frame.workload_of(m) == "write" for m in (xm, ym)]
    for case in frame.cases():
        if case in twins and all(writes):
            continue
        x, y = (frame.get(case, m) or (frame.get(twins[case], m) if w and case in twins else None)
                for m, w in ((xm, writes[0]), (ym, writes[1])))
        if x and y and x.median and y.median and x.median > 0 and y.median > 0:
            pts[case] = (x.median, y.median)
            caches |= {x.cache, y.cache} - {"n/a"}
    out: dict[str, Any] = {"title": title, "svg": None, "front": []}
    if len(pts) < 2:
        out["missing"] = NOT_MEASURED if not pts else "only one case measured both; nothing to trade off"
        return out
    on = pareto_front(pts, (xm, ym))
    xs, ys = scale_for(METRICS[xm].unit, [p[0] for p in pts.values()]), scale_for(METRICS[ym].unit, [p[1] for p in pts.values()])
    points = [svg.Point(c, xs.value(x), ys.value(y), f"{c}: {xs.text(x, True)}, {ys.text(y, True)}")
              for c, (x, y) in pts.items()]
    out["svg"] = svg.scatter(points, on, label(xm, xs, _arrow(xm, "x")), label(ym, ys, _arrow(ym, "y")),
                             title, (METRICS[xm].better, METRICS[ym].better))
    out["front"] = [{"case": c, "x": xs.text(pts[c][0], True), "y": ys.text(pts[c][1], True)} for c in on]
    out["cache"] = "/".join(sorted(caches)) or "n/a"
    out["n"] = len(pts)
    return out


def fronts(frame: Frame) -> list[dict[str, Any]]:
    """The four Pareto charts."""
    twins = read_twins(frame)
    return [front(frame, xm, ym, title, twins) for xm, ym, title in FRONTS]


def problems(frame: Frame) -> list[dict[str, Any]]:
    """Failures and skips, one line per (case, kind, reason) with the units it hit."""
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for p in frame.problems:
        unit = p.workload if p.cache == "n/a" else f"{p.workload} ({p.cache})"
        grouped.setdefault((p.case, p.kind, p.reason), []).append(unit)
    return [{"case": c, "kind": k, "reason": r, "units": ", ".join(u)} for (c, k, r), u in grouped.items()]


def provenance(results: Results) -> list[dict[str, Any]]:
    """One block per run: command line, profile, machine, libraries, HDF5 and its chunk-cache defaults."""
    out = []
    for p in results.provenance:
        m = p.get("machine") or {}
        cc = m.get("hdf5_chunk_cache") or {}
        git = m.get("git") or {}
        fs = m.get("filesystem") or {}
        profile = p.get("profile")
        out.append({
            "run_id": p.get("run_id"), "time": p.get("time"), "source": results.sources[p.get("source", 0)],
            "argv": shlex.join(str(a) for a in p.get("argv") or []), "dataset": p.get("dataset"),
            "digest": p.get("dataset_digest"),
            "profile": ", ".join(f"{k}={v}" for k, v in profile.items()) if isinstance(profile, dict) else profile,
            "machine": [(k, v) for k, v in [
                ("CPU", m.get("cpu_model")), ("logical cores", m.get("logical_cores")),
                ("usable cores", m.get("usable_cores")), ("OS", m.get("os")), ("architecture", m.get("machine")),
                ("memory", f"{m['memory_total_bytes'] / 2**30:.1f} GiB" if m.get("memory_total_bytes") else None),
                ("filesystem", f"{fs.get('fstype')} at {fs.get('mount_point')} ({fs.get('device')})" if fs else None),
                ("python", " ".join(str(v) for v in (m.get("python") or {}).values())),
                ("fmtbench", " ".join(str(x) for x in (m.get("fmtbench_version"), (git.get("commit") or "")[:12],
                                                       "(dirty)" if git.get("dirty") else "") if x))] if v],
            "libraries": sorted((m.get("libraries") or {}).items()),
            "chunk_cache": ", ".join(f"{k}={v}" for k, v in cc.items()) if cc else None,
        })
    return out


def damage(frame: Frame) -> dict[str, Any]:
    """The damage-detection matrix of the cases in this frame, as their adapters declare it."""
    from fmtbench.formats import DAMAGE, get_case

    rows = []
    for case in frame.cases():
        try:
            adapter = get_case(case)
        except Exception:  # an id this checkout no longer parses: nothing to declare
            continue
        rows.append({"case": case, "cells": [{"label": adapter.detection(kind).label,
                                               "by": adapter.detection(kind).by} for kind in DAMAGE]})
    return {"kinds": list(DAMAGE), "rows": rows}


def hosts(frame: Frame) -> dict[str, Any] | None:
    """Each figure per host, side by side, when several hosts measured this dataset (a cluster
    run); every median is one host's rounds only. None when one host measured everything."""
    names = sorted({r.host for r in frame.rows if r.host})
    if len(names) < 2:
        return None
    per: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in frame.rows:
        if r.host and r.median is not None and r.case != BASELINE:
            per.setdefault((r.case, r.metric, r.cache), {})[r.host] = r
    shared = {k: v for k, v in per.items() if len(v) >= 2}
    rows = []
    for (case, metric, cache), by in sorted(shared.items(), key=lambda kv: (case_sort_key(kv[0][0]), kv[0][1:])):
        sc = scale_for(METRICS[metric].unit, [r.median for r in by.values()])
        first = by.get(names[0])
        cells = []
        for h in names:
            r = by.get(h)
            ratio = r.median / first.median if r is not None and first is not None and first.median else None
            cells.append({"text": sc.text(r.median, True) if r else "–",
                          "ratio": "" if ratio is None or h == names[0] else f"{ratio:.2f}×", "v": r.median if r else ""})
        rows.append({"case": case, "metric": METRICS[metric].label, "cache": cache, "cells": cells})
    counts = {h: sum(1 for r in frame.rows if r.host == h) for h in names}
    return {"hosts": names, "rows": rows, "counts": counts, "only_one": len(per) - len(shared)}
