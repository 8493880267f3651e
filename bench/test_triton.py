"""Roofs at the hardware's limit (GPU): Triton kernels (kernels/triton_kernels.py) timed by the same harness - a
stream family over working sets far beyond the L2 (the hardware's DRAM/HBM roof beside torch's) and FMA chains on
the CUDA cores (the non-tensor-core fp32/fp64 peak beside the GEMM's). CUDA platforms only; missing with the reason
where Triton is absent."""
import pytest

from kernels import triton_kernels as tk

GIB = 1 << 30


def pytest_generate_tests(metafunc):
    config = metafunc.config
    gpu = config._roofline_platform.kind != "cpu"
    quick = config.getoption("--quick")
    if "triton_stream_point" in metafunc.fixturenames:
        sizes = [GIB // 4, GIB] if quick else [GIB // 4, GIB // 2, GIB, 2 * GIB, 4 * GIB]
        metafunc.parametrize("triton_stream_point", [pytest.param((k, s), id=f"{k}-{s >> 20}MiB")
                                                     for k in tk.STREAM for s in sizes] if gpu else [])
    if "triton_fma_dtype" in metafunc.fixturenames:
        metafunc.parametrize("triton_fma_dtype", ["fp32", "fp64"] if gpu else [])


def test_triton_stream(suite, benchmark, triton_stream_point):
    name, size = triton_stream_point
    if size * 4 > suite.platform.memory_bytes():
        suite.not_measured("missing", f"needs {size / 1e9:.1f} GB, more than a quarter of the free memory",
                           group="stream", kernel=name, dtype="fp32", impl="triton", size_bytes=size)
    suite.run(benchmark, lambda: tk.prepare_stream(name, size, suite.platform.device), group="stream", kernel=name,
              dtype="fp32", impl="triton", size_bytes=size, convention=tk.CONVENTION)


#: FMA iterations per launch: 2048 x 8 chains x 1024 elements x 16 programs per SM is ~1 ms of fp32 work on an
#: H200 (132 SMs at ~67 TFLOP/s), so the gap between back-to-back launches (a few us) costs well under 1 %
FMA_ITERATIONS = 2048


def test_triton_fma_peak(suite, benchmark, triton_fma_dtype):
    suite.run(benchmark, lambda: tk.prepare_fma(triton_fma_dtype, suite.platform.device, iterations=FMA_ITERATIONS),
              group="peak", kernel="fma", dtype=triton_fma_dtype, impl="triton")
