"""A model's variants compared, the choice made and explained from the roofline (pure Python, no torch): the rows of
group "variant" a run measured (bench/test_variants.py), each against eager fp32 of the same model and batch.

Per variant: its warm median and spread, throughput, first-call and build cost, peak memory, counted bytes and
intensity, the FLOP/s it achieved, which roof bounds it at its intensity (the record's DRAM roof and the GEMM roof of
its compute dtype), its quality against fp32 eager, and what the predictor priced it at. Per model and batch: the
fastest variant inside the quality budget, why (from the roofline: bytes saved, the bound, the dispatch share a
runtime removed), and how often the predicted order of two variants is the measured one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from results.units import si

REFERENCE = ("eager", "fp32")
#: two predictions closer than this (relative) order nothing: such a pair is counted as tied, not as agreeing
TIE = 0.05


@dataclass(frozen=True)
class _Roof:
    value: float
    unit: str = "FLOP/s"


@dataclass(frozen=True)
class Roofs:
    """The roofs a variants run was placed under when they came from another record of the machine
    (--variants-record): a compact copy kept in the record (``variant_roofs``), so the record stands alone."""

    compute: dict
    memory: dict
    dram_level: str | None
    dispatch_overhead_s: float | None
    source: str = ""

    @property
    def dram(self):
        return self.memory.get(self.dram_level) if self.dram_level else None


def roofs_dict(analysis, source: str) -> dict[str, Any]:
    """What of a record's analysis the variants need: GEMM roof per dtype, each memory level, the dispatch cost."""
    return {"source": source, "run_id": analysis.record.get("run_id"),
            "compute": {d: {"value": c.value, "unit": c.unit} for d, c in analysis.compute.items()},
            "memory": {level: c.value for level, c in analysis.memory.items()}, "dram_level": analysis.dram_level,
            "dispatch_overhead_s": analysis.dispatch_overhead_s}


def roofs_of(analysis):
    """The run's own roofs where it measured them, else those its variants run copied from --variants-record."""
    saved = analysis.record.get("variant_roofs")
    if (analysis.compute and analysis.dram) or not saved:
        return analysis
    return Roofs({d: _Roof(c["value"], c.get("unit", "FLOP/s")) for d, c in (saved.get("compute") or {}).items()},
                 {level: _Roof(v, "B/s") for level, v in (saved.get("memory") or {}).items()},
                 saved.get("dram_level"), saved.get("dispatch_overhead_s"),
                 f"{saved.get('source')} (run {saved.get('run_id')})")


def _is_variant(m: dict) -> bool:
    return m.get("group") == "variant" and not m.get("superseded")


def variant_rows(analysis) -> list[dict[str, Any]]:
    """One row per variant point of the record, measured or not, with everything derived from it."""
    rows, again = [], {}
    roofs = roofs_of(analysis)
    for m in analysis.record.get("measurements", []):
        if not _is_variant(m):
            continue
        x = m.get("extra") or {}
        if x.get("again"):  # eager fp32 re-measured after the batch's variants: the drift, not a variant
            again[(x.get("model"), x.get("batch"))] = m
            continue
        ok = m.get("status") == "ok" and m.get("median_s")
        cost = x.get("counted") or {}
        row = {"model": x.get("model"), "batch": x.get("batch"), "runtime": x.get("runtime"),
               "precision": x.get("precision"), "compute_dtype": x.get("compute_dtype") or m.get("dtype"),
               "variant": f"{x.get('runtime')}/{x.get('precision')}", "status": m.get("status"),
               "reason": m.get("reason") or "", "disturbed": bool(m.get("disturbed"))}
        if ok:
            batch = x.get("batch") or 1
            intensity = cost.get("intensity")
            row.update(median_s=m["median_s"], best_s=m.get("best_s"), iqr_rel=m.get("iqr_rel"), n=m.get("n"),
                       throughput=batch / m["median_s"], first_call_s=x.get("first_call_s"),
                       build_s=x.get("build_s"), peak_memory_bytes=x.get("peak_memory_bytes"),
                       flops=cost.get("flops"), bytes=cost.get("bytes"), intensity=intensity,
                       achieved_flop_per_s=(cost.get("flops") or 0) / m["median_s"] or None,
                       quality=x.get("quality") or {}, quality_ok=x.get("quality_ok"),
                       quality_why=x.get("quality_why") or "", quality_note=x.get("quality_note") or "", notes=list(x.get("notes") or []),
                       facts=dict(x.get("facts") or {}), eager_fp32_bytes=x.get("eager_fp32_bytes"),
                       layers=dict(x.get("layers") or {}), layers_how=x.get("layers_how") or "")
            row.update(_bound(roofs, row["compute_dtype"], intensity))
            fp32, mine = roofs.compute.get("fp32"), roofs.compute.get(row["compute_dtype"])
            row["roof_ratio"] = mine.value / fp32.value if fp32 and mine else None
            int8 = roofs.compute.get("int8")
            row["int8_roof_ratio"] = int8.value / fp32.value if fp32 and int8 else None
        predicted = x.get("predicted") or {}
        row["predicted_s"] = predicted.get("predicted_s")
        row["predicted_basis"] = predicted.get("basis") or predicted.get("unavailable") or ""
        rows.append(row)
    _relative(rows, again)
    return rows


