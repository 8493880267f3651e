"""Fakes at the CUDA boundary, so the GPU code path runs on a CPU-only machine.

* ``install(monkeypatch)`` replaces what ``platforms.cuda`` asks of torch.cuda (device properties, set_device,
  synchronize, mem_get_info, Event) and the ``pynvml`` module with stand-ins shaped like an H200 SXM, and returns a
  log of the calls; ``CudaPlatform(0)`` is then OUR code running against them.
* ``h200_record()`` builds a SYNTHETIC run record of that device: the platform block comes from CudaPlatform.info()
  (our code, on the fakes), the byte and FLOP counts from the suite's own kernel definitions; only the times are
  invented (from the rates below, labelled SYNTHETIC in the record). It exists to push a GPU-shaped record through
  results/ (summary, plot, validate, layers, compare); none of its figures is a measurement.

The property values are what torch reports on an H200 as far as the public documents say (132 SMs, 60 MiB L2,
6144-bit HBM3e bus); they are inputs to our code, not claims the tests check.
"""
from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import torch

GIB = 1 << 30


@dataclass
class FakeProps:
    name: str = "NVIDIA H200"
    major: int = 9
    minor: int = 0
    multi_processor_count: int = 132
    total_memory: int = 143771 << 20
    L2_cache_size: int = 60 << 20  # torch reported 60 MB on this project's H200 machines (2026-10-28)
    shared_memory_per_multiprocessor: int = 228 << 10
    memory_clock_rate: int = 3_201_000  # kHz
    memory_bus_width: int = 6144
    is_integrated: int = 0
    uuid: str = "0f1e2d3c-aaaa-bbbb-cccc-123456789abc"


class FakeEvent:
    """CUDA event stand-in: ``elapsed_time`` gives the host time between the two records, in ms (as CUDA does)."""

    def __init__(self, log, enable_timing=False):
        self.log, self.t = log, None

    def record(self, stream=None):
        import time

        self.log.append("event.record")
        self.t = time.perf_counter()

    def synchronize(self):
        self.log.append("event.synchronize")

    def elapsed_time(self, other):
        return (other.t - self.t) * 1e3


def fake_pynvml(masks=(0x4, 0x40, 0x1 | 0x4, 0x0), instant_power_mw: int | None = None, pcie_gens=(5,)):
    """A pynvml module: constant readings, and clocks-event masks that cycle through ``masks``; with
    ``instant_power_mw`` the driver offers NVML_FI_DEV_POWER_INSTANT; the current PCIe generation cycles through
    ``pcie_gens`` (an idle link trains down: (1, 5) reads gen1 first, then gen5)."""
    nv = types.ModuleType("pynvml")
    gens = {"i": 0}

    def current_gen(handle):
        value = pcie_gens[min(gens["i"], len(pcie_gens) - 1)]
        gens["i"] += 1
        return value
    nv.NVML_CLOCK_SM, nv.NVML_CLOCK_MEM, nv.NVML_TEMPERATURE_GPU = 1, 2, 0
    state = {"i": 0}

    def reasons(handle):
        value = masks[state["i"] % len(masks)]
        state["i"] += 1
        return value

    clocks = {1: 1755, 2: 3201}
    max_clocks = {1: 1980, 2: 3201}
    nv.nvmlInit = lambda: None
    nv.nvmlDeviceGetHandleByUUID = lambda uuid: ("handle", uuid)
    nv.nvmlDeviceGetHandleByIndex = lambda index: ("handle", index)
    nv.nvmlSystemGetDriverVersion = lambda: b"580.65.06"
    nv.nvmlDeviceGetMaxClockInfo = lambda h, kind: max_clocks[kind]
    nv.nvmlDeviceGetClockInfo = lambda h, kind: clocks[kind]
    nv.nvmlDeviceGetMemoryBusWidth = lambda h: 6144
    nv.nvmlDeviceGetEnforcedPowerLimit = lambda h: 700_000
    nv.nvmlDeviceGetPersistenceMode = lambda h: 1
    nv.nvmlDeviceGetMaxPcieLinkGeneration = lambda h: 5
    nv.nvmlDeviceGetGpuMaxPcieLinkGeneration = lambda h: 5
    nv.nvmlDeviceGetMaxPcieLinkWidth = lambda h: 16
    nv.nvmlDeviceGetCurrPcieLinkGeneration = current_gen
    nv.nvmlDeviceGetCurrPcieLinkWidth = lambda h: 16
    nv.nvmlDeviceGetTemperature = lambda h, kind: 41
    nv.nvmlDeviceGetPowerUsage = lambda h: 512_000
    nv.nvmlDeviceGetCurrentClocksEventReasons = reasons
    if instant_power_mw is not None:
        nv.NVML_FI_DEV_POWER_INSTANT = 186

        def field_values(handle, ids):
            value = types.SimpleNamespace(uiVal=instant_power_mw)
            return [types.SimpleNamespace(nvmlReturn=0 if i == 186 else 2, valueType=1, value=value) for i in ids]
        nv.nvmlDeviceGetFieldValues = field_values

    def unsupported(*args):
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")

    nv.nvmlDeviceGetApplicationsClock = unsupported
    return nv


