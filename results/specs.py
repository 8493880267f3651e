"""Vendor spec sheets: load, match to a detected device, and validate measured ceilings against them.

Sheets live in ``platforms/specs/*.yaml`` (one per device, every figure with its source and conditions); a user's
own sheet is passed with ``--spec FILE``. Pure Python + PyYAML: no torch, so records from any machine can be
validated anywhere. For CPUs no sheet is needed: the theoretical peak is computed from the detected machine.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from platforms import throttle
from platforms.cores import core_model, documented_clock, engine_rates  # the core-model table: platform knowledge

SPEC_DIR = Path(__file__).resolve().parent.parent / "platforms" / "specs"
SCHEMA = "roofline-spec/1"
GIB_OVER_GB = 1e9 / 2 ** 30  # 0.9313: a figure in GiB read as GB (or the reverse) lands here


class SpecError(ValueError):
    """A malformed sheet: the message names the file, the field and what is wrong."""


@dataclass
class Spec:
    path: str
    data: dict
    #: inconsistencies found when loading (sparse read as dense, a headline that disagrees with its own units x
    #: clock arithmetic, undeclared units): each names the field; shown wherever the sheet is used
    warnings: list = None

    def __post_init__(self):
        if self.warnings is None:
            self.warnings = []

    @property
    def name(self) -> str:
        return self.data["name"]

    def compute(self, dtype: str) -> dict | None:
        return (self.data.get("compute_tflops") or {}).get(dtype)

    @property
    def bandwidth_bytes_per_s(self) -> float | None:
        value = (self.data.get("memory") or {}).get("bandwidth_gb_per_s")
        return None if value is None else float(value) * 1e9


def _require(path, data: dict, field: str, kind, where: str = ""):
    if field not in data:
        raise SpecError(f"{path}: field '{where}{field}' is missing")
    if not isinstance(data[field], kind):
        raise SpecError(f"{path}: field '{where}{field}' must be {getattr(kind, '__name__', kind)}, "
                        f"got {type(data[field]).__name__} ({data[field]!r})")
    return data[field]


def load_spec(path: str | os.PathLike) -> Spec:
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text (byte {exc.start}); a spec sheet is a YAML file") from None
    try:
        try:
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: 8x faster
        except yaml.YAMLError:
            data = yaml.safe_load(text)  # the pure-Python parser's message names the line the way people count
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise SpecError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        raise SpecError(f"{path}: the file is empty; a spec sheet is a YAML mapping (the sheets in platforms/specs/ "
                        "show the fields)")
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec sheet is a YAML mapping, this file holds a YAML {type(data).__name__}")
    if data.get("schema") != SCHEMA:
        raise SpecError(f"{path}: field 'schema' must be {SCHEMA!r}, got {data.get('schema')!r}")
    _require(path, data, "name", str)
    source = _require(path, data, "source", dict)
    _require(path, source, "document", str, "source.")
    match = _require(path, data, "match", dict)
    if "name_regex" in match:
        try:
            re.compile(match["name_regex"])
        except re.error as exc:
            raise SpecError(f"{path}: field 'match.name_regex' is not a regular expression: {exc}") from exc
    for key in ("memory", "compute_tflops", "caches", "clocks", "power", "units"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise SpecError(f"{path}: field '{key}' must be a mapping, got {type(data[key]).__name__} ({data[key]!r})")
    memory = data.get("memory") or {}
    for key in ("size_gb", "bandwidth_gb_per_s"):
        if key in memory and not _positive(memory[key]):
            raise SpecError(f"{path}: field 'memory.{key}' must be a positive number, got {memory[key]!r}")
    for dtype, entry in (data.get("compute_tflops") or {}).items():
        if not isinstance(entry, dict) or not (set(FIGURE_KEYS) & set(entry)):
            raise SpecError(f"{path}: field 'compute_tflops.{dtype}' needs 'dense' and/or 'sparse' (TFLOP/s)")
        for key in FIGURE_KEYS:
            if key in entry and not _positive(entry[key]):
                raise SpecError(f"{path}: field 'compute_tflops.{dtype}.{key}' must be a positive number, "
                                f"got {entry[key]!r}")
    for field_name in ("sm_clock_max_mhz", "power_limit_w"):
        value = match.get(field_name)
        if value is not None and not (isinstance(value, list) and len(value) == 2 and all(map(_positive, value))
                                      and value[0] <= value[1]):
            raise SpecError(f"{path}: field 'match.{field_name}' must be [low, high] (two positive numbers), "
                            f"got {value!r}")
    return Spec(str(path), data, sheet_warnings(data))


#: figures a compute entry may give: dense / sparse (the device's headline), and on Jetson modules the GPU's own
#: dense / sparse figures (the module headline adds the DLAs)
FIGURE_KEYS = ("dense", "sparse", "gpu_dense", "gpu_sparse")
ISO_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


def sheet_warnings(data: dict) -> list[str]:
    """Checks a sheet's own arithmetic: sparse = 2 x dense; fp32 = CUDA cores x 2 FLOP x the clock it names; a
    figure's ``derived`` product (units x FLOP per clock x clock); declared units; ISO dates. A user's sheet with
    a sparse figure read as dense or a wrong clock is caught here, naming the field."""
    out = []
    compute = data.get("compute_tflops") or {}
    for dtype, entry in compute.items():
        for dense_key, sparse_key in (("dense", "sparse"), ("gpu_dense", "gpu_sparse")):
            if dense_key in entry and sparse_key in entry:
                ratio = float(entry[sparse_key]) / float(entry[dense_key])
                if abs(ratio - 2) > 0.04:
                    out.append(f"compute_tflops.{dtype}: {sparse_key} {entry[sparse_key]} is {ratio:.2f} x "
                               f"{dense_key} {entry[dense_key]}, not 2 x (2:4 sparsity doubles the dense rate)")
        derived = entry.get("derived")
        if isinstance(derived, dict):
            try:
                product = float(derived["units"]) * float(derived["flop_per_clock"]) * float(derived["clock_mhz"]) / 1e6
            except (KeyError, TypeError, ValueError):
                out.append(f"compute_tflops.{dtype}.derived needs units, flop_per_clock and clock_mhz")
            else:
                key = derived.get("figure", "dense")
                if key in entry:
                    out += _arithmetic_warning(f"compute_tflops.{dtype}.{key}", float(entry[key]), product,
                                               f"{derived['units']} x {derived['flop_per_clock']} FLOP/clock x "
                                               f"{derived['clock_mhz']} MHz")
    cores = (data.get("gpu") or {}).get("cuda_cores")
    clocks = data.get("clocks") or {}
    clock = clocks.get("fp32_peak_mhz") or clocks.get("boost_mhz") or clocks.get("gpu_max_mhz")
    fp32 = (compute.get("fp32") or {}).get("dense")
    if cores and clock and fp32:
        out += _arithmetic_warning("compute_tflops.fp32.dense", float(fp32), cores * 2 * clock / 1e6,
                                   f"gpu.cuda_cores {cores} x 2 FLOP x {clock} MHz")
    caches = data.get("caches") or {}
    if any(k.endswith("_mb") for k in caches) and "caches" not in (data.get("units") or {}):
        out.append("caches: sizes in '_mb' fields without units.caches: say MiB (2^20) or MB (1e6), or use '_mib'")
    out += _link_warnings(data.get("links") or {})
    date = str((data.get("source") or {}).get("date", ""))
    if date and not ISO_DATE.fullmatch(date):
        out.append(f"source.date {date!r} is not an ISO date (YYYY, YYYY-MM or YYYY-MM-DD)")
    return out


#: marketed PCIe x16 rates, both directions, GB/s (raw signalling: 8 GT/s per lane at gen 3, doubling per generation)
PCIE_X16_BIDIRECTIONAL_GB_PER_S = {3: 32, 4: 64, 5: 128, 6: 256}


def _link_warnings(links: dict) -> list[str]:
    """NVLink: per direction = half of both directions; PCIe: the marketed rate of its generation and width."""
    out = []
    nv = links.get("nvlink") or {}
    if "gb_per_s_bidirectional" in nv and "gb_per_s_per_direction" in nv:
        if abs(2 * float(nv["gb_per_s_per_direction"]) - float(nv["gb_per_s_bidirectional"])) > 0.01:
            out.append(f"links.nvlink: per direction {nv['gb_per_s_per_direction']} is not half of both directions "
                       f"{nv['gb_per_s_bidirectional']}")
    pcie = links.get("pcie") or {}
    gen, width, rate = pcie.get("generation"), pcie.get("width"), pcie.get("gb_per_s_bidirectional")
    if gen in PCIE_X16_BIDIRECTIONAL_GB_PER_S and width and rate:
        expect = PCIE_X16_BIDIRECTIONAL_GB_PER_S[gen] * float(width) / 16
        if abs(float(rate) / expect - 1) > 0.05:
            out.append(f"links.pcie: {rate} GB/s is not the {expect:g} GB/s of PCIe gen{gen} x{width} (both "
                       "directions)")
    return out


def _arithmetic_warning(field_name: str, figure: float, product: float, how: str) -> list[str]:
    ratio = figure / product
    if abs(ratio - 1) <= 0.03:
        return []
    hint = (" (twice the arithmetic: a sparse figure given as dense?)" if abs(ratio - 2) <= 0.06 else
            " (half the arithmetic: a dense figure where the clock or units are for a sparse one?)"
            if abs(ratio - 0.5) <= 0.03 else " (a different clock than the one named?)")
    return [f"{field_name} {figure:g} TFLOP/s disagrees with {how} = {product:.4g} TFLOP/s: {ratio:.2f}x{hint}"]


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and math.isfinite(value)


def load_all(directory: str | os.PathLike = SPEC_DIR) -> list[Spec]:
    return [load_spec(p) for p in sorted(Path(directory).glob("*.yaml"))]


def _memory_fits(marketed_gb: float, total_bytes: int | None) -> bool:
    if not total_bytes:
        return True
    gib, gb = total_bytes / 2 ** 30, total_bytes / 1e9
    return any(0.85 * marketed_gb <= v <= 1.1 * marketed_gb for v in (gib, gb))


#: hardware facts a sheet's ``match`` may give a [low, high] range for, and the record fields that hold them (the
#: first present is used): the board's default power limit before the enforced one, since an administrator's cap
#: does not make an SXM board a PCIe card
RANGE_FACTS = {"sm_clock_max_mhz": ("sm_clock_max_mhz",), "power_limit_w": ("power_limit_default_w", "power_limit_w")}
FACT_NAMES = {"memory_gb": "memory size", "model_regex": "board model (device tree)",
              "module_regex": "module part number (device tree)", "power_mode_regex": "power mode (nvpmodel)",
              "sm_clock_max_mhz": "max SM clock (NVML)",
              "power_limit_w": "default power limit (NVML)"}


def _norm_mode(mode: str) -> str:
    return re.sub(r"[\s_-]+", "", str(mode)).upper()


def mode_entry(spec: Spec, mode: str | None) -> dict | None:
    """The sheet's entry for a power mode ('MAXN SUPER' and 'MAXN_SUPER' are one mode)."""
    modes = spec.data.get("power_modes") or {}
    if not mode:
        return None
    return next((entry for name, entry in modes.items() if _norm_mode(name) == _norm_mode(mode)), None)


