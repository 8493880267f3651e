"""Layers on the measured roofline, and why each is slower than the roof. Pure Python (+ pandas): no torch.

For every timed layer of a record (cold-cache median time t, counted FLOPs F and bytes B, dtype d):
* I = F / B; attainable = min(pi_d, beta x I) against DRAM (the caches were flushed before each timed call);
  efficiency = (F / t) / attainable; bound = memory if I < pi_d / beta_DRAM else compute.
* cache: the smallest memory level whose (all-core) capacity holds B, its bandwidth, and the warm-cache time.
* the gap, in seconds that add up to t exactly:
    roof          max(F / pi, B / beta_DRAM), the measured roofline's time for this work
    overhead      the layer's aten op count x the measured per-op cost (host seconds per tiny op issued back to back:
                   dispatch on a CPU, dispatch + launch on a GPU), plus one idle device sync where the timed call ends
                   with one (GPUs; zero on a CPU). t is the host wall time of one call after the flush has finished,
                   on every platform, so both sides of this subtraction are host-side seconds
    gemm shortfall  a plain GEMM of the layer's implicit shape (M, N, K), timed the same way, minus its own roof
                   and its one dispatch: how far the GEMM implementation falls short for this shape
    layer vs gemm  the layer's own time beyond that GEMM (im2col, layout, epilogue, a worse kernel choice)
    unexplained   what is left, shown as such
  Each part is capped by what is left of t, in this order, so none is negative and they sum to t.
"""
from __future__ import annotations

from results.roofline import effective_capacities, rate_unit
from results.units import si

PARTS = ("roof", "overhead", "gemm_shortfall", "layer_vs_gemm", "unexplained")


def fit_level(nbytes: int, caches: list[dict]) -> str:
    for name, capacity in effective_capacities(caches):
        if nbytes <= capacity:
            return name
    return "DRAM"


def gap_breakdown(t: float, flops: float, nbytes: float, peak: float, bandwidth: float, n_ops: int,
                  dispatch_s: float, gemm: dict | None = None, sync_s: float = 0.0) -> dict[str, float]:
    """Split a measured time ``t`` into named parts that add up to ``t`` (see the module docstring)."""
    left = t
    parts: dict[str, float] = {}

    def take(name: str, seconds: float):
        nonlocal left
        seconds = min(max(seconds, 0.0), left)
        parts[name] = seconds
        left -= seconds

    take("roof", max(flops / peak if peak else 0.0, nbytes / bandwidth if bandwidth else 0.0))
    take("overhead", n_ops * (dispatch_s or 0.0) + (sync_s or 0.0))
    if gemm and gemm.get("status") == "ok" and gemm.get("median_s"):
        gemm_roof = max(gemm["flops"] / peak if peak else 0.0, gemm["bytes"] / bandwidth if bandwidth else 0.0)
        take("gemm_shortfall", gemm["median_s"] - (dispatch_s or 0.0) - (sync_s or 0.0) - gemm_roof)
        take("layer_vs_gemm", t - gemm["median_s"] - (n_ops - 1) * (dispatch_s or 0.0))
    else:
        take("gemm_shortfall", 0.0)
        take("layer_vs_gemm", 0.0)
    parts["unexplained"] = left
    return parts


def _headline(row: dict) -> str:
    named = {k: row[f"gap_{k}_s"] for k in ("overhead", "gemm_shortfall", "layer_vs_gemm")}
    worst = max(named, key=named.get)
    bound = (f"{row['bound']}-bound (I = {row['intensity']:.2g} FLOP/B vs ridge {row['ridge']:.2g}); "
             f"working set {row['working_set_mb']:.2g} MB fits {row['fits']}")
    if row["bound"] == "memory":
        bound = "memory/cache: " + bound
    if row["gap_unexplained_s"] >= max(named.values()) and row["gap_unexplained_s"] > 0.25 * row["time_s"]:
        return f"{bound}; most of the gap is unexplained"
    labels = {"overhead": "dispatch overhead", "gemm_shortfall": "the GEMM implementation for this shape",
              "layer_vs_gemm": "the layer's implementation beyond a plain GEMM"}
    return f"{bound}; largest named gap: {labels[worst]}"


