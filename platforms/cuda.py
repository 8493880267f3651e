"""NVIDIA GPUs through torch.cuda, with NVML (pynvml, from the nvidia-ml-py package) for clocks and power."""
from __future__ import annotations

from typing import Any

from platforms.base import CacheLevel, Platform

# NVML's clocks-event (throttle) reason bits, named as in nvml.h
THROTTLE_REASONS = {
    0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
    0x10: "sync_boost", 0x20: "sw_thermal_slowdown", 0x40: "hw_thermal_slowdown", 0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


def decode_throttle_reasons(mask: int) -> list[str]:
    """NVML bitmask -> names; 'none' for 0. Unknown bits are kept as hex."""
    if not mask:
        return ["none"]
    names = [name for bit, name in THROTTLE_REASONS.items() if mask & bit]
    rest = mask & ~sum(THROTTLE_REASONS)
    if rest:
        names.append(hex(rest))
    return names


class Nvml:
    """A thin guard around pynvml: every call may be unsupported on some boards (Jetson has no NVML)."""

    def __init__(self, torch_index: int, uuid: str | None):
        self.handle = None
        self.error: str | None = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nv = pynvml
            handle = None
            if uuid:
                try:
                    text = uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"
                    handle = pynvml.nvmlDeviceGetHandleByUUID(text)
                except Exception:
                    handle = None
            self.handle = handle or pynvml.nvmlDeviceGetHandleByIndex(torch_index)
        except Exception as exc:  # no driver library, no permission, Tegra
            self.error = f"NVML unavailable: {type(exc).__name__}: {exc}"

    def get(self, name: str, *args, default=None):
        if self.handle is None:
            return default
        try:
            return getattr(self.nv, name)(self.handle, *args)
        except Exception:
            return default


class CudaPlatform(Platform):
    kind = "cuda"
    timing_method = ("torch.cuda.synchronize() then time.perf_counter around blocks of calls "
                     "(pytest-benchmark rounds x iterations)")

    def __init__(self, index: int = 0):
        import torch

        self.torch = torch
        self.index = index
        self.device = f"cuda:{index}"
        torch.cuda.set_device(index)
        self.props = torch.cuda.get_device_properties(index)
        uuid = str(getattr(self.props, "uuid", "") or "") or None
        self.nvml = Nvml(index, uuid)
        self._info: dict[str, Any] | None = None

    def sync(self) -> None:
        self.torch.cuda.synchronize(self.index)

    def info(self) -> dict[str, Any]:
        if self._info is None:
            torch, p, nv = self.torch, self.props, self.nvml
            info: dict[str, Any] = {
                "kind": self.kind,
                "device": self.device,
                "name": p.name,
                "compute_capability": f"{p.major}.{p.minor}",
                "sms": p.multi_processor_count,
                "memory_bytes_total": p.total_memory,
                "l2_bytes": getattr(p, "L2_cache_size", None),
                "integrated": bool(getattr(p, "is_integrated", False)),
                "torch": torch.__version__,
                "cuda_runtime": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
                "nvml": nv.error or "ok",
            }
            if nv.handle is not None:
                mod = nv.nv
                info.update({
                    "driver": _text(_safe(mod.nvmlSystemGetDriverVersion)),
                    "sm_clock_max_mhz": nv.get("nvmlDeviceGetMaxClockInfo", mod.NVML_CLOCK_SM),
                    "mem_clock_max_mhz": nv.get("nvmlDeviceGetMaxClockInfo", mod.NVML_CLOCK_MEM),
                    "memory_bus_width_bits": nv.get("nvmlDeviceGetMemoryBusWidth"),
                    "power_limit_w": _milli(nv.get("nvmlDeviceGetEnforcedPowerLimit")),
                    "persistence_mode": nv.get("nvmlDeviceGetPersistenceMode"),
                    "pcie_gen_max": nv.get("nvmlDeviceGetMaxPcieLinkGeneration"),
                    "pcie_width_max": nv.get("nvmlDeviceGetMaxPcieLinkWidth"),
                })
                applications = nv.get("nvmlDeviceGetApplicationsClock", mod.NVML_CLOCK_SM)
                if applications:
                    info["sm_clock_applications_mhz"] = applications
            self._info = info
        return self._info

    def cache_levels(self) -> list[CacheLevel]:
        l2 = getattr(self.props, "L2_cache_size", 0) or 0
        if not l2:
            return []
        return [CacheLevel("L2", int(l2), 1, True, "torch.cuda.get_device_properties().L2_cache_size")]

    def memory_bytes(self) -> int:
        free, _total = self.torch.cuda.mem_get_info(self.index)
        return int(free)

    def read_telemetry(self) -> dict[str, float]:
        nv = self.nvml
        if nv.handle is None:
            return {}
        mod = nv.nv
        sample = {
            "sm_clock_mhz": nv.get("nvmlDeviceGetClockInfo", mod.NVML_CLOCK_SM),
            "mem_clock_mhz": nv.get("nvmlDeviceGetClockInfo", mod.NVML_CLOCK_MEM),
            "gpu_temp_c": nv.get("nvmlDeviceGetTemperature", mod.NVML_TEMPERATURE_GPU),
            "power_w": _milli(nv.get("nvmlDeviceGetPowerUsage")),
        }
        reasons = nv.get("nvmlDeviceGetCurrentClocksEventReasons")
        if reasons is None:
            reasons = nv.get("nvmlDeviceGetCurrentClocksThrottleReasons")
        if reasons is not None:
            sample["throttle_mask"] = int(reasons) & ~0x1  # idle is not a throttle while we run
        return {k: v for k, v in sample.items() if v is not None}

    def static_telemetry(self) -> dict[str, Any]:
        sample = self.read_telemetry()
        out: dict[str, Any] = {"telemetry_source": "NVML" if self.nvml.handle is not None else self.nvml.error}
        if "throttle_mask" in sample:
            out["throttle_reasons_at_start"] = decode_throttle_reasons(int(sample["throttle_mask"]))
        return out

    def flush_caches(self) -> None:
        # Zero a buffer of twice the L2 (triton.testing does the same with 256 MB).
        l2 = getattr(self.props, "L2_cache_size", 0) or (64 << 20)
        if not hasattr(self, "_flush_buf"):
            self._flush_buf = self.torch.empty(2 * l2 // 4, dtype=self.torch.int32, device=self.device)
        self._flush_buf.zero_()

    single_call_method = "CUDA events around one call (device time, no host sync in the interval)"

    def time_call(self, fn) -> float:
        cuda = self.torch.cuda
        start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3


def _milli(value):
    return None if value is None else value / 1000.0


def _safe(fn):
    try:
        return fn()
    except Exception:
        return None


def _text(value):
    return value.decode() if isinstance(value, bytes) else value

