"""Static inline SVG charts (scatter with log axes and a highlighted front, heatmap, bars); text escaped here."""
from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from .units import number


FRONT, OTHER, GRID, INK, MUTED = "#d9480f", "#adb5bd", "#e9ecef", "#212529", "#868e96"
SERIES = ("#e8590c", "#1971c2", "#2f9e44", "#7048e8")
_CHAR_W = 6.3  # approximate width of one 11px sans-serif character
_LABEL_W = 6.7  # width of one character of an 11px monospace point label


@dataclass
class Point:
    """One case on a scatter: id, position in display units, and its hover text."""

    case: str
    x: float
    y: float
    tip: str = ""


def tick(t: float) -> str:
    """A tick label: shortest exact form, thousands separated ('0.3', '100', '10,000')."""
    return f"{t:,.6g}" if 1e-4 <= abs(t) < 1e9 or t == 0 else f"{t:.0e}"


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{_e(title)}">'
            f"<title>{_e(title)}</title>{''.join(body)}</svg>")


class Axis:
    """Maps values to pixels on a linear or log scale, and picks readable ticks."""

    def __init__(self, values: list[float], lo_px: float, hi_px: float, log: bool, zero: bool = False):
        self.log = log and all(v > 0 for v in values)
        vals = [self._t(v) for v in values] or [0.0, 1.0]
        lo, hi = min(vals), max(vals)
        if zero and not self.log:
            lo = min(lo, 0.0)
        span = hi - lo
        pad = 0.3 if span == 0 else span * (0.08 if self.log else 0.05)
        self.lo, self.hi = lo - (0 if zero and not self.log and lo == 0 else pad), hi + pad
        self.lo_px, self.hi_px = lo_px, hi_px

    def _t(self, v: float) -> float:
        return math.log10(v) if self.log else v

    def px(self, v: float) -> float:
        """Pixel position of value v."""
        f = (self._t(v) - self.lo) / (self.hi - self.lo)
        return self.lo_px + f * (self.hi_px - self.lo_px)

    def ticks(self) -> list[float]:
        """Tick values inside the range: decades (with 2 and 5 on short log ranges), or a 1-2-5 step."""
        if self.log:
            span = self.hi - self.lo
            mults = (1, 2, 5) if span < 2.5 else (1, 3) if span < 4 else (1,)
            out = [m * 10.0**d for d in range(math.floor(self.lo), math.ceil(self.hi) + 1) for m in mults]
            out = [t for t in out if self.lo <= math.log10(t) <= self.hi]
            if len(out) >= 2:
                return out
            return [t for t in _steps(10**self.lo, 10**self.hi) if t > 0]
        return _steps(self.lo, self.hi)


def _steps(lo: float, hi: float) -> list[float]:
    """About five round (1-2-5) ticks between lo and hi."""
    raw = (hi - lo) / 5
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _place(placed: list[tuple[float, float, float, float]], xs: tuple[float, ...], y: float, w: float,
           top: float, bottom: float) -> tuple[float, float] | None:
    """An (x, y) for a label of width w near y, from the x positions `xs`, that overlaps no label
    placed so far and stays between `top` and `bottom`; None when every spot is taken."""
    for dy in (0, 12, -12, 24, -24, 36, -36, 48, -48, 60, -60):
        for x in xs:
            box = (x, y + dy - 10, x + w, y + dy + 2)
            if box[1] < top or box[3] > bottom:
                continue
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                placed.append(box)
                return x, y + dy
    return None