def _rule_check(spec: Spec, info: dict) -> tuple[bool, list[str], list[str]]:
    """(passes, facts that decided, facts the record lacks) for one sheet's match rule."""
    rule, name = spec.data["match"], info.get("name") or ""
    decided, unknown = [], []
    if "name_regex" in rule and not re.search(rule["name_regex"], name, re.IGNORECASE):
        return False, decided, unknown
    if "name_not_regex" in rule and re.search(rule["name_not_regex"], name, re.IGNORECASE):
        return False, decided, unknown
    decided.append("name")
    if "memory_gb" in rule:
        if not info.get("memory_bytes_total"):
            unknown.append("memory_gb")
        elif not _memory_fits(rule["memory_gb"], info.get("memory_bytes_total")):
            return False, decided, unknown
        else:
            decided.append("memory_gb")
    for key, field in (("model_regex", "board_model"), ("module_regex", "module_id"),
                       ("power_mode_regex", "power_mode")):
        if key not in rule:
            continue
        if key == "model_regex" and "module_regex" in rule and info.get("module_id"):
            continue  # the module's part number decides: a third-party carrier board names itself, not the module
        value = info.get(field)
        if not value:
            unknown.append(key)
        elif not re.search(rule[key], value, re.IGNORECASE):
            return False, decided, unknown
        else:
            decided.append(key)
    if spec.data.get("power_modes") and info.get("power_mode") and mode_entry(spec, info["power_mode"]) is None:
        return False, decided, unknown  # a mode this module's firmware does not have (the sheets list nvpmodel's)
    if "power_mode_not_regex" in rule and info.get("power_mode") and \
            re.search(rule["power_mode_not_regex"], info["power_mode"], re.IGNORECASE):
        return False, decided, unknown  # e.g. a Super firmware's mode on a sheet for the original firmware
    for key, fields in RANGE_FACTS.items():
        if key not in rule:
            continue
        low, high = rule[key]
        value = next((info[f] for f in fields if info.get(f)), None)
        if value is None:
            unknown.append(key)
        elif not low <= float(value) <= high:
            return False, decided, unknown
        else:
            decided.append(key)
    return True, decided, unknown


