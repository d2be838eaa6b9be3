"""Static inline SVG charts: scatter with a labelled front, heatmap with spread marks, bars (small
multiples past MAX_ROWS rows) and lines; one Axis for all. Every text is escaped here."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from .units import number


FRONT, OTHER, GRID, INK, MUTED = "#d9480f", "#adb5bd", "#e9ecef", "#212529", "#868e96"
SERIES = ("#e8590c", "#1971c2", "#2f9e44", "#7048e8")
PALETTE = ("#1971c2", "#e8590c", "#2f9e44", "#7048e8", "#c2255c", "#0c8599", "#f08c00",
           "#5c940d", "#862e9c", "#495057")  # lines: ten distinguishable colours
_CHAR_W = 6.3  # approximate width of one 11px sans-serif character
_LABEL_W = 6.7  # width of one character of an 11px monospace point label
MIN_TICKS = 4  # labelled ticks an axis shows across where its data sits
MAX_ROWS = 40  # rows one bar chart draws; more become small multiples
WIDE = 0.2  # a heat-map cell whose median's interval is wider than this share of its median is marked
LOG = " · log scale"


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


def figure(width: int, height: int, title: str, body: list[str], cls: str = "chart") -> str:
    """The <svg> element every chart is drawn in (`title` escaped here; `body` is drawn SVG)."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="{cls}" viewBox="0 0 {width} {height}" '
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
        """At least MIN_TICKS round values inside the range: decades (then 1-3, 1-2-5, 1-2-3-5
        within them) on a log axis, else a 1-2-2.5-5 step; a log range too short for that gets linear steps."""
        if self.log:
            for mults in ((1,), (1, 3), (1, 2, 5), (1, 2, 3, 5)):
                out = [m * 10.0**d for d in range(math.floor(self.lo), math.ceil(self.hi) + 1) for m in mults]
                out = [t for t in out if self.lo <= math.log10(t) <= self.hi]
                if len(out) >= MIN_TICKS:
                    return out
            return [t for t in _steps(10**self.lo, 10**self.hi) if t > 0]
        return _steps(self.lo, self.hi)

    def labelled(self, size: Callable[[str], float] = lambda s: len(s) * _CHAR_W + 6) -> list[tuple[float, str]]:
        """(tick, label) pairs; a label that would touch the one before is '' (its grid line stays).
        `size`: a label's extent along the axis (its width on x, its line height on y)."""
        out, prev = [], None
        for t in self.ticks():
            text, at = tick(t), self.px(t)
            lo, hi = at - size(text) / 2, at + size(text) / 2
            if prev is None or lo >= prev[1] or hi <= prev[0]:
                out.append((t, text))
                prev = (lo, hi)
            else:
                out.append((t, ""))
        return out


