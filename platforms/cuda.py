"""NVIDIA GPUs through torch.cuda, with NVML (pynvml, from the nvidia-ml-py package) for clocks and power."""
from __future__ import annotations

import time
from typing import Any

from platforms.base import CacheLevel, Platform
from platforms.throttle import IDLE, REASONS as THROTTLE_REASONS, decode as decode_throttle_reasons  # noqa: F401

#: a single read_repeat call should last at least this long on the device (launch cost is ~5 us)
CALL_TARGET_S = 1e-3
#: L2 is read several times faster than HBM; used only to size one call, never as a figure
L2_OVER_DRAM_GUESS = 3.0


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

    #: nvmlValueType_t -> the member of nvmlValue_t that holds it
    VALUE_MEMBERS = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}

    def field(self, field_id: int | None):
        """One NVML field value (nvmlDeviceGetFieldValues), or None where the driver does not offer it."""
        if self.handle is None or field_id is None:
            return None
        try:
            value = self.nv.nvmlDeviceGetFieldValues(self.handle, [field_id])[0]
            if value.nvmlReturn != 0:
                return None
            return getattr(value.value, self.VALUE_MEMBERS[int(value.valueType)])
        except Exception:
            return None


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
                "caches": [vars(c) for c in self.cache_levels()],
                "memory_bus_width_bits": getattr(p, "memory_bus_width", None),
                "memory_clock_khz": getattr(p, "memory_clock_rate", None),
                "memory_bandwidth_nominal_bytes_per_s": nominal_bandwidth(p),
                "memory_bandwidth_nominal_note": ("2 x memory clock x bus width / 8 (torch device properties): "
                                                  "the interface's nominal rate, used only to size one call"),
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
                    "power_limit_w": _milli(nv.get("nvmlDeviceGetEnforcedPowerLimit")),
                    # the board's default limit: an administrator's cap does not turn an SXM board into a PCIe one
                    "power_limit_default_w": _milli(nv.get("nvmlDeviceGetPowerManagementDefaultLimit")),
                    "persistence_mode": nv.get("nvmlDeviceGetPersistenceMode"),
                    "pcie_gen_max": nv.get("nvmlDeviceGetMaxPcieLinkGeneration"),
                    "pcie_gen_gpu_max": nv.get("nvmlDeviceGetGpuMaxPcieLinkGeneration"),
                    "pcie_width_max": nv.get("nvmlDeviceGetMaxPcieLinkWidth"),
                    "pcie_gen_current": nv.get("nvmlDeviceGetCurrPcieLinkGeneration"),
                    "pcie_width_current": nv.get("nvmlDeviceGetCurrPcieLinkWidth"),
                })
                bus = nv.get("nvmlDeviceGetMemoryBusWidth")
                if bus and not info.get("memory_bus_width_bits"):
                    info["memory_bus_width_bits"] = bus
                applications = nv.get("nvmlDeviceGetApplicationsClock", mod.NVML_CLOCK_SM)
                if applications:
                    info["sm_clock_applications_mhz"] = applications
            self._info = info
        return self._info

    def cache_levels(self) -> list[CacheLevel]:
        """L1 (per SM) and L2 (shared), as torch's device properties report them.

        L1 is counted ONCE, not times the SM count: a kernel that reads one array from every SM (read_repeat,
        a reduction) keeps a copy per SM, so a working set only stays in L1 while it fits one SM's L1. Its size is
        the SM's shared-memory capacity (the L1/shared carve-out; the data-cache share of it depends on how much
        shared memory a kernel takes), stated as such in ``source``. Without these levels every stream point inside
        L1 would be taken for L2 and every layer would "fit DRAM"."""
        p, levels = self.props, []
        l1 = int(getattr(p, "shared_memory_per_multiprocessor", 0) or 0)
        if l1:
            levels.append(CacheLevel("L1", l1, 1, False, (
                "torch device properties shared_memory_per_multiprocessor (the per-SM L1/shared array; counted once: "
                f"each of the {p.multi_processor_count} SMs caches its own copy of what it reads)")))
        l2 = int(getattr(p, "L2_cache_size", 0) or 0)
        if l2:
            levels.append(CacheLevel("L2", l2, 1, True, "torch.cuda.get_device_properties().L2_cache_size"))
        return levels

    def stream_call_bytes(self) -> tuple[int, str]:
        nominal = nominal_bandwidth(self.props)
        if nominal:
            target = int(CALL_TARGET_S * L2_OVER_DRAM_GUESS * nominal)
            rule = (f"one call reads >= {target / 1e9:.3g} GB: {CALL_TARGET_S * 1e3:g} ms at {L2_OVER_DRAM_GUESS:g} x the "
                    f"nominal memory bandwidth ({nominal / 1e12:.3g} TB/s from bus width x memory clock), so even an "
                    "L2-resident call lasts about a millisecond, far above the ~5 us launch")
        else:
            target = 16 << 30
            rule = "one call reads >= 16 GiB (no memory clock reported), about a millisecond at 16 TB/s"
        return max(target, 256 << 20), rule

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
            "power_w": self._power_w(),
            # the link trains down when idle: read during the point (kept as min/median/max over its samples)
            "pcie_gen": nv.get("nvmlDeviceGetCurrPcieLinkGeneration"),
            "pcie_width": nv.get("nvmlDeviceGetCurrPcieLinkWidth"),
        }
        reasons = nv.get("nvmlDeviceGetCurrentClocksEventReasons")
        if reasons is None:
            reasons = nv.get("nvmlDeviceGetCurrentClocksThrottleReasons")
        if reasons is not None:
            sample["throttle_mask"] = int(reasons) & ~IDLE  # idle is not a throttle while we run
        return {k: v for k, v in sample.items() if v is not None}

    POWER_SOURCES = {
        "instant": "NVML field NVML_FI_DEV_POWER_INSTANT: the instantaneous board power",
        "usage": ("nvmlDeviceGetPowerUsage: on Ampere (except GA100) and newer GPUs a 1 s average (NVML API "
                  "reference), so a point shorter than a second reads partly the power before it"),
    }

    def _power_w(self) -> float | None:
        """Board power in W: NVML's instant field where the driver offers it, else nvmlDeviceGetPowerUsage (on
        Hopper a 1 s average); which one is decided at the first reading and said in ``power_source``."""
        nv = self.nvml
        if getattr(self, "power_source", None) in (None, "instant"):
            value = nv.field(getattr(nv.nv, "NVML_FI_DEV_POWER_INSTANT", None))
            if value is not None:
                self.power_source = "instant"
                return value / 1000.0
            if getattr(self, "power_source", None) == "instant":
                return None  # a missed reading, not a reason to switch sources mid-run
        self.power_source = "usage"
        return _milli(nv.get("nvmlDeviceGetPowerUsage"))

    def static_telemetry(self) -> dict[str, Any]:
        sample = self.read_telemetry()
        out: dict[str, Any] = {"telemetry_source": "NVML" if self.nvml.handle is not None else self.nvml.error}
        if getattr(self, "power_source", None):
            out["power_source"] = self.POWER_SOURCES[self.power_source]
        if "throttle_mask" in sample:
            out["throttle_reasons_at_start"] = decode_throttle_reasons(int(sample["throttle_mask"]))
        return out

    def other_device_processes(self) -> list[dict[str, Any]]:
        """Other processes with a context on this GPU (NVML compute + graphics lists). In a container NVML may
        report host PIDs, so a single process that is not ours is taken to be this one."""
        nv = self.nvml
        if nv.handle is None:
            return []
        procs = []
        for name in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
            for proc in nv.get(name, default=[]) or []:
                pid = getattr(proc, "pid", None)
                memory = getattr(proc, "usedGpuMemory", None)
                if pid is not None and pid not in {p["pid"] for p in procs}:
                    procs.append({"pid": int(pid), "memory_bytes": int(memory) if isinstance(memory, int) else None})
        import os

        others = [p for p in procs if p["pid"] != os.getpid()]
        return [] if len(procs) == 1 else others

    #: the flush buffer is at least this large (triton.testing uses 256 MB) and at least twice the L2
    FLUSH_MIN_BYTES = 256 << 20

    def flush_caches(self) -> None:
        """READ a buffer of max(2 x L2, 256 MiB): the L2 ends up full of clean lines of that buffer, so the timed
        call does not also pay to write back dirty lines (a zero_() flush leaves L2 dirty, as the CPU flush once
        did). The sum lands in a preallocated scalar: no allocation in the flush."""
        if getattr(self, "_flush_buf", None) is None:
            l2 = int(getattr(self.props, "L2_cache_size", 0) or 0)
            n = max(2 * l2, self.FLUSH_MIN_BYTES) // 4
            self._flush_buf = self.torch.ones(n, dtype=self.torch.float32, device=self.device)
            self._flush_sink = self.torch.empty((), dtype=self.torch.float32, device=self.device)
        self.torch.sum(self._flush_buf, dim=0, out=self._flush_sink)

    single_call_method = ("host wall time of one call: wait for the device to be idle (the flush has finished), "
                          "perf_counter, the call, torch.cuda.synchronize, perf_counter; it includes the host "
                          "dispatch, the launches and one sync, as a CPU call includes its dispatch. The device "
                          "time between CUDA events around the call is kept beside it (device_times_s); see "
                          "DEVICE_TIMES_NOTE")
    DEVICE_TIMES_NOTE = ("device_times_s: CUDA events recorded just before and after the Python call on an idle "
                         "device, so the span starts before the host has dispatched the call: it includes the "
                         "Python dispatch and launch of the call, not the kernels' execution alone")

    def time_call(self, fn) -> float:
        cuda = self.torch.cuda
        start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
        self.sync()  # nothing queued before (the flush) may hide the call's own launch cost
        t0 = time.perf_counter()
        start.record()
        fn()
        end.record()
        self.sync()
        wall = time.perf_counter() - t0
        self.last_device_s = start.elapsed_time(end) / 1e3
        return wall


def nominal_bandwidth(props) -> float | None:
    """2 x memory clock x bus width / 8 from torch's device properties (clock in kHz), or None."""
    clock_khz, bits = getattr(props, "memory_clock_rate", 0) or 0, getattr(props, "memory_bus_width", 0) or 0
    if not clock_khz or not bits:
        return None
    return 2.0 * clock_khz * 1e3 * bits / 8


def _milli(value):
    return None if value is None else value / 1000.0


def _safe(fn):
    try:
        return fn()
    except Exception:
        return None


def _text(value):
    return value.decode() if isinstance(value, bytes) else value

