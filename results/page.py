"""One self-contained HTML page per run (or per comparison): ``python -m results report RECORD [RECORD ...] -o F``.

Presentation only, no torch: Jinja2 templates kept as files in ``results/templates/`` (page, style, script), figures
drawn by the same matplotlib code as the PNGs but saved as SVG and inlined (text kept as text, ``svg.fonttype:
none``, so a figure is tens of kB, not hundreds), every id in a figure prefixed so several figures share one page.
The per-model figures are drawn by results/svgplot.py (why: there); their layer points carry an SVG ``<title>``:
hovering one names the layer, its time and its gap. No network, no external
script, font or image: the page opens offline and prints.
"""
from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path

import jinja2

from results.analysis import Analysis
from results.compare import compare_table, unique_labels
from results.distributed import curves, dp_model, link_rate
from results.distributed import summary_text as distributed_summary_text
from results.layer_plots import (
    PART_LABELS,
    model_groups,
    point_groups,
    slug,
    sweep_groups,
)
from results.layers import PARTS
from results.record import atomic_write
from results.summary import (
    blas_lines,
    hardware_memory_lines,
    load_lines,
    repeat_lines,
    sentinel_lines,
    silicon_kind,
    silicon_lines,
    summary_text,
    telemetry_lines,
    threads_lines,
)
from results.svgplot import PALETTE, LogLog, bytes_tick, panels, stacked_bars
from results.units import si

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: the terminal's text, shown in the page too, so nothing the summary says is lost
SUMMARY_NOTE = "the terminal summary of this record, as `python -m results show` prints it"


# ---- figures (results/svgplot.py; matplotlib draws the PNGs) ---------------------------------------------------
def roofline_svg(result: Analysis, prefix: str) -> str:
    """The run's measured roofline: every memory level's roof, every dtype's GEMM roof with its ridge point against
    DRAM, and the hardware's roofs (register-only FMA, native DRAM) dashed above torch's; each roof in the legend
    with its value and kernel."""
    record = result.record
    compute, memory = result.compute, result.memory
    silicon, hw = result.silicon, result.memory_hw.get("DRAM")
    tops = [c.value for c in compute.values()] + [c.value for c in silicon.values()]
    top = max(tops, default=None)
    lo, hi = 1 / 64, 4096.0
    if top and memory:
        hi = max(hi, 4 * top / min(m.value for m in memory.values()))
        lo = min(lo, min(tops) / max(m.value for m in memory.values()) / 64)
    highest = top or max([m.value * hi for m in memory.values()] or [1e12])
    bottom = min([m.value * lo for m in memory.values()] + [highest / 1e4])
    info = record.get("platform") or {}
    plot = LogLog((lo, hi), (bottom, highest * 2), f"Measured roofline: {info.get('name')} [{info.get('device')}]"
                  + (" (quick run)" if (record.get("options") or {}).get("quick") else ""),
                  "arithmetic intensity I [FLOP/byte]", "attainable [FLOP/s; OP/s for int8]")
    plot.subtitle = ("peaks = best GEMM per dtype; bandwidth = best torch stream kernel per level (STREAM bytes); "
                     "dots: ridge points vs DRAM" + ("; dashed: the hardware's roofs" if silicon or hw else ""))
    dram = memory.get(result.dram_level) if result.dram_level else None
    roof_top = top or highest
    for i, (name, c) in enumerate(memory.items()):
        is_dram = name == result.dram_level
        ridge = roof_top / c.value
        xs = [lo] + ([ridge] if lo < ridge < hi else []) + [hi]
        plot.line(xs, [min(roof_top, c.value * x) for x in xs], "#000" if is_dram else "#667",
                  2.2 if is_dram else 1.2, "" if is_dram else "5,3", f"{name}: {si(c.value, 'B/s')} ({c.kernel})")
    if hw:
        xs = [lo, roof_top / hw.value, hi]
        plot.line(xs, [min(roof_top, hw.value * x) for x in xs], "#555", 1.3, "8,4",
                  f"DRAM, hardware: {si(hw.value, 'B/s')} ({hw.kernel})")
    colours = {}
    for i, c in enumerate(sorted(compute.values(), key=lambda c: -c.value)):
        colour = colours[c.name] = PALETTE[i % len(PALETTE)]
        start = c.value / dram.value if dram else lo
        shape = "x".join(str(v) for v in (c.shape or [])[1:])
        plot.line([start, hi], [c.value] * 2, colour, 2.0, "",
                  f"{c.name}: {si(c.value, c.unit)} (GEMM {shape}" + (f", {c.impl})" if c.impl not in ("", "torch") else ")"))
        if dram:
            plot.dot(start, c.value, colour, 4, f"{c.name} ridge point: {start:.3g} FLOP/B against {result.dram_level}")
            plot.label(start, c.value, f"{start:.3g}", colour, 5, 13)
    for i, (dtype, c) in enumerate(silicon.items()):
        base = hw or dram
        start = c.value / base.value if base else lo
        plot.line([start, hi], [c.value] * 2, colours.get(dtype, PALETTE[(i + 5) % len(PALETTE)]), 1.3, "8,4",
                  f"{dtype} silicon: {si(c.value, c.unit)} ({silicon_kind(c)})")
    return _prefix_ids(plot.svg(), prefix)


