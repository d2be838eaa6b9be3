"""asv history for offline reading: asv 0.6 result files -> one self-contained HTML page.

asv's own site (``asv publish``) loads its JavaScript from CDNs. This page has one inline SVG
line chart per benchmark (a line per parameter combination, commits in date order on x; drawn by
``svg.lines``, the report's chart code) and no script, stylesheet or image from anywhere: it
works from a file on a machine without network.

Input: ``RESULTS_DIR/<machine>/<commit>-<env>.json`` (asv's ``results`` dict, one row per
benchmark whose columns ``result_columns`` names; ``result`` holds one value per parameter
combination, None when the benchmark failed, NaN when it was skipped) and, for units,
``RESULTS_DIR/benchmarks.json``.
"""
from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from fmtbench.atomic import atomic_path

from . import svg

TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class Run:
    """One result file: which commit, its date, machine and environment."""

    commit: str
    date: int
    machine: str
    env: str


@dataclass
class History:
    """One benchmark's values: series label -> {commit: value}."""

    name: str
    unit: str
    series: dict[str, dict[str, float]] = field(default_factory=dict)


def _combos(params: list[list[str]] | None) -> list[str]:
    """'npy', 'hdf5/chunk64' ... for asv's parameter reprs ("'npy'"), one per combination."""
    def plain(v: str) -> str:
        return v[1:-1] if len(v) > 1 and v[0] == v[-1] and v[0] in "'\"" else v

    return [", ".join(map(plain, c)) for c in itertools.product(*params)] if params else [""]


def load(results_dir: str | Path) -> tuple[list[Run], list[History]]:
    """Every run (sorted by commit date) and every benchmark's history under `results_dir`."""
    root = Path(results_dir)
    meta_path = root / "benchmarks.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    rows: list[tuple[Run, str, str, float]] = []
    for path in sorted(root.glob("*/*.json")):
        if path.name == "machine.json":
            continue
        data = json.loads(path.read_text())
        columns = data.get("result_columns", ["result", "params"])
        run = Run(data["commit_hash"], int(data.get("date") or 0),
                  data.get("params", {}).get("machine", path.parent.name), data.get("env_name", ""))
        for name, row in data.get("results", {}).items():
            entry = dict(zip(columns, row))
            combos = _combos(entry.get("params"))
            values = entry.get("result")
            values = values if isinstance(values, list) else [values] * len(combos)
            for combo, value in zip(combos, values):
                ok = isinstance(value, (int, float)) and math.isfinite(value)
                rows.append((run, name, combo, float(value) if ok else math.nan))
    runs = sorted({r.commit: r for r, *_ in rows}.values(), key=lambda r: (r.date, r.commit))
    several = len({(r.machine, r.env) for r, *_ in rows}) > 1
    histories: dict[str, History] = {}
    for run, name, combo, value in rows:
        info = meta.get(name, {}) if isinstance(meta.get(name), dict) else {}
        hist = histories.setdefault(name, History(name, info.get("unit") or ""))
        label = (combo or "value") + (f" [{run.machine}/{run.env}]" if several else "")
        points = hist.series.setdefault(label, {})  # one that only failed still gets a legend entry
        if not math.isnan(value):
            points[run.commit] = value
    return runs, [histories[k] for k in sorted(histories)]


def fmt(value: float, unit: str) -> str:
    """A value with its unit scaled once: seconds to ns-s, bytes to KiB-GiB."""
    if unit == "seconds":
        for scale, name in ((1, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns")):
            if abs(value) >= scale or scale == 1e-9:
                return f"{value / scale:.3g} {name}"
    if unit == "bytes":
        for scale, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"), (1, "B")):
            if abs(value) >= scale or scale == 1:
                return f"{value / scale:.3g} {name}"
    return f"{value:.4g}{' ' + unit if unit and unit != 'unit' else ''}"


def chart(hist: History, runs: list[Run]) -> str:
    """One inline SVG line chart (svg.lines): a line per series over the commits in date order."""
    x_of = {r.commit: i for i, r in enumerate(runs)}
    series = {label: {x_of[c]: v for c, v in points.items()} for label, points in hist.series.items()}
    every = max(1, math.ceil(len(runs) / 12))
    return svg.lines(series, {i: r.commit[:8] for i, r in enumerate(runs) if i % every == 0},
                     lambda v: fmt(v, hist.unit), hist.name, "commit (oldest left)", cls="history-chart")


def render(results_dir: str | Path) -> str:
    """The whole page: the commits, then one section with one chart per benchmark (a jinja2
    template on the report's stylesheet; no script)."""
    import jinja2
    from markupsafe import Markup

    runs, histories = load(results_dir)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("asv_history.html.j2").render(
        css=Markup((TEMPLATES / "report.css").read_text(encoding="utf-8")), source=str(results_dir),
        runs=[{"commit": r.commit[:12], "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime(r.date / 1000)),
               "machine": r.machine, "env": r.env} for r in runs],
        benchmarks=[{"name": h.name, "unit": h.unit or "n/a", "series": len(h.series),
                     "svg": Markup(chart(h, runs))} for h in histories]) + "\n"


def write_history(results_dir: str | Path, output: str | Path) -> Path:
    """Render `results_dir` into the HTML file `output`; its path."""
    root = Path(results_dir)
    if not any(p.name != "machine.json" for p in root.glob("*/*.json")):
        raise FileNotFoundError(f"no asv results under {root} (run asv with results saved first)")
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    html = render(root)
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out


@click.command("asv-report")
@click.argument("results_dir", default=".asv/results", type=click.Path(file_okay=False))
@click.option("-o", "--output", default="reports/asv-history.html", show_default=True,
              type=click.Path(dir_okay=False), help="The self-contained HTML page to write.")
def asv_report_cmd(results_dir: str, output: str) -> None:
    """Render asv's results (RESULTS_DIR, default .asv/results) as one offline HTML history page."""
    try:
        path = write_history(results_dir, output)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"asv history: {path} ({path.stat().st_size / 1024:.0f} KiB)")
