"""One self-contained HTML page per run (or per comparison): ``python -m results report RECORD [RECORD ...] -o F``.

Presentation only, no torch: Jinja2 templates kept as files in ``results/templates/`` (page, style, script). Every
figure is the description results/figures.py gives (the PNGs draw the same ones), drawn as inline SVG by
results/svgplot.py (why SVG strings, not matplotlib: there), every id in a figure prefixed so several figures share
one page; layer points carry an SVG ``<title>``: hovering one names the layer, its time and its gap. No network, no
external script, font or image: the page opens offline and prints.
"""
from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path

import jinja2

from results import figures
from results.analysis import Analysis
from results.compare import compare_table, unique_labels
from results.distributed import summary_text as distributed_summary_text
from results.figures import model_groups, slug, sweep_groups
from results.layers import PARTS
from results.record import atomic_write
from results.summary import (
    blas_lines,
    hardware_memory_lines,
    load_lines,
    repeat_lines,
    sentinel_lines,
    silicon_lines,
    summary_text,
    telemetry_lines,
    threads_lines,
)
from results.svgplot import svg
from results.units import si

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: the terminal's text, shown in the page too, so nothing the summary says is lost
SUMMARY_NOTE = "the terminal summary of this record, as `python -m results show` prints it"


# ---- figures (descriptions: results/figures.py; drawn as SVG by results/svgplot.py, as PNGs by results/plot.py) --
def _figure(fig, prefix: str) -> str | None:
    """A figure description as inline SVG with its ids made unique on the page."""
    return None if fig is None else _prefix_ids(svg(fig), prefix)


def _prefix_ids(text: str, prefix: str) -> str:
    """Make a figure's ids unique on the page (several inlined SVGs share one id space)."""
    text = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', text)
    text = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', text)
    return re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", text)


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
def _models(result: Analysis, prefix: str) -> list[dict]:
    record, rows = result.record, result.layers
    out = []
    for i, ((model, dtype), mine) in enumerate(model_groups(rows).items()):
        title = f"{model} [{dtype}] on the measured roofline of {record['platform'].get('name')}"
        out.append({"model": model, "dtype": dtype, "anchor": f"{prefix}-m{i}-{slug(model)}",
                    "roofline": _figure(figures.layers(result, mine, title), f"{prefix}m{i}r"),
                    "gaps": svg(figures.gaps(mine, f"{model} [{dtype}]")) if len(mine) >= 2 else None, "sweep": None,
                    "table": _layer_table(mine)})
    # batch / token sweeps, shown with the first model of their source
    for j, ((source, dtype), chosen) in enumerate(sweep_groups(rows).items()):
        target = next((e for e in out if e["model"].split("-")[0] == source and e["dtype"] == dtype), None)
        if target is not None:
            target["sweep"] = _figure(figures.sweep(result, chosen, f"{source} [{dtype}]"), f"{prefix}s{j}")
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
               "telemetry": _figure(figures.telemetry(record), f"{prefix}tel"),
               "roofline": _figure(figures.roofline(result), f"{prefix}roof"),
               "ceilings": ceilings_rows(result), "problems": problem_rows(record),
               "models": _models(result, prefix), "model_totals": list(result.models),
               "summary": summary_text(result, path)}
    context["variants"] = _variants(result, prefix)
    context["validation"] = _validation(result)
    context["conventions"] = list(dict.fromkeys((c["section"], c["convention"]) for c in context["ceilings"]
                                                 if c["convention"]))
    return context


def _variants(result: Analysis, prefix: str) -> dict | None:
    """The variants section: the choice per model and batch with its reason, the predicted-vs-measured order, a
    roofline per model and batch, the table."""
    from results.plot import variants_title
    from results.variants import groups, layer_table, summary, table_rows

    data = summary(result)
    if not data["rows"]:
        return None
    o = data["ordering"]
    order = (f"Predicted vs measured order of variants: {o['agree']} of {o['pairs']} pairs agree "
             f"({100 * o['share']:.0f}%; {o['tied']} tied pairs left out: {o['rule']})" + ("; not: " + "; ".join(o["disagree"]) if o["disagree"] else "")
             if o["pairs"] else "")
    figs = [_figure(figures.variants(result, mine, variants_title(result, model, batch)), f"{prefix}v{i}")
            for i, ((model, batch), mine) in enumerate(groups(data["rows"]).items())]
    return {"models": ", ".join(dict.fromkeys(str(r["model"]) for r in data["rows"])),
            "note": (f"Time: {data['conventions']['time']}; {data['conventions']['throughput']}; bytes: "
                     f"{data['conventions']['bytes']}; {data['conventions']['quality']}. Hover a point for its figures."),
            "decisions": [{"key": k, "choice": d.get("choice"), "why": d["why"],
                           "median": f"{d['median_s'] * 1e3:.3g} ms" if d.get("median_s") else "",
                           "outside": ", ".join(d.get("faster_outside_budget") or []),
                           "close": d.get("close_note") or ""}
                          for k, d in data["decisions"].items()],
            "ordering": order, "figures": [f for f in figs if f], "table": _one_model(table_rows(data["rows"])),
            "layers": [{"key": f"{model} b{batch}", **t} for (model, batch), mine in groups(data["rows"]).items()
                       if (t := layer_table(mine))]}


def _one_model(rows: list[dict]) -> list[dict]:
    """The variants table without its model column where every row is of one model (the heading names it)."""
    if len({r["model"] for r in rows}) == 1:
        return [{k: v for k, v in r.items() if k != "model"} for r in rows]
    return rows


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
               "busbw": _figure(figures.busbw([record], [record["run_id"]]), f"{prefix}bus"),
               "dp": _figure(figures.dp(record), f"{prefix}dp")}
    return context


def compare_context(results: list[Analysis]) -> dict:
    records = [a.record for a in results]
    table = compare_table(results)
    plain = [a for a in results if not a.record.get("distributed")]
    spread = [r for r in records if r.get("distributed")]
    labels = unique_labels(records)
    shown = []
    if plain:
        shown.append(_figure(figures.compare(plain, [l for r, l in zip(records, labels) if not r.get("distributed")]),
                             "cmproof"))
    if spread:
        shown.append(_figure(figures.busbw(spread, [l for r, l in zip(records, labels) if r.get("distributed")]),
                             "cmpbus"))
    rows = []
    for (section, name), values in table.iterrows():
        rows.append({"section": section, "name": name, "values": [values[label] for label in table.columns]})
    return {"labels": list(table.columns), "rows": rows, "figures": shown}


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