def _mode_clock_fits(spec: Spec, info: dict) -> bool | None:
    """Does the recorded GPU clock cap (devfreq max, set by the power mode) equal this sheet's clock for the mode?"""
    entry = mode_entry(spec, info.get("power_mode"))
    cap = info.get("gpu_clock_max_mhz")
    if not entry or not cap or not entry.get("gpu_max_mhz"):
        return None
    return abs(float(cap) / float(entry["gpu_max_mhz"]) - 1) <= 0.01  # devfreq reports the cap exactly (612 vs 625)


def match(info: dict, specs: list[Spec]) -> tuple[Spec | None, list[Spec], str]:
    """The sheet for a detected device: (spec or None, all candidates, a sentence saying how it was decided).

    Every rule a sheet gives is checked against what the device reported (name, memory, NVML's max SM clock and
    default power limit, the Jetson module part number and power mode); a rule whose fact the record lacks cannot
    exclude a sheet, so two sheets apart only by such a rule come back as "ambiguous", naming the missing fact."""
    name = info.get("name") or ""
    passed = []
    for spec in specs:
        ok, decided, unknown = _rule_check(spec, info)
        if ok:
            passed.append((spec, decided, unknown))
    if len(passed) > 1:  # Jetson: two firmwares' sheets share a mode name (15W); the mode's GPU clock cap may decide
        fits = [(p, _mode_clock_fits(p[0], info)) for p in passed]
        if sum(1 for _p, f in fits if f) == 1:
            passed = [p for p, f in fits if f]
            passed[0][1].append("the power mode's GPU clock cap (devfreq) equal to the sheet's for that mode")
    candidates = [p[0] for p in passed]
    if len(passed) == 1:
        spec, decided, unknown = passed[0]
        how = ", ".join(FACT_NAMES.get(d, d) for d in decided)
        lacking = f" (the record lacks {', '.join(FACT_NAMES.get(u, u) for u in unknown)})" if unknown else ""
        return spec, candidates, f"matched {spec.name} by {how}{lacking}"
    if not passed:
        return None, [], f"no spec sheet matches {name!r}; pass --spec FILE with your own"
    names = ", ".join(c.name for c in candidates)
    lacking = sorted({FACT_NAMES.get(u, u) for _s, _d, unknown in passed for u in unknown})
    why = f"; the record lacks {', '.join(lacking)}, which tells them apart" if lacking else ""
    return None, candidates, f"ambiguous: {name!r} matches {len(candidates)} sheets: candidates {names}{why}; pass --spec FILE"