def layer_rows(result) -> list[dict]:
    """One row per timed layer of the analysis ``result`` (its ceilings are all this reads of it) with its roofline
    position and gap breakdown; an ``Analysis`` holds these as ``layers``."""
    record = result.record
    caches = record.get("platform", {}).get("caches") or []
    dram = result.memory.get(result.dram_level) if result.dram_level else None
    dispatch = result.dispatch_overhead_s or 0.0
    models = {m["kernel"]: m for m in record["measurements"]
              if m.get("group") == "model" and m.get("status") == "ok" and not m.get("superseded")}
    rows = []
    for m in record["measurements"]:
        if m.get("group") != "layer" or m.get("status") != "ok" or not m.get("median_s") or m.get("superseded"):
            continue
        extra = m.get("extra") or {}
        compute = result.compute.get(m["dtype"])
        t, flops, nbytes = m["median_s"], m["flops"], m["bytes"]
        peak = compute.value if compute else None
        beta = dram.value if dram else None
        intensity = flops / nbytes if nbytes else float("inf")
        row = {"model": extra.get("spec") or extra.get("model"), "layer": extra.get("layer"),
               "type": extra.get("type"), "dtype": m["dtype"], "multiplicity": extra.get("multiplicity", 1),
               "input": " ".join("x".join(map(str, s)) for s in extra.get("input_shapes") or []),
               "batch_tag": extra.get("batch_tag", ""), "flops": flops, "bytes": nbytes, "intensity": intensity,
               "time_s": t, "time_cv": m.get("cv"), "warm_time_s": extra.get("warm_median_s"),
               "achieved_flop_per_s": flops / t, "achieved_bytes_per_s": nbytes / t,
               "working_set_mb": nbytes / 1e6, "fits": fit_level(nbytes, caches), "n_ops": extra.get("n_ops", 1)}
        if peak and beta:
            row["attainable_flop_per_s"] = min(peak, beta * intensity)
            row["efficiency"] = row["achieved_flop_per_s"] / row["attainable_flop_per_s"]
            row["ridge"] = peak / beta
            row["bound"] = "memory" if intensity < row["ridge"] else "compute"
        else:
            row.update({"attainable_flop_per_s": None, "efficiency": None, "ridge": float("nan"),
                        "bound": "unknown (no ceiling for this dtype)"})
        level = result.memory.get(row["fits"])
        row["fits_bandwidth"] = level.value if level else None
        parts = gap_breakdown(t, flops, nbytes, peak or 0.0, beta or 0.0, row["n_ops"], dispatch, extra.get("gemm"),
                              result.sync_latency_s)
        for name, seconds in parts.items():
            row[f"gap_{name}_s"] = seconds
        gemm = extra.get("gemm") or {}
        row["gemm_shape"] = "x".join(map(str, gemm.get("shape") or [])) if gemm.get("status") == "ok" else ""
        row["gemm_time_s"] = gemm.get("median_s")
        row["gemm_efficiency_vs_peak"] = (gemm["flops"] / gemm["median_s"] / peak
                                          if gemm.get("median_s") and peak else None)
        model = models.get(row["model"])
        row["share_of_model"] = (row["warm_time_s"] or t) * row["multiplicity"] / model["median_s"] if model else None
        row["attribution"] = _headline(row) if peak and beta else "no roofline for this dtype"
        if row.get("efficiency") and row["efficiency"] > 1.02:
            row["attribution"] = ("ABOVE the measured roof: this layer beat the ceiling, so the ceiling is a lower "
                                  "bound (the GEMM sweep or the stream sweep did not find this speed); "
                                  + row["attribution"])
        rows.append(row)
    return rows