def _steps(lo: float, hi: float, least: int = MIN_TICKS) -> list[float]:
    """Round ticks (1-2-2.5-5 steps) between lo and hi: about five, at least `least`."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / 5
    mag = 10 ** math.floor(math.log10(raw))
    ladder = [m * mag * 10**k for k in (-1, 0, 1) for m in (1, 2, 2.5, 5)]
    step = next(s for s in ladder if s >= raw)
    while True:
        first = math.ceil(lo / step - 1e-9) * step
        out = [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]
        smaller = [s for s in ladder if s < step]
        if len(out) >= least or not smaller:
            return out
        step = smaller[-1]


Box = tuple[float, float, float, float]


def _free(box: Box, taken: list[Box]) -> bool:
    return not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in taken)


def _place(taken: list[Box], cx: float, cy: float, w: float, area: Box) -> Box | None:
    """The box of a label of width w nearest the dot at (cx, cy) that overlaps nothing in `taken`
    (labels and dots) and stays inside `area` (its text starts at box[0], baseline box[3] - 2);
    None when every spot is taken."""
    spots = []
    for dy in (0, -12, 12, -24, 24, -36, 36, -48, 48, -60, 60):
        for x in (cx + 7, cx - 7 - w, cx - w / 2):
            if x == cx - w / 2 and abs(dy) < 12:
                continue  # centred on the dot: only above or below it
            spots.append((x, cy + 4 + dy))
    for x, y in spots:
        box = (x, y - 10, x + w, y + 2)
        if area[0] <= box[0] and box[2] <= area[2] and area[1] <= box[1] and box[3] <= area[3] and _free(box, taken):
            return box
    return None


def scatter(points: list[Point], front: list[str], x_label: str, y_label: str, title: str,
            better: tuple[str, str], log: bool = True) -> str:
    """Scatter of cases (log axes where all values are positive); the front is drawn in colour,
    joined and labelled, the rest grey. Labels avoid each other and every dot; one moved away from
    its dot gets a leader line; one with no free spot is listed under the plot."""
    W, H, L, R, T, B = 600, 410, 72, 24, 30, 52
    xa = Axis([p.x for p in points], L, W - R, log)
    ya = Axis([p.y for p in points], H - B, T, log)
    body = [f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="#fff" stroke="{GRID}"/>']
    for t, text in xa.labelled():
        x = xa.px(t)
        body.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{H - B}" stroke="{GRID}"/>'
                    f'<text x="{x:.1f}" y="{H - B + 15}" text-anchor="middle" class="tick">{_e(text)}</text>')
    for t, text in ya.labelled(lambda s: 13):
        y = ya.px(t)
        body.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="{GRID}"/>'
                    f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{_e(text)}</text>')
    x_label += LOG if xa.log else ""
    y_label += LOG if ya.log else ""
    body.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle" class="axis">{_e(x_label)}</text>'
                f'<text x="4" y="14" class="axis">{_e(y_label)}</text>')  # above the plot: long labels fit
    right, top = better[0] == "higher", better[1] == "higher"
    arrow = {(True, True): "↗", (True, False): "↘", (False, True): "↖", (False, False): "↙"}[(right, top)]
    hx, hy = (W - R - 8, T + 16) if top else (W - R - 8, H - B - 8)
    if not right:
        hx = L + 8
    hint_w = 52
    taken: list[Box] = [(hx - hint_w if right else hx, hy - 11, hx if right else hx + hint_w, hy + 3)]
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
    dots = [(xa.px(p.x) - 5, ya.px(p.y) - 5, xa.px(p.x) + 5, ya.px(p.y) + 5) for p in fr]
    greys = [(xa.px(p.x) - 4, ya.px(p.y) - 4, xa.px(p.x) + 4, ya.px(p.y) + 4) for p in points if p.case not in on_front]
    labels: list[Box] = []
    left_out = []
    for p in sorted(fr, key=lambda p: -ya.px(p.y)):
        cx, cy, w = xa.px(p.x), ya.px(p.y), len(p.case) * _LABEL_W
        area = (L + 2, T + 2, W - R - 2, H - B - 2)
        box = (_place(taken + labels + dots + greys, cx, cy, w, area)  # over grey dots only if need be
               or _place(taken + labels + dots, cx, cy, w, area))
        if box is None:
            left_out.append(p.case)
            continue
        labels.append(box)
        x, y = box[0], box[3] - 2
        if abs(y - 4 - cy) > 6 or x < cx - w:  # away from its dot: a leader line says whose it is
            ex = min(max(cx, x), x + w)
            ey = y - 10 if y - 4 > cy else y + 2
            body.append(f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{ex:.1f}" y2="{ey:.1f}" stroke="{FRONT}" '
                        f'stroke-width="0.8" stroke-opacity="0.7"/>')
        body.append(f'<text x="{x:.1f}" y="{y:.1f}" class="label">{_e(p.case)}</text>')
    if left_out:
        body.append(f'<text x="{L}" y="{H - 1}" class="hint">also on the front (no room to label): '
                    f'{_e(", ".join(left_out))}</text>')
    return figure(W, H, title, body)


def _shade(f: float) -> tuple[str, str]:
    """Fill and text colour for goodness f in [0, 1] (1 = best): pale to deep teal."""
    lo, hi = (241, 243, 245), (12, 110, 120)
    rgb = tuple(round(a + (b - a) * f) for a, b in zip(lo, hi))
    return "#%02x%02x%02x" % rgb, ("#fff" if f > 0.55 else INK)


@dataclass
class Cell:
    """One heat-map cell: its value (for the colour), text, spread for the tooltip, and whether
    its median's interval is wide (more than WIDE of the median): then it gets a corner mark."""

    value: float
    text: str
    spread: str = ""
    wide: bool = False


