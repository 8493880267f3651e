"""Measured ceilings against a spec sheet (GPUs, Jetsons) or against the peak computed from the detected machine
(CPUs: cores x FLOP per cycle x a clock that is not derived from the measurement), with flags a user can act on.
Takes an ``Analysis`` (results/analysis.py); pure Python, no torch.
"""
from __future__ import annotations

from platforms import throttle
from platforms.cores import (  # the core-model table: platform knowledge
    core_model,
    documented_clock,
    engine_rates,
)
from results.specs import GIB_OVER_GB, Spec, _spec_value, mode_bandwidth, mode_clock

#: implied clocks (measured FMA rate / (cores x FLOP per cycle)) further apart than this are flagged
CLOCK_SPREAD = 0.10


def implied_clocks(info: dict, silicon: dict | None, cores: int, core: dict) -> dict[str, float]:
    """MHz each vector FMA dtype's measured rate implies (fp32, fp64): what the cores really ran at, if the
    FLOP-per-cycle assumption holds."""
    out = {}
    for dtype in ("fp32", "fp64"):
        rate = (silicon or {}).get(dtype)
        if rate:
            out[dtype] = rate / (cores * core["flop_per_cycle"][dtype]) / 1e6
    return out


def cpu_theoretical(info: dict, silicon: dict | None = None) -> dict:
    """cores x FLOP per cycle per core x clock, per dtype (fp32, fp64, and bf16/int8 where an engine's per-cycle
    figure is documented), every assumption named.

    The clock is never taken from the measurement the peak is compared with: a documented maximum turbo for the CPU
    model (platforms.cores.DOCUMENTED_CLOCKS), else the OS's cpufreq maximum, else the OS's current clock (often the
    nominal clock under a hypervisor: turbo may exceed it, said so). The effective clock the measured FMA rates imply
    (``silicon``: dtype -> FLOP/s, clean points) is information beside it: the highest of the dtypes' implied clocks
    (a disturbed chain only lowers its own), with a flag when they are more than 10% apart."""
    core = core_model(info)
    machine_cores = info.get("physical_cores") or info.get("logical_cores") or 1
    threads = info.get("torch_threads")
    cores = min(machine_cores, threads) if threads else machine_cores  # the peak of the cores the run could use
    documented = documented_clock(info.get("name"))
    os_max, os_now = info.get("freq_mhz_max"), info.get("freq_mhz_current")
    if documented:
        mhz, which, source = documented["max_mhz"], "documented maximum turbo", documented["source"]
    elif os_max:
        mhz, which, source = os_max, "OS cpufreq maximum", "/sys cpufreq (psutil)"
    elif os_now:
        mhz, which = os_now, "OS current clock (the OS reports no maximum: under a hypervisor this is often the " \
                             "nominal clock, and turbo may exceed it)"
        source = "the OS (psutil)"
    else:
        mhz, which, source = None, "unknown (the record holds no clock)", ""
    out = {"cores": cores, "machine_cores": machine_cores, "threads": threads, "simd_bits": core["fma_bits"],
           "fma_pipes": core["fma_pipes"], "freq_mhz": mhz, "freq_kind": which, "freq_source": source,
           "assumption": core["assumption"], "core": core["core"], "flop_per_cycle": dict(core["flop_per_cycle"]),
           "clock_is_documented": bool(documented)}
    engines = engine_rates(info)
    for dtype, engine in engines.items():
        if engine["op_per_cycle"]:
            out["flop_per_cycle"][dtype] = engine["op_per_cycle"]
    out["engines"] = engines
    if mhz:
        for dtype, per_cycle in out["flop_per_cycle"].items():
            out[f"{dtype}_flop_per_s"] = cores * per_cycle * mhz * 1e6
    implied = implied_clocks(info, silicon, cores, core)
    if implied:
        best_dtype = max(implied, key=implied.get)
        out["implied_mhz"] = implied
        out["effective_mhz"] = implied[best_dtype]
        out["effective_from"] = best_dtype
        low = min(implied, key=implied.get)
        if implied[low] < (1 - CLOCK_SPREAD) * implied[best_dtype]:
            out["clock_spread_flag"] = (
                f"the FMA chains imply clocks {100 * (1 - implied[low] / implied[best_dtype]):.0f}% apart ({low} "
                f"{implied[low]:.0f} MHz, {best_dtype} {implied[best_dtype]:.0f} MHz): the {low} chains were likely "
                f"slowed by other work (steal, a neighbour), or this core has fewer {low} units than assumed")
        eff = implied[best_dtype]
        if not 500 <= eff <= 6500:
            out["warning"] = (f"an effective clock of {eff:.0f} MHz is implausible: the FLOP-per-cycle assumption "
                              f"({core['assumption']}) is likely wrong for this CPU")
    return out


