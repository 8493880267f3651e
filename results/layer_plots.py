"""Pictures of layers on the roofline: one roofline per model and dtype with every layer as a point, a batch-size
sweep, and a gap-breakdown bar chart. matplotlib/seaborn, Agg backend."""
from __future__ import annotations

import os
import re
from pathlib import Path

from results.layers import PARTS
from results.record import atomic_savefig
from results.units import si

PART_LABELS = {"roof": "roofline time (DRAM)", "overhead": "dispatch overhead", "gemm_shortfall": "GEMM shortfall",
               "layer_vs_gemm": "layer vs plain GEMM", "unexplained": "unexplained"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    return plt, sns


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def _roof(ax, result, dtype: str, lo: float, hi: float) -> None:
    compute = result.compute.get(dtype)
    for name, level in result.memory.items():
        top = compute.value if compute else level.value * hi
        xs = [lo * (hi / lo) ** (i / 100) for i in range(101)]
        dram = name == result.dram_level
        ax.plot(xs, [min(top, level.value * x) for x in xs], color="black" if dram else "grey",
                lw=1.8 if dram else 0.9, ls="-" if dram else ":", label=f"{name} {si(level.value, 'B/s')}")
    if compute:
        ax.axhline(compute.value, color="black", lw=1.8)
        ax.text(hi / 1.2, compute.value * 1.08, f"{dtype} peak {si(compute.value, compute.unit)}", ha="right", fontsize=8)
        dram = result.memory.get(result.dram_level) if result.dram_level else None
        if dram:
            ridge = compute.value / dram.value
            ax.plot([ridge], [compute.value], "kD", ms=6)
            ax.annotate(f"ridge {ridge:.1f} FLOP/B", (ridge, compute.value), xytext=(6, -14),
                        textcoords="offset points", fontsize=8)


def point_groups(rows: list[dict]) -> list[tuple[str, str, list[dict]]]:
    """(group id, layer type, its rows in drawing order): one scatter per type (the PNG and the HTML report's
    SVG group layers the same way)."""
    types = sorted({r["type"] for r in rows})
    return [(f"layerpts-{i}", kind, [r for r in rows if r["type"] == kind]) for i, kind in enumerate(types)]


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


def layers_roofline_png(result, rows: list[dict], title: str, path: str) -> str:
    plt, sns = _plt()
    fig, ax = plt.subplots(figsize=(10, 6.5), dpi=120)
    intens = [r["intensity"] for r in rows]
    lo, hi = min(intens + [0.1]) / 4, max(intens + [100]) * 4
    _roof(ax, result, rows[0]["dtype"], lo, hi)
    types = sorted({r["type"] for r in rows})
    palette = dict(zip(types, sns.color_palette("tab10", len(types))))
    total = sum(r["time_s"] * r["multiplicity"] for r in rows) or 1.0
    for gid, kind, mine in point_groups(rows):
        ax.scatter([r["intensity"] for r in mine], [r["achieved_flop_per_s"] for r in mine],
                   s=[20 + 600 * r["time_s"] * r["multiplicity"] / total for r in mine], color=palette[kind],
                   alpha=0.75, edgecolor="black", linewidth=0.5, label=kind, zorder=3, gid=gid)
        attain = [r for r in mine if r.get("attainable_flop_per_s")]
        ax.scatter([r["intensity"] for r in attain], [r["attainable_flop_per_s"] for r in attain], marker="_",
                   s=120, color=palette[kind], zorder=2)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    top = sorted(rows, key=lambda r: -r["time_s"] * r["multiplicity"])[:5]
    label_points(ax, [(r["layer"], r["intensity"], r["achieved_flop_per_s"]) for r in top], fontsize=7)
    ax.set_xlabel("arithmetic intensity [FLOP/byte] (counted FLOPs / counted bytes)")
    ax.set_ylabel("achieved [FLOP/s] (median cold-cache time)")
    ax.set_title(f"{title}\npoint size = share of the summed layer time (x multiplicity); dash = attainable at that "
                 "intensity", fontsize=10)
    ax.legend(fontsize=7, loc="lower right", ncol=2, framealpha=0.9)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)
    return path