def _bound(analysis, dtype: str, intensity: float | None) -> dict[str, Any]:
    """Which roof bounds a point of ``intensity`` in ``dtype``: the record's DRAM roof and that dtype's GEMM roof."""
    compute, dram = analysis.compute.get(dtype), analysis.dram
    if not intensity or compute is None or dram is None:
        missing = "no DRAM roof" if dram is None else f"no {dtype} GEMM roof" if compute is None else "no intensity"
        return {"bound": "?", "bound_why": f"the record has {missing}", "attainable_flop_per_s": None}
    ridge = compute.value / dram.value
    attainable = min(compute.value, dram.value * intensity)
    return {"bound": "memory" if intensity < ridge else "compute", "ridge": ridge,
            "attainable_flop_per_s": attainable, "bound_why": f"{dtype} ridge {ridge:.3g} FLOP/B"}


def _relative(rows: list[dict], again: dict | None = None) -> None:
    """Speed-up, bytes and intensity against eager fp32 of the same model and batch. Where eager fp32 was measured
    again after the batch's variants, the reference time is the mean of the two and its drift is kept on its row."""
    refs = {(r["model"], r["batch"]): r for r in rows if (r["runtime"], r["precision"]) == REFERENCE and r.get("median_s")}
    for key, ref in refs.items():
        later = (again or {}).get(key)
        ref["reference_s"] = ref["median_s"]
        if later and later.get("status") == "ok" and later.get("median_s"):
            ref["again_s"] = later["median_s"]
            ref["drift"] = later["median_s"] / ref["median_s"] - 1
            ref["reference_s"] = (ref["median_s"] + later["median_s"]) / 2
    for r in rows:
        ref = refs.get((r["model"], r["batch"]))
        if ref is None or not r.get("median_s"):
            continue
        r["speedup"] = ref["reference_s"] / r["median_s"]
        if ref.get("bytes") and r.get("bytes"):
            r["bytes_ratio"] = ref["bytes"] / r["bytes"]