def clean_silicon(result) -> dict[str, float]:
    """The silicon ceilings' rates from clean points (all of them where none is clean): what the effective clock
    is computed from."""
    silicon = result.silicon  # figures below their GEMM are already left out (results.analysis)
    clean = {d: c.value for d, c in silicon.items() if not c.disturbed}
    return clean or {d: c.value for d, c in silicon.items()}


def cpu_validation(result) -> list[dict]:
    """Measured / theoretical for the CPU: the GEMM and the silicon kernels per dtype against cores x FLOP per cycle x
    a clock that is not derived from them (cpu_theoretical), so no ratio holds by construction."""
    info = result.info
    theory = cpu_theoretical(info, clean_silicon(result))
    silicon = result.silicon
    rows = []
    for dtype in ("fp32", "fp64", "bf16", "int8", "fp16"):
        peak = theory.get(f"{dtype}_flop_per_s")
        if not peak:
            continue
        engine = (theory.get("engines") or {}).get(dtype)
        units = f"{engine['kernel']} engine" if engine and dtype not in ("fp32", "fp64") else "FMA"
        below = result.silicon_below_gemm.get(dtype)
        chip = silicon.get(dtype) or (below or {}).get("ceiling")
        for kind, ceiling in (("GEMM", result.compute.get(dtype)), (units, chip)):
            if not ceiling:
                continue
            ratio = ceiling.value / peak
            flags = flags_for(ratio, False)
            if ratio > 1.0 and not theory["clock_is_documented"]:
                flags = [f for f in flags if not f.startswith("ABOVE")]
                eff = theory.get("effective_mhz")
                flags.append(f"above the peak at the OS's {theory['freq_mhz']:.0f} MHz: the cores run faster than the "
                             "OS reports" + (f" (the FMA chains imply {eff:.0f} MHz)" if eff else ""))
            if kind == "GEMM" and chip and not below and any(f.startswith("BELOW") for f in flags):
                # the silicon kernel of the same units ran in this run: the GEMM's shortfall is its own, not the clock's
                flags = [f for f in flags if not f.startswith("BELOW")] + [
                    f"the GEMM reaches {ceiling.value / chip.value:.2f} of this run's {dtype} {units} figure: the rest "
                    "of the gap is the GEMM's implementation and data movement, not the clock"]
            if kind not in ("GEMM", "FMA") and any(f.startswith("BELOW") for f in flags):
                flags.append(f"the {units} may run at its own lower licence clock, which the OS does not show (Intel "
                             "documents lower AMX/AVX-512 turbo frequencies); under a hypervisor a neighbour on the "
                             "same physical core shares the unit")
            if theory.get("warning"):
                flags.append(theory["warning"])
            if kind != "GEMM" and below:
                flags.append(below["reason"])
            per_cycle = theory["flop_per_cycle"][dtype]
            basis = (engine["source"] if engine and dtype not in ("fp32", "fp64") else theory["assumption"])
            rows.append({"ceiling": f"{dtype} {kind}", "measured": ceiling.value, "spec": peak, "ratio": ratio,
                         "unit": "OP/s" if dtype == "int8" else "FLOP/s",
                         "spec_field": (f"computed: {theory['cores']} cores"
                                        + (f" (the {theory['threads']} torch threads of {theory['machine_cores']})"
                                           if theory["cores"] < theory["machine_cores"] else "")
                                        + f" x {per_cycle} {'OP' if dtype == 'int8' else 'FLOP'}/cycle x "
                                        f"{theory['freq_mhz']:.0f} MHz ({theory['freq_kind']}"
                                        + (f"; {theory['freq_source']}" if theory["clock_is_documented"] else "")
                                        + f"); {basis}"),
                         "flags": flags})
    return rows


def effective_clock_lines(result) -> list[str]:
    """The clock the FMA chains imply, as information beside the spec check (never the basis of a printed ratio)."""
    if result.info.get("kind") != "cpu":
        return []
    theory = cpu_theoretical(result.info, clean_silicon(result))
    if not theory.get("effective_mhz"):
        return []
    parts = ", ".join(f"{d} {mhz:.0f} MHz" for d, mhz in sorted(theory["implied_mhz"].items()))
    lines = [f"  effective clock (information): {theory['effective_mhz']:.0f} MHz, the highest the FMA chains imply "
             f"({parts}; {theory['core']}, {theory['flop_per_cycle']['fp32']} fp32 FLOP/cycle)"]
    if theory.get("clock_spread_flag"):
        lines.append(f"  ! {theory['clock_spread_flag']}")
    return lines


