"""Every figure of the suite, described once: its series, roofs, limits, labels and hover texts. Two writers only
draw these descriptions: results/svgplot.py (the page's inline SVG) and results/mplplot.py (the PNGs, matplotlib),
so a PNG and the page's figure of the same thing cannot drift apart.

A ``LogLog`` description is a list of drawing items in order (lines, dots, points with hover texts, tick marks,
text labels, legend-only notes) on log2 x / log10 y axes; ``Bars`` is stacked horizontal bars; ``Panels`` small
multiples on a shared linear x. Colours are matplotlib's tab10 (``PALETTE``). Pure Python: no torch, no matplotlib.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from results.distributed import curves, dp_model, link_rate
from results.layers import PARTS
from results.summary import silicon_kind
from results.units import si
from results.variants import roofs_of

#: matplotlib's tab10
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]
#: a compute roof below this fraction of the highest is listed in the legend but not drawn (an emulated dtype, e.g.
#: fp8 on a CPU at 70 MFLOP/s, would stretch the intensity axis over ten more octaves and squash the rest)
UNDRAWN_FRACTION = 1e-3
PART_LABELS = {"roof": "roofline time (DRAM)", "overhead": "dispatch overhead", "gemm_shortfall": "GEMM shortfall",
               "layer_vs_gemm": "layer vs plain GEMM", "unexplained": "unexplained"}


@dataclass
class LogLog:
    """A log-log chart: x base 2 (intensity, sizes, batch), y base 10 (FLOP/s, B/s, seconds). ``xtick``: "pow2"
    (1/4, 1, 64, 1k) or "bytes" (KiB, MiB). Items, in drawing order: ("line", xs, ys, colour, width, dash, label),
    ("dot", x, y, colour, radius, hover), ("points", xs, ys, radii, colour, hovers, label), ("tick", x, y, colour),
    ("label", x, y, text, colour, dx, dy, avoid), ("arrow", x0, y0, x1, y1, colour), ("note", label): a legend
    entry with nothing drawn."""

    xlim: tuple[float, float]
    ylim: tuple[float, float]
    title: str
    xlabel: str
    ylabel: str
    subtitle: str = ""
    xtick: str = "pow2"
    items: list = field(default_factory=list)

    def line(self, xs, ys, colour: str, width: float = 1.5, dash: str = "", label: str | None = None) -> None:
        self.items.append(("line", list(xs), list(ys), colour, width, dash, label))

    def dot(self, x: float, y: float, colour: str, radius: float = 4, hover: str = "") -> None:
        self.items.append(("dot", x, y, colour, radius, hover))

    def points(self, xs, ys, radii, colour: str, hovers, label: str | None = None) -> None:
        self.items.append(("points", list(xs), list(ys), list(radii), colour, list(hovers), label))

    def tick(self, x: float, y: float, colour: str) -> None:
        """A short horizontal dash at (x, y): the attainable rate of a point."""
        self.items.append(("tick", x, y, colour))

    def label(self, x: float, y: float, text: str, colour: str = "#333", dx: int = 5, dy: int = -4,
              avoid: bool = False) -> None:
        """Text at (x, y) moved by (dx, dy) pixels (y down); ``avoid``: a writer that can measure text moves it off
        the labels placed before it."""
        self.items.append(("label", x, y, text, colour, dx, dy, avoid))

    def note(self, label: str) -> None:
        self.items.append(("note", label))

    def arrow(self, x0: float, y0: float, x1: float, y1: float, colour: str) -> None:
        """An arrow from (x0, y0) to (x1, y1): how a point moved (a variant from its reference)."""
        self.items.append(("arrow", x0, y0, x1, y1, colour))


@dataclass
class Bars:
    """Horizontal bars, one per label, split into named parts (values in the x unit), a note at each bar's end."""

    labels: list[str]
    parts: list[tuple[str, list[float]]]
    notes: list[str]
    title: str
    xlabel: str


@dataclass
class Panels:
    """Small multiples on a shared linear x: one panel per (name, x, median, max) series, each its own y range."""

    series: list[tuple[str, list[float], list[float], list]]
    title: str
    xlabel: str


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


