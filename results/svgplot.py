"""The page's figures as inline SVG: draws the descriptions of results/figures.py (log-log charts with a hover
text on every point, stacked bars, small multiples); results/mplplot.py draws the same descriptions as PNGs.

Written here rather than with matplotlib's SVG output: a full record has about 30 per-model figures, and matplotlib
spends about 0.7 s on each on this project's 2-core VM (tick label layout and mathtext dominate), 20 s for a page
that must render in under 3 s. These figures need only lines, circles, rectangles and text, and the hover texts must
sit on each point anyway (an SVG <title> per <circle>), so a few string templates do it in milliseconds. Pure
Python; output is plain SVG 1.1.
"""
from __future__ import annotations

import html
import math

from results import figures
from results.figures import PALETTE

SI = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "u")]


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def si_tick(value: float) -> str:
    for scale, prefix in SI:
        if value >= scale * 0.999:
            v = value / scale
            return f"{v:.0f}{prefix}" if abs(v - round(v)) < 1e-6 else f"{v:.3g}{prefix}"
    return f"{value:.2g}"


def pow2_tick(value: float) -> str:
    if value >= 1:
        return si_tick(value) if value >= 1024 else f"{value:.0f}"
    return f"1/{1 / value:.0f}"


def bytes_tick(value: float) -> str:
    for scale, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if value >= scale:
            return f"{value / scale:.0f} {unit}"
    return f"{value:.0f} B"


def svg(fig) -> str:
    """One figure description (results/figures.py) as an SVG string."""
    if isinstance(fig, figures.Bars):
        return stacked_bars(fig.labels, fig.parts, fig.notes, fig.title, fig.xlabel)
    if isinstance(fig, figures.Panels):
        return panels(fig.series, fig.title, fig.xlabel)
    return LogLog(fig).svg()