# ---- validation ---------------------------------------------------------------------------------------------
def flags_for(ratio: float, sparse_only: bool, bytes_figure: bool = False) -> list[str]:
    """Actionable flags for measured / spec; the GB-vs-GiB one only for byte figures (bandwidth, sizes).

    A unit slip is flagged only on evidence: a measurement ABOVE its sheet by the GiB/GB factor (2^30 / 1e9 =
    1.074, within 0.5%), which no honest run gives and a sheet written in GiB/s does. 93% of a sheet (1e9 / 2^30)
    is not evidence: an HBM or DRAM stream kernel honestly reaches 90-94% of its sheet."""
    flags = []
    gib_slip = bytes_figure and abs(ratio * GIB_OVER_GB - 1) <= 0.005
    if ratio > 1.0 and not gib_slip:
        flags.append("ABOVE SPEC: the sheet's clock may be lower than the boost clock reached, or the sheet is wrong")
    if sparse_only and abs(ratio - 0.5) <= 0.06:
        flags.append("~50% of a figure the sheet lists only WITH SPARSITY: likely a sparse figure read as dense")
    if gib_slip:
        flags.append("ABOVE SPEC by 2^30 / 1e9 (7.4%): the sheet's figure is likely in GiB/s, not GB/s")
    if ratio < 0.70 and not (sparse_only and abs(ratio - 0.5) <= 0.06):
        flags.append("BELOW 70%: throttling, a low power mode or clocks below spec")
    return flags


def _telemetry_note(record: dict, row_kernel: str, row_dtype: str, shape) -> str:
    info = record.get("platform", {})
    for m in record.get("measurements", []):
        if m.get("kernel") == row_kernel and m.get("dtype") == row_dtype and m.get("shape") == shape:
            tel = m.get("telemetry") or {}
            parts = []
            for key, label, cap_key in (("sm_clock_mhz", "SM clock", "sm_clock_max_mhz"),
                                        ("gpu_clock_mhz", "GPU clock", "gpu_clock_max_mhz"),
                                        ("cpu_mhz_mean", "CPU clock", "freq_mhz_max"),
                                        ("power_w", "power", "power_limit_w"),
                                        ("gpu_temp_c", "temperature", None), ("cpu_temp_c", "temperature", None)):
                if key in tel:
                    cap = info.get(cap_key) if cap_key else None
                    parts.append(f"{label} median {tel[key]['median']:.0f}" + (f" of max {cap:.0f}" if cap else ""))
            mask = throttle.mask_of(tel.get("throttle_mask"))
            if mask is not None:
                parts.append("throttle reasons over the point: " + (", ".join(throttle.describe(mask)) if mask else "none"))
            return "; ".join(parts) or "no telemetry in the record"
    return "no telemetry in the record"


def validate(result, spec: Spec | None = None) -> list[dict]:
    """measured / spec for every ceiling of the analysis ``result`` that has a spec value, with flags a user can act
    on; on a CPU without a sheet, against the computed peak."""
    record = result.record
    rows = []
    if spec is None and result.info.get("kind") == "cpu":
        return cpu_validation(result)
    if spec is None:
        return rows
    info = record.get("platform") or {}
    factor, clock_note = mode_clock(spec, info)
    for dtype, ceiling in result.compute.items():
        value, field, sparse_only = _spec_value(spec, dtype)
        if value:
            value *= factor
            field = f"{field} {clock_note}".strip()
            ratio = ceiling.value / value
            flags = flags_for(ratio, sparse_only)
            if any(f.startswith("BELOW") for f in flags):
                flags.append("telemetry: " + _telemetry_note(record, ceiling.kernel, dtype, ceiling.shape))
            rows.append({"ceiling": dtype, "measured": ceiling.value, "spec": value, "ratio": ratio, "unit": ceiling.unit,
                         "spec_field": field, "flags": flags})
    bandwidth, bw_field = mode_bandwidth(spec, info)
    dram = result.memory.get("DRAM")
    if dram and bandwidth:
        ratio = dram.value / bandwidth
        flags = flags_for(ratio, False, bytes_figure=True)
        if any(f.startswith("BELOW") for f in flags):
            flags.append("telemetry: " + _telemetry_note(record, dram.kernel, dram.dtype, dram.shape))
        rows.append({"ceiling": "DRAM", "measured": dram.value, "spec": bandwidth, "ratio": ratio,
                     "unit": "B/s", "spec_field": bw_field, "flags": flags})
    hw = result.memory_hw.get("DRAM")
    if hw and bandwidth:
        ratio = hw.value / bandwidth
        rows.append({"ceiling": "DRAM hw", "measured": hw.value, "spec": bandwidth, "ratio": ratio,
                     "unit": "B/s", "spec_field": f"{bw_field} (vs the {hw.impl} {hw.kernel} kernel)",
                     "flags": flags_for(ratio, False, bytes_figure=True)})
    rows += pcie_rows(result, spec)
    for dtype, c in result.silicon.items():
        value, field, sparse_only = _spec_value(spec, dtype) if dtype != "fp64" else (
            (float(spec.compute("fp64")["dense"]) * 1e12, "compute_tflops.fp64.dense", False)
            if spec.compute("fp64") and "dense" in spec.compute("fp64") else (None, "", False))
        if value:
            value *= factor
            ratio = c.value / value
            rows.append({"ceiling": f"{dtype} FMA", "measured": c.value, "spec": value, "ratio": ratio,
                         "unit": c.unit, "spec_field": f"{field} (vs the {c.impl} FMA-chain kernel, no tensor cores)",
                         "flags": flags_for(ratio, sparse_only)})
    return rows