def model_rows(result, rows) -> list[dict]:
    """Whole-model time against the sum of its timed ``rows`` (warm and cold, x multiplicity); an ``Analysis``
    holds these as ``models``."""
    out = []
    for m in result.record["measurements"]:
        if m.get("group") != "model" or m.get("status") != "ok" or m.get("superseded"):
            continue
        mine = [r for r in rows if r["model"] == m["kernel"] and r["dtype"] == m["dtype"]]
        warm = sum((r["warm_time_s"] or 0) * r["multiplicity"] for r in mine)
        cold = sum(r["time_s"] * r["multiplicity"] for r in mine)
        out.append({"model": m["kernel"], "dtype": m["dtype"], "model_time_s": m["median_s"], "model_cv": m.get("cv"),
                    "layers_warm_sum_s": warm, "layers_cold_sum_s": cold,
                    "warm_sum_over_model": warm / m["median_s"], "distinct_layers": len(mine),
                    "flag": (m.get("sanity") or {}).get("flag", "")})
    return out


def headroom_lines(result, dtypes: set[str]) -> list[str]:
    """Torch layers are placed against torch's roofs; this names how far the hardware's roofs sit above them."""
    parts = []
    for dtype in sorted(dtypes):
        gemm, silicon = result.compute.get(dtype), result.silicon.get(dtype)
        if gemm and silicon:
            parts.append(f"{dtype} silicon {silicon.value / gemm.value:.2f}x the GEMM peak")
    dram, hw = result.memory.get("DRAM"), result.memory_hw.get("DRAM")
    if dram and hw:
        parts.append(f"hardware DRAM {hw.value / dram.value:.2f}x torch's")
    return [f"  (placed against torch's roofs; headroom above them: {'; '.join(parts)})"] if parts else []


def layers_text(result, top: int = 8) -> str:
    """The layers' part of the text summary, from the analysis ``result``."""
    import pandas as pd  # heavy: only this table needs it

    rows = result.layers
    if not rows:
        return ""
    lines = ["", "Layers on the measured roofline (time = median of cold-cache calls; attainable vs DRAM; the gap "
                 "parts add up to the time):"]
    lines += headroom_lines(result, {r["dtype"] for r in rows})
    by_model: dict[tuple, list[dict]] = {}
    for r in rows:
        by_model.setdefault((r["model"], r["dtype"]), []).append(r)
    for (model, dtype), mine in by_model.items():
        mine = sorted(mine, key=lambda r: -r["time_s"] * r["multiplicity"])
        table = pd.DataFrame([{
            "layer": f"{r['layer']} x{r['multiplicity']}", "type": r["type"], "I FLOP/B": f"{r['intensity']:.3g}",
            "time": f"{r['time_s'] * 1e3:.3g} ms", "warm": f"{(r['warm_time_s'] or 0) * 1e3:.3g} ms",
            "achieved": si(r["achieved_flop_per_s"], rate_unit(dtype)),
            "attainable": si(r["attainable_flop_per_s"], rate_unit(dtype)),
            "eff": f"{100 * r['efficiency']:.0f}%" if r["efficiency"] is not None else "-", "bound": r["bound"][:7],
            "fits": r["fits"], "share": f"{100 * r['share_of_model']:.0f}%" if r["share_of_model"] else "-",
            "roof/ovh/gemm/impl/rest %": "/".join(f"{100 * r[f'gap_{p}_s'] / r['time_s']:.0f}" for p in PARTS),
        } for r in mine[:top]])
        lines += [f"{model} [{dtype}] ({len(mine)} distinct layers, top {min(top, len(mine))} by time x multiplicity):",
                  table.to_string(index=False)]
        for r in mine[:3]:
            lines.append(f"  {r['layer']}: {r['attribution']}")
    for m in result.models:
        lines.append(f"  model {m['model']} [{m['dtype']}]: {m['model_time_s'] * 1e3:.3g} ms (median); its "
                     f"{m['distinct_layers']} distinct layers sum to {m['layers_warm_sum_s'] * 1e3:.3g} ms warm / "
                     f"{m['layers_cold_sum_s'] * 1e3:.3g} ms cold (x multiplicity) = "
                     f"{100 * m['warm_sum_over_model']:.0f}% of the model (warm)"
                     + (f"  ! {m['flag']}" if m["flag"] else ""))
    return "\n".join(lines)