def heatmap(rows: list[str], cols: list[str], cells: dict[tuple[str, str], Cell],
            better: str, title: str, row_title: str, col_title: str) -> str:
    """Grid of rows x cols; darker is better (log scale between the worst and best cell); a cell
    with a wide interval has a dark corner, and the legend says so."""
    spread = any(c.spread for c in cells.values())
    cw, ch, L, T = 92, 30, 110, 46
    W, H = max(L + cw * len(cols) + 10, 380), T + ch * len(rows) + 28 + (14 if spread else 0)
    vals = [c.value for c in cells.values() if c.value > 0]
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
            cell = cells[(r, c)]
            f = 0.5 if hi == lo or cell.value <= 0 else (math.log10(cell.value) - lo) / (hi - lo)
            fill, ink = _shade(f if better == "higher" else 1 - f)
            tip = f"{r} × {c}: {cell.text}" + (f"; {cell.spread}" if cell.spread else "")
            body.append(f'<g><title>{_e(tip)}</title><rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" '
                        f'fill="{fill}"/>')
            if cell.wide:
                body.append(f'<path d="M{x + cw - 14},{y} h12 v12 z" fill="{INK}" class="wide"/>')
            body.append(f'<text x="{x + cw / 2 - 1}" y="{y + ch / 2 + 4}" text-anchor="middle" '
                        f'fill="{ink}" class="cell">{_e(cell.text)}</text></g>')
    body.append(f'<text x="4" y="{T + ch * len(rows) + 20}" class="hint">darker is better ({_e(better)} is '
                f'better; log colour scale)</text>')
    if spread:
        body.append(f'<path d="M4,{H - 16} h9 v9 z" fill="{INK}"/><text x="18" y="{H - 8}" class="hint">'
                    f'interval of the median wider than {WIDE:.0%} of the median; hover a cell for its spread</text>')
    return figure(W, H, title, body)


def groups(labels: list[str], most: int = MAX_ROWS) -> list[tuple[str, list[int]]]:
    """Panels for small multiples: (title, label indices) per format (the text before '/'); a
    format with more than `most` cases splits by its first option token, then into slices."""
    def split(name: str, idx: list[int], key: Callable[[str], str] | None) -> list[tuple[str, list[int]]]:
        if len(idx) <= most:
            return [(name, idx)]
        if key is not None:
            sub: dict[str, list[int]] = {}
            for i in idx:
                sub.setdefault(key(labels[i]), []).append(i)
            if len(sub) > 1:
                return [g for k, ix in sub.items() for g in split(f"{name} · {k}" if k else name, ix, None)]
        parts = math.ceil(len(idx) / most)
        size = math.ceil(len(idx) / parts)
        return [(f"{name} ({k + 1} of {parts})", idx[k * size:(k + 1) * size]) for k in range(parts)]

    by_format: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_format.setdefault(lab.split("/", 1)[0], []).append(i)
    first_token = lambda lab: lab.split("/", 1)[1].split("-")[0] if "/" in lab else ""  # noqa: E731
    return [g for name, idx in by_format.items() for g in split(name, idx, first_token)]


