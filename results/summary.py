"""The end-of-run text summary of one record (`python -m results show`, and the end of a run) and its machine-readable
form (`show --json`). Formats an ``Analysis`` (results/analysis.py); never measures. The HTML page is
results/page.py.
"""
from __future__ import annotations

import json
import re

from platforms import throttle
from results.analysis import Analysis
from results.layers import layers_text
from results.roofline import is_hardware, rate_unit
from results.speccheck import clean_silicon, cpu_theoretical, effective_clock_lines
from results.units import pct as _pct
from results.units import si
from results.variants import summary_lines as variants_lines


def _shape(c) -> str:
    if c.kind == "compute":
        return "x".join(str(v) for v in (c.shape or [])[1:]) + (f" (batch {c.shape[0]})" if c.shape and c.shape[0] > 1 else "")
    return f"{(c.size_bytes or 0) / 2**20:.3g} MiB"


def missing_rows(record: dict) -> list[dict]:
    return [m for m in record["measurements"] if m.get("status") != "ok" or m.get("verified") is False]


def ceilings_json(result: Analysis) -> dict:
    record = result.record
    return {
        "run_id": record["run_id"], "platform": record["platform"].get("name"), "device": record["platform"].get("device"),
        "status": record.get("status"),
        "compute_flop_per_s": {k: c.to_dict() for k, c in result.compute.items()},
        "memory_bytes_per_s": {k: c.to_dict() for k, c in result.memory.items()},
        "transfer_bytes_per_s": {k: c.to_dict() for k, c in result.transfer.items()},
        "ridge_flop_per_byte": dict(result.ridge_flop_per_byte), "ridge_against": result.dram_level,
        "dispatch_overhead_s": result.dispatch_overhead_s,
        "plateaus": list(result.plateaus),
        "silicon_flop_per_s": {k: c.to_dict() for k, c in result.silicon.items()},
        "silicon_not_a_roof": {k: {"reason": e["reason"], **e["ceiling"].to_dict()}
                               for k, e in result.silicon_below_gemm.items()},
        "memory_hw_bytes_per_s": {k: c.to_dict() for k, c in result.memory_hw.items()},
        "spec_check": spec_check_json(result),
        "missing": [{k: m.get(k) for k in ("group", "kernel", "dtype", "shape", "size_bytes", "status", "reason")}
                    for m in missing_rows(record)],
    }


def spec_check_json(result: Analysis) -> dict:
    """Measured / theoretical (CPU) or / the sheet (GPU) per ceiling, for scripts; on a CPU also the theoretical
    figures with their clock and its source, and the effective clock the FMA chains imply (information)."""
    if result.spec_error is not None:  # a broken sheet must not hide the ceilings
        return {"error": f"{type(result.spec_error).__name__}: {result.spec_error}"}
    out = {"against": result.spec_how, "rows": list(result.validation)}
    if result.spec is None and result.info.get("kind") == "cpu":
        theory = cpu_theoretical(result.info, clean_silicon(result))
        out["theoretical"] = {
            "flop_per_s": {d: theory[f"{d}_flop_per_s"] for d in theory["flop_per_cycle"]
                           if theory.get(f"{d}_flop_per_s")},
            "flop_per_cycle_per_core": theory["flop_per_cycle"], "cores": theory["cores"],
            "clock_mhz": theory["freq_mhz"], "clock_kind": theory["freq_kind"], "clock_source": theory["freq_source"],
            "core_assumption": theory["assumption"],
            "engines": {d: {"kernel": e["kernel"], "source": e["source"]} for d, e in theory["engines"].items()},
            "effective_mhz": theory.get("effective_mhz"), "implied_mhz": theory.get("implied_mhz"),
            "flags": [f for f in (theory.get("clock_spread_flag"), theory.get("warning")) if f]}
    return out


