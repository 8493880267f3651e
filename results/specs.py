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
from typing import Any

from platforms import throttle

SPEC_DIR = Path(__file__).resolve().parent.parent / "platforms" / "specs"
SCHEMA = "roofline-spec/1"
GIB_OVER_GB = 1e9 / 2 ** 30  # 0.9313: a figure in GiB read as GB (or the reverse) lands here


class SpecError(ValueError):
    """A malformed sheet: the message names the file, the field and what is wrong."""


@dataclass
class Spec:
    path: str
    data: dict

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
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise SpecError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec sheet is a YAML mapping, this file holds {type(data).__name__}")
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
        if not isinstance(entry, dict) or not ({"dense", "sparse"} & set(entry)):
            raise SpecError(f"{path}: field 'compute_tflops.{dtype}' needs 'dense' and/or 'sparse' (TFLOP/s)")
        for key in ("dense", "sparse"):
            if key in entry and not _positive(entry[key]):
                raise SpecError(f"{path}: field 'compute_tflops.{dtype}.{key}' must be a positive number, "
                                f"got {entry[key]!r}")
    return Spec(str(path), data)


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and math.isfinite(value)


def load_all(directory: str | os.PathLike = SPEC_DIR) -> list[Spec]:
    return [load_spec(p) for p in sorted(Path(directory).glob("*.yaml"))]


def _memory_fits(marketed_gb: float, total_bytes: int | None) -> bool:
    if not total_bytes:
        return True
    gib, gb = total_bytes / 2 ** 30, total_bytes / 1e9
    return any(0.85 * marketed_gb <= v <= 1.1 * marketed_gb for v in (gib, gb))


def match(info: dict, specs: list[Spec]) -> tuple[Spec | None, list[Spec], str]:
    """The sheet for a detected device: (spec or None, all candidates, a sentence saying how it was decided)."""
    name = info.get("name") or ""
    candidates = []
    for spec in specs:
        rule = spec.data["match"]
        if "name_regex" in rule and not re.search(rule["name_regex"], name, re.IGNORECASE):
            continue
        if "memory_gb" in rule and not _memory_fits(rule["memory_gb"], info.get("memory_bytes_total")):
            continue
        model = info.get("board_model")
        if model and "model_regex" in rule and not re.search(rule["model_regex"], model, re.IGNORECASE):
            continue
        mode = info.get("power_mode")
        if mode and "power_mode_regex" in rule and not re.search(rule["power_mode_regex"], mode, re.IGNORECASE):
            continue
        candidates.append(spec)
    if len(candidates) == 1:
        return candidates[0], candidates, f"matched {candidates[0].name} by name and memory size"
    if not candidates:
        return None, [], f"no spec sheet matches {name!r}; pass --spec FILE with your own"
    names = ", ".join(c.name for c in candidates)
    return None, candidates, f"ambiguous: {name!r} matches {len(candidates)} sheets ({names}); pass --spec FILE"


