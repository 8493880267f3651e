"""Roofs at the hardware's limit (GPU): Triton kernels (kernels/triton_kernels.py) timed by the same harness - a
stream family over working sets far beyond the L2 (the hardware's DRAM/HBM roof beside torch's) and FMA chains on
the CUDA cores (the non-tensor-core fp32/fp64 peak beside the GEMM's). CUDA platforms only; missing with the reason
where Triton is absent.

Working sets of 2-4 GiB even in a quick run: at 256 MiB one copy lasts ~60 us on an H200, where the gap between
back-to-back launches costs several percent of the roof. The largest sizes run first (kernels.stream.budget_order),
so a run that is cut loses the small sizes, never the HBM roof."""
import pytest

from bench.session import run_of
from kernels import triton_kernels as tk
from kernels.stream import budget_order

GIB = 1 << 30
QUICK_SIZES = [GIB // 4, 2 * GIB, 4 * GIB]
FULL_SIZES = [GIB // 4, GIB // 2, GIB, 2 * GIB, 3 * GIB, 4 * GIB]


def pytest_generate_tests(metafunc):
    config = metafunc.config
    gpu = run_of(config).platform.kind != "cpu"
    quick = config.getoption("--quick")
    if "triton_stream_point" in metafunc.fixturenames:
        sizes = QUICK_SIZES if quick else FULL_SIZES
        order = budget_order(list(tk.STREAM), sizes, [4 * GIB], [2 * GIB]) if gpu else []
        # on a CPU one point that says why there is none: a file that measures nothing must not pass as a run
        metafunc.parametrize("triton_stream_point", [pytest.param((k, s), id=f"{k}-{s >> 20}MiB") for k, s in order]
                             or [pytest.param(None, id="not-on-this-platform")])
    if "triton_fma_dtype" in metafunc.fixturenames:
        metafunc.parametrize("triton_fma_dtype", ["fp32", "fp64"] if gpu else [None],
                             ids=None if gpu else ["not-on-this-platform"])


NOT_HERE = ("the Triton kernels run on a CUDA GPU (this run's platform is a CPU; its hardware roofs come from "
            "bench/test_native.py)")


def test_triton_stream(suite, benchmark, triton_stream_point):
    if triton_stream_point is None:
        suite.not_measured("missing", NOT_HERE, group="stream", kernel="triton", dtype="fp32", impl="triton")
    name, size = triton_stream_point
    if size * 4 > suite.platform.memory_bytes():
        suite.not_measured("missing", f"needs {size / 1e9:.1f} GB, more than a quarter of the free memory",
                           group="stream", kernel=name, dtype="fp32", impl="triton", size_bytes=size)
    suite.run(benchmark, lambda: tk.prepare_stream(name, size, suite.platform.device), group="stream", kernel=name,
              dtype="fp32", impl="triton", size_bytes=size, convention=tk.CONVENTION)


def test_triton_fma_peak(suite, benchmark, triton_fma_dtype):
    if triton_fma_dtype is None:
        suite.not_measured("missing", NOT_HERE, group="peak", kernel="fma", dtype="fp32", impl="triton")
    suite.run(benchmark, lambda: tk.prepare_fma(triton_fma_dtype, suite.platform.device, iterations=tk.FMA_ITERATIONS),
              group="peak", kernel="fma", dtype=triton_fma_dtype, impl="triton")