def batch_sweep_png(result, rows: list[dict], title: str, path: str) -> str:
    plt, sns = _plt()
    fig, ax = plt.subplots(figsize=(10, 6.5), dpi=120)
    intens = [r["intensity"] for r in rows]
    lo, hi = min(intens) / 4, max(intens) * 4
    _roof(ax, result, rows[0]["dtype"], lo, hi)
    layers = sorted({r["layer"] for r in rows})
    palette = dict(zip(layers, sns.color_palette("tab10", len(layers))))
    for layer in layers:
        mine = sorted((r for r in rows if r["layer"] == layer), key=lambda r: r["intensity"])
        ax.plot([r["intensity"] for r in mine], [r["achieved_flop_per_s"] for r in mine], "o-", color=palette[layer],
                label=layer, ms=5)
        for r in mine:
            ax.annotate(r["batch_tag"], (r["intensity"], r["achieved_flop_per_s"]), xytext=(4, -10),
                        textcoords="offset points", fontsize=6, color=palette[layer])
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("arithmetic intensity [FLOP/byte]")
    ax.set_ylabel("achieved [FLOP/s] (median cold-cache time)")
    ax.set_title(f"{title}: the same layers as the batch / token count grows", fontsize=10)
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)
    return path


def gap_bars_png(rows: list[dict], title: str, path: str, top: int = 12) -> str:
    plt, sns = _plt()
    rows = sorted(rows, key=lambda r: -r["time_s"] * r["multiplicity"])[:top][::-1]
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(rows) + 2), dpi=120)
    colors = dict(zip(PARTS, sns.color_palette("deep", len(PARTS))))
    labels = [f"{r['layer']} x{r['multiplicity']} ({r['type']})" for r in rows]
    left = [0.0] * len(rows)
    for part in PARTS:
        widths = [r[f"gap_{part}_s"] * 1e3 for r in rows]
        ax.barh(labels, widths, left=left, color=colors[part], label=PART_LABELS[part])
        left = [a + b for a, b in zip(left, widths)]
    for y, r in enumerate(rows):
        eff = f"{100 * r['efficiency']:.0f}% of attainable, {r['bound']}" if r.get("efficiency") is not None else ""
        ax.text(left[y] * 1.01, y, eff, va="center", fontsize=7)
    ax.set_xlim(0, max(left) * 1.35 if left else 1)
    ax.set_xlabel("time per call [ms] (median, cold cache), split into named parts")
    ax.set_title(f"{title}: where the time goes (layers with the most time x multiplicity)", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)
    return path


def model_groups(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """(model, dtype) -> its layer rows, in record order."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["dtype"]), []).append(r)
    return groups


def sweep_groups(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """(source model, dtype) -> the layers measured at two or more batch / token tags, where the source has at
    least two tags (the batch-sweep figure)."""
    sweeps: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r["batch_tag"]:
            sweeps.setdefault((r["model"].split("-")[0], r["dtype"]), []).append(r)
    out = {}
    for key, mine in sweeps.items():
        if len({r["batch_tag"] for r in mine}) >= 2:
            shared = {r["layer"] for r in mine if sum(1 for q in mine if q["layer"] == r["layer"]) >= 2}
            chosen = [r for r in mine if r["layer"] in shared]
            if chosen:
                out[key] = chosen
    return out


def write_layer_plots(result, stem: str | os.PathLike) -> list[str]:
    """All layer pictures of the analysis ``result``, named after ``stem``; returns their paths."""
    record, rows = result.record, result.layers
    stem = Path(stem)
    paths = []
    for (model, dtype), mine in model_groups(rows).items():
        title = f"{model} [{dtype}] on the measured roofline of {record['platform'].get('name')}"
        paths.append(layers_roofline_png(result, mine, title, f"{stem}.layers-{slug(model)}-{dtype}.png"))
        if len(mine) >= 2:
            paths.append(gap_bars_png(mine, f"{model} [{dtype}]", f"{stem}.gap-{slug(model)}-{dtype}.png"))
    for (source, dtype), chosen in sweep_groups(rows).items():
        paths.append(batch_sweep_png(result, chosen, f"{source} [{dtype}]",
                                     f"{stem}.sweep-{slug(source)}-{dtype}.png"))
    return paths
