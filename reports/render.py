"""Render result stores into one self-contained HTML page, plus the table as CSV and JSON beside it."""
from __future__ import annotations

from fmtbench.atomic import atomic_path
from fmtbench.errors import FmtbenchError

import csv
import functools
import json
import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fmtbench.stats import MARGIN

from . import cards, checkpoint, leads, panels, precision, readers, sections, settling, trust
from .analysis import Frame, datasets, frame
from .claims import check_claims
from .compare import compare
from .load import Results, load
from .recommend import WEIGHTS, balance_data, recommend
from .units import times

TEMPLATES = Path(__file__).parent / "templates"
DEFAULT_OUTPUT = Path("reports") / "fmtbench-report.html"
CSV_FIELDS = ("case", "format", "dataset", "digest", "workload", "metric", "cache", "median", "q1", "q3",
              "ci_low", "ci_high", "n", "unit", "better", "config", "extra", "run_id", "source",
              "host", "code")  # who measured each row: the machine and the fmtbench (provenance.code_id)


@dataclass
class Written:
    """Paths of what was written, the page size and how long rendering took."""

    html: Path
    csv: Path
    json: Path
    html_bytes: int
    seconds: float


def context(results: Results, dataset: str | None = None, argv: list[str] | None = None,
            weights: dict[str, float] | None = None, margin: float = MARGIN) -> dict[str, Any]:
    """Everything the template shows, computed from the results (and a comparison when two stores are given)."""
    fr = frame(results, dataset)
    fr.margin = margin
    others = [f"{n} ({(d or '')[:12]})" for n, d in datasets(results) if (n, d) != (fr.dataset, fr.digest)]
    cmp = None
    if len(results.sources) == 2:
        old, new = (frame(load([s]), fr.dataset) for s in results.sources)
        old.margin = new.margin = margin
        cmp = compare(old, new, results.sources[0], results.sources[1])
    prov = sections.provenance(results)
    cc = next((p["chunk_cache"] for p in reversed(prov) if p["chunk_cache"]), None)
    machine_limits = trust.limits(results)
    flagged = trust.flagged_keys(fr, machine_limits)
    ctx = {
        "header": sections.header(results, fr, others), "table": sections.table(fr, flagged),
        "method": method(results, fr, machine_limits), "damage": sections.damage(fr),
        "fronts": sections.fronts(fr), "hdf5": panels.hdf5(fr, cc), "training": panels.training(fr),
        "checkpoint": checkpoint.view(fr),
        "readers": readers.section(fr, results),
        "warm_cold": panels.warm_cold(fr), "recommendations": recommend(fr, flagged, weights), "claims": check_claims(fr),
        "balance": {"data": balance_data(fr, flagged), "weights": weights or WEIGHTS},
        "comparison": panels.comparison(cmp), "problems": sections.problems(fr), "provenance": prov,
        "hosts": sections.hosts(fr),
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(argv) if argv else None, "frame": fr, "margin": margin,
        "settle": settling.summary(fr),
    }
    settling.annotate(ctx["recommendations"], fr)
    ctx["cards"] = cards.cards(fr, ctx["damage"], flagged)
    ctx["leads"] = leads.leads(fr, ctx)
    ctx["not_measured"] = leads.not_measured(fr, ctx["header"].get("rows"))
    return ctx


def method(results: Results, fr: Frame, machine_limits: dict[str, float]) -> dict[str, Any]:
    """How the figures were taken: executor, rounds, cache states, limits, flags and busy units."""
    machine = next((p.get("machine") or {} for p in reversed(results.provenance) if p.get("machine")), {})
    executor = machine.get("executor") or {}
    cores = machine.get("usable_cores") or machine.get("logical_cores") or os.cpu_count() or 1
    return {"executor": executor, "rounds": trust.rounds_of(fr), "limits": machine_limits,
            "precision": precision.section(fr),
            "flags": trust.flags(fr, machine_limits), "busy": trust.busy_units(fr, cores), "cores": cores,
            "busy_share": trust.BUSY_SHARE}


@functools.lru_cache(maxsize=1)
def _template() -> Any:
    """The compiled page template (compiling takes a few tenths of a second: once per process)."""
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["svg"] = lambda s: Markup(s) if s else ""  # svg.py escapes every text it draws
    env.globals["times"] = times
    env.globals["css"] = Markup((TEMPLATES / "report.css").read_text(encoding="utf-8"))
    # every script of the page, one file per behaviour (sorting, balanced weights, chart downloads)
    env.globals["js"] = Markup("\n".join(p.read_text(encoding="utf-8") for p in sorted(TEMPLATES.glob("*.js"))))
    return env.get_template("report.html.j2")


def render_html(ctx: dict[str, Any]) -> str:
    """The page: a jinja2 template with autoescape on; charts are SVG built (and escaped) by svg.py."""
    return _template().render(**ctx)


def _cell(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


def export(fr: Frame, ctx: dict[str, Any], csv_path: Path, json_path: Path) -> None:
    """The table (one row per case, metric and cache) as CSV, and with the verdicts as JSON."""
    rows = [r.as_dict() for r in fr.rows]
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows({k: _cell(v) for k, v in r.items()} for r in rows)
    doc = {"dataset": fr.dataset, "digest": fr.digest, "rows": rows,
           "problems": [asdict(p) for p in fr.problems],
           "recommendations": [asdict(r) for r in ctx["recommendations"]],
           "claims": [asdict(c) for c in ctx["claims"]]}
    json_path.write_text(json.dumps(doc, indent=1, allow_nan=False), encoding="utf-8")


def write_report(paths: list[str | os.PathLike[str]], output: str | os.PathLike[str] = DEFAULT_OUTPUT,
                 dataset: str | None = None, argv: list[str] | None = None,
                 weights: dict[str, float] | None = None, margin: float = MARGIN) -> Written:
    """Load the stores, render the page to `output` and the CSV/JSON exports beside it."""
    t0 = time.perf_counter()
    if Path(output).suffix.lower() in (".csv", ".json"):
        raise FmtbenchError(f"report output {output} would be overwritten by its own {Path(output).suffix} "
                            f"export; name the page with .html (the .csv and .json go beside it)")
    results = load(list(paths))
    ctx = context(results, dataset, argv, weights, margin)
    html = render_html(ctx)
    out = Path(output)
    with atomic_path(out) as tmp:  # a reader never sees half a page
        tmp.write_text(html, encoding="utf-8")
    csv_path, json_path = out.with_suffix(".csv"), out.with_suffix(".json")
    export(ctx["frame"], ctx, csv_path, json_path)
    return Written(out, csv_path, json_path, out.stat().st_size, time.perf_counter() - t0)