# ---- the run's roofline ---------------------------------------------------------------------------------------
def roofline(result) -> LogLog:
    """The measured roofline of an analysis: every memory level's roof, every dtype's GEMM roof with its ridge point
    against DRAM, and the hardware's roofs (register-only FMA and engines, native DRAM) dashed above torch's; each
    roof in the legend with its value and kernel."""
    record = result.record
    memory, silicon, hw = result.memory, result.silicon, result.memory_hw.get("DRAM")
    peaks = sorted(result.compute.values(), key=lambda c: -c.value)
    top_gemm = peaks[0].value if peaks else None
    undrawn = [c for c in peaks if c.value < UNDRAWN_FRACTION * top_gemm]
    compute = [c for c in peaks if c not in undrawn]
    tops = [c.value for c in compute] + [c.value for c in silicon.values()]
    top = max(tops, default=None)
    lo, hi = 1 / 64, 4096.0
    if top and memory:
        hi = max(hi, 4 * top / min(m.value for m in memory.values()))
        lo = min(lo, min(tops) / max(m.value for m in memory.values()) / 64)
    highest = top or max([m.value * hi for m in memory.values()] or [1e12])
    bottom = min([m.value * lo for m in memory.values()] + [highest / 1e4])
    info = record.get("platform") or {}
    fig = LogLog((lo, hi), (bottom, highest * 2), f"Measured roofline: {info.get('name')} [{info.get('device')}]"
                 + (" (quick run)" if (record.get("options") or {}).get("quick") else ""),
                 "arithmetic intensity I [FLOP/byte]", "attainable [FLOP/s; OP/s for int8]")
    fig.subtitle = (f"{str(record.get('created', ''))[:10]}: peaks = best GEMM per dtype; bandwidth = best torch stream "
                    "kernel per level (STREAM bytes); dots: ridge points vs DRAM"
                    + ("; dashed: the hardware's roofs" if silicon or hw else ""))
    if not compute and not memory:
        fig.note("no verified ceilings in this record")
    dram = result.dram
    roof_top = top or highest
    for name, c in memory.items():
        is_dram = name == result.dram_level
        ridge = roof_top / c.value
        xs = [lo] + ([ridge] if lo < ridge < hi else []) + [hi]
        fig.line(xs, [min(roof_top, c.value * x) for x in xs], "#000" if is_dram else "#667",
                 2.2 if is_dram else 1.2, "" if is_dram else "5,3", f"{name}: {si(c.value, 'B/s')} ({c.kernel})")
    if hw:
        xs = [lo, roof_top / hw.value, hi]
        fig.line(xs, [min(roof_top, hw.value * x) for x in xs], "#555", 1.3, "8,4",
                 f"DRAM, hardware: {si(hw.value, 'B/s')} ({hw.kernel})")
    colours = {}
    for i, c in enumerate(compute):
        colour = colours[c.name] = PALETTE[i % len(PALETTE)]
        start = c.value / dram.value if dram else lo
        shape = "x".join(str(v) for v in (c.shape or [])[1:])
        fig.line([start, hi], [c.value] * 2, colour, 2.0, "",
                 f"{c.name}: {si(c.value, c.unit)} (GEMM {shape}" + (f", {c.impl})" if c.impl not in ("", "torch") else ")"))
        if dram:
            fig.dot(start, c.value, colour, 4, f"{c.name} ridge point: {start:.3g} FLOP/B against {result.dram_level}")
            fig.label(start, c.value, f"{start:.3g}", colour, 5, 13)
    for i, (dtype, c) in enumerate(silicon.items()):
        base = hw or dram
        start = c.value / base.value if base else lo
        fig.line([start, hi], [c.value] * 2, colours.get(dtype, PALETTE[(i + 5) % len(PALETTE)]), 1.3, "8,4",
                 f"{dtype} silicon: {si(c.value, c.unit)} ({silicon_kind(c)})")
    for c in undrawn:
        fig.note(f"{c.name}: {si(c.value, c.unit)} (GEMM): below 1/{1 / UNDRAWN_FRACTION:.0f} of the top roof, not drawn")
    return fig


