"""CUDA-only checks on a real GPU; they skip cleanly on a machine without one (tests/test_fake_cuda.py drives the
same code through fakes on every machine)."""
import pytest
import torch

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")]


@pytest.fixture(scope="module")
def gpu():
    from platforms import resolve

    return resolve("cuda")


def test_cuda_platform_info_caches_and_telemetry(gpu):
    info = gpu.info()
    assert info["sms"] > 0 and info["memory_bytes_total"] > 0
    names = [c["name"] for c in info["caches"]]
    assert "L2" in names, info["caches"]  # without it results/ has no L2 and no DRAM ceiling
    assert [c.name for c in gpu.cache_levels()] == names
    gpu.read_telemetry()  # must not raise even where NVML is missing
    target, rule = gpu.stream_call_bytes()
    assert target >= 256 << 20 and rule


@pytest.mark.parametrize("dtype", ["fp32", "tf32", "fp16", "bf16", "int8", "fp8"])
def test_gpu_gemm_verifies(dtype):
    from kernels import gemm
    from kernels.base import Unsupported

    try:
        p = gemm.prepare(gemm.GemmShape(512, 384, 256), dtype, "cuda")
    except Unsupported as exc:
        pytest.skip(str(exc))
    try:
        p.fn()
        verdict = p.verify()
        assert verdict.ok, verdict.detail
    finally:
        p.cleanup()  # TF32 off again even when the check fails
    if dtype == "tf32":
        from kernels.gemm import _set_tf32  # noqa: F401  (cleanup switched it off)

        matmul = torch.backends.cuda.matmul
        assert getattr(matmul, "fp32_precision", "ieee") in ("ieee", "none") or not matmul.allow_tf32


def test_gpu_fp8_fast_accumulation_verifies():
    from kernels import gemm
    from kernels.base import Unsupported

    try:
        p = gemm.prepare(gemm.GemmShape(512, 384, 256), "fp8", "cuda", impl=gemm.FP8_FAST_ACCUM)
    except Unsupported as exc:
        pytest.skip(str(exc))
    p.fn()
    assert p.verify().ok and p.extra["mode"] == "use_fast_accum=True"


def test_gpu_int8_odd_shape_is_missing_not_failed():
    from kernels import gemm
    from kernels.base import Unsupported

    with pytest.raises(Unsupported, match="multiples of 8"):
        gemm.prepare(gemm.GemmShape(8191, 8191, 8191, tag="odd"), "int8", "cuda")


@pytest.mark.parametrize("direction", ["h2d_pinned", "h2d_pageable", "d2h_pageable", "d2h_pinned", "d2d"])
def test_transfers_verify(direction):
    from kernels import transfer

    p = transfer.prepare(direction, 1 << 20, "cuda")
    p.fn()
    assert p.verify().ok


def test_stream_on_gpu_verifies(gpu):
    from kernels import stream

    target, rule = gpu.stream_call_bytes()
    for name in stream.KERNELS:
        p = stream.prepare(name, 1 << 20, "cuda", repeat_bytes=target, repeat_rule=rule)
        p.fn()
        torch.cuda.synchronize()
        assert p.verify().ok, name
        if name == "read_repeat":
            assert p.bytes >= target // 2


def test_single_call_timing_and_read_only_flush(gpu):
    x = torch.ones(1 << 20, device="cuda")
    gpu.flush_caches()
    version = gpu._flush_buf._version
    gpu.flush_caches()
    assert gpu._flush_buf._version == version  # the flush only reads
    wall = gpu.time_call(lambda: x.mul_(1.0))
    assert wall > 0 and gpu.last_device_s is not None and gpu.last_device_s <= wall


@pytest.mark.parametrize("name", ["copy", "triad", "write"])
def test_triton_stream_on_gpu_verifies(name):
    from kernels import triton_kernels as tk
    from kernels.base import Unsupported

    try:
        p = tk.prepare_stream(name, 64 << 20, "cuda")
    except Unsupported as exc:
        pytest.skip(str(exc))
    p.fn()
    torch.cuda.synchronize()
    assert p.verify().ok


@pytest.mark.parametrize("dtype", ["fp32", "fp64"])
def test_triton_fma_on_gpu_verifies(dtype):
    from kernels import triton_kernels as tk
    from kernels.base import Unsupported

    try:
        p = tk.prepare_fma(dtype, "cuda", iterations=64)
    except Unsupported as exc:
        pytest.skip(str(exc))
    p.fn()
    torch.cuda.synchronize()
    assert p.verify().ok
