"""CUDA-only checks; they skip cleanly on a machine without a GPU."""
import pytest
import torch

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")]


def test_cuda_platform_info_and_telemetry():
    from platforms import resolve

    gpu = resolve("cuda")
    info = gpu.info()
    assert info["sms"] > 0 and info["memory_bytes_total"] > 0 and gpu.cache_levels()
    gpu.read_telemetry()  # must not raise even where NVML is missing


@pytest.mark.parametrize("dtype", ["fp32", "tf32", "fp16", "bf16"])
def test_gpu_gemm_verifies(dtype):
    from kernels import gemm
    from kernels.base import Unsupported

    try:
        p = gemm.prepare(gemm.GemmShape(512, 384, 256), dtype, "cuda")
    except Unsupported as exc:
        pytest.skip(str(exc))
    p.fn()
    assert p.verify().ok
    p.cleanup()


@pytest.mark.parametrize("direction", ["h2d_pinned", "d2h_pageable", "d2d"])
def test_transfers_verify(direction):
    from kernels import transfer

    p = transfer.prepare(direction, 1 << 20, "cuda")
    p.fn()
    assert p.verify().ok


def test_stream_on_gpu_verifies():
    from kernels import stream

    for name in stream.KERNELS:
        p = stream.prepare(name, 1 << 20, "cuda")
        p.fn()
        torch.cuda.synchronize()
        assert p.verify().ok, name