# ---- CPU: a theoretical peak from the detected machine --------------------------------------------------------
def cpu_theoretical(info: dict) -> dict:
    """cores x FMA pipes x SIMD lanes x 2 FLOP x frequency, for fp32 and fp64, with every assumption named."""
    flags = set(info.get("simd_flags") or [])
    if "avx512f" in flags:
        bits = 512
    elif "avx2" in flags or "avx" in flags:
        bits = 256
    else:
        bits = 128  # SSE / NEON / ASIMD
    name = info.get("name") or ""
    pipes, note = 2, "2 FMA pipes per core (assumed: true of recent x86 and Arm server cores)"
    if bits == 512 and re.search(r"AMD|EPYC|Ryzen", name, re.IGNORECASE):
        bits, note = 256, "AMD Zen 4 runs AVX-512 on 2 x 256-bit FMA pipes (assumed from the vendor name)"
    mhz = info.get("freq_mhz_max") or info.get("freq_mhz_current")
    which = "maximum" if info.get("freq_mhz_max") else "current (the OS reports no maximum; boost may exceed it)"
    machine_cores = info.get("physical_cores") or info.get("logical_cores") or 1
    threads = info.get("torch_threads")
    cores = min(machine_cores, threads) if threads else machine_cores  # the peak of the cores the run could use
    out = {"cores": cores, "machine_cores": machine_cores, "threads": threads, "simd_bits": bits, "fma_pipes": pipes,
           "freq_mhz": mhz, "freq_kind": which, "assumption": note}
    if mhz:
        for dtype, width in (("fp32", 32), ("fp64", 64)):
            out[f"{dtype}_flop_per_s"] = cores * pipes * (bits // width) * 2 * mhz * 1e6
    return out


# ---- validation ---------------------------------------------------------------------------------------------
def _spec_value(spec: Spec, dtype: str) -> tuple[float | None, str, bool]:
    """(FLOP/s, which field, listed-only-with-sparsity) for a measured GEMM dtype."""
    keys = ["fp64_tensor", "fp64"] if dtype == "fp64" else [dtype]
    best = None
    for key in keys:
        entry = spec.compute(key)
        if not entry:
            continue
        if "dense" in entry:
            value = (float(entry["dense"]) * 1e12, f"compute_tflops.{key}.dense", False)
        else:
            value = (float(entry["sparse"]) * 1e12, f"compute_tflops.{key}.sparse", True)
        if best is None or value[0] > best[0]:
            best = value
    return best if best else (None, "", False)


def flags_for(ratio: float, sparse_only: bool) -> list[str]:
    flags = []
    if ratio > 1.0:
        flags.append("ABOVE SPEC: the sheet's clock may be lower than the boost clock reached, or the sheet is wrong")
    if sparse_only and abs(ratio - 0.5) <= 0.06:
        flags.append("~50% of a figure the sheet lists only WITH SPARSITY: likely a sparse figure read as dense")
    if abs(ratio - GIB_OVER_GB) <= 0.005:  # tight: 91-93% of a bandwidth sheet is also a common honest result
        flags.append("~93% (= 1e9 / 2^30): likely GB vs GiB mixed up between the sheet and the measurement")
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


def validate(record: dict, spec: Spec | None = None) -> list[dict]:
    """measured / spec for every ceiling that has a spec value, with flags a user can act on."""
    from results.roofline import analyse

    result = analyse(record)
    rows = []
    if spec is None and record.get("platform", {}).get("kind") == "cpu":
        theory = cpu_theoretical(record["platform"])
        for dtype in ("fp32", "fp64"):
            ceiling = result["compute"].get(dtype)
            peak = theory.get(f"{dtype}_flop_per_s")
            if ceiling and peak:
                ratio = ceiling.value / peak
                rows.append({"ceiling": dtype, "measured": ceiling.value, "spec": peak, "ratio": ratio, "unit": "FLOP/s",
                             "spec_field": (f"computed: {theory['cores']} cores"
                                            + (f" (the {theory['threads']} torch threads of {theory['machine_cores']})"
                                               if theory["cores"] < theory["machine_cores"] else "")
                                            + f" x {theory['fma_pipes']} FMA x "
                                            f"{theory['simd_bits'] // (32 if dtype == 'fp32' else 64)} lanes x 2 x "
                                            f"{theory['freq_mhz']:.0f} MHz ({theory['freq_kind']}); {theory['assumption']}"),
                             "flags": flags_for(ratio, False)})
        return rows
    if spec is None:
        return rows
    for dtype, ceiling in result["compute"].items():
        value, field, sparse_only = _spec_value(spec, dtype)
        if value:
            ratio = ceiling.value / value
            flags = flags_for(ratio, sparse_only)
            if any(f.startswith("BELOW") for f in flags):
                flags.append("telemetry: " + _telemetry_note(record, ceiling.kernel, dtype, ceiling.shape))
            rows.append({"ceiling": dtype, "measured": ceiling.value, "spec": value, "ratio": ratio, "unit": ceiling.unit,
                         "spec_field": field, "flags": flags})
    dram = result["memory"].get("DRAM")
    if dram and spec.bandwidth_bytes_per_s:
        ratio = dram.value / spec.bandwidth_bytes_per_s
        flags = flags_for(ratio, False)
        if any(f.startswith("BELOW") for f in flags):
            flags.append("telemetry: " + _telemetry_note(record, dram.kernel, dram.dtype, dram.shape))
        rows.append({"ceiling": "DRAM", "measured": dram.value, "spec": spec.bandwidth_bytes_per_s, "ratio": ratio,
                     "unit": "B/s", "spec_field": "memory.bandwidth_gb_per_s", "flags": flags})
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
