"""Vendor spec sheets: load, check and match them to a detected device (the check of measured ceilings against a
sheet, or a CPU's computed peak, is results/speccheck.py).

Sheets live in ``platforms/specs/*.yaml`` (one per device, every figure with its source and conditions); a user's
own sheet is passed with ``--spec FILE``. Pure Python + PyYAML: no torch, so records from any machine can be
validated anywhere. For CPUs no sheet is needed: the theoretical peak is computed from the detected machine.
"""
from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

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
    """Every sheet in ``directory``, parsed once while its files are unchanged (each record's analysis matches its
    device against them: a summary with its run-to-run history analyses up to ten records)."""
    files = sorted(Path(directory).glob("*.yaml"))
    return list(_parsed(tuple((os.fspath(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)))


@functools.lru_cache(maxsize=8)
def _parsed(files: tuple) -> tuple[Spec, ...]:
    return tuple(load_spec(path) for path, _mtime, _size in files)


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


def spec_for_record(record: dict, spec_path: str | None = None) -> tuple[Spec | None, str]:
    """The user's sheet if given, else the matching bundled sheet (None for CPUs and unmatched devices)."""
    if spec_path:
        spec = load_spec(spec_path)
        return spec, f"user sheet {spec_path}"
    if record.get("platform", {}).get("kind") == "cpu":
        return None, "CPU: theoretical peak computed from the detected machine"
    spec, _, how = match(record.get("platform", {}), load_all())
    return spec, how
