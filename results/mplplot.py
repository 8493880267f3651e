"""The PNGs: draws the descriptions of results/figures.py with matplotlib (Agg backend, no screen needed), as
results/svgplot.py draws them for the page. Layer labels marked ``avoid`` are moved off each other here, where text
can be measured (``label_points``).
"""
from __future__ import annotations

import math
import os
import textwrap

from results import figures
from results.record import atomic_savefig
from results.svgplot import bytes_tick, pow2_tick, si_tick

#: pixels of the page's SVG -> points of the PNG (the SVG's 1000 px wide figure is drawn 12 inches wide here)
PX = 0.8


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _dash(text: str):
    return (0, tuple(float(v) * PX for v in text.split(","))) if text else "-"


def png(fig, path: str | os.PathLike) -> str:
    """Write one figure description (results/figures.py) to ``path`` (atomically); returns the path."""
    path = os.fspath(path)
    if isinstance(fig, figures.Bars):
        return _bars(fig, path)
    plt = _plt()
    from matplotlib.ticker import FuncFormatter

    canvas, ax = plt.subplots(figsize=(12.5, 6.75), dpi=120)
    avoid = []
    for item in fig.items:
        kind, args = item[0], item[1:]
        if kind == "line":
            xs, ys, colour, width, dash, label = args
            keep = [(x, y) for x, y in zip(xs, ys) if x > 0 and y > 0]
            ax.plot([x for x, _ in keep], [y for _, y in keep], color=colour, lw=width * PX * 1.25, ls=_dash(dash),
                    label=label, zorder=2)
        elif kind == "dot":
            x, y, colour, radius, _hover = args
            ax.plot([x], [y], "o", color=colour, ms=2 * radius * PX, zorder=4)
        elif kind == "points":
            xs, ys, radii, colour, _hovers, label = args
            ax.scatter(xs, ys, s=[(2 * r * PX) ** 2 for r in radii], color=colour, alpha=0.75, edgecolor="black",
                       linewidth=0.5, label=label, zorder=3)
        elif kind == "tick":
            x, y, colour = args
            ax.plot([x], [y], marker="_", ms=12 * PX, mew=1.5, color=colour, zorder=2)
        elif kind == "label":
            x, y, text, colour, dx, dy, away = args
            if away:
                avoid.append((text, x, y))
            else:
                ax.annotate(text, (x, y), xytext=(dx * PX, -dy * PX), textcoords="offset points", fontsize=7,
                            color=colour)
        elif kind == "arrow":
            x0, y0, x1, y1, colour = args
            ax.annotate("", (x1, y1), xytext=(x0, y0), zorder=2,
                        arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.0, "alpha": 0.8, "shrinkB": 5})
        else:  # a legend entry with nothing drawn
            ax.plot([], [], " ", label=args[0])
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlim(*fig.xlim)
    ax.set_ylim(*fig.ylim)
    xtick = bytes_tick if fig.xtick == "bytes" else pow2_tick
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: xtick(v) if v > 0 else ""))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: si_tick(v) if v > 0 else ""))
    ax.grid(True, which="major", color="#e5e8eb")
    if avoid:
        label_points(ax, avoid, fontsize=7)
    ax.set_xlabel(fig.xlabel)
    ax.set_ylabel(fig.ylabel)
    # the subtitle wrapped to the axes' width (the legend sits to the right of them)
    ax.set_title(fig.title + (f"\n{textwrap.fill(fig.subtitle, 125)}" if fig.subtitle else ""), fontsize=10)
    if any(item[-1] for item in fig.items if item[0] in ("line", "points", "note")):
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, framealpha=0.9)
    return _save(canvas, path)


def _save(canvas, path: str) -> str:
    canvas.tight_layout()
    atomic_savefig(canvas, path)
    _plt().close(canvas)
    return path


def _bars(fig: figures.Bars, path: str) -> str:
    plt = _plt()
    n = len(fig.labels)
    canvas, ax = plt.subplots(figsize=(11, 0.45 * n + 2), dpi=120)
    order = list(range(n))[::-1]  # the first label on top, as the page draws it
    labels = [fig.labels[i] for i in order]
    left = [0.0] * n
    for j, (name, values) in enumerate(fig.parts):
        widths = [values[i] for i in order]
        ax.barh(labels, widths, left=left, color=figures.PALETTE[j % len(figures.PALETTE)], label=name)
        left = [a + b for a, b in zip(left, widths)]
    for y, i in enumerate(order):
        ax.text(left[y] * 1.01, y, fig.notes[i], va="center", fontsize=7)
    ax.set_xlim(0, max(left) * 1.35 if left and max(left) > 0 else 1)
    ax.set_xlabel(fig.xlabel)
    ax.set_title(fig.title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return _save(canvas, path)


def label_points(ax, labels: list[tuple[str, float, float]], fontsize: float = 7) -> None:
    """Annotate (text, x, y) points, each label moved up or down in steps of a line until its box (estimated from
    the text length: no draw pass needed) overlaps no label placed before it nor the roofs' labels; layers of the
    same intensity and speed (ResNet-50's layer2/layer3 3x3 convolutions) otherwise print on top of each other."""
    ax.autoscale_view()
    renderer = ax.figure.canvas.get_renderer()
    placed = [tuple(t.get_window_extent(renderer).extents) for t in ax.texts]  # the roofs' own labels
    scale = ax.figure.dpi / 72  # points -> display pixels
    width_per_char, height = 0.6 * fontsize * scale, (fontsize + 2) * scale
    for text, x, y in labels:
        if not (x > 0 and y > 0 and math.isfinite(x) and math.isfinite(y)):
            continue
        px, py = ax.transData.transform((x, y))
        w = width_per_char * len(text)
        for dy in (4, -12, 14, -22, 24, -32, 34, -42):
            box = (px + 5 * scale, py + dy * scale, px + 5 * scale + w, py + dy * scale + height)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                break
        placed.append(box)
        moved = dict(arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.45", "shrinkA": 0, "shrinkB": 2}) \
            if dy not in (4, -12) else {}  # a label a line or more away gets a leader to its point
        ax.annotate(text, (x, y), xytext=(5, dy), textcoords="offset points", fontsize=fontsize, **moved)