# ---- CPU: a theoretical peak from the detected machine --------------------------------------------------------
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


def clean_silicon(result: dict) -> dict[str, float]:
    """The silicon ceilings' rates from clean points (all of them where none is clean): what the effective clock
    is computed from."""
    silicon = result.get("silicon") or {}  # figures below their GEMM are already left out (roofline.analyse)
    clean = {d: c.value for d, c in silicon.items() if not c.disturbed}
    return clean or {d: c.value for d, c in silicon.items()}


def cpu_validation(record: dict, result: dict) -> list[dict]:
    """Measured / theoretical for the CPU: the GEMM and the silicon kernels per dtype against cores x FLOP per cycle x
    a clock that is not derived from them (cpu_theoretical), so no ratio holds by construction."""
    info = record["platform"]
    theory = cpu_theoretical(info, clean_silicon(result))
    silicon = result.get("silicon") or {}
    rows = []
    for dtype in ("fp32", "fp64", "bf16", "int8", "fp16"):
        peak = theory.get(f"{dtype}_flop_per_s")
        if not peak:
            continue
        engine = (theory.get("engines") or {}).get(dtype)
        units = f"{engine['kernel']} engine" if engine and dtype not in ("fp32", "fp64") else "FMA"
        below = (result.get("silicon_below_gemm") or {}).get(dtype)
        chip = silicon.get(dtype) or (below or {}).get("ceiling")
        for kind, ceiling in (("GEMM", result["compute"].get(dtype)), (units, chip)):
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