def compare(results: list, labels: list[str]) -> LogLog:
    """Overlaid rooflines: each record's DRAM roof and its four highest compute roofs, one colour per record, and
    its timed layers as points."""
    values = [c.value for res in results for c in res.compute.values()]
    bws = [res.dram.value for res in results if res.dram]
    top = max(values, default=1e12)
    lo, hi = 1 / 16, 4096.0
    bottom = min([b * lo for b in bws] + [top / 1e4])
    fig = LogLog((lo, hi), (bottom, top * 2), "Measured rooflines compared", "arithmetic intensity I [FLOP/byte]",
                 "attainable [FLOP/s]")
    fig.subtitle = "best repetition per ceiling; STREAM byte convention; solid: DRAM roof, dashed: compute roofs"
    for i, (res, label) in enumerate(zip(results, labels)):
        colour = PALETTE[i % len(PALETTE)]
        dram = res.dram
        peaks = sorted(res.compute.values(), key=lambda c: -c.value)[:4]
        roof = peaks[0].value if peaks else top
        if dram:
            xs = [lo, roof / dram.value, hi]
            fig.line(xs, [min(roof, dram.value * x) for x in xs], colour, 2.2, "",
                     f"{label[:28]}: {res.dram_level} {si(dram.value, 'B/s')}")
        for c, dash in zip(peaks, ("6,3", "2,2", "8,3,2,3", "1,3")):
            start = c.value / dram.value if dram else lo
            fig.line([start, hi], [c.value] * 2, colour, 1.5, dash, f"   {c.name} {si(c.value, c.unit)}")
        layers = [r for r in res.layers if r["intensity"] and math.isfinite(r["intensity"])]
        if layers:
            fig.points([r["intensity"] for r in layers], [r["achieved_flop_per_s"] for r in layers], [2.5] * len(layers),
                       colour, [_layer_hover(r) for r in layers], "   layers (median time)")
    return fig


# ---- layers on the roofline -----------------------------------------------------------------------------------
def point_groups(rows: list[dict]) -> list[tuple[str, str, list[dict]]]:
    """(group id, layer type, its rows in drawing order): one set of points per layer type."""
    types = sorted({r["type"] for r in rows})
    return [(f"layerpts-{i}", kind, [r for r in rows if r["type"] == kind]) for i, kind in enumerate(types)]