class LogLog:
    """Draws a ``figures.LogLog``: x base 2, y base 10; legend on the right."""

    def __init__(self, fig, width: int = 1000, height: int = 540, legend_width: int = 300):
        self.xtick = bytes_tick if fig.xtick == "bytes" else pow2_tick
        self.x0, self.x1 = math.log2(fig.xlim[0]), math.log2(fig.xlim[1])
        self.y0, self.y1 = math.log10(fig.ylim[0]), math.log10(fig.ylim[1])
        self.w, self.h, self.lw = width, height, legend_width
        self.left, self.right, self.top, self.bottom = 70, width - legend_width - 10, 46, height - 48
        self.title, self.xlabel, self.ylabel = fig.title, fig.xlabel, fig.ylabel
        self.subtitle = fig.subtitle
        self.body: list[str] = []
        self.legend: list[tuple[str, str, str]] = []  # (kind, style, label)
        for item in fig.items:
            kind, args = item[0], item[1:]
            if kind == "line":
                self.line(*args)
            elif kind == "dot":
                self.dot(*args)
            elif kind == "points":
                self.points(*args)
            elif kind == "tick":
                self.tick_mark(*args)
            elif kind == "label":
                self.label(*args[:-1])  # a label that avoids others is placed where it points (no text metrics here)
            elif kind == "arrow":
                self.arrow(*args)
            else:  # note: a legend entry with nothing drawn
                self.legend.append(("note", "", args[0]))

    def px(self, x: float) -> float:
        return self.left + (math.log2(x) - self.x0) / (self.x1 - self.x0) * (self.right - self.left)

    def py(self, y: float) -> float:
        return self.bottom - (math.log10(y) - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)

    def line(self, xs, ys, color: str, width: float = 1.5, dash: str = "", label: str | None = None) -> None:
        pts = " ".join(f"{self.px(x):.1f},{self.py(y):.1f}" for x, y in zip(xs, ys) if x > 0 and y > 0)
        style = f'stroke="{color}" stroke-width="{width}" fill="none"' + (f' stroke-dasharray="{dash}"' if dash else "")
        self.body.append(f'<polyline points="{pts}" {style}/>')
        if label:
            self.legend.append(("line", style, label))

    def dot(self, x: float, y: float, color: str, r: float = 4, title: str = "") -> None:
        if x > 0 and y > 0:
            self.body.append(f'<circle cx="{self.px(x):.1f}" cy="{self.py(y):.1f}" r="{r}" fill="{color}">'
                             + (f"<title>{_esc(title)}</title>" if title else "") + "</circle>")

    def points(self, xs, ys, radii, color: str, titles, label: str | None = None) -> None:
        for x, y, r, t in zip(xs, ys, radii, titles):
            if x > 0 and y > 0:
                self.body.append(f'<circle cx="{self.px(x):.1f}" cy="{self.py(y):.1f}" r="{r:.1f}" fill="{color}" '
                                 f'fill-opacity="0.75" stroke="#000" stroke-width="0.5"><title>{_esc(t)}</title>'
                                 "</circle>")
        if label:
            self.legend.append(("point", f'fill="{color}" fill-opacity="0.75" stroke="#000" stroke-width="0.5"', label))

    def arrow(self, x0: float, y0: float, x1: float, y1: float, color: str) -> None:
        if min(x0, y0, x1, y1) <= 0:
            return
        ax, ay, bx, by = self.px(x0), self.py(y0), self.px(x1), self.py(y1)
        length = math.hypot(bx - ax, by - ay)
        if length < 2:
            return
        ux, uy = (bx - ax) / length, (by - ay) / length
        tip_x, tip_y = bx - 7 * ux, by - 7 * uy  # stop short of the point's circle
        head = [(tip_x, tip_y), (tip_x - 7 * ux + 3.5 * uy, tip_y - 7 * uy - 3.5 * ux),
                (tip_x - 7 * ux - 3.5 * uy, tip_y - 7 * uy + 3.5 * ux)]
        self.body.append(f'<line x1="{ax:.1f}" y1="{ay:.1f}" x2="{tip_x:.1f}" y2="{tip_y:.1f}" stroke="{color}" '
                         'stroke-width="1.2" stroke-opacity="0.8"/>')
        self.body.append('<polygon points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y in head) + f'" fill="{color}"/>')

    def tick_mark(self, x: float, y: float, color: str) -> None:
        """A short horizontal dash at (x, y): the attainable rate of a point."""
        if x > 0 and y > 0:
            cx, cy = self.px(x), self.py(y)
            self.body.append(f'<line x1="{cx - 6:.1f}" y1="{cy:.1f}" x2="{cx + 6:.1f}" y2="{cy:.1f}" '
                             f'stroke="{color}" stroke-width="1.5"/>')

    def label(self, x: float, y: float, text: str, color: str = "#333", dx: int = 5, dy: int = -4) -> None:
        if x > 0 and y > 0:
            self.body.append(f'<text x="{self.px(x) + dx:.1f}" y="{self.py(y) + dy:.1f}" font-size="10" '
                             f'fill="{color}">{_esc(text)}</text>')

    def svg(self) -> str:
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.w} {self.h}" class="figure" '
               f'font-family="system-ui, sans-serif" role="img"><title>{_esc(self.title)}</title>',
               f'<rect x="0" y="0" width="{self.w}" height="{self.h}" fill="#fff"/>',
               f'<text x="{self.w / 2:.0f}" y="20" text-anchor="middle" font-size="13">{_esc(self.title)}</text>']
        if self.subtitle:
            out.append(f'<text x="{self.w / 2:.0f}" y="36" text-anchor="middle" font-size="10" fill="#555">'
                       f"{_esc(self.subtitle)}</text>")
        for k in range(math.ceil(self.x0), math.floor(self.x1) + 1):
            x = self.px(2.0 ** k)
            out.append(f'<line x1="{x:.1f}" y1="{self.top}" x2="{x:.1f}" y2="{self.bottom}" stroke="#e5e8eb"/>')
            if k % max(1, math.ceil((self.x1 - self.x0) / 14)) == 0:
                out.append(f'<text x="{x:.1f}" y="{self.bottom + 15}" text-anchor="middle" font-size="10">'
                           f"{self.xtick(2.0 ** k)}</text>")
        for k in range(math.ceil(self.y0), math.floor(self.y1) + 1):
            y = self.py(10.0 ** k)
            out.append(f'<line x1="{self.left}" y1="{y:.1f}" x2="{self.right}" y2="{y:.1f}" stroke="#e5e8eb"/>')
            out.append(f'<text x="{self.left - 6}" y="{y + 3:.1f}" text-anchor="end" font-size="10">'
                       f"{si_tick(10.0 ** k)}</text>")
        out.append(f'<rect x="{self.left}" y="{self.top}" width="{self.right - self.left}" '
                   f'height="{self.bottom - self.top}" fill="none" stroke="#888"/>')
        out.append(f'<clipPath id="CLIP"><rect x="{self.left}" y="{self.top}" width="{self.right - self.left}" '
                   f'height="{self.bottom - self.top}"/></clipPath><g clip-path="url(#CLIP)">')
        out += self.body
        out.append("</g>")
        out.append(f'<text x="{(self.left + self.right) / 2:.0f}" y="{self.h - 12}" text-anchor="middle" '
                   f'font-size="11">{_esc(self.xlabel)}</text>')
        out.append(f'<text transform="translate(16 {(self.top + self.bottom) / 2:.0f}) rotate(-90)" '
                   f'text-anchor="middle" font-size="11">{_esc(self.ylabel)}</text>')
        lx, ly = self.right + 16, self.top + 4
        for i, (kind, style, label) in enumerate(self.legend):
            y = ly + 16 * i
            if kind == "line":
                out.append(f'<line x1="{lx}" y1="{y}" x2="{lx + 22}" y2="{y}" {style}/>')
            elif kind == "point":
                out.append(f'<circle cx="{lx + 11}" cy="{y}" r="5" {style}/>')
            out.append(f'<text x="{lx + 28}" y="{y + 4}" font-size="10">{_esc(label[:50])}</text>')
        out.append("</svg>")
        return "\n".join(out)