def telemetry_svg(record: dict, prefix: str) -> str | None:
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
    return _prefix_ids(panels(series, "Telemetry through the run (per point: median line, max faint)",
                              "measurement number (the order the points ran)"), prefix)


def compare_svg(results: list[Analysis], labels: list[str]) -> str:
    """Overlaid rooflines: each record's DRAM roof and its four highest compute roofs, one colour per record."""
    values = [c.value for res in results for c in res.compute.values()]
    bws = [res.memory[res.dram_level].value for res in results if res.dram_level]
    top = max(values, default=1e12)
    lo, hi = 1 / 16, 4096.0
    bottom = min([b * lo for b in bws] + [top / 1e4])
    plot = LogLog((lo, hi), (bottom, top * 2), "Measured rooflines compared", "arithmetic intensity I [FLOP/byte]",
                  "attainable [FLOP/s]")
    plot.subtitle = "best repetition per ceiling; STREAM byte convention; solid: DRAM roof, dashed: compute roofs"
    for i, (res, label) in enumerate(zip(results, labels)):
        colour = PALETTE[i % len(PALETTE)]
        dram = res.memory.get(res.dram_level) if res.dram_level else None
        peaks = sorted(res.compute.values(), key=lambda c: -c.value)[:4]
        roof = peaks[0].value if peaks else top
        if dram:
            xs = [lo, roof / dram.value, hi]
            plot.line(xs, [min(roof, dram.value * x) for x in xs], colour, 2.2, "",
                      f"{label[:28]}: {res.dram_level} {si(dram.value, 'B/s')}")
        for c, dash in zip(peaks, ("6,3", "2,2", "8,3,2,3", "1,3")):
            start = c.value / dram.value if dram else lo
            plot.line([start, hi], [c.value] * 2, colour, 1.5, dash, f"   {c.name} {si(c.value, c.unit)}")
    return plot.svg()


def busbw_svg(records: list[dict], labels: list[str], prefix: str) -> str:
    """Bus bandwidth vs message size per collective (colour), one dash pattern per record, the link rate dashed."""
    kinds = sorted({k for r in records for k in curves(r)})
    pts = [(m["size_bytes"], m["extra"].get("busbw_bytes_per_s") or m["extra"].get("algbw_bytes_per_s"))
           for r in records for rows in curves(r).values() for m in rows]
    pts = [(x, y) for x, y in pts if x and y]
    rate, what = link_rate(records[0])
    ys = [y for _, y in pts] + ([rate] if rate else [])
    plot = LogLog((min((x for x, _ in pts), default=4) / 2, max((x for x, _ in pts), default=2**20) * 2),
                  (min(ys, default=1e3) / 3, max(ys, default=1e9) * 3), "Collectives: bus bandwidth vs message size",
                  "message size (nccl-tests' size: the named buffer)", "bus bandwidth [B/s] (nccl-tests' factors)",
                  xtick=bytes_tick)
    plot.subtitle = f"time = slowest rank, best round; {what if not rate else what + ' dashed'}"
    for ri, (record, label) in enumerate(zip(records, labels)):
        dash = ("", "6,3", "2,2", "8,3,2,3")[ri % 4]
        for ki, kind in enumerate(kinds):
            rows = curves(record).get(kind) or []
            if not rows:
                continue
            key = "busbw_bytes_per_s" if any(m["extra"].get("busbw_bytes_per_s") for m in rows) else "algbw_bytes_per_s"
            xs, yv = [m["size_bytes"] for m in rows], [m["extra"][key] for m in rows]
            colour = PALETTE[ki % len(PALETTE)]
            plot.line(xs, yv, colour, 1.6, dash, f"{kind}" + (" (algbw)" if key.startswith("alg") else "")
                      + (f" [{label[:24]}]" if len(records) > 1 else ""))
            for x, y, m in zip(xs, yv, rows):
                plot.dot(x, y, colour, 2.5, f"{kind} {x} B: {si(y, 'B/s')}, {m['best_s'] * 1e6:.4g} us (slowest rank)")
    if rate:
        plot.line([plot_x for plot_x in (2.0 ** plot.x0, 2.0 ** plot.x1)], [rate, rate], "#000", 1.0, "4,4",
                  f"link {si(rate, 'B/s')}")
    return _prefix_ids(plot.svg(), prefix)