def bars(labels: list[str], series: list[tuple[str, list[float | None]]], axis_label: str, title: str,
         log: bool | None = None, ref: tuple[float, str] | None = None,
         texts: list[list[str]] | None = None, most: int = MAX_ROWS) -> str:
    """Horizontal bars, one group per label and one bar per series; an optional reference line.

    Linear from zero unless the values span more than 30x (or `log` says so): then a log axis.
    More than `most` labels: small multiples, one panel per format (see `groups`) on one shared
    value axis, laid out in two columns.
    """
    n = len(series)
    bh, gap = 14, 8
    vals = [v for _, vs in series for v in vs if v is not None]
    if ref:
        vals.append(ref[0])
    pos = [v for v in vals if v > 0]
    if log is None:
        log = bool(pos) and max(pos) / min(pos) > 30
    vals = pos if log else vals
    panels = [("", list(range(len(labels))))] if len(labels) <= most else groups(labels, most)
    multiple = len(panels) > 1

    def shown(lab: str, name: str) -> str:  # inside a panel titled with the format, drop it
        fmt = name.split(" ", 1)[0]
        return lab[len(fmt) + 1:] if multiple and lab.startswith(fmt + "/") else lab

    L = min(300, 12 + int(max((len(shown(labels[i], g)) for g, ix in panels for i in ix), default=4) * _CHAR_W))
    PW = L + 340  # one panel's width; its plot runs from L to PW - 110
    xa = Axis(vals or [1.0], L, PW - 110, log, zero=not log)
    base = xa.lo_px if xa.log else xa.px(0.0)
    head = 10 + (16 if n > 1 else 0)
    tall = lambda ix: (18 if multiple else 0) + len(ix) * (n * bh + gap) + 30  # noqa: E731
    cols = 2 if multiple else 1
    tops, heights, col_h = [], [], [head] * cols
    for _, ix in panels:  # each panel into the shorter column, in order
        c = min(range(cols), key=lambda k: col_h[k])
        tops.append((c * (PW + 20), col_h[c]))
        col_h[c] += tall(ix) + (12 if multiple else 0)
        heights.append(tall(ix))
    W, H = cols * PW + (cols - 1) * 20, max(col_h) + 16 - (12 if multiple else 0)
    body = []
    x = 0
    for k, (name, _) in enumerate(series if n > 1 else []):
        body.append(f'<rect x="{x + L}" y="4" width="10" height="10" fill="{SERIES[k % 4]}"/>'
                    f'<text x="{x + L + 14}" y="13" class="tick">{_e(name)}</text>')
        x += 30 + len(name) * _CHAR_W
    for (name, ix), (ox, oy), ph in zip(panels, tops, heights):
        body.append(f'<g transform="translate({ox} {oy})">')
        if multiple:
            body.append(f'<text x="{L}" y="12" class="axis">{_e(name)}</text>')
        t0 = 18 if multiple else 0
        for t, text in xa.labelled():
            px = xa.px(t)
            body.append(f'<line x1="{px:.1f}" y1="{t0}" x2="{px:.1f}" y2="{ph - 26}" stroke="{GRID}"/>'
                        f'<text x="{px:.1f}" y="{ph - 12}" text-anchor="middle" class="tick">{_e(text)}</text>')
        for row, i in enumerate(ix):
            y0 = t0 + row * (n * bh + gap)
            lab = labels[i]
            body.append(f'<text x="{L - 6}" y="{y0 + n * bh / 2 + 4}" text-anchor="end" class="tick">'
                        f'{_e(shown(lab, name))}</text>')
            for k, (sname, vs) in enumerate(series):
                v, y = vs[i], y0 + k * bh
                if v is None or (xa.log and v <= 0):
                    body.append(f'<text x="{L + 4}" y="{y + 11}" class="tick">not measured</text>')
                    continue
                px = xa.px(v)
                text = texts[k][i] if texts else number(v)
                body.append(f'<rect x="{base:.1f}" y="{y}" width="{max(1.0, px - base):.1f}" height="{bh - 2}" '
                            f'fill="{SERIES[k % 4]}"><title>{_e(lab)} {_e(sname)}: {_e(text)}</title></rect>'
                            f'<text x="{px + 4:.1f}" y="{y + 10}" class="tick">{_e(text)}</text>')
        if ref:
            px = xa.px(ref[0])
            body.append(f'<line x1="{px:.1f}" y1="{t0}" x2="{px:.1f}" y2="{ph - 26}" stroke="{INK}" '
                        f'stroke-dasharray="3 3"/><text x="{px + 3:.1f}" y="{ph - 28}" class="hint">'
                        f'{_e(ref[1])}</text>')
        body.append("</g>")
    axis_label += LOG if xa.log else ""
    body.append(f'<text x="{W / 2 if multiple else (L + PW - 110) / 2}" y="{H - 6}" text-anchor="middle" '
                f'class="axis">{_e(axis_label)}</text>')
    return figure(int(W), int(H), title, body)