def validation_text(result: Analysis) -> str:
    """Measured / spec per ceiling, with flags; for the summary and `python -m results validate`. Raises the error
    a broken sheet gave (the callers say it in their own way)."""
    if result.spec_error is not None:
        raise result.spec_error
    record, spec, rows = result.record, result.spec, result.validation
    source = spec.data["source"]["document"] if spec else ""
    lines = [f"Measured vs spec ({result.spec_how}{'; source: ' + source if source else ''}):"]
    if spec is not None:
        rule = spec.data["match"].get("name_regex")
        device = record.get("platform", {}).get("name") or ""
        if rule and not re.search(rule, device, re.IGNORECASE):
            lines.append(f"  ! this sheet ({spec.name}) does not match the device that made the record ({device!r})")
    if spec is not None:
        lines += [f"  ! sheet {spec.name}: {warning}" for warning in spec.warnings]
    if not rows:
        lines.append("  no ceiling has a spec value to compare with")
    for row in rows:
        lines.append(f"  {row['ceiling']:>5}: measured {si(row['measured'], row['unit'])} / spec "
                     f"{si(row['spec'], row['unit'])} = {100 * row['ratio']:.1f}%   [{row['spec_field']}]")
        lines += [f"         ! {flag}" for flag in row["flags"]]
    if spec is None:
        lines += effective_clock_lines(result)
    return "\n".join(lines)


def history_text(spreads: dict[str, dict]) -> list[str]:
    """Run-to-run spread of the ceilings, for the summary."""
    runs = max((v["n"] for v in spreads.values()), default=0)
    if runs < 2:
        return []
    lines = ["", f"Run-to-run spread over the last {runs} complete runs of this machine with these options "
                 "((max - min) / median of each ceiling):"]
    for key, v in spreads.items():
        kind, name = key.split(":", 1)
        unit = rate_unit(name) if kind == "compute" else "B/s"
        lines.append(f"  {name:>5}: {si(min(v['values']), unit)} .. {si(max(v['values']), unit)}, "
                     f"spread {_pct(v['spread'])} over {v['n']} runs")
    return lines


def repeat_lines(record: dict) -> list[str]:
    n = record.get("repeated_rows") or 0
    if not n:
        return []
    return [f"  ! {n} of {len(record['measurements'])} rows repeat an earlier row exactly (same point, same times): "
            "the record was appended to itself or merged twice; a repeat changes no best or median"]


