"""asv history for offline reading: asv 0.6 result files -> one self-contained HTML page.

asv's own site (``asv publish``) loads its JavaScript from CDNs. This page has one inline SVG
line chart per benchmark (a line per parameter combination, commits in date order on x) and
no script, stylesheet or image from anywhere: it works from a file on a machine without network.

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
from html import escape
from pathlib import Path

import click

COLORS = ("#1971c2", "#e8590c", "#2f9e44", "#7048e8", "#c2255c", "#0c8599", "#f08c00",
          "#5c940d", "#862e9c", "#495057")
W, H, LEFT, RIGHT, TOP, BOTTOM = 820, 280, 72, 260, 16, 46
DASHES = ("none", "6 3", "2 2")


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


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        mults = (1, 2, 5) if hi - lo < 2.5 else (1,)
        out = [m * 10.0**d for d in range(math.floor(lo), math.ceil(hi) + 1) for m in mults]
        return [v for v in out if lo <= math.log10(v) <= hi] or [10.0**lo]
    step = (hi - lo) / 4 or 1.0
    mag = 10 ** math.floor(math.log10(step))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= step)
    return [k * step for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def chart(hist: History, runs: list[Run]) -> str:
    """One inline SVG line chart: a line per series over the commits, log y when values span >10x.

    Colours repeat every ten series; each repeat draws its lines with another dash pattern.
    """
    x_of = {r.commit: i for i, r in enumerate(runs)}
    values = [v for s in hist.series.values() for v in s.values()]
    height = max(H, TOP + 14 * len(hist.series) + 24)  # room for the whole legend
    pw, ph = W - LEFT - RIGHT, height - TOP - BOTTOM
    out = [f'<svg class="history-chart" viewBox="0 0 {W} {height}" width="{W}" height="{height}" '
           f'role="img" aria-label="{_e(hist.name)}">',
           f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#dee2e6"/>']
    if not values:
        out.append(f'<text x="{LEFT + 10}" y="{TOP + ph / 2}">no successful result</text></svg>')
        return "".join(out)
    log = min(values) > 0 and max(values) / min(values) > 10
    t = math.log10 if log else float
    lo, hi = t(min(values)), t(max(values))
    pad = (hi - lo) * 0.08 or (abs(hi) * 0.1 or 1.0)
    lo, hi = lo - pad, hi + pad

    def px(commit: str) -> float:
        return LEFT + (x_of[commit] + 0.5) * pw / max(1, len(runs))

    def py(value: float) -> float:
        return TOP + ph - (t(value) - lo) / (hi - lo) * ph

    for tk in _ticks(lo, hi, log):
        out.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{py(tk):.1f}" y2="{py(tk):.1f}" stroke="#f1f3f5"/>'
                   f'<text x="{LEFT - 6}" y="{py(tk) + 4:.1f}" text-anchor="end" class="tick">'
                   f'{_e(fmt(tk, hist.unit))}</text>')
    for r in runs[:: max(1, math.ceil(len(runs) / 12))]:
        out.append(f'<text x="{px(r.commit):.1f}" y="{TOP + ph + 16}" text-anchor="middle" class="tick">'
                   f'{_e(r.commit[:8])}</text>')
    for k, (label, points) in enumerate(sorted(hist.series.items())):
        color = COLORS[k % len(COLORS)]
        dash = DASHES[k // len(COLORS) % len(DASHES)]
        line = f'fill="none" stroke="{color}" stroke-width="1.5" stroke-dasharray="{dash}"'
        ordered = sorted(points.items(), key=lambda cv: x_of[cv[0]])
        if len(ordered) > 1:
            out.append(f'<polyline points="{" ".join(f"{px(c):.1f},{py(v):.1f}" for c, v in ordered)}" {line}/>')
        for c, v in ordered:
            out.append(f'<circle cx="{px(c):.1f}" cy="{py(v):.1f}" r="3" fill="{color}">'
                       f'<title>{_e(label)} @ {_e(c[:8])}: {_e(fmt(v, hist.unit))}</title></circle>')
        ly, lx = TOP + 8 + 14 * k, LEFT + pw + 10
        out.append(f'<line x1="{lx}" x2="{lx + 18}" y1="{ly - 3}" y2="{ly - 3}" {line}/>'
                   f'<circle cx="{lx + 9}" cy="{ly - 3}" r="2.5" fill="{color}"/>'
                   f'<text x="{lx + 24}" y="{ly + 1}" class="legend">{_e(label[:38])}</text>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{height - 6}" text-anchor="middle" class="tick">'
               f'commit (oldest left){"; log scale" if log else ""}</text></svg>')
    return "".join(out)


STYLE = """body{font:14px system-ui,sans-serif;margin:2em;color:#212529;max-width:1000px}
h2{font-size:15px;margin:1.6em 0 .3em;font-family:monospace}.tick,.legend{font-size:11px;fill:#495057}
table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #dee2e6;text-align:left}
.meta{color:#868e96}"""


def render(results_dir: str | Path) -> str:
    """The whole page: the commits, then one section with one chart per benchmark."""
    runs, histories = load(results_dir)
    e = _e
    commits = "".join(
        f"<tr><td><code>{e(r.commit[:12])}</code></td>"
        f"<td>{e(time.strftime('%Y-%m-%d %H:%M', time.gmtime(r.date / 1000)))}</td>"
        f"<td>{e(r.machine)}</td><td>{e(r.env)}</td></tr>" for r in runs)
    sections = "".join(
        f'<section class="benchmark" id="{e(h.name)}"><h2>{e(h.name)}</h2>'
        f'<p class="meta">unit: {e(h.unit or "n/a")}; {len(h.series)} series</p>{chart(h, runs)}</section>'
        for h in histories)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>asv history</title>'
            f"<style>{STYLE}</style></head><body><h1>asv benchmark history</h1>"
            f'<p class="meta">{len(histories)} benchmarks over {len(runs)} commits, from {e(str(results_dir))}. '
            f"Hover a point for its value. Failed or skipped results leave gaps.</p>"
            f"<table><tr><th>commit</th><th>date (UTC)</th><th>machine</th><th>environment</th></tr>"
            f"{commits}</table>{sections}</body></html>\n")


def write_history(results_dir: str | Path, output: str | Path) -> Path:
    """Render `results_dir` into the HTML file `output`; its path."""
    root = Path(results_dir)
    if not any(p.name != "machine.json" for p in root.glob("*/*.json")):
        raise FileNotFoundError(f"no asv results under {root} (run asv with results saved first)")
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(root), encoding="utf-8")
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