def scatter(points: list[Point], front: list[str], x_label: str, y_label: str, title: str,
            better: tuple[str, str], log: bool = True) -> str:
    """Log-log scatter of cases; the front is drawn in colour, joined and labelled; the rest grey."""
    W, H, L, R, T, B = 600, 400, 72, 24, 20, 52
    xa = Axis([p.x for p in points], L, W - R, log)
    ya = Axis([p.y for p in points], H - B, T, log)
    body = [f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="#fff" stroke="{GRID}"/>']
    for t in xa.ticks():
        x = xa.px(t)
        body.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{H - B}" stroke="{GRID}"/>'
                    f'<text x="{x:.1f}" y="{H - B + 15}" text-anchor="middle" class="tick">{_e(tick(t))}</text>')
    for t in ya.ticks():
        y = ya.px(t)
        body.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="{GRID}"/>'
                    f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{_e(tick(t))}</text>')
    body.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle" class="axis">{_e(x_label)}</text>'
                f'<text transform="translate(16 {(T + H - B) / 2}) rotate(-90)" text-anchor="middle" '
                f'class="axis">{_e(y_label)}</text>')
    right, top = better[0] == "higher", better[1] == "higher"
    arrow = {(True, True): "↗", (True, False): "↘", (False, True): "↖", (False, False): "↙"}[(right, top)]
    hx, hy = (W - R - 8, T + 16) if top else (W - R - 8, H - B - 8)
    if not right:
        hx = L + 8
    body.append(f'<text x="{hx}" y="{hy}" text-anchor="{"end" if right else "start"}" class="hint">'
                f'better {arrow}</text>')
    by_case = {p.case: p for p in points}
    fr = [by_case[c] for c in front if c in by_case]
    if len(fr) > 1:
        path = " ".join(f"{xa.px(p.x):.1f},{ya.px(p.y):.1f}" for p in sorted(fr, key=lambda p: p.x))
        body.append(f'<polyline points="{path}" fill="none" stroke="{FRONT}" stroke-width="1.5" '
                    f'stroke-dasharray="4 3"/>')
    on_front = set(front)
    for p in sorted(points, key=lambda p: p.case in on_front):
        colour, r = (FRONT, 5) if p.case in on_front else (OTHER, 4)
        body.append(f'<circle cx="{xa.px(p.x):.1f}" cy="{ya.px(p.y):.1f}" r="{r}" fill="{colour}" '
                    f'fill-opacity="0.9" stroke="#fff"><title>{_e(p.tip or p.case)}</title></circle>')
    placed: list[tuple[float, float, float, float]] = []
    for p in sorted(fr, key=lambda p: -ya.px(p.y)):  # a label with no free spot is left out:
        w = len(p.case) * _LABEL_W                      # the caption under the chart lists the front
        right, left = xa.px(p.x) + 7, xa.px(p.x) - 7 - w
        xs = tuple(x for x in (right, left) if L <= x and x + w <= W - R) or (max(L, left),)
        spot = _place(placed, xs, ya.px(p.y) + 4, w, T, H - B)
        if spot is not None:
            body.append(f'<text x="{spot[0]:.1f}" y="{spot[1]:.1f}" class="label">{_e(p.case)}</text>')
    return _svg(W, H, title, body)


def _shade(f: float) -> tuple[str, str]:
    """Fill and text colour for goodness f in [0, 1] (1 = best): pale to deep teal."""
    lo, hi = (241, 243, 245), (12, 110, 120)
    rgb = tuple(round(a + (b - a) * f) for a, b in zip(lo, hi))
    return "#%02x%02x%02x" % rgb, ("#fff" if f > 0.55 else INK)


def heatmap(rows: list[str], cols: list[str], cells: dict[tuple[str, str], tuple[float, str]],
            better: str, title: str, row_title: str, col_title: str) -> str:
    """Grid of rows x cols; darker is better (log scale between the worst and best cell)."""
    cw, ch, L, T = 92, 30, 110, 46
    W, H = max(L + cw * len(cols) + 10, 330), T + ch * len(rows) + 28
    vals = [v for v, _ in cells.values() if v > 0]
    lo, hi = (math.log10(min(vals)), math.log10(max(vals))) if vals else (0.0, 1.0)
    body = [f'<text x="{L + cw * len(cols) / 2}" y="14" text-anchor="middle" class="axis">{_e(col_title)}</text>',
            f'<text x="4" y="{T - 8}" class="axis">{_e(row_title)}</text>']
    for j, c in enumerate(cols):
        body.append(f'<text x="{L + cw * j + cw / 2}" y="{T - 8}" text-anchor="middle" class="tick">{_e(c)}</text>')
    for i, r in enumerate(rows):
        y = T + ch * i
        body.append(f'<text x="{L - 8}" y="{y + ch / 2 + 4}" text-anchor="end" class="tick">{_e(r)}</text>')
        for j, c in enumerate(cols):
            x = L + cw * j
            if (r, c) not in cells:
                body.append(f'<rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="#fff" '
                            f'stroke="{GRID}"/><text x="{x + cw / 2}" y="{y + ch / 2 + 4}" '
                            f'text-anchor="middle" class="tick">–</text>')
                continue
            v, text = cells[(r, c)]
            f = 0.5 if hi == lo or v <= 0 else (math.log10(v) - lo) / (hi - lo)
            fill, ink = _shade(f if better == "higher" else 1 - f)
            body.append(f'<rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="{fill}">'
                        f'<title>{_e(r)} × {_e(c)}: {_e(text)}</title></rect>'
                        f'<text x="{x + cw / 2 - 1}" y="{y + ch / 2 + 4}" text-anchor="middle" '
                        f'fill="{ink}" class="cell">{_e(text)}</text>')
    body.append(f'<text x="{L}" y="{H - 8}" class="hint">darker is better ({_e(better)} is better)</text>')
    return _svg(W, H, title, body)