def groups(rows: list[dict]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault((r["model"], r["batch"]), []).append(r)
    return out


def choose(rows: list[dict]) -> dict[str, Any]:
    """The fastest measured variant inside the quality budget (one model, one batch), and the faster ones outside."""
    measured = [r for r in rows if r.get("median_s")]
    inside = [r for r in measured if r.get("quality_ok")]
    if not inside:
        return {"choice": None, "why": "no variant was measured inside the quality budget"}
    inside.sort(key=lambda r: r["median_s"])
    best = inside[0]
    faster_outside = [r["variant"] for r in measured if not r.get("quality_ok") and r["median_s"] < best["median_s"]]
    ref = next((r for r in rows if (r["runtime"], r["precision"]) == REFERENCE), {})
    drift = abs(ref.get("drift") or 0.0)
    close = [r["variant"] for r in inside[1:] if r["median_s"] / best["median_s"] - 1 <= max(drift, 0.03)]
    return {"choice": best["variant"], "median_s": best["median_s"], "speedup": best.get("speedup"),
            "why": best.get("explanation") or best["variant"], "faster_outside_budget": faster_outside,
            "close": close, "drift": ref.get("drift"),
            "close_note": (f"within {100 * max(drift, 0.03):.0f}% of it (the reference's drift during the run, or 3%): "
                           f"{', '.join(close)}; not told apart here" if close else "")}


def explain(r: dict, ref: dict | None, dispatch_s: float | None = None) -> str:
    """Why a variant is as fast as it is against eager fp32, from the roofline and the gap parts it changed."""
    if ref is None or not ref.get("median_s") or not r.get("median_s"):
        return "no eager fp32 reference measured"
    if r is ref:
        return (f"the reference: {r['bound']}-bound at {r['intensity']:.3g} FLOP/B ({r['bound_why']})"
                if r.get("intensity") else "the reference")
    s = r["speedup"]
    parts = []
    ratio = r.get("bytes_ratio")
    if ratio and abs(ratio - 1) > 0.02:
        parts.append(f"{ratio:.2f}x {'fewer' if ratio > 1 else 'more'} bytes (intensity {ref['intensity']:.3g} -> "
                     f"{r['intensity']:.3g} FLOP/B)")
    if r.get("bound") and r["bound"] != "?":
        parts.append(f"{r['bound']}-bound at batch {r['batch']} ({r['bound_why']})")
    roofs = r.get("roof_ratio")
    if r.get("bound") == "compute" and roofs and abs(roofs - 1) > 0.05:
        parts.append(f"its {r['compute_dtype']} GEMM roof is {roofs:.2f}x fp32's")
    if r.get("bound") == "compute" and r["precision"] == "int8-dyn" and s > 1.2:
        parts.append("so the gain is the int8 arithmetic of its quantised layers (a roof above "
                     "fp32's; " + (f"the record's int8 GEMM roof is {r['int8_roof_ratio']:.2f}x fp32's)"
                                   if r.get("int8_roof_ratio") else "the record has no int8 GEMM roof to show it)"))
    facts = r.get("facts") or {}
    eager_ops = facts.get("eager_ops")
    if r["runtime"] == "compile" and facts.get("generated_kernels") is not None and eager_ops:
        parts.append(f"{eager_ops} eager ops -> {facts['generated_kernels']} generated kernels (plus library calls)"
                     + (f"; first call {r['first_call_s']:.1f} s: {facts['inductor_cache']}"
                        if facts.get("inductor_cache") and r.get("first_call_s") else ""))
    elif facts.get("onnx_nodes") and eager_ops:
        parts.append(f"{eager_ops} eager ops -> {facts['onnx_nodes']} ONNX nodes before the runtime's own fusion")
    if dispatch_s and eager_ops:
        before = eager_ops * dispatch_s / ref["median_s"]
        after_ops = facts.get("generated_kernels") or facts.get("onnx_nodes")
        if r["runtime"] != "eager" and after_ops and before >= 0.02:
            parts.append(f"dispatch share {100 * before:.0f}% -> {100 * after_ops * dispatch_s / r['median_s']:.0f}% "
                         f"(at the record's {dispatch_s * 1e6:.2g} us per op)")
    quantised = next((n for n in r.get("notes", []) if "weighted layers quantised" in n), None)
    if quantised:
        parts.append(quantised.split(": ", 1)[-1])
    verdict = f"{s:.2f}x {'faster' if s >= 1 else 'slower'}"
    if s < 0.8 and r.get("bound") == "compute":
        verdict += f": compute-bound, and this device's {r['compute_dtype']} path is slower than fp32's"
    elif s < 0.8 and r["precision"].startswith("int8"):
        verdict += ": the quantise/dequantise work per call outweighs the bytes saved"
    return f"{r['variant']}: " + "; ".join(parts + [verdict])


def ordering(rows: list[dict]) -> dict[str, Any]:
    """Pairs of variants (same model and batch) both measured and priced: how often the predicted order is the
    measured one, and the pairs where it is not."""
    pairs = agree = tied = 0
    wrong = []
    for (model, batch), mine in groups(rows).items():
        priced = [r for r in mine if r.get("median_s") and r.get("predicted_s")]
        for a, b in combinations(priced, 2):
            if abs(a["predicted_s"] / b["predicted_s"] - 1) < TIE:
                tied += 1
                continue
            pairs += 1
            if (a["predicted_s"] < b["predicted_s"]) == (a["median_s"] < b["median_s"]):
                agree += 1
            else:
                wrong.append(f"{model} b{batch}: {a['variant']} vs {b['variant']} (predicted "
                             f"{a['predicted_s'] * 1e3:.3g} / {b['predicted_s'] * 1e3:.3g} ms, measured "
                             f"{a['median_s'] * 1e3:.3g} / {b['median_s'] * 1e3:.3g} ms)")
    return {"pairs": pairs, "agree": agree, "share": agree / pairs if pairs else None, "disagree": wrong,
            "tied": tied, "rule": f"pairs of variants of one model and batch, both measured and priced; predictions "
                                  f"within {100 * TIE:.0f}% of each other are tied (no order claimed) and left out"}


def summary(analysis) -> dict[str, Any]:
    """Everything the variants section shows, as plain data (the JSON of ``python -m bench.variants --json``)."""
    rows = variant_rows(analysis)
    roofs = roofs_of(analysis)
    dispatch = roofs.dispatch_overhead_s
    decisions = {}
    for (model, batch), mine in groups(rows).items():
        ref = next((r for r in mine if (r["runtime"], r["precision"]) == REFERENCE), None)
        for r in mine:
            if r.get("median_s"):
                r["explanation"] = explain(r, ref, dispatch)
        decisions[f"{model} b{batch}"] = choose(mine)
    return {"rows": rows, "decisions": decisions, "ordering": ordering(rows),
            "roofs": getattr(roofs, "source", "") or "this run's own measurements",
            "conventions": {"time": "median of warm calls (the harness's rounds), IQR relative to it",
                            "throughput": "samples per second = batch / median call",
                            "bytes": "the counter's minimum traffic, each weight at its stored width (quantised "
                                     "weights with their scales), activations in the compute dtype",
                            "quality": next((r["quality_note"] for r in rows if r.get("quality_note")),
                                            "outputs against fp32 eager on a fixed seeded input set: a proxy")}}


def layer_table(rows: list[dict], top: int = 10) -> dict[str, Any] | None:
    """One model and batch: the ``top`` modules by eager fp32's time, each variant's time for the same module where
    its runtime could say (module hooks in eager, ONNX Runtime's profiler mapped by name scopes)."""
    ref = next((r for r in rows if (r["runtime"], r["precision"]) == REFERENCE and r.get("layers")), None)
    if ref is None:
        return None
    others = [r for r in rows if r.get("layers") and r is not ref]
    modules = sorted(ref["layers"], key=lambda k: -ref["layers"][k])[:top]
    return {"columns": [ref["variant"]] + [r["variant"] for r in others],
            "rows": [{"module": m, "times": [_ms(ref["layers"][m])] + [_ms(r["layers"].get(m)) for r in others]}
                     for m in modules],
            "how": sorted({f"{r['variant']}: {r['layers_how']}" for r in [ref] + others}),
            "none": [f"{r['variant']}: {r['layers_how']}" for r in rows if r.get("median_s") and not r.get("layers")]}


def cosine_of(q: dict) -> float:
    """A quality dict's lowest cosine (NaN where it has none: non-finite outputs, an all-zero reference)."""
    return q["cosine"] if q.get("cosine") is not None else math.nan


def _ms(s: float | None) -> str:
    return "-" if s is None else f"{s * 1e3:.3g} ms"


def table_rows(rows: list[dict]) -> list[dict[str, str]]:
    """The variants table, formatted (the summary, the page and the README show these columns)."""
    out = []
    for r in sorted(rows, key=lambda r: (r["model"] or "", r["batch"] or 0, r.get("median_s") or math.inf)):
        q = r.get("quality") or {}
        if r.get("median_s"):
            quality = (f"cos {cosine_of(q):.5f}" + (f", top-1 {100 * q['top1_agreement']:.0f}%"
                                                                 if "top1_agreement" in q else "")
                       + f" (n={q.get('n')})" + ("" if r.get("quality_ok") else " OUTSIDE budget"))
            out.append({"model": r["model"], "batch": str(r["batch"]), "variant": r["variant"],
                        "median": _ms(r["median_s"]) + (f" ±{100 * r['iqr_rel'] / 2:.0f}%" if r.get("iqr_rel") else ""),
                        "speedup": f"{r['speedup']:.2f}x" if r.get("speedup") else "-",
                        "samples/s": f"{r['throughput']:.3g}", "first call": _ms(r.get("first_call_s")),
                        "peak mem": si(r["peak_memory_bytes"], "B") if r.get("peak_memory_bytes") else "-",
                        "bytes": si(r["bytes"], "B") if r.get("bytes") else "-",
                        "FLOP/B": f"{r['intensity']:.3g}" if r.get("intensity") else "-",
                        "bound": r.get("bound", "?"), "quality": quality,
                        "predicted": _ms(r.get("predicted_s")) + (" (disturbed)" if r.get("disturbed") else "")})
        else:
            out.append({"model": r["model"], "batch": str(r["batch"]), "variant": r["variant"],
                        "median": r["status"], "speedup": "", "samples/s": "", "first call": "", "peak mem": "",
                        "bytes": "", "FLOP/B": "", "bound": "", "quality": r["reason"][:110], "predicted": ""})
    return out


def summary_lines(analysis) -> list[str]:
    """The variants section of the run's text summary (empty where the run measured none)."""
    if not any(_is_variant(m) for m in analysis.record.get("measurements", [])):
        return []
    import pandas as pd

    data = summary(analysis)
    lines = ["", "Variants (time: median of warm calls ± half the IQR; speed-up vs eager/fp32; bytes: stored widths; "
                 "quality vs fp32 eager, a proxy):"]
    measured = [r for r in data["rows"] if r.get("median_s")]
    if measured:
        lines.append(pd.DataFrame(table_rows(measured)).to_string(index=False))
    lines.append(f"  roofs: {data['roofs']}")
    model = analysis.record.get("variant_model") or {}
    if model:
        lines.append(f"  quality inputs: {model.get('quality_inputs')}; "
                     + ("random weights (the suite loads none)" if model.get("random_weights") else "the factory's weights")
                     + (": " + "; ".join(model["settled"]) if model.get("settled") else ""))
    for (model, batch), mine in groups(data["rows"]).items():
        ref = next((r for r in mine if (r["runtime"], r["precision"]) == REFERENCE and r.get("again_s")), None)
        if ref:
            lines.append(f"  {model} b{batch}: eager/fp32 {_ms(ref['median_s'])} first, {_ms(ref['again_s'])} again "
                         f"after the variants (drift {100 * ref['drift']:+.0f}%); speed-ups are against their mean")
    for r in data["rows"]:
        if not r.get("median_s"):
            lines.append(f"  - {r['model']} b{r['batch']} {r['variant']}: {r['status']}: {r['reason']}")
    for key, d in data["decisions"].items():
        if d.get("choice"):
            lines.append(f"  {key}: choose {d['choice']} ({_ms(d['median_s'])}): {d['why']}")
            if d.get("close_note"):
                lines.append(f"    {d['close_note']}")
            if d.get("faster_outside_budget"):
                lines.append(f"    faster but outside the quality budget: {', '.join(d['faster_outside_budget'])}")
        else:
            lines.append(f"  {key}: {d['why']}")
    o = data["ordering"]
    if o["pairs"]:
        lines.append(f"  predicted vs measured order: {o['agree']} of {o['pairs']} pairs agree "
                     f"({100 * o['share']:.0f}%; {o['tied']} tied pairs left out)"
                     + ("; not: " + "; ".join(o["disagree"][:6]) if o["disagree"] else ""))
    return lines