def lines(series: dict[str, dict[int, float]], x_labels: dict[int, str], y_text: Callable[[float], str],
          title: str, x_label: str, cls: str = "chart") -> str:
    """A line per series over categorical x positions 0..n-1 (`x_labels`: the ones to label), log y
    when values span more than 10x; a legend on the right. Colours repeat every ten series, each
    repeat with another dash pattern. `y_text` formats a y tick (units scaled once by the caller)."""
    n = max(x_labels, default=0) + 1
    values = [v for pts in series.values() for v in pts.values()]
    W, R, L, T, B = 820, 260, 72, 16, 46
    H = max(280, T + 14 * len(series) + 24)  # room for the whole legend
    body = [f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="{GRID}"/>']
    if not values:
        body.append(f'<text x="{L + 10}" y="{(T + H - B) / 2}">no successful result</text>')
        return figure(W, H, title, body, cls)
    ya = Axis(values, H - B, T, log=min(values) > 0 and max(values) / min(values) > 10)
    px = lambda i: L + (i + 0.5) * (W - L - R) / max(1, n)  # noqa: E731
    for t, text in ya.labelled(lambda s: 13):
        y = ya.px(t)
        body.append(f'<line x1="{L}" x2="{W - R}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
                    f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
                    f'{_e(y_text(t) if text else "")}</text>')
    for i, text in x_labels.items():
        body.append(f'<text x="{px(i):.1f}" y="{H - B + 16}" text-anchor="middle" class="tick">{_e(text)}</text>')
    for k, (name, pts) in enumerate(sorted(series.items())):
        color = PALETTE[k % len(PALETTE)]
        dash = ("none", "6 3", "2 2")[k // len(PALETTE) % 3]
        style = f'fill="none" stroke="{color}" stroke-width="1.5" stroke-dasharray="{dash}"'
        ordered = sorted(pts.items())
        if len(ordered) > 1:
            body.append(f'<polyline points="{" ".join(f"{px(i):.1f},{ya.px(v):.1f}" for i, v in ordered)}" {style}/>')
        for i, v in ordered:
            body.append(f'<circle cx="{px(i):.1f}" cy="{ya.px(v):.1f}" r="3" fill="{color}">'
                        f'<title>{_e(name)} @ {_e(x_labels.get(i, i))}: {_e(y_text(v))}</title></circle>')
        ly, lx = T + 8 + 14 * k, W - R + 10
        body.append(f'<line x1="{lx}" x2="{lx + 18}" y1="{ly - 3}" y2="{ly - 3}" {style}/>'
                    f'<circle cx="{lx + 9}" cy="{ly - 3}" r="2.5" fill="{color}"/>'
                    f'<text x="{lx + 24}" y="{ly + 1}" class="tick">{_e(name[:38])}</text>')
    body.append(f'<text x="{(L + W - R) / 2}" y="{H - 6}" text-anchor="middle" class="tick">'
                f'{_e(x_label + (LOG if ya.log else ""))}</text>')
    return figure(W, H, title, body, cls)