def summary_text(result: Analysis, record_path: str | None = None, plot_path: str | None = None,
                 history: dict[str, dict] | None = None) -> str:
    import pandas as pd  # heavy (~0.4 s): only the summary's tables need it, not every results command

    record, info = result.record, result.info
    lines = [f"Measured roofline of {info.get('name')} ({info.get('device')}), run {record['run_id']}"
             f" [{record.get('status')}]"]
    if record.get("options", {}).get("quick"):
        lines.append("  --quick run: a short sweep; ceilings are lower bounds of a full run")
    lines += repeat_lines(record)
    lines += threads_lines(info)
    lines.append(f"  timing: {record.get('timing_method', '')}")
    if record.get("single_call_method") and any(m.get("group") == "layer" for m in record["measurements"]):
        lines.append(f"  single calls (layers, cold caches): {record['single_call_method']}")
    compute = [{"dtype": c.name, "peak (best)": si(c.value, c.unit), "median": si(c.median_value, c.unit),
                "CV": _pct(c.cv), "reps": c.n, "shape MxNxK": _shape(c), "impl": c.impl,
                f"ridge vs {result.dram_level or 'DRAM (not measured)'}": (f"{result.ridge_flop_per_byte[c.name]:.1f} {c.unit[:-2]}/B"
                                                     if c.name in result.ridge_flop_per_byte else "-")}
               for c in result.compute.values()]
    if compute:
        lines += ["", "Peak compute (GEMM, FLOPs = 2*M*N*K; int8 in integer OP/s):", pd.DataFrame(compute).to_string(index=False)]
    lines += silicon_lines(result)
    memory = [{"level": c.name, "bandwidth (best)": si(c.value, "B/s"), "median": si(c.median_value, "B/s"),
               "CV": _pct(c.cv), "reps": c.n, "kernel": c.kernel, "working set": _shape(c), "where": c.note}
              for c in list(result.memory.values()) + list(result.transfer.values())]
    if memory:
        lines += ["", "Bandwidth (bytes by STREAM's convention: each element read or written once, no write-allocate; "
                      "torch's stores are cached, so kernels that write move about 1.5x (copy) to 1.33x (triad) "
                      "this, kept per point as bytes_actual):",
                  pd.DataFrame(memory).to_string(index=False)]
    lines += sentinel_lines(result)
    lines += hardware_memory_lines(result)
    lines += blas_lines(info)
    if result.dispatch_overhead_s:
        lines.append(f"  dispatch overhead per op: {result.dispatch_overhead_s * 1e6:.2f} us (median); stream points "
                     "faster than 10x this are not used as ceilings"
                     + (f"; one idle device sync: {result.sync_latency_s * 1e6:.2f} us" if result.sync_latency_s
                        else ""))
    refs = [m for m in record["measurements"] if m.get("group") == "reference" and m.get("status") == "ok"]
    for ref in refs:
        ceiling = result.memory.get("DRAM") if ref["kernel"].startswith("stream_ref") else result.compute.get(ref["dtype"])
        rate = ref.get("bytes_per_s") or ref.get("flop_per_s")
        unit = "B/s" if ref.get("bytes_per_s") else "FLOP/s"
        ratio = f" -> suite / reference = {ceiling.value / rate:.3f}" if ceiling and rate else ""
        lines.append(f"  reference {ref['kernel']} ({ref.get('impl')}): {si(rate, unit)}{ratio}")
    for dtype, ceiling in result.compute.items():
        squares = [m for m in record["measurements"] if m.get("group") == "gemm" and m.get("dtype") == dtype
                   and m.get("flop_per_s") and m.get("shape") and m["shape"][0] == 1
                   and len(set(m["shape"][1:])) == 1 and m["shape"][1] == 4096]
        if len({m.get("impl") for m in squares}) >= 2:
            best = max(squares, key=lambda m: m["flop_per_s"])
            parts = ", ".join(f"{m['impl']} {si(m['flop_per_s'], ceiling.unit)}" for m in squares)
            lines.append(f"  {dtype} peak / best implementation at n=4096 in this run ({parts}) = "
                         f"{ceiling.value / best['flop_per_s']:.3f}")
    missing = [m for m in missing_rows(record) if m.get("group") != "variant"]  # variants: their own table
    if missing:
        lines += ["", f"Missing / skipped ({len(missing)}): no figure is given for these"]
        seen = set()
        for m in missing:
            key = (m["group"], m["kernel"], m["dtype"], m.get("reason"))
            if key in seen:
                continue
            seen.add(key)
            lines.append(f"  - {m['group']} {m['kernel']} {m['dtype']} {m.get('shape') or ''}: {m['status']}: {m.get('reason')}")
    lines.append(layers_text(result))
    lines += variants_lines(result)
    if result.spec_error is None:
        lines += ["", validation_text(result)]
    else:  # a broken sheet must not hide the measurements
        lines += ["", f"Measured vs spec: not available ({result.spec_error})"]
    lines += history_text(history or {})
    lines += load_lines(result)
    lines += telemetry_lines(record)
    if record_path:
        lines.append(f"Record: {record_path}")
    if plot_path:
        lines.append(f"Plot:   {plot_path}")
    return "\n".join(lines)


#: silicon kernels other than the FMA chains, as a person reads them
ENGINE_NAMES = {"amx": "AMX tiles", "dot": "AVX512-BF16 dot products", "vnni": "AVX512-VNNI dot products"}


def silicon_kind(c) -> str:
    """What a silicon ceiling was measured with, for legends: "register-only FMA" or the engine's name."""
    return ENGINE_NAMES.get(getattr(c, "kernel", None), "register-only FMA")


def silicon_lines(result: Analysis) -> list[str]:
    """The silicon's peak (register-only FMA) beside the best GEMM: how much of the chip the BLAS reaches."""
    silicon = result.silicon
    below = result.silicon_below_gemm
    if not silicon and not below:
        return []
    lines = ["", "Silicon peak (register-only FMA chains, and on a CPU the matrix/dot-product engines its flags show: "
                 "this project's C on a CPU, Triton on a GPU's CUDA cores; the roof above the GEMM's where the GEMM "
                 "uses the same units):"]
    for dtype, c in silicon.items():
        gemm = result.compute.get(dtype)
        ratio = f"; best GEMM {si(gemm.value, gemm.unit)} ({gemm.impl}) = {gemm.value / c.value:.2f} of it" if gemm else ""
        where = f"{(c.shape or [None])[0]} {'threads' if c.impl == 'native' else 'programs'}, {c.impl}"
        lines.append(f"  {dtype:>5}: {si(c.value, c.unit)} best (median {si(c.median_value, c.unit)}, CV {_pct(c.cv)}, "
                     f"{where}{'' if c.kernel == 'fma' else ', ' + ENGINE_NAMES.get(c.kernel, c.kernel)}){ratio}"
                     + ("  ! DISTURBED" if c.disturbed else ""))
    for dtype, entry in below.items():
        lines.append(f"  {dtype:>5}: no silicon roof: {entry['reason']}")
    return lines