def stacked_bars(labels: list[str], parts: list[tuple[str, list[float]]], notes: list[str], title: str,
                 xlabel: str, width: int = 980) -> str:
    """Horizontal bars, one per label, split into named parts (values in the x unit), a note at each bar's end."""
    row_h, left, top = 22, 290, 40
    height = top + row_h * len(labels) + 70
    right = width - 170
    total = [sum(values[i] for _, values in parts) for i in range(len(labels))]
    scale = (right - left) / (max(total) if total and max(total) > 0 else 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="figure" '
           f'font-family="system-ui, sans-serif" role="img"><title>{_esc(title)}</title>',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
           f'<text x="{width / 2:.0f}" y="20" text-anchor="middle" font-size="13">{_esc(title)}</text>']
    for i, label in enumerate(labels):
        y = top + row_h * i
        out.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" font-size="10">{_esc(label[:48])}</text>')
        x = left
        for j, (name, values) in enumerate(parts):
            w = values[i] * scale
            if w > 0:
                out.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                           f'fill="{PALETTE[j % len(PALETTE)]}"><title>{_esc(name)}: {values[i]:.3g}</title></rect>')
            x += w
        out.append(f'<text x="{x + 4:.1f}" y="{y + 15}" font-size="9" fill="#444">{_esc(notes[i])}</text>')
    axis_y = top + row_h * len(labels) + 4
    out.append(f'<line x1="{left}" y1="{axis_y}" x2="{right}" y2="{axis_y}" stroke="#888"/>')
    peak = max(total) if total else 0
    for k in range(6):
        v = peak * k / 5
        x = left + v * scale
        out.append(f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle" font-size="10">{v:.3g}</text>')
    out.append(f'<text x="{(left + right) / 2:.0f}" y="{axis_y + 32}" text-anchor="middle" font-size="11">'
               f"{_esc(xlabel)}</text>")
    lx = left
    for j, (name, _) in enumerate(parts):
        out.append(f'<rect x="{lx}" y="{axis_y + 42}" width="10" height="10" fill="{PALETTE[j % len(PALETTE)]}"/>'
                   f'<text x="{lx + 14}" y="{axis_y + 51}" font-size="10">{_esc(name)}</text>')
        lx += 14 + 7 * len(name) + 16
    out.append("</svg>")
    return "\n".join(out)


def panels(series: list[tuple[str, list[float], list[float], list[float]]], title: str, xlabel: str,
           width: int = 1000, panel_h: int = 90) -> str:
    """Small multiples on a shared linear x: one panel per (name, x, median, max) series, its own y range, the
    median as a line and the max as a lighter band edge; min and max of the panel written at its right."""
    left, right, top = 150, width - 110, 30
    height = top + panel_h * len(series) + 48
    xs_all = [x for _, xs, _, _ in series for x in xs] or [0, 1]
    x0, x1 = min(xs_all), max(xs_all) if max(xs_all) > min(xs_all) else min(xs_all) + 1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="figure" '
           f'font-family="system-ui, sans-serif" role="img"><title>{_esc(title)}</title>',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
           f'<text x="{width / 2:.0f}" y="18" text-anchor="middle" font-size="13">{_esc(title)}</text>']
    for i, (name, xs, med, hi) in enumerate(series):
        y_top, y_bot = top + panel_h * i + 6, top + panel_h * (i + 1) - 10
        values = [v for v in med + hi if v is not None]
        lo_v, hi_v = (min(values), max(values)) if values else (0.0, 1.0)
        if hi_v - lo_v < 1e-9 * max(1.0, abs(hi_v)):
            lo_v, hi_v = lo_v - 1, hi_v + 1

        def px(x):
            return left + (x - x0) / (x1 - x0) * (right - left)

        def py(v):
            return y_bot - (v - lo_v) / (hi_v - lo_v) * (y_bot - y_top)

        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{left}" y="{y_top}" width="{right - left}" height="{y_bot - y_top}" fill="none" '
                   'stroke="#ccc"/>')
        out.append(f'<text x="{left - 6}" y="{(y_top + y_bot) / 2 + 4:.0f}" text-anchor="end" font-size="10">'
                   f"{_esc(name)}</text>")
        for key, vals, opacity in (("max", hi, 0.35), ("median", med, 1.0)):
            pts = " ".join(f"{px(x):.1f},{py(v):.1f}" for x, v in zip(xs, vals) if v is not None)
            if pts:
                out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-opacity="{opacity}" '
                           f'stroke-width="1.3"><title>{_esc(name)} ({key} per point)</title></polyline>')
        out.append(f'<text x="{right + 6}" y="{y_top + 9}" font-size="9">{hi_v:.4g}</text>'
                   f'<text x="{right + 6}" y="{y_bot}" font-size="9">{lo_v:.4g}</text>')
    axis_y = top + panel_h * len(series) - 4
    for k in range(6):
        x = x0 + (x1 - x0) * k / 5
        out.append(f'<text x="{left + (right - left) * k / 5:.1f}" y="{axis_y + 10}" text-anchor="middle" '
                   f'font-size="10">{x:.0f}</text>')
    out.append(f'<text x="{(left + right) / 2:.0f}" y="{height - 10}" text-anchor="middle" font-size="11">'
               f"{_esc(xlabel)}</text>")
    out.append("</svg>")
    return "\n".join(out)