def model_groups(rows) -> dict[tuple[str, str], list[dict]]:
    """(model, dtype) -> its layer rows, in record order."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["dtype"]), []).append(r)
    return groups


def sweep_groups(rows) -> dict[tuple[str, str], list[dict]]:
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


def _layer_hover(r: dict) -> str:
    eff = f", {100 * r['efficiency']:.0f}% of attainable, {r['bound']}-bound" if r.get("efficiency") else ""
    gaps = ", ".join(f"{p} {r[f'gap_{p}_s'] * 1e3:.3g} ms" for p in PARTS if r.get(f"gap_{p}_s"))
    return (f"{r['layer']} ({r['type']}) x{r['multiplicity']}: {r['time_s'] * 1e3:.3g} ms median (cold), "
            f"{r['achieved_flop_per_s'] / 1e9:.3g} GFLOP/s at {r['intensity']:.3g} FLOP/B{eff}"
            + (f"; gap: {gaps}" if gaps else ""))


def _roofs(fig: LogLog, result, dtype: str) -> None:
    """The dtype's compute roof with its ridge point against DRAM, and every memory level's slanted roof (DRAM
    solid, caches dotted)."""
    lo, hi = fig.xlim
    compute = result.compute.get(dtype)
    for name, level in result.memory.items():
        top = compute.value if compute else level.value * hi
        ridge = top / level.value
        xs = [lo] + ([ridge] if lo < ridge < hi else []) + [hi]
        dram = name == result.dram_level
        fig.line(xs, [min(top, level.value * x) for x in xs], "#000" if dram else "#888", 1.8 if dram else 1.0,
                 "" if dram else "3,3", f"{name} {si(level.value, 'B/s')}")
    if compute:
        fig.line([lo, hi], [compute.value] * 2, "#d62728", 1.6, "", f"{dtype} peak {si(compute.value, compute.unit)}")
        if result.dram:
            ridge = compute.value / result.dram.value
            fig.dot(ridge, compute.value, "#000", 4, f"ridge point: {ridge:.3g} FLOP/B against {result.dram_level}")
            fig.label(ridge, compute.value, f"ridge {ridge:.1f} FLOP/B", "#333", 6, 14)


def _limits(rows: list[dict], result, dtype: str, key: str = "achieved_flop_per_s"):
    intens = [r["intensity"] for r in rows if r["intensity"] and math.isfinite(r["intensity"])] or [1.0]
    lo, hi = min(intens + [0.1]) / 4, max(intens + [100]) * 4
    compute = result.compute.get(dtype)
    ys = [r[key] for r in rows if r.get(key)] + ([compute.value] if compute else [])
    return (lo, hi), (min(ys) / 10, max(ys) * 3)


def layers(result, rows: list[dict], title: str) -> LogLog:
    """One model's layers on the measured roofline of their dtype: a point per layer (size: its share of the summed
    layer time), a dash at the attainable rate of its intensity, the five slowest named."""
    dtype = rows[0]["dtype"]
    xlim, ylim = _limits(rows, result, dtype)
    fig = LogLog(xlim, ylim, title, "arithmetic intensity [FLOP/byte] (counted FLOPs / counted bytes)",
                 "achieved [FLOP/s] (median cold-cache time)",
                 subtitle="point size = share of the summed layer time (x multiplicity); dash = attainable at that "
                          "intensity")
    _roofs(fig, result, dtype)
    total = sum(r["time_s"] * r["multiplicity"] for r in rows) or 1.0
    for i, (_, kind, mine) in enumerate(point_groups(rows)):
        colour = PALETTE[i % len(PALETTE)]
        for r in mine:
            if r.get("attainable_flop_per_s"):
                fig.tick(r["intensity"], r["attainable_flop_per_s"], colour)
        fig.points([r["intensity"] for r in mine], [r["achieved_flop_per_s"] for r in mine],
                   [3 + 14 * math.sqrt(r["time_s"] * r["multiplicity"] / total) for r in mine], colour,
                   [_layer_hover(r) for r in mine], kind)
    for r in sorted(rows, key=lambda r: -r["time_s"] * r["multiplicity"])[:5]:
        fig.label(r["intensity"], r["achieved_flop_per_s"], r["layer"], avoid=True)
    return fig


def gaps(rows: list[dict], title: str, top: int = 12) -> Bars:
    """Where one model's time goes: the layers with the most time x multiplicity, each split into the named parts."""
    rows = sorted(rows, key=lambda r: -r["time_s"] * r["multiplicity"])[:top]
    notes = [f"{100 * r['efficiency']:.0f}% of attainable, {r['bound']}" if r.get("efficiency") is not None else ""
             for r in rows]
    return Bars([f"{r['layer']} x{r['multiplicity']} ({r['type']})" for r in rows],
                [(PART_LABELS[p], [(r.get(f"gap_{p}_s") or 0.0) * 1e3 for r in rows]) for p in PARTS], notes,
                f"{title}: where the time goes (layers with the most time x multiplicity)",
                "time per call [ms] (median, cold cache), split into named parts")


def sweep(result, rows: list[dict], title: str) -> LogLog:
    """The same layers as the batch / token count grows: one line per layer through its tags."""
    dtype = rows[0]["dtype"]
    xlim, ylim = _limits(rows, result, dtype)
    fig = LogLog(xlim, ylim, f"{title}: the same layers as the batch / token count grows",
                 "arithmetic intensity [FLOP/byte]", "achieved [FLOP/s] (median cold-cache time)")
    _roofs(fig, result, dtype)
    for i, layer in enumerate(sorted({r["layer"] for r in rows})):
        mine = sorted((r for r in rows if r["layer"] == layer), key=lambda r: r["intensity"])
        colour = PALETTE[i % len(PALETTE)]
        fig.line([r["intensity"] for r in mine], [r["achieved_flop_per_s"] for r in mine], colour, 1.4)
        fig.points([r["intensity"] for r in mine], [r["achieved_flop_per_s"] for r in mine], [4] * len(mine),
                   colour, [f"{r['batch_tag']}: " + _layer_hover(r) for r in mine], layer)
        for r in mine:
            fig.label(r["intensity"], r["achieved_flop_per_s"], r["batch_tag"], colour, 4, 12)
    return fig