def effective_clock_lines(record: dict, result: dict | None = None) -> list[str]:
    """The clock the FMA chains imply, as information beside the spec check (never the basis of a printed ratio)."""
    from results.roofline import analyse

    if record.get("platform", {}).get("kind") != "cpu":
        return []
    result = result or analyse(record)
    theory = cpu_theoretical(record["platform"], clean_silicon(result))
    if not theory.get("effective_mhz"):
        return []
    parts = ", ".join(f"{d} {mhz:.0f} MHz" for d, mhz in sorted(theory["implied_mhz"].items()))
    lines = [f"  effective clock (information): {theory['effective_mhz']:.0f} MHz, the highest the FMA chains imply "
             f"({parts}; {theory['core']}, {theory['flop_per_cycle']['fp32']} fp32 FLOP/cycle)"]
    if theory.get("clock_spread_flag"):
        lines.append(f"  ! {theory['clock_spread_flag']}")
    return lines


# ---- validation ---------------------------------------------------------------------------------------------
def _spec_value(spec: Spec, dtype: str) -> tuple[float | None, str, bool]:
    """(FLOP/s, which field, listed-only-with-sparsity) for a measured GEMM dtype. A Jetson module's GPU-only
    dense figure comes first: the module headline adds the DLAs, which no GPU kernel can reach."""
    keys = ["fp64_tensor", "fp64"] if dtype == "fp64" else [dtype]
    best = None
    for key in keys:
        entry = spec.compute(key)
        if not entry:
            continue
        for figure, sparse in (("gpu_dense", False), ("dense", False), ("gpu_sparse", True), ("sparse", True)):
            if figure in entry:
                value = (float(entry[figure]) * 1e12, f"compute_tflops.{key}.{figure}", sparse)
                break
        if best is None or value[0] > best[0]:
            best = value
    return best if best else (None, "", False)


def mode_clock(spec: Spec, info: dict) -> tuple[float, str]:
    """(factor, note) that scales a Jetson sheet's compute figures, computed for all ``gpu.sms`` SMs at
    ``clocks.gpu_max_mhz``, to what the power mode leaves on: the GPU clock (the cap the record read from devfreq,
    else the sheet's entry for the mode) times the SMs the mode keeps powered (nvpmodel's TPC power gating: an
    Orin NX at 10W or 15W runs 4 of its 8 SMs), so compute scales by SMs x clock."""
    ref = (spec.data.get("clocks") or {}).get("gpu_max_mhz")
    if spec.data.get("kind") != "jetson" or not ref:
        return 1.0, ""
    mode = info.get("power_mode")
    entry = mode_entry(spec, mode) or {}
    full_sms = (spec.data.get("gpu") or {}).get("sms")
    sms = entry.get("sms")
    sm_factor, sm_note = 1.0, ""
    if sms and full_sms and int(sms) != int(full_sms):
        sm_factor, sm_note = float(sms) / float(full_sms), f" x {sms}/{full_sms} SMs (power mode {mode}: TPC power gating)"
    cap, which = info.get("gpu_clock_max_mhz"), "the GPU clock cap the record read (devfreq max)"
    if not cap:
        cap, which = entry.get("gpu_max_mhz"), f"the sheet's GPU clock for power mode {mode}"
    if not cap:
        return sm_factor, f"at the sheet's {ref:g} MHz (the record has no GPU clock cap or power mode){sm_note}"
    return float(cap) / float(ref) * sm_factor, (f"x {float(cap):g}/{ref:g} MHz ({which}"
                                                 f"{', mode ' + str(mode) if mode else ''}){sm_note}")