def hardware_memory_lines(result: Analysis) -> list[str]:
    """The memory's bandwidth from the native kernels beside torch's, both byte counts named."""
    record = result.record
    hw = result.memory_hw
    if not hw:
        return []
    lines = ["", "Hardware bandwidth (native C: cached and non-temporal stores; Triton on a GPU; bytes by STREAM's "
                 "convention, the estimated actual traffic beside where known):"]
    for level, c in hw.items():
        row = next((m for m in record["measurements"] if is_hardware(m) and m.get("kernel") == c.kernel
                    and m.get("size_bytes") == c.size_bytes and m.get("bytes_per_s") == c.value), {})
        extra = row.get("extra") or {}
        actual, how = extra.get("bytes_actual"), extra.get("bytes_actual_how")
        actual_text = (f", actual {si(actual / row['best_s'], 'B/s')} ({how})" if actual and row.get("best_s")
                       else f" ({how})" if how else "")
        torch_c = result.memory.get(level)
        ratio = f"; torch's {si(torch_c.value, 'B/s')} ({torch_c.kernel}) = {torch_c.value / c.value:.2f} of it" \
            if torch_c else ""
        lines.append(f"  {level:>5}: {si(c.value, 'B/s')} {c.kernel} at {_shape(c)}{actual_text}{ratio}"
                     + ("  ! DISTURBED" if c.disturbed else ""))
    scaling = [m for m in record["measurements"] if m.get("group") == "scaling" and m.get("status") == "ok"]
    for kernel, unit in (("copy_nt", "B/s"), ("gemm", "FLOP/s")):
        rate = "bytes_per_s" if unit == "B/s" else "flop_per_s"
        per_threads: dict = {}  # one point per thread count (the best, should a record repeat one)
        for m in scaling:
            threads = (m.get("extra") or {}).get("threads")
            if m["kernel"] == kernel and isinstance(threads, int) and m.get(rate):
                if threads not in per_threads or m[rate] > per_threads[threads][rate]:
                    per_threads[threads] = m
        points = sorted(per_threads.items(), key=lambda item: item[0])
        if len(points) >= 2:
            base = points[0][1][rate]
            lines.append(f"  thread scaling, {'DRAM copy (native, non-temporal)' if unit == 'B/s' else 'fp32 GEMM 1024^3'}: "
                         + ", ".join(f"{t} thr {si(m[rate], unit)} ({m[rate] / base:.2f}x)" for t, m in points))
    return lines


def sentinel_lines(result: Analysis) -> list[str]:
    """The DRAM sentinel's spread over the run, beside the DRAM ceiling: how much the memory drifted meanwhile; and
    the reference model timed before and after the operator probes: how much the machine's speed moved."""
    record = result.record
    lines = []
    calls = {m.get("kernel"): m for m in record["measurements"] if m.get("group") == "calibration"
             and m.get("status") == "ok" and m.get("median_s")}
    first, again = calls.get("reference_model"), calls.get("reference_model_again")
    if first and again:
        from results.predict import DRIFT_NOTICE, reference_drift

        moved = reference_drift(first, again)
        lines.append(f"  compute sentinel (the predictor's reference model, median call, before and after the operator "
                     f"probes): {first['median_s'] * 1e3:.3g} ms .. {again['median_s'] * 1e3:.3g} ms, moved "
                     f"{100 * (moved - 1):.0f}%" + (": the probes were measured on a machine whose speed changed; "
                                                     "predictions from this record widen their range by it"
                                                     if moved > DRIFT_NOTICE else ""))
    lines += fault_lines(record)
    points = [m for m in record["measurements"] if m.get("group") == "sentinel" and m.get("status") == "ok"
              and m.get("bytes_per_s")]
    if len(points) < 2:
        return lines
    rates = [m["bytes_per_s"] for m in points]
    lo, hi = min(rates), max(rates)
    dram = result.memory.get("DRAM")
    where = (f": the DRAM ceiling ({si(dram.value, 'B/s')}, {dram.kernel}, another kernel) was taken at one moment "
             "of such a drift" if dram else "")
    disturbed = sum(1 for m in points if m.get("disturbed"))
    return lines + [f"  DRAM sentinel (torch copy, {(points[0].get('size_bytes') or 0) / 2**20:.0f} MiB, best of 5 calls, checked "
            f"through the run: at its start and after benchmark files): {si(lo, 'B/s')} .. {si(hi, 'B/s')} over {len(points)} checks, "
            f"drift {100 * (hi - lo) / hi:.0f}%{where}" + (f"; {disturbed} of them disturbed" if disturbed else "")]