# ---- telemetry ------------------------------------------------------------------------------------------------
def telemetry(record: dict) -> Panels | None:
    """Clock, temperature, power and load through the run: each point's median (and max) reading, in the order the
    points were measured, with the DRAM sentinel's bandwidth at each check: throttling or a neighbour shows here."""
    rows = [m for m in record["measurements"] if m.get("telemetry")]
    keys = list(dict.fromkeys(k for m in rows for k, v in m["telemetry"].items() if isinstance(v, dict)
                              and "median" in v))
    series = []
    for key in keys:
        pts = [(i, m["telemetry"][key]["median"], m["telemetry"][key].get("max")) for i, m in
               enumerate(record["measurements"]) if isinstance((m.get("telemetry") or {}).get(key), dict)]
        if len(pts) >= 2:
            series.append((key, [p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts]))
    sentinel = [(i, m["bytes_per_s"] / 1e9) for i, m in enumerate(record["measurements"])
                if m.get("group") == "sentinel" and m.get("bytes_per_s")]
    if len(sentinel) >= 2:
        series.append(("DRAM sentinel GB/s", [p[0] for p in sentinel], [p[1] for p in sentinel], [None] * len(sentinel)))
    if not series:
        return None
    return Panels(series, "Telemetry through the run (per point: median line, max faint)",
                  "measurement number (the order the points ran)")


# ---- collectives ----------------------------------------------------------------------------------------------
def busbw(records: list[dict], labels: list[str]) -> LogLog:
    """Bus bandwidth vs message size per collective (colour), one dash pattern per record, the link rate dashed."""
    kinds = sorted({k for r in records for k in curves(r)})
    pts = [(m["size_bytes"], m["extra"].get("busbw_bytes_per_s") or m["extra"].get("algbw_bytes_per_s"))
           for r in records for rows in curves(r).values() for m in rows]
    pts = [(x, y) for x, y in pts if x and y]
    rate, what = link_rate(records[0])
    ys = [y for _, y in pts] + ([rate] if rate else [])
    fig = LogLog((min((x for x, _ in pts), default=4) / 2, max((x for x, _ in pts), default=2**20) * 2),
                 (min(ys, default=1e3) / 3, max(ys, default=1e9) * 3),
                 "Collectives: bus bandwidth vs message size",
                 "message size (nccl-tests' size: the named buffer)", "bus bandwidth [B/s] (nccl-tests' factors)",
                 xtick="bytes")
    fig.subtitle = f"time = slowest rank, best round; {what if not rate else what + ' dashed'}"
    for ri, (record, label) in enumerate(zip(records, labels)):
        dash = ("", "6,3", "2,2", "8,3,2,3")[ri % 4]
        for ki, kind in enumerate(kinds):
            rows = curves(record).get(kind) or []
            if not rows:
                continue
            # world size 1: every bus factor is 0, so the algorithm bandwidth is shown
            key = "busbw_bytes_per_s" if any(m["extra"].get("busbw_bytes_per_s") for m in rows) else "algbw_bytes_per_s"
            xs, yv = [m["size_bytes"] for m in rows], [m["extra"][key] for m in rows]
            colour = PALETTE[ki % len(PALETTE)]
            fig.line(xs, yv, colour, 1.6, dash, f"{kind}" + (" (algbw)" if key.startswith("alg") else "")
                     + (f" [{label[:24]}]" if len(records) > 1 else ""))
            for x, y, m in zip(xs, yv, rows):
                fig.dot(x, y, colour, 2.5, f"{kind} {x} B: {si(y, 'B/s')}, {m['best_s'] * 1e6:.4g} us (slowest rank)")
    if rate:
        fig.line(list(fig.xlim), [rate, rate], "#000", 1.0, "4,4", f"link {si(rate, 'B/s')}")
    return fig


def dp(record: dict) -> LogLog | None:
    """The counted model's compute and communication time per data-parallel step over batch sizes."""
    model = dp_model(record)
    if not model or model.get("error"):
        return None
    b = [r["batch_per_rank"] for r in model["rows"]]
    compute, comm = [r["compute_s"] for r in model["rows"]], [r["comm_s"] for r in model["rows"]]
    cross = model["crossover_batch_per_rank"]
    fig = LogLog((min(b + [cross]) / 2, max(b) * 2), (min(compute + comm) / 3, max(compute + comm) * 3),
                 f"Data-parallel {model['name']}: compute vs gradient all_reduce per step", "batch size per rank",
                 "seconds per step")
    fig.subtitle = (f"compute = 3 x forward at the GEMM roof; communication = measured all_reduce; cross at "
                    f"{cross:.3g}")
    fig.line(b, compute, "#1f77b4", 1.8, "", "compute (3 x forward, GEMM roof)")
    fig.line(b, comm, "#ff7f0e", 1.8, "", "gradient all_reduce (not overlapped)")
    for x, y in zip(b, compute):
        fig.dot(x, y, "#1f77b4", 3, f"batch {x}: compute {y * 1e3:.3g} ms")
    fig.line([cross, cross], [2 * fig.ylim[0], fig.ylim[1] / 2], "#777", 1.0, "2,3")
    fig.label(cross, model["comm_s"], f"crossover ~{cross:.3g} samples/rank", "#333", 5, -8)
    return fig