def mode_bandwidth(spec: Spec, info: dict) -> tuple[float | None, str]:
    entry = mode_entry(spec, info.get("power_mode")) or {}
    if entry.get("bandwidth_gb_per_s"):
        return float(entry["bandwidth_gb_per_s"]) * 1e9, f"power_modes.{info.get('power_mode')}.bandwidth_gb_per_s"
    return spec.bandwidth_bytes_per_s, "memory.bandwidth_gb_per_s"


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


def validate(record: dict, spec: Spec | None = None, result: dict | None = None) -> list[dict]:
    """measured / spec for every ceiling that has a spec value, with flags a user can act on."""
    from results.roofline import analyse

    result = result or analyse(record)  # callers that already hold the analysis pass it
    rows = []
    if spec is None and record.get("platform", {}).get("kind") == "cpu":
        return cpu_validation(record, result)
    if spec is None:
        return rows
    info = record.get("platform") or {}
    factor, clock_note = mode_clock(spec, info)
    for dtype, ceiling in result["compute"].items():
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
    dram = result["memory"].get("DRAM")
    if dram and bandwidth:
        ratio = dram.value / bandwidth
        flags = flags_for(ratio, False, bytes_figure=True)
        if any(f.startswith("BELOW") for f in flags):
            flags.append("telemetry: " + _telemetry_note(record, dram.kernel, dram.dtype, dram.shape))
        rows.append({"ceiling": "DRAM", "measured": dram.value, "spec": bandwidth, "ratio": ratio,
                     "unit": "B/s", "spec_field": bw_field, "flags": flags})
    hw = (result.get("memory_hw") or {}).get("DRAM")
    if hw and bandwidth:
        ratio = hw.value / bandwidth
        rows.append({"ceiling": "DRAM hw", "measured": hw.value, "spec": bandwidth, "ratio": ratio,
                     "unit": "B/s", "spec_field": f"{bw_field} (vs the {hw.impl} {hw.kernel} kernel)",
                     "flags": flags_for(ratio, False, bytes_figure=True)})
    rows += pcie_rows(record, spec, result)
    for dtype, c in (result.get("silicon") or {}).items():
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


def pcie_rows(record: dict, spec: Spec, result: dict) -> list[dict]:
    """Pinned host->device and device->host copies against the sheet's host link (``links.pcie``, or
    ``links.nvlink_c2c`` on a Grace Hopper), per direction (the sheets give both directions added, as marketed),
    with the PCIe link the point ran on beside the link's maximum."""
    links = spec.data.get("links") or {}
    link_name = "nvlink_c2c" if links.get("nvlink_c2c") else "pcie"  # a Grace Hopper's host link is NVLink-C2C
    pcie = links.get(link_name) or {}
    per_direction = pcie.get("gb_per_s_per_direction") or (
        pcie["gb_per_s_bidirectional"] / 2 if pcie.get("gb_per_s_bidirectional") else None)
    info = record.get("platform") or {}
    if not per_direction or info.get("unified_memory"):
        return []
    rows = []
    for kernel, label in PINNED:
        c = result["transfer"].get(kernel)
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


def spec_for_record(record: dict, spec_path: str | None = None) -> tuple[Spec | None, str]:
    """The user's sheet if given, else the matching bundled sheet (None for CPUs and unmatched devices)."""
    if spec_path:
        spec = load_spec(spec_path)
        return spec, f"user sheet {spec_path}"
    if record.get("platform", {}).get("kind") == "cpu":
        return None, "CPU: theoretical peak computed from the detected machine"
    spec, _, how = match(record.get("platform", {}), load_all())
    return spec, how