def fault_lines(record: dict) -> list[str]:
    """Page faults: how many probes faulted pages in on every call, and what a fault cost there (the predictor's
    price of a counted fault: results.predict.DeviceModel.page_fault_s); nothing where no probe faulted."""
    from results.predict import DeviceModel, PredictError, faulting_probes

    faulted = faulting_probes(record["measurements"])
    if not faulted:
        return []
    try:
        price, how = DeviceModel(record).page_fault_s()
    except PredictError:
        return []
    probes = f"{len(faulted)} probe{'s' if len(faulted) != 1 else ''}"
    return [f"  page faults: {probes} faulted pages in on every call (memory the allocator does not keep); a fault "
            f"cost {price * 1e6:.2f} us here ({how}): predictions price a model's counted faults at it"]


def blas_lines(info: dict) -> list[str]:
    """What set the GEMM roof, and why it is below the silicon's, from what the record holds (never a guess)."""
    libs = info.get("blas_libraries") or []
    env = info.get("environment") or {}
    flags = set(info.get("simd_flags") or [])
    lines = []
    if libs:
        lines.append("  BLAS libraries (threadpoolctl): " + "; ".join(
            f"{lib.get('internal_api')} {lib.get('version') or ''} ({lib.get('prefix')}"
            + (f", kernel {lib['architecture']}" if lib.get("architecture") else "")
            + f", {lib.get('num_threads')} threads)" for lib in libs))
    if libs and info.get("blas"):
        lines.append(f"  torch: {info['blas']}; CPU capability {info.get('torch_cpu_capability')}")
    for lib in libs:
        arch = str(lib.get("architecture") or "")
        chosen = env.get("OPENBLAS_CORETYPE", "")
        if lib.get("internal_api") == "openblas" and chosen and arch and chosen.strip().lower() != arch.lower():
            # OpenBLAS ignores a core type it does not know and picks its own: the variable did not choose the kernel
            lines.append(f"  ! OPENBLAS_CORETYPE={chosen} is set, but numpy's OpenBLAS runs its {arch} kernel, its own "
                         "choice: the value names no kernel it knows (or this build cannot switch), so it was ignored. "
                         "The suite does not change your environment")
        elif lib.get("internal_api") == "openblas" and "OPENBLAS_CORETYPE" in env:
            wide = "avx512f" in flags and "skylakex" not in arch.lower() and "cooperlake" not in arch.lower() \
                and "sapphire" not in arch.lower() and "zen" not in arch.lower()
            lines.append(f"  ! numpy's OpenBLAS runs its {arch or '?'} kernel because OPENBLAS_CORETYPE="
                         f"{env['OPENBLAS_CORETYPE']} is set" + ("; this CPU has AVX-512, which that kernel does not use"
                                                                 if wide else "")
                         + ". The suite does not change your environment; unset it for OpenBLAS's own choice")
        if lib.get("internal_api") == "openblas" and "OPENBLAS_L2_SIZE" in env:
            lines.append(f"  ! OPENBLAS_L2_SIZE={env['OPENBLAS_L2_SIZE']} is set: OpenBLAS blocks its GEMM for that L2 "
                         "size, not the one the machine reports")
    if "MKL_ENABLE_INSTRUCTIONS" in env:
        lines.append(f"  ! MKL_ENABLE_INSTRUCTIONS={env['MKL_ENABLE_INSTRUCTIONS']} caps the instructions MKL may use")
    return lines