# ---- variants ---------------------------------------------------------------------------------------------------
#: the GEMM roofs of compute dtypes other than fp32 (fp32's is red, as on every roofline): dark, dashed, apart from
#: the points' palette
DTYPE_ROOF_COLOURS = {"bf16": "#1b7837", "fp16": "#762a83", "tf32": "#8c510a"}
def variants(result, rows: list[dict], title: str) -> LogLog | None:
    """One model at one batch: each measured variant at its counted intensity (its bytes at stored widths) and the
    FLOP/s its median call achieved, an arrow from eager fp32 to each, under the roofs of fp32 and of the other
    compute dtypes the variants use."""
    rows = [r for r in rows if r.get("median_s") and r.get("intensity") and r.get("achieved_flop_per_s")]
    if not rows:
        return None
    result = roofs_of(result)
    dtypes = list(dict.fromkeys(["fp32"] + [r["compute_dtype"] for r in rows]))
    _, ylim = _limits(rows, result, "fp32")
    peaks = [result.compute[d].value for d in dtypes if d in result.compute]
    ylim = (min([ylim[0]] + [p / 3 for p in peaks]), max([ylim[1]] + [p * 3 for p in peaks]))
    # x: the points and the ridge points of their dtypes, not the whole span a run's roofline shows
    top = max(peaks, default=0.0)
    ridges = [result.compute[d].value / result.dram.value for d in dtypes
              if d in result.compute and result.dram and result.compute[d].value >= 0.1 * top]
    xs = [r["intensity"] for r in rows] + [x for x in ridges if x > 0]
    xlim = (min(xs) / 4, max(xs) * 4)
    fig = LogLog(xlim, ylim, title, "arithmetic intensity [FLOP/byte] (counted FLOPs / bytes at the variant's widths)",
                 "achieved [FLOP/s] (counted FLOPs / median call)",
                 subtitle="arrow: from eager fp32 to each variant (the legend names every point); solid red: the "
                          "fp32 GEMM roof, dashed: other compute dtypes'; x: outside the quality budget")
    _roofs(fig, result, "fp32")
    for d in (d for d in dtypes[1:] if d in result.compute):
        c = result.compute[d]
        fig.line(list(xlim), [c.value] * 2, DTYPE_ROOF_COLOURS.get(d, "#555"), 1.2, "6,3",
                 f"{d} peak {si(c.value, c.unit)}")
    ref = next((r for r in rows if (r["runtime"], r["precision"]) == ("eager", "fp32")), None)
    # text labels for the reference and the four fastest only: points of one intensity stack up, the legend has all
    labelled = {id(r) for r in sorted(rows, key=lambda r: r["median_s"])[:4]} | {id(ref)}
    for i, r in enumerate(sorted(rows, key=lambda r: r["variant"])):
        colour = PALETTE[i % len(PALETTE)]
        if ref is not None and r is not ref:
            fig.arrow(ref["intensity"], ref["achieved_flop_per_s"], r["intensity"], r["achieved_flop_per_s"], colour)
        hover = (f"{r['variant']}: {r['median_s'] * 1e3:.3g} ms median, {r['achieved_flop_per_s'] / 1e9:.3g} GFLOP/s at "
                 f"{r['intensity']:.3g} FLOP/B, {r.get('bound', '?')}-bound"
                 + (f", {r['speedup']:.2f}x eager fp32" if r.get("speedup") else "")
                 + ("" if r.get("quality_ok") else f"; OUTSIDE the quality budget ({r.get('quality_why')})"))
        fig.points([r["intensity"]], [r["achieved_flop_per_s"]], [6], colour, [hover],
                   f"{r['variant']} {r['median_s'] * 1e3:.3g} ms" + ("" if r.get("quality_ok") else " (x quality)"))
        if id(r) in labelled:
            fig.label(r["intensity"], r["achieved_flop_per_s"], r["variant"] + ("" if r.get("quality_ok") else " x"),
                      colour, avoid=True)
    return fig