#: PCIe per-direction data rate per lane in GB/s after encoding (PCI-SIG base specifications: 8b/10b at gen 1-2,
#: 128b/130b at gen 3-5, FLIT at gen 6)
PCIE_LANE_GB_PER_S = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}
PINNED = (("h2d_pinned", "h2d pinned"), ("d2h_pinned", "d2h pinned"))


def link_seen(record: dict, ceiling) -> tuple[int | None, int | None]:
    """The PCIe generation and width the link reached during a transfer point (max of its telemetry samples: an
    idle link trains down, so the reading before the run says little)."""
    for m in record.get("measurements", []):
        if m.get("group") == "transfer" and m.get("kernel") == ceiling.kernel and m.get("size_bytes") == ceiling.size_bytes:
            tel = m.get("telemetry") or {}
            gen, width = (tel.get(k, {}).get("max") for k in ("pcie_gen", "pcie_width"))
            return (int(gen) if gen else None), (int(width) if width else None)
    return None, None


def pcie_rows(result, spec: Spec) -> list[dict]:
    """Pinned host->device and device->host copies against the sheet's host link (``links.pcie``, or
    ``links.nvlink_c2c`` on a Grace Hopper), per direction (the sheets give both directions added, as marketed),
    with the PCIe link the point ran on beside the link's maximum."""
    links = spec.data.get("links") or {}
    link_name = "nvlink_c2c" if links.get("nvlink_c2c") else "pcie"  # a Grace Hopper's host link is NVLink-C2C
    pcie = links.get(link_name) or {}
    per_direction = pcie.get("gb_per_s_per_direction") or (
        pcie["gb_per_s_bidirectional"] / 2 if pcie.get("gb_per_s_bidirectional") else None)
    record, info = result.record, result.info
    if not per_direction or info.get("unified_memory"):
        return []
    rows = []
    for kernel, label in PINNED:
        c = result.transfer.get(kernel)
        if not c:
            continue
        value = float(per_direction) * 1e9
        ratio = c.value / value
        flags = flags_for(ratio, False)
        gen, width = link_seen(record, c)
        sheet_gen, sheet_width = pcie.get("generation"), pcie.get("width")
        top_gen, top_width = info.get("pcie_gen_max"), info.get("pcie_width_max")
        seen = f"gen{gen} x{width}" if gen and width else "not read"
        link = f"link during the point {seen}; the link's maximum gen{top_gen} x{top_width} (NVML)" if top_gen else \
            f"link during the point {seen}"
        if gen and width and gen in PCIE_LANE_GB_PER_S:
            link += f", {PCIE_LANE_GB_PER_S[gen] * width:.4g} GB/s per direction after encoding"
        if sheet_gen and top_gen and int(top_gen) < int(sheet_gen):
            flags.append(f"the link tops out at gen{top_gen} here (host or slot), the sheet's figure is for "
                         f"gen{sheet_gen}: compare with the gen{top_gen} rate")
        elif gen and width and sheet_gen and (gen < int(sheet_gen) or (sheet_width and width < int(sheet_width))):
            flags.append(f"the link ran at gen{gen} x{width} during the point, below the sheet's gen{sheet_gen} "
                         f"x{sheet_width}: it did not train up (power saving, a riser, or a slot of fewer lanes)")
        rows.append({"ceiling": label, "measured": c.value, "spec": value, "ratio": ratio, "unit": "B/s",
                     "spec_field": f"links.{link_name} per direction ({link})", "flags": flags})
    return rows

