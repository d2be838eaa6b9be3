"""View model of the checkpoint section: variant x model with save, load warm and cold, size, check."""
from __future__ import annotations

from typing import Any

from fmtbench.metrics import METRICS
from fmtbench.workloads.checkpoint import MODELS, VARIANTS, is_checkpoint

from .analysis import Frame, not_cold, spread_label
from .load import Results, Row
from .units import Scale, scale_for

NOT_MEASURED = "not measured in this run (add it with -w checkpoint)"
#: (key, metric, cache of the unit it comes from, heading); save is taken in both units: the warm one's shown
COLUMNS = (("save", "checkpoint_save_s", "warm", "save"), ("warm", "checkpoint_load_s", "warm", "load warm"),
           ("cold", "checkpoint_load_s", "cold", "load cold"), ("size", "checkpoint_bytes", "warm", "size"))


def _parts(case: str, rows: list[Row]) -> tuple[str, str, dict[str, Any]]:
    """(model, variant, config) of a checkpoint case: the stored config, else its id."""
    config = next((r.config for r in rows if r.config), {})
    _, model, variant = (case.split("/") + ["?", "?"])[:3]
    return config.get("model", model), config.get("variant", variant), config


def _check(rows: list[Row], key: str) -> bool | None:
    """A check over every round and unit of a case: False if any failed, None if none recorded it."""
    found = [r.extra.get(key) for r in rows if isinstance(r.extra.get(key), bool)]
    return all(found) if found else None


def _figure(frame: Frame, case: str, metric: str, cache: str, sc: Scale) -> dict[str, Any]:
    row = frame.get(case, metric, cache) or (frame.get(case, metric) if metric != "checkpoint_load_s" else None)
    if row is None or row.median is None:
        prob = frame.problem(case, "checkpoint", cache)
        return {"text": "failed" if prob else "–", "spread": "", "title": prob.reason if prob else "",
                "bad": prob is not None}
    spread = f"IQR {sc.text(row.q3 - row.q1)}" if row.n > 1 and row.q1 is not None and row.q3 != row.q1 else ""
    title = (f"{case} · {METRICS[metric].label} ({row.cache}): median {sc.text(row.median, True)}; IQR "
             f"{sc.text(row.q1)}–{sc.text(row.q3)}; {spread_label(row)} {sc.text(row.ci_low)}–{sc.text(row.ci_high)}")
    warn = not_cold(row)
    return {"text": sc.text(row.median) + (" ⚠" if warn else ""), "spread": spread,
            "title": title + (f" · NOT COLD: {warn}" if warn else ""), "bad": bool(warn)}


def view(frame: Frame) -> dict[str, Any]:
    """The section's table (one row per variant, a column group per model) and its checks."""
    cases = [c for c in frame.cases(checkpoints=True) if is_checkpoint(c)]
    if not cases:
        return {"missing": NOT_MEASURED}
    rows_of = {c: [r for r in frame.rows if r.case == c] for c in cases}
    parts = {c: _parts(c, rows_of[c]) for c in cases}
    models = sorted({m for m, _, _ in parts.values()}, key=lambda m: (MODELS.index(m) if m in MODELS else 9, m))
    order = list(VARIANTS)
    variants = sorted({v for _, v, _ in parts.values()}, key=lambda v: (order.index(v) if v in order else 99, v))
    by_key = {(m, v): c for c, (m, v, _) in parts.items()}
    scales = {key: scale_for(METRICS[metric].unit, [r.median for c in cases for r in rows_of[c]
                                                    if r.metric == metric and r.cache == cache])
              for key, metric, cache, _ in COLUMNS}
    table, failed = [], []
    for v in variants:
        config = next((parts[c][2] for (m, vv), c in by_key.items() if vv == v and parts[c][2]), {})
        cells = []
        for m in models:
            case = by_key.get((m, v))
            if case is None:
                cells.append(None)
                continue
            exact, opt = _check(rows_of[case], "bit_exact"), _check(rows_of[case], "optimizer_restored")
            if exact is False:
                failed.append(case)
            cells.append({"case": case, "exact": exact, "optimizer": opt,
                          **{key: _figure(frame, case, metric, cache, scales[key])
                             for key, metric, cache, _ in COLUMNS}})
        table.append({"variant": v, "api": config.get("api", "?"), "file": config.get("file", "?"),
                      "holds": config.get("holds", "?"), "options": _options(config), "cells": cells})
    params = {m: next((r.extra["params"] for c, (mm, _, _) in parts.items() if mm == m
                       for r in rows_of[c] if r.extra.get("params")), None) for m in models}
    return {"models": [{"name": m, "params": f"{params[m]:,}" if params[m] else None} for m in models],
            "columns": [{"key": key, "heading": head, "unit": scales[key].unit.strip()}
                        for key, _, _, head in COLUMNS],
            "rows": table, "failed": failed, "n_cases": len(cases)}


def _options(config: dict[str, Any]) -> str:
    """The h5py layout of a variant in words ('chunked, gzip 4, shuffle'); '' for Keras's own."""
    if config.get("api") != "h5py":
        return ""
    bits = ["chunked" if config.get("chunks") else "contiguous"]
    if config.get("compression"):
        bits.append(" ".join(str(x) for x in (config["compression"], config.get("level")) if x is not None))
    if config.get("shuffle"):
        bits.append("shuffle")
    return ", ".join(bits)


def text_lines(results: Results) -> list[str]:
    """The checkpoint table as plain text for the CLI's summary (empty when none was measured)."""
    from .analysis import frame as make_frame

    v = view(make_frame(results))
    if "missing" in v:
        return []
    heads = [f"{c['heading']} {c['unit']}" for c in v["columns"]] + ["bit-exact", "optimizer"]
    cells = [(c["case"], [c[k]["text"] for k in ("save", "warm", "cold", "size")] + [_mark(c["exact"]),
              _mark(c["optimizer"], "not saved")]) for r in v["rows"] for c in r["cells"] if c]
    width = max(len(case) for case, _ in cells)
    lines = [f"{'checkpoint':<{width}} " + " ".join(f"{h:>13}" for h in heads)]
    lines += [f"{case:<{width}} " + " ".join(f"{t:>13}" for t in texts) for case, texts in cells]
    return lines + [f"NOT BIT-EXACT {case}: the loaded weights differ from the saved ones" for case in v["failed"]]


def _mark(ok: bool | None, unknown: str = "–") -> str:
    return "yes" if ok is True else "NO" if ok is False else unknown