def install(monkeypatch, props: FakeProps | None = None, nvml=None) -> list[str]:
    """Point torch.cuda and pynvml at the fakes; returns the call log (syncs and event records, in order)."""
    props = props or FakeProps()
    log: list[str] = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: None)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: props)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda index=None: log.append("sync"))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda index=None: (props.total_memory - 2 * GIB, props.total_memory))
    monkeypatch.setattr(torch.cuda, "Event", lambda enable_timing=False: FakeEvent(log, enable_timing))
    monkeypatch.setitem(sys.modules, "pynvml", nvml or fake_pynvml())
    return log


# ---- a synthetic H200-shaped record -----------------------------------------------------------------------------
#: invented rates (bytes/s, FLOP/s) that set the synthetic times; roughly H200-like so the report reads plausibly
RATES = {"L1": 30e12, "L2": 9e12, "DRAM": 4.4e12}
GEMM_RATES = {"fp64": 60e12, "fp32": 50e12, "tf32": 380e12, "fp16": 760e12, "bf16": 650e12, "int8": 1400e12,
              "fp8": 1250e12}
FP8_FAST_RATE = 1450e12
DISPATCH_S, SYNC_S = 5e-6, 9e-6


def h200_record(platform, quick: bool = True, run_id: str = "20261201T000000Z-synthetic-cuda-0",
                created: str = "2026-12-01T00:00:00+00:00") -> dict:
    from kernels import gemm, stream
    from kernels.base import ALL_GEMM_DTYPES
    from platforms.base import summarise_samples
    from results.record import SCHEMA, SCHEMA_VERSION, measurement

    info = platform.info()
    repeat_bytes, rule = platform.stream_call_bytes()
    l1 = next(c["size_bytes"] for c in info["caches"] if c["name"] == "L1")
    l2 = next(c["size_bytes"] for c in info["caches"] if c["name"] == "L2")
    rows = [measurement(group="overhead", kernel="dispatch", dtype="fp32", status="ok", verified=True,
                        times_s=[DISPATCH_S] * 5, extra={"sync_latency_s": SYNC_S})]

    def telemetry(masks):
        return summarise_samples([{"sm_clock_mhz": 1755.0, "power_w": 600.0, "gpu_temp_c": 55.0, "throttle_mask": m}
                                  for m in masks])

    sizes = stream.sweep_sizes(l2, quick, max_bytes=platform.memory_bytes() // 4, min_end=GIB)
    for name in ("read_repeat", "copy", "triad"):
        for size in sizes:
            point = stream.point_size(name, size, 4, repeat_bytes)
            level = "L1" if point["size_bytes"] <= l1 else "L2" if point["size_bytes"] <= l2 else "DRAM"
            if level == "L1" and name != "read_repeat":
                level = "L2"  # one pass per call: too short to show L1, dispatch-bound anyway
            seconds = max(point["bytes"] / RATES[level], DISPATCH_S)
            rows.append(measurement(group="stream", kernel=name, dtype="fp32", impl="torch", status="ok", verified=True,
                                    shape=[point["elements"]], size_bytes=point["size_bytes"], bytes=point["bytes"],
                                    flops=point["flops"], times_s=[seconds, seconds * 1.02, seconds * 1.05],
                                    convention=stream.STREAM_CONVENTION, telemetry=telemetry([0]),
                                    extra={"repeats": point["repeats"], "launch_amortisation": rule}))
    for dtype in ALL_GEMM_DTYPES:
        impls = ["torch", gemm.FP8_FAST_ACCUM] if dtype == "fp8" else ["torch"]
        for impl in impls:
            for shape in gemm.sweep("cuda", quick):
                common = dict(group="gemm", kernel="gemm", dtype=dtype, impl=impl, shape=shape.as_list(),
                              flops=shape.flops, convention=gemm.GEMM_CONVENTION)
                reason = gemm.shape_support(shape, dtype, "cuda")
                if shape.batch > 1 and dtype in ("int8", "fp8"):
                    reason = "no batched form"
                if reason:
                    rows.append(measurement(status="missing", reason=reason, **common))
                    continue
                rate = FP8_FAST_RATE if impl == gemm.FP8_FAST_ACCUM else GEMM_RATES[dtype]
                rate *= min(1.0, shape.flops / 2 / 4096 ** 3) * (shape.flops / 2 / 16384 ** 3) ** 0.01  # smaller: less
                seconds = shape.flops / rate
                # the peak point saw a power cap in one sample and a thermal slowdown in another
                masks = [0x4, 0x40] if shape.m == 16384 and dtype == "bf16" else [0]
                rows.append(measurement(status="ok", verified=True, times_s=[seconds, seconds * 1.01, seconds * 1.03],
                                        bytes=gemm_bytes(shape, dtype), telemetry=telemetry(masks),
                                        extra={"shape_id": shape.id(), "shape_tag": shape.tag,
                                               **gemm._mode(dtype, impl, "cuda")}, **common))
    for direction, rate in (("h2d_pinned", 52e9), ("d2h_pinned", 50e9), ("h2d_pageable", 20e9), ("d2d", 3.9e12)):
        size = 256 << 20
        nbytes = size * (2 if direction == "d2d" else 1)
        rows.append(measurement(group="transfer", kernel=direction, dtype="uint8", impl="torch.Tensor.copy_",
                                status="ok", verified=True, shape=[size], size_bytes=size, bytes=nbytes,
                                times_s=[nbytes / rate] * 3,
                                telemetry=summarise_samples([{"pcie_gen": g, "pcie_width": 16} for g in (1, 5, 5)])))
    rows += _layers()
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "run_id": run_id, "created": created,
            "finished": created, "status": "complete", "host": "synthetic", "platform": info,
            "options": {"platform": "cuda", "quick": quick}, "timing_method": platform.timing_method,
            "single_call_method": platform.single_call_method,
            "note": "SYNTHETIC: times invented by tests/fake_gpu.py; not a measurement",
            "telemetry": telemetry([0x4, 0x0, 0x40]), "measurements": rows}