def bars(labels: list[str], series: list[tuple[str, list[float | None]]], axis_label: str, title: str,
         log: bool | None = None, ref: tuple[float, str] | None = None,
         texts: list[list[str]] | None = None) -> str:
    """Horizontal bars, one group per label and one bar per series; an optional reference line.

    Linear from zero unless the values span more than 30x (or `log` says so): then a log axis.
    """
    n = len(series)
    bh, gap, T = 14, 8, 10 + (16 if n > 1 else 0)
    L = min(300, 12 + int(max((len(s) for s in labels), default=4) * _CHAR_W))
    W = L + 340
    H = T + len(labels) * (n * bh + gap) + 44
    vals = [v for _, vs in series for v in vs if v is not None]
    if ref:
        vals.append(ref[0])
    pos = [v for v in vals if v > 0]
    if log is None:
        log = bool(pos) and max(pos) / min(pos) > 30
    vals = pos if log else vals
    xa = Axis(vals or [1.0], L, W - 110, log, zero=not log)
    base = xa.lo_px if xa.log else xa.px(0.0)
    body = []
    for t in xa.ticks():
        x = xa.px(t)
        body.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{H - 40}" stroke="{GRID}"/>'
                    f'<text x="{x:.1f}" y="{H - 26}" text-anchor="middle" class="tick">{_e(tick(t))}</text>')
    x = L
    for k, (name, _) in enumerate(series if n > 1 else []):
        body.append(f'<rect x="{x}" y="4" width="10" height="10" fill="{SERIES[k % 4]}"/>'
                    f'<text x="{x + 14}" y="13" class="tick">{_e(name)}</text>')
        x += 30 + len(name) * _CHAR_W
    for i, lab in enumerate(labels):
        y0 = T + i * (n * bh + gap)
        body.append(f'<text x="{L - 6}" y="{y0 + n * bh / 2 + 4}" text-anchor="end" class="tick">{_e(lab)}</text>')
        for k, (name, vs) in enumerate(series):
            v, y = vs[i], y0 + k * bh
            if v is None or (xa.log and v <= 0):
                body.append(f'<text x="{L + 4}" y="{y + 11}" class="tick">not measured</text>')
                continue
            x = xa.px(v)
            text = texts[k][i] if texts else number(v)
            body.append(f'<rect x="{base:.1f}" y="{y}" width="{max(1.0, x - base):.1f}" height="{bh - 2}" '
                        f'fill="{SERIES[k % 4]}"><title>{_e(lab)} {_e(name)}: {_e(text)}</title></rect>'
                        f'<text x="{x + 4:.1f}" y="{y + 10}" class="tick">{_e(text)}</text>')
    if ref:
        x = xa.px(ref[0])
        body.append(f'<line x1="{x:.1f}" y1="{T - 4}" x2="{x:.1f}" y2="{H - 40}" stroke="{INK}" '
                    f'stroke-dasharray="3 3"/><text x="{x + 3:.1f}" y="{H - 42}" class="hint">{_e(ref[1])}</text>')
    body.append(f'<text x="{(L + W - 110) / 2}" y="{H - 8}" text-anchor="middle" class="axis">{_e(axis_label)}</text>')
    return _svg(W, H, title, body)
