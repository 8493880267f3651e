"""What a CPU core can do per cycle, and at what clock: the core-model table behind the CPU's theoretical peak.

Platform knowledge, pure Python (``results/`` uses it on records from any machine, without torch):

* :func:`core_model`: FMA pipes and widths per core from the vendor, CPUID family/model and flags (fp32, fp64);
* :data:`ENGINES`: the matrix and dot-product engines (AMX tiles, AVX512-BF16, VNNI, Arm dot products) per cycle per
  core, each entry with its source, chosen from the flags a record holds (:func:`engine_rates`);
* :data:`DOCUMENTED_CLOCKS`: base and maximum turbo clocks of common server parts from the vendors' product pages,
  matched on the model string (:func:`documented_clock`), so a theoretical peak need not come from the OS's clock
  (often the nominal one under a hypervisor) nor from the measurement it is compared with.
"""
from __future__ import annotations

import re


def core_model(info: dict) -> dict:
    """FMA pipes and their width per core, from the vendor, CPUID family/model and flags the record holds.

    A table of what the vendors document, every entry an assumption where parts of one family differ (stated in
    ``assumption``). Under a hypervisor the family/model can be a generic one (KVM's "EPYC" is family 23 model 1
    whatever the host is): the effective clock derived from it is then only as right as this guess."""
    flags = set(info.get("simd_flags") or [])
    vendor = str(info.get("vendor") or "")
    family, model = info.get("cpu_family"), info.get("cpu_model")
    name = info.get("name") or ""
    arch = str(info.get("arch") or "")
    amd = vendor == "AuthenticAMD" or re.search(r"AMD|EPYC|Ryzen", name, re.IGNORECASE)
    arm = arch in ("aarch64", "arm64") or vendor.startswith("0x") or bool({"asimd", "neon", "sve"} & flags)
    core, pipes, bits, note = None, 2, 128, ""
    if amd and family == 23:
        if model is not None and model >= 0x30:
            core, bits = "Zen 2", 256
        else:
            core, bits = "Zen / Zen+", 128
            note = "Zen and Zen+ split each 256-bit FMA into two on 2 x 128-bit pipes"
    elif amd and family == 25:
        zen4 = model is not None and (0x10 <= model <= 0x1F or 0x60 <= model <= 0x7F or 0xA0 <= model <= 0xAF)
        core, bits = ("Zen 4", 256) if zen4 or "avx512f" in flags else ("Zen 3", 256)
        if core == "Zen 4":
            note = "Zen 4 runs AVX-512 on 2 x 256-bit FMA pipes"
    elif amd and family == 26:
        core, bits = "Zen 5", 512 if "avx512f" in flags else 256
        note = "EPYC/desktop Zen 5 has 2 full 512-bit FMA pipes (mobile Zen 5 parts have 256-bit ones)"
    elif amd and family is None:  # records made before the family was kept: the old rule, said as such
        core, bits = "AMD (CPU family not recorded)", 256 if ({"avx2", "avx", "avx512f"} & flags) else 128
        note = "assumed 2 x 256-bit FMA pipes (Zen 2 to Zen 4); Zen 5 has 512-bit ones, Zen/Zen+ 128-bit"
    elif vendor == "GenuineIntel" or re.search(r"Intel|Xeon", name, re.IGNORECASE):
        if "avx512f" in flags:
            core, bits = "Intel with AVX-512", 512
            note = "2 x 512-bit FMA units (Xeon Scalable Gold/Platinum and later; some parts have one)"
        elif "fma" in flags:
            core, bits = "Intel with AVX2/FMA", 256
        elif "avx" in flags:
            core, bits, pipes = "Intel AVX without FMA", 256, 1
            note = "no FMA: one 256-bit multiply and one add per cycle, counted as 1 FMA pipe"
    elif arm:
        part = model if isinstance(model, int) else None
        arm_cores = {0xD0C: ("Neoverse N1", 2, 128), 0xD40: ("Neoverse V1", 2, 256), 0xD4F: ("Neoverse V2", 4, 128),
                     0xD42: ("Cortex-A78AE", 2, 128), 0xD41: ("Cortex-A78", 2, 128), 0xD49: ("Neoverse N2", 2, 128)}
        if part in arm_cores:
            core, pipes, bits = arm_cores[part]
            note = {"Neoverse N1": "Arm Neoverse N1 Software Optimization Guide: 2 x 128-bit FP/ASIMD pipes",
                    "Neoverse N2": "Arm Neoverse N2 Software Optimization Guide: 2 x 128-bit FP/ASIMD pipes",
                    "Neoverse V1": "Graviton 3; Arm Neoverse V1 Software Optimization Guide: 2 x 256-bit SVE pipes "
                                   "(4 x 128-bit for NEON)",
                    "Neoverse V2": "Graviton 4 / Grace; Arm Neoverse V2 Software Optimization Guide: 4 x 128-bit "
                                   "FP/SIMD pipes",
                    "Cortex-A78": "Arm Cortex-A78 Software Optimization Guide: 2 x 128-bit FP/ASIMD pipes",
                    "Cortex-A78AE": "Jetson Orin's cores; Arm Cortex-A78AE (as A78) Software Optimization Guide: "
                                    "2 x 128-bit FP/ASIMD pipes"}[core]
            if core == "Neoverse V1" and "sve" not in flags:
                bits, pipes = 128, 4
        else:
            core = f"Arm core (part {hex(part) if part is not None else '?'})"
            note = "2 x 128-bit NEON FMA pipes assumed"
    if core is None:  # anything else: from the widest vector flag, 2 pipes assumed
        bits = 512 if "avx512f" in flags else 256 if ("avx2" in flags or "avx" in flags) else 128
        core = f"unknown core ({vendor or '?'} family {family} model {model})"
        note = "2 FMA pipes of the widest vector width assumed"
    assumption = f"{core}: {pipes} x {bits}-bit FMA per core" + (f" ({note})" if note else "")
    if info.get("hypervisor"):
        assumption += "; a VM: the family/model may be a generic one the hypervisor shows"
    return {"core": core, "fma_pipes": pipes, "fma_bits": bits, "assumption": assumption,
            "flop_per_cycle": {"fp32": pipes * bits // 32 * 2, "fp64": pipes * bits // 64 * 2}}


#: Matrix / dot-product engines: (kernel the suite runs, dtype, CPU flags needed, FLOP (int8: OP) per cycle per core,
#: source). FLOPs = 2 per multiply-add, as for a GEMM.
INTEL_AMX = ("Intel: 4th Gen Xeon Scalable (Sapphire Rapids) AMX does 2048 INT8 or 1024 BF16 operations per cycle "
             "per core (Intel AMX overview and Optimization Reference Manual: one 16x16x32 BF16 / 16x16x64 INT8 tile "
             "multiply per 16 cycles); Emerald and Granite Rapids keep the same TMUL")
ENGINES = (
    ("amx", "bf16", ("amx_tile", "amx_bf16"), 1024, INTEL_AMX),
    ("amx", "int8", ("amx_tile", "amx_int8"), 2048, INTEL_AMX),
    ("amx", "fp16", ("amx_tile", "amx_fp16"), 1024, INTEL_AMX + "; AMX-FP16 (Granite Rapids) at the BF16 rate"),
    ("dot", "bf16", ("avx512_bf16",), None,
     "VDPBF16PS: 32 bf16 products per zmm instruction; its rate per cycle differs by core (measured on this project's "
     "Emerald Rapids VM, 2026-12-01: one instruction per 2 cycles, 32 FLOP/cycle): no documented figure is assumed"),
    ("vnni", "int8", ("avx512_vnni",), None,
     "VPDPBUSD: 64 u8 x s8 products per zmm instruction; measured on this project's Emerald Rapids VM (2026-12-01) "
     "at about one per cycle (128 OP/cycle): no documented figure is assumed"),
)


def engine_rates(info: dict) -> dict[str, dict]:
    """Per dtype, the fastest engine the record's flags show: {dtype: {kernel, op_per_cycle, source}}."""
    flags = set(info.get("simd_flags") or [])
    out: dict[str, dict] = {}
    for kernel, dtype, need, per_cycle, source in ENGINES:
        if set(need) <= flags and dtype not in out:
            out[dtype] = {"kernel": kernel, "op_per_cycle": per_cycle, "source": source}
    return out


#: model-string pattern -> (base MHz, max turbo MHz, source). The maximum turbo holds for one or a few cores; all cores
#: under wide vector or tile work run below it, so a peak computed at it is an upper bound.
DOCUMENTED_CLOCKS = (
    (r"EPYC 7601\b", 2200, 3200, "AMD EPYC 7601 product page: base 2.2 GHz, max boost 3.2 GHz"),
    (r"EPYC 7742\b", 2250, 3400, "AMD EPYC 7742 product page: base 2.25 GHz, max boost 3.4 GHz"),
    (r"EPYC 7763\b", 2450, 3500, "AMD EPYC 7763 product page: base 2.45 GHz, max boost 3.5 GHz"),
    (r"EPYC 9654\b", 2400, 3700, "AMD EPYC 9654 product page: base 2.4 GHz, max boost 3.7 GHz"),
    (r"EPYC 9755\b", 2700, 4100, "AMD EPYC 9755 product page: base 2.7 GHz, max boost 4.1 GHz"),
    (r"Platinum 8380\b", 2300, 3400, "Intel ark, Xeon Platinum 8380: base 2.30 GHz, max turbo 3.40 GHz"),
    (r"Platinum 8480\+", 2000, 3800, "Intel ark, Xeon Platinum 8480+: base 2.00 GHz, max turbo 3.80 GHz"),
    (r"Platinum 8592\+", 1900, 3900, "Intel ark, Xeon Platinum 8592+: base 1.90 GHz, max turbo 3.90 GHz"),
)


def documented_clock(name: str | None) -> dict | None:
    """The documented clocks of a CPU model string from :data:`DOCUMENTED_CLOCKS` (None: not in the table; a VM often
    shows a generic name such as "Intel(R) Xeon(R) Processor")."""
    for pattern, base, turbo, source in DOCUMENTED_CLOCKS:
        if re.search(pattern, name or ""):
            return {"base_mhz": base, "max_mhz": turbo, "source": source}
    return None