def dp_svg(record: dict, prefix: str) -> str | None:
    dp = dp_model(record)
    if not dp or dp.get("error"):
        return None
    b = [r["batch_per_rank"] for r in dp["rows"]]
    compute, comm = [r["compute_s"] for r in dp["rows"]], [r["comm_s"] for r in dp["rows"]]
    cross = dp["crossover_batch_per_rank"]
    plot = LogLog((min(b + [cross]) / 2, max(b) * 2), (min(compute + comm) / 3, max(compute + comm) * 3),
                  f"Data-parallel {dp['name']}: compute vs gradient all_reduce per step",
                  "batch size per rank", "seconds per step")
    plot.subtitle = f"compute = 3 x forward at the GEMM roof; communication = measured all_reduce; cross at {cross:.3g}"
    plot.line(b, compute, "#1f77b4", 1.8, "", "compute (3 x forward, GEMM roof)")
    plot.line(b, comm, "#ff7f0e", 1.8, "", "gradient all_reduce (not overlapped)")
    for x, y in zip(b, compute):
        plot.dot(x, y, "#1f77b4", 3, f"batch {x}: compute {y * 1e3:.3g} ms")
    plot.line([cross, cross], [2 * 10 ** plot.y0, 10 ** plot.y1 / 2], "#777", 1.0, "2,3")
    return _prefix_ids(plot.svg(), prefix)


def _prefix_ids(text: str, prefix: str) -> str:
    """Make a figure's ids unique on the page (several inlined SVGs share one id space)."""
    text = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', text)
    text = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', text)
    return re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", text)


def _layer_title(r: dict) -> str:
    eff = f", {100 * r['efficiency']:.0f}% of attainable, {r['bound']}-bound" if r.get("efficiency") else ""
    gaps = ", ".join(f"{p} {r[f'gap_{p}_s'] * 1e3:.3g} ms" for p in PARTS if r.get(f"gap_{p}_s"))
    return (f"{r['layer']} ({r['type']}) x{r['multiplicity']}: {r['time_s'] * 1e3:.3g} ms median (cold), "
            f"{r['achieved_flop_per_s'] / 1e9:.3g} GFLOP/s at {r['intensity']:.3g} FLOP/B{eff}"
            + (f"; gap: {gaps}" if gaps else ""))