def gemm_bytes(shape, dtype: str) -> int:
    from kernels.gemm import OUTPUT_DTYPE

    size = {"fp64": 8, "fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "int8": 1, "fp8": 1}
    out = {"int32": 4, "bfloat16": 2}.get(OUTPUT_DTYPE.get(dtype, ""), size[dtype])
    a, b, c = shape.elements()
    return (a + b) * size[dtype] + c * out


def _layers() -> list[dict]:
    from results.record import measurement

    def layer(name, kind, flops, nbytes, seconds, gemm_s, n_ops=1):
        gemm = {"status": "ok", "shape": [1, 512, 8192, 2048], "flops": flops, "bytes": nbytes,
                "median_s": gemm_s, "times_s": [gemm_s] * 3} if gemm_s else None
        return measurement(group="layer", kernel=f"decoder:{name}", dtype="bf16", impl="torch", status="ok",
                           verified=True, flops=flops, bytes=nbytes, times_s=[seconds] * 5, statistic="median",
                           extra={"spec": "decoder-prefill", "layer": name, "type": kind, "multiplicity": 1,
                                  "input_shapes": [[1, 512, 2048]], "batch_tag": "512 tokens", "n_ops": n_ops,
                                  "warm_median_s": seconds * 0.9, "gemm": gemm})

    return [layer("mlp.up", "Linear", 2 * 512 * 2048 * 8192, 2 * (512 * 2048 + 2048 * 8192 + 512 * 8192), 80e-6, 60e-6),
            layer("norm", "RMSNorm", 5 * 512 * 2048, 2 * 2 * 512 * 2048, 20e-6, None, n_ops=6),
            measurement(group="model", kernel="decoder-prefill", dtype="bf16", impl="torch", status="ok", verified=True,
                        flops=2 * 512 * 2048 * 8192 * 3, bytes=10 ** 8, times_s=[400e-6] * 5, statistic="median")]