def threads_lines(info: dict) -> list[str]:
    """Threads used vs cores available, and the environment that steers them (CPU records)."""
    threads, cores = info.get("torch_threads"), info.get("physical_cores")
    if not threads or not cores:
        return []
    env = info.get("environment") or {}
    allowed = info.get("cpus_allowed")
    lines = [f"  threads: torch uses {threads} of {cores} physical cores ({info.get('logical_cores')} logical"
             + (f", {allowed} allowed by affinity" if allowed else "") + ")"
             + (f"; environment: {', '.join(f'{k}={v}' for k, v in env.items())}" if env else "")]
    for key, value in env.items():
        if key.endswith("_NUM_THREADS") and not str(value).strip().isdigit():
            lines.append(f"  ! {key}={value} is not a whole number: the libraries ignore it (or stop on it); the "
                         "thread count above is what torch used")
    if threads < cores:
        why = f" ({', '.join(f'{k}={env[k]}' for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS') if k in env)})" \
            if any(k in env for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")) else ""
        lines.append(f"  ! WARNING: torch runs {threads} thread{'s' if threads > 1 else ''} on a {cores}-core machine{why}: "
                     f"every CPU ceiling here is for {threads} core{'s' if threads > 1 else ''}, and so is the computed "
                     "peak; runs with other thread counts are not compared with this one")
    return lines


def load_lines(result: Analysis) -> list[str]:
    """How much of the run other processes disturbed, and which figures rest on disturbed points."""
    record = result.record
    start = record.get("load_at_start") or {}
    rows = [m for m in record["measurements"] if "disturbed" in m and m.get("status") == "ok" and not m.get("superseded")]
    if not start and not rows:
        return []
    lines = ["", "Machine load (other processes and steal, watched during every point):"]
    if start.get("sentence"):
        lines.append(f"  before measuring: {start['sentence']}")
    if isinstance(record.get("disturbed_whole"), str):
        lines.append(f"  ! {record['disturbed_whole']}")
    disturbed = [m for m in rows if m["disturbed"]]
    retried = [m for m in rows if (m.get("interference") or {}).get("attempts", 1) > 1 or "remeasure_of" in m]
    if rows:
        lines.append(f"  during the run: {len(disturbed)} of {len(rows)} points stayed disturbed"
                     f" ({100 * len(disturbed) / len(rows):.0f}%); {len(retried)} were re-measured, "
                     f"{len(retried) - len([m for m in retried if m['disturbed']])} of them clean on a later attempt")
    figures = [f"{c.name} {'peak' if c.kind == 'compute' else 'bandwidth'}"
               for table in (result.compute, result.memory, result.transfer) for c in table.values() if c.disturbed]
    figures += [f"{m['group']} {m['kernel']} {m['dtype']}" for m in disturbed if m.get("group") in ("layer", "model")]
    flagged = [m for m in rows if m.get("sanity")]
    if flagged:
        lines.append(f"  curve sanity: {len(flagged)} point(s) stayed implausible after re-measuring: "
                     + "; ".join(f"{m['group']} {m['kernel']} {m.get('size_bytes') or ''}: {m['sanity']['flag']}"
                                 for m in flagged[:3]))
    if figures:
        lines.append("  ! figures that rest on disturbed points (no clean point was left): " + ", ".join(figures))
        evidence = [m["interference"].get("evidence") for m in disturbed if m.get("interference")]
        if evidence:
            lines.append(f"    e.g. {evidence[-1]}")
    elif rows:
        lines.append("  no ceiling, layer or model figure rests on a disturbed point")
    return lines


def telemetry_lines(record: dict) -> list[str]:
    """The run's telemetry: min / median / max per sensor; bit masks decoded from the OR of all samples."""
    tel = record.get("telemetry") or {}
    values = {k: v for k, v in tel.items() if isinstance(v, dict) and "min" in v and not k.endswith("_mask")}
    lines = []
    if values:
        lines += ["", "Telemetry over the run (min / median / max): " + "; ".join(
            f"{k} {v['min']:.0f}/{v['median']:.0f}/{v['max']:.0f}" for k, v in values.items())]
    points = [throttle.mask_of((m.get("telemetry") or {}).get("throttle_mask")) for m in record.get("measurements", [])]
    run = throttle.mask_of(tel.get("throttle_mask"))
    masks = [m for m in points + [run] if m is not None]
    if masks:
        seen = throttle.combine(masks)
        lines.append("Clock throttle reasons seen during the run (NVML, OR of every sample): "
                     + (", ".join(throttle.describe(seen)) if seen else "none"))
    return lines


def dumps_ceilings(result: Analysis) -> str:
    return json.dumps(ceilings_json(result), indent=1, default=str)
