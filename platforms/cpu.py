"""The host CPU: facts from /proc/cpuinfo, sysfs and psutil; perf_counter timing; psutil telemetry."""
from __future__ import annotations

import os
import platform as _pyplatform
import re
from pathlib import Path
from typing import Any

import psutil

from platforms.base import CacheLevel, Platform

SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "avx512_fp16",
              "avx512_vnni", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "amx_fp16", "neon", "asimd", "sve",
              "sve2", "bf16", "i8mm")


def parse_size(text: str) -> int:
    """'32K' / '1024K' / '32 MiB' / '2M' -> bytes (sysfs and lscpu use binary units)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"cannot read a cache size from {text!r}")
    scale = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[match.group(2).upper()]
    return int(float(match.group(1)) * scale)


def _cpu_list_len(text: str) -> int:
    count = 0
    for part in text.strip().split(","):
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-")
            count += int(hi) - int(lo) + 1
        else:
            count += 1
    return count


def read_sysfs_caches(root: str | os.PathLike = "/sys/devices/system/cpu/cpu0/cache",
                      n_cpus: int | None = None) -> list[CacheLevel]:
    """Data/unified cache levels of cpu0 from sysfs, smallest first (instruction caches are left out)."""
    root = Path(root)
    levels = []
    n_cpus = n_cpus or os.cpu_count() or 1
    for index in sorted(root.glob("index*")):
        try:
            kind = (index / "type").read_text().strip()
            if kind == "Instruction":
                continue
            level = int((index / "level").read_text())
            size = parse_size((index / "size").read_text())
            sharing = _cpu_list_len((index / "shared_cpu_list").read_text()) if (index / "shared_cpu_list").exists() else 1
        except (OSError, ValueError):
            continue
        levels.append(CacheLevel(name=f"L{level}", size_bytes=size, instances=max(1, n_cpus // max(sharing, 1)),
                                 shared=sharing >= n_cpus, source=f"sysfs {index}"))
    return sorted(levels, key=lambda c: c.size_bytes)


def read_cpuinfo(path: str = "/proc/cpuinfo") -> dict[str, Any]:
    """Model name and SIMD flags (x86 'flags', Arm 'Features')."""
    out: dict[str, Any] = {"name": _pyplatform.processor() or _pyplatform.machine(), "flags": []}
    try:
        text = Path(path).read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and value.strip():
            out["name"] = value.strip()
        elif key in ("vendor_id", "cpu implementer") and "vendor" not in out:
            out["vendor"] = value.strip()
        elif key in ("cpu family", "cpu architecture") and "family" not in out:
            out["family"] = _int(value)
        elif key in ("model", "cpu part") and "model" not in out:
            out["model"] = _int(value)
        elif key in ("flags", "features") and not out["flags"]:
            flags = set(value.split())
            out["flags"] = [f for f in SIMD_FLAGS if f in flags]
            out["hypervisor"] = "hypervisor" in flags
    return out


def _int(text: str) -> int | None:
    try:
        return int(text.strip(), 0)
    except ValueError:
        return None


def blas_libraries() -> list[dict[str, Any]]:
    """The BLAS/OpenMP libraries loaded in this process, as threadpoolctl reads them (numpy's OpenBLAS with its
    kernel "architecture", MKL, BLIS, and the OpenMP runtimes), after importing numpy so its BLAS is loaded."""
    try:
        import numpy  # noqa: F401  (loads numpy's BLAS)
        from threadpoolctl import threadpool_info
    except ImportError as exc:
        return [{"internal_api": "unknown", "note": f"threadpoolctl not available: {exc}"}]
    keep = ("user_api", "internal_api", "prefix", "version", "num_threads", "architecture", "threading_layer")
    return [{k: lib.get(k) for k in keep if lib.get(k) is not None} for lib in threadpool_info()]


def blas_backend() -> str:
    import torch

    config = torch.__config__.show()
    match = re.search(r"BLAS_INFO=(\w+)", config)
    parts = [f"BLAS={match.group(1)}" if match else "BLAS=?"]
    if torch.backends.mkldnn.is_available():
        match = re.search(r"MKL-DNN v([\d.]+)", config) or re.search(r"oneDNN v([\d.]+)", config)
        parts.append(f"oneDNN {match.group(1)}" if match else "oneDNN")
    return ", ".join(parts)


#: environment variables that steer threads, affinity and which BLAS kernel runs: recorded, never changed
STEERING_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE",
                      "OPENBLAS_L2_SIZE", "OPENBLAS_VERBOSE", "MKL_ENABLE_INSTRUCTIONS", "MKL_DEBUG_CPU_TYPE",
                      "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "GOMP_CPU_AFFINITY",
                      "KMP_AFFINITY", "OMP_PROC_BIND", "OMP_PLACES")


def steering_environment(environ=None) -> dict[str, str]:
    """The set variables among STEERING_VARIABLES (what the user's environment does to the figures)."""
    environ = os.environ if environ is None else environ
    return {name: environ[name] for name in STEERING_VARIABLES if name in environ}


def cpu_identity() -> dict[str, Any]:
    """What says two CPU records come from the same kind of machine (name, family/model, cores, SIMD, torch
    threads): the predictor's --measure refuses a record whose identity differs from this machine's."""
    import torch

    cpu = read_cpuinfo()
    return {"name": cpu["name"], "cpu_family": cpu.get("family"), "cpu_model": cpu.get("model"),
            "physical_cores": psutil.cpu_count(logical=False), "simd_flags": cpu["flags"],
            "torch_threads": torch.get_num_threads()}


class CpuPlatform(Platform):
    kind = "cpu"
    device = "cpu"
    timing_method = ("host perf_counter around blocks of calls (pytest-benchmark rounds x iterations); "
                     "CPU kernels are synchronous")

    def __init__(self):
        import torch

        self.torch = torch
        self._info: dict[str, Any] | None = None

    def info(self) -> dict[str, Any]:
        if self._info is None:
            torch = self.torch
            cpu = read_cpuinfo()
            freq = psutil.cpu_freq()
            self._info = {
                "kind": self.kind,
                "device": self.device,
                "name": cpu["name"],
                "arch": _pyplatform.machine(),
                "physical_cores": psutil.cpu_count(logical=False),
                "logical_cores": psutil.cpu_count(logical=True),
                "simd_flags": cpu["flags"],
                "vendor": cpu.get("vendor"), "cpu_family": cpu.get("family"), "cpu_model": cpu.get("model"),
                "hypervisor": cpu.get("hypervisor", False),
                "blas_libraries": blas_libraries(),
                "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "caches": [vars(c) for c in self.cache_levels()],
                "freq_mhz_current": freq.current if freq else None,
                "freq_mhz_max": (freq.max or None) if freq else None,
                "memory_bytes_total": psutil.virtual_memory().total,
                "torch_threads": torch.get_num_threads(),
                "cpus_allowed": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
                "environment": steering_environment(),
                "blas": blas_backend(),
                "torch": torch.__version__,
                "os": f"{_pyplatform.system()} {_pyplatform.release()}",
                "governor": _read_first("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
            }
        return self._info

    def cache_levels(self) -> list[CacheLevel]:
        levels = read_sysfs_caches()
        if not levels:  # macOS / containers without sysfs: psutil has no cache API, so say so in the record
            return []
        return levels

    def sync_latency_s(self, repeats: int = 50) -> float:
        return 0.0  # CPU kernels are synchronous: a single call has no sync to wait for

    def memory_bytes(self) -> int:
        return psutil.virtual_memory().available

    def read_telemetry(self) -> dict[str, float]:
        sample: dict[str, float] = {}
        freqs = psutil.cpu_freq(percpu=True) or []
        if freqs:
            sample["cpu_mhz_mean"] = sum(f.current for f in freqs) / len(freqs)
            sample["cpu_mhz_min"] = min(f.current for f in freqs)
        temps = getattr(psutil, "sensors_temperatures", lambda: {})() or {}
        for name in ("coretemp", "k10temp", "zenpower", "cpu_thermal", "acpitz"):
            if temps.get(name):
                sample["cpu_temp_c"] = max(t.current for t in temps[name])
                break
        sample["cpu_util_pct"] = psutil.cpu_percent(interval=None)
        return sample

    def static_telemetry(self) -> dict[str, Any]:
        return {"governor": self.info()["governor"], "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}

    def flush_caches(self) -> None:
        # READ a buffer of twice the last-level cache: the caches end up full of clean lines, so the timed call
        # does not also pay for writing back someone else's dirty data (a write-flush inflated tiny layers ~10x).
        if not hasattr(self, "_flush_buf"):
            levels = self.cache_levels()
            total = sum(c.size_bytes * (1 if c.shared else c.instances) for c in levels) or (64 << 20)
            self._flush_buf = self.torch.ones(2 * total // 4, dtype=self.torch.float32)
        self._flush_sink = float(self._flush_buf.sum())


def _read_first(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None