# ---- tables --------------------------------------------------------------------------------------------------
def _fmt(value, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return si(value, unit) if unit else f"{value:.3g}" if isinstance(value, float) else str(value)


def ceilings_rows(result: Analysis) -> list[dict]:
    """Every roof with its statistic, spread, convention and where it came from."""
    record = result.record
    conventions = {(m.get("group"), m.get("kernel"), m.get("dtype"), str(m.get("shape"))): m.get("convention", "")
                   for m in record["measurements"]}
    rows = []
    for section, key in (("compute (GEMM)", "compute"), ("silicon (register FMA)", "silicon"),
                         ("memory (torch)", "memory"), ("memory (hardware)", "memory_hw"),
                         ("host<->device", "transfer")):
        for name, c in getattr(result, key).items():
            group = "gemm" if c.kind == "compute" else "native" if c.kind == "silicon" else "stream"
            rows.append({"section": section, "name": name, "best": _fmt(c.value, c.unit),
                         "median": _fmt(c.median_value, c.unit), "cv": f"{100 * c.cv:.1f}%" if c.cv is not None else "-",
                         "reps": c.n, "statistic": c.statistic, "kernel": f"{c.kernel} ({c.impl})" if c.impl else c.kernel,
                         "shape": (f"{c.size_bytes / 2**20:.3g} MiB" if c.size_bytes else "-") if group == "stream"
                         else "x".join(map(str, c.shape or [])) or "-",
                         "convention": conventions.get((group, c.kernel, c.dtype, str(c.shape)), "") or
                         next((v for k, v in conventions.items() if k[1] == c.kernel and v), ""),
                         "note": c.note, "disturbed": c.disturbed, "value": c.value})
    return rows


def problem_rows(record: dict) -> list[dict]:
    """Missing, cut, skipped, failed and disturbed points, with their reasons (deduplicated)."""
    out, seen = [], set()
    for m in record["measurements"]:
        status = m.get("status")
        if status == "ok" and not m.get("disturbed"):
            continue
        what = "disturbed" if status == "ok" else status
        reason = m.get("reason") or (m.get("interference") or {}).get("evidence", "")
        key = (what, m.get("group"), m.get("kernel"), m.get("dtype"), reason)
        if key in seen:
            continue
        seen.add(key)
        shape = m.get("shape")
        out.append({"status": what, "group": m.get("group"), "kernel": m.get("kernel"), "dtype": m.get("dtype"),
                    "shape": "x".join(map(str, shape)) if isinstance(shape, list) else (shape or ""),
                    "reason": reason, "superseded": bool(m.get("superseded"))})
    return out


def stack_items(record: dict) -> list[tuple[str, str]]:
    """The platform block as label/value pairs (lists and dicts flattened to one line each)."""
    items = []
    for key, value in (record.get("platform") or {}).items():
        if key == "caches" and isinstance(value, list):
            value = "; ".join(f"{c.get('name')} {c.get('size_bytes', 0) / 2**10:.0f} KiB"
                              + (" shared" if c.get("shared") else f" x{c.get('instances', 1)}") for c in value
                              if isinstance(c, dict))
        elif key.endswith("_bytes") and isinstance(value, (int, float)):
            value = f"{value / 1e9:.2f} GB ({value} bytes)"
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            value = "; ".join(", ".join(f"{k} {v}" for k, v in entry.items() if k != "source") for entry in value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "none set"
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        items.append((key, str(value)))
    return items


def _layer_table(rows: list[dict]) -> list[dict]:
    out = []
    for r in sorted(rows, key=lambda r: -r["time_s"] * r["multiplicity"]):
        out.append({"layer": r["layer"], "type": r["type"], "mult": r["multiplicity"], "input": r["input"],
                    "time_ms": r["time_s"] * 1e3, "gflops": r["achieved_flop_per_s"] / 1e9,
                    "intensity": r["intensity"], "eff": 100 * r["efficiency"] if r.get("efficiency") else None,
                    "bound": r["bound"], "fits": r["fits"],
                    "gaps": {p: (r.get(f"gap_{p}_s") or 0.0) * 1e3 for p in PARTS}})
    return out


# ---- sections ------------------------------------------------------------------------------------------------
def _roofs(plot, result: dict, dtype: str, lo: float, hi: float) -> None:
    """The dtype's compute roof and every memory level's slanted roof (DRAM solid, caches dotted)."""
    compute = result.compute.get(dtype)
    for name, level in result.memory.items():
        top = compute.value if compute else level.value * hi
        ridge = top / level.value
        xs = [lo] + ([ridge] if lo < ridge < hi else []) + [hi]
        dram = name == result.dram_level
        plot.line(xs, [min(top, level.value * x) for x in xs], "#000" if dram else "#888", 1.8 if dram else 1.0,
                  "" if dram else "3,3", f"{name} {si(level.value, 'B/s')}")
    if compute:
        plot.line([lo, hi], [compute.value] * 2, "#d62728", 1.6, "", f"{dtype} peak {si(compute.value, compute.unit)}")


def _limits(rows: list[dict], result: dict, dtype: str, key: str = "achieved_flop_per_s"):
    intens = [r["intensity"] for r in rows if r["intensity"] and math.isfinite(r["intensity"])] or [1.0]
    lo, hi = min(intens + [0.1]) / 4, max(intens + [100]) * 4
    compute = result.compute.get(dtype)
    ys = [r[key] for r in rows if r.get(key)] + ([compute.value] if compute else [])
    return (lo, hi), (min(ys) / 10, max(ys) * 3)


def layers_svg(result: dict, rows: list[dict], title: str) -> str:
    dtype = rows[0]["dtype"]
    xlim, ylim = _limits(rows, result, dtype)
    plot = LogLog(xlim, ylim, title, "arithmetic intensity [FLOP/byte] (counted FLOPs / counted bytes)",
                  "achieved [FLOP/s] (median cold-cache time)")
    _roofs(plot, result, dtype, *xlim)
    total = sum(r["time_s"] * r["multiplicity"] for r in rows) or 1.0
    for i, (_, kind, mine) in enumerate(point_groups(rows)):
        colour = PALETTE[i % len(PALETTE)]
        for r in mine:
            if r.get("attainable_flop_per_s"):
                plot.tick_mark(r["intensity"], r["attainable_flop_per_s"], colour)
        plot.points([r["intensity"] for r in mine], [r["achieved_flop_per_s"] for r in mine],
                    [3 + 14 * math.sqrt(r["time_s"] * r["multiplicity"] / total) for r in mine], colour,
                    [_layer_title(r) for r in mine], kind)
    for r in sorted(rows, key=lambda r: -r["time_s"] * r["multiplicity"])[:5]:
        plot.label(r["intensity"], r["achieved_flop_per_s"], r["layer"])
    return plot.svg()


def gaps_svg(rows: list[dict], title: str, top: int = 12) -> str:
    rows = sorted(rows, key=lambda r: -r["time_s"] * r["multiplicity"])[:top]
    notes = [f"{100 * r['efficiency']:.0f}% of attainable, {r['bound']}" if r.get("efficiency") is not None else ""
             for r in rows]
    return stacked_bars([f"{r['layer']} x{r['multiplicity']} ({r['type']})" for r in rows],
                        [(PART_LABELS[p], [(r.get(f"gap_{p}_s") or 0.0) * 1e3 for r in rows]) for p in PARTS], notes,
                        f"{title}: where the time goes (layers with the most time x multiplicity)",
                        "time per call [ms] (median, cold cache), split into named parts")


def sweep_svg(result: dict, rows: list[dict], title: str) -> str:
    dtype = rows[0]["dtype"]
    xlim, ylim = _limits(rows, result, dtype)
    plot = LogLog(xlim, ylim, f"{title}: the same layers as the batch / token count grows",
                  "arithmetic intensity [FLOP/byte]", "achieved [FLOP/s] (median cold-cache time)")
    _roofs(plot, result, dtype, *xlim)
    for i, layer in enumerate(sorted({r["layer"] for r in rows})):
        mine = sorted((r for r in rows if r["layer"] == layer), key=lambda r: r["intensity"])
        colour = PALETTE[i % len(PALETTE)]
        plot.line([r["intensity"] for r in mine], [r["achieved_flop_per_s"] for r in mine], colour, 1.4)
        plot.points([r["intensity"] for r in mine], [r["achieved_flop_per_s"] for r in mine], [4] * len(mine),
                    colour, [f"{r['batch_tag']}: " + _layer_title(r) for r in mine], layer)
        for r in mine:
            plot.label(r["intensity"], r["achieved_flop_per_s"], r["batch_tag"], colour, 4, 12)
    return plot.svg()


def _models(result: Analysis, prefix: str) -> list[dict]:
    record, rows = result.record, result.layers
    out = []
    for i, ((model, dtype), mine) in enumerate(model_groups(rows).items()):
        title = f"{model} [{dtype}] on the measured roofline of {record['platform'].get('name')}"
        out.append({"model": model, "dtype": dtype, "anchor": f"{prefix}-m{i}-{slug(model)}",
                    "roofline": _prefix_ids(layers_svg(result, mine, title), f"{prefix}m{i}r"),
                    "gaps": gaps_svg(mine, f"{model} [{dtype}]") if len(mine) >= 2 else None, "sweep": None,
                    "table": _layer_table(mine)})
    # batch / token sweeps, shown with the first model of their source
    for j, ((source, dtype), chosen) in enumerate(sweep_groups(rows).items()):
        target = next((e for e in out if e["model"].split("-")[0] == source and e["dtype"] == dtype), None)
        if target is not None:
            target["sweep"] = _prefix_ids(sweep_svg(result, chosen, f"{source} [{dtype}]"), f"{prefix}s{j}")
    return out


def record_context(result: Analysis, path: str | None, index: int = 0) -> dict:
    """Everything the page shows of one record."""
    prefix = f"r{index}"
    record = result.record
    if record.get("distributed"):
        return _distributed_context(record, path, prefix)
    info = record.get("platform") or {}
    context = {"kind": "run", "anchor": prefix, "path": path, "record": record, "info": info,
               "name": f"{info.get('name')} [{info.get('device')}]", "stack": stack_items(record),
               "roof_lines": threads_lines(info) + silicon_lines(result) + hardware_memory_lines(result)
               + sentinel_lines(result) + blas_lines(info),
               "load_lines": repeat_lines(record) + load_lines(result),
               "telemetry_lines": telemetry_lines(record),
               "telemetry": telemetry_svg(record, f"{prefix}tel"),
               "roofline": roofline_svg(result, f"{prefix}roof"),
               "ceilings": ceilings_rows(result), "problems": problem_rows(record),
               "models": _models(result, prefix), "model_totals": list(result.models),
               "summary": summary_text(result, path)}
    context["validation"] = _validation(result)
    context["conventions"] = list(dict.fromkeys((c["section"], c["convention"]) for c in context["ceilings"]
                                                 if c["convention"]))
    return context


def _validation(result: Analysis) -> dict:
    if result.spec_error is not None:  # a broken sheet must not hide the measurements
        return {"sheet": f"not available: {result.spec_error}", "rows": [], "warnings": []}
    spec, how, rows = result.spec, result.spec_how, result.validation
    return {"sheet": spec.name if spec else how, "warnings": list(getattr(spec, "warnings", []) or []),
            "rows": [{"ceiling": r["ceiling"], "measured": _fmt(r["measured"], r.get("unit") or _unit(r["ceiling"])),
                      "spec": _fmt(r["spec"], r.get("unit") or _unit(r["ceiling"])),
                      "ratio": f"{100 * r['ratio']:.1f}%" if r.get("ratio") else "-",
                      "flags": "; ".join(r.get("flags") or []), "field": r.get("spec_field", "")} for r in rows]}


def _unit(ceiling: str) -> str:
    """A validation row's unit from its name: memory levels and links in B/s, the rest in FLOP/s (OP/s for int8)."""
    name = ceiling.split()[0]
    if name in ("L1", "L2", "L3", "DRAM", "HBM", "h2d", "d2h", "memory") or "bandwidth" in ceiling:
        return "B/s"
    return "OP/s" if name == "int8" else "FLOP/s"


def _distributed_context(record: dict, path: str | None, prefix: str) -> dict:
    info = record.get("platform") or {}
    world = record["distributed"]
    context = {"kind": "distributed", "anchor": prefix, "path": path, "record": record, "info": info,
               "name": f"{info.get('name')} [{info.get('device')}], {world['world_size']} ranks {world['backend']}",
               "stack": stack_items(record), "summary": distributed_summary_text(record, path), "problems": problem_rows(record),
               "busbw": busbw_svg([record], [record["run_id"]], f"{prefix}bus"), "dp": dp_svg(record, f"{prefix}dp")}
    return context


def compare_context(results: list[Analysis]) -> dict:
    records = [a.record for a in results]
    table = compare_table(results)
    plain = [a for a in results if not a.record.get("distributed")]
    spread = [r for r in records if r.get("distributed")]
    labels = unique_labels(records)
    figures = []
    if plain:
        figures.append(_prefix_ids(compare_svg(plain, [l for r, l in zip(records, labels) if not r.get("distributed")]),
                                   "cmproof"))
    if spread:
        figures.append(busbw_svg(spread, [l for r, l in zip(records, labels) if r.get("distributed")], "cmpbus"))
    rows = []
    for (section, name), values in table.iterrows():
        rows.append({"section": section, "name": name, "values": [values[label] for label in table.columns]})
    return {"labels": list(table.columns), "rows": rows, "figures": figures}


# ---- the page ------------------------------------------------------------------------------------------------
def render(results: list[Analysis], paths: list[str | None]) -> str:
    """The page of one analysed record, or of several compared (``results``: one Analysis per record)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.fspath(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True,
                             lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["num"] = lambda v, digits=3: "-" if v is None else f"{v:.{digits}g}"
    started = time.perf_counter()
    contexts = [record_context(r, p, i) for i, (r, p) in enumerate(zip(results, paths))]
    page = env.get_template("report.html.j2").render(
        runs=contexts, compare=compare_context(results) if len(results) > 1 else None,
        css=(TEMPLATES / "report.css").read_text(encoding="utf-8"),
        js=(TEMPLATES / "report.js").read_text(encoding="utf-8"), summary_note=SUMMARY_NOTE,
        title=("Roofline report: " + contexts[0]["name"]) if len(contexts) == 1 else
        f"Roofline report: {len(contexts)} records compared")
    return page.replace("__RENDER_SECONDS__", f"{time.perf_counter() - started:.2f}")


def write_report(results: list[Analysis], paths: list[str | None], output: str | os.PathLike) -> str:
    """Render and write atomically (a reader never sees half a page)."""
    output = Path(output)
    atomic_write(output, render(results, paths))
    return os.fspath(output)
