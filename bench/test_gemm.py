"""Peak FLOP/s per dtype: GEMM over shapes, each point verified against float64."""
import pytest

from bench.session import run_of
from kernels import gemm


def pytest_generate_tests(metafunc):
    if "gemm_point" not in metafunc.fixturenames:
        return
    config = metafunc.config
    platform = run_of(config).platform
    quick = config.getoption("--quick")
    points = []
    for dtype in run_of(config).dtypes:
        for shape in gemm.sweep("cpu" if platform.kind == "cpu" else "cuda", quick):
            points.append(pytest.param((dtype, shape, "torch"), id=f"{dtype}-{shape.tag}-{shape.id()}"))
            if dtype == "fp8" and platform.kind != "cpu":
                # both accumulation modes: vendor peaks assume fast accumulation; the record keeps both
                points.append(pytest.param((dtype, shape, gemm.FP8_FAST_ACCUM),
                                           id=f"{dtype}-fast_accum-{shape.tag}-{shape.id()}"))
        if platform.kind == "cpu" and dtype in ("fp32", "fp64"):
            # numpy's BLAS is a second implementation on the CPU: the peak is the best that is found, not assumed
            top = max(s.m for s in gemm.sweep("cpu", quick) if s.tag == "square")
            points.append(pytest.param((dtype, gemm.GemmShape(top, top, top), "numpy"), id=f"{dtype}-numpy-{top}"))
    metafunc.parametrize("gemm_point", points)


def test_gemm(suite, benchmark, gemm_point):
    dtype, shape, impl = gemm_point
    fields = dict(group="gemm", kernel="gemm", dtype=dtype, impl=impl, shape=shape.as_list(), flops=shape.flops,
                  convention=gemm.GEMM_CONVENTION)
    device = suite.platform.device
    probe = gemm.GemmShape(*(gemm.PROBE_SIZE,) * 3)
    reason = (suite.estimate_cut(dtype, shape.flops) or suite.slow_path_cut(dtype)
              or suite.probe_cut(dtype, shape.flops, lambda: gemm.prepare(probe, dtype, device, impl=impl)))
    if reason:
        suite.not_measured("cut", reason, **fields)
    suite.run(benchmark, lambda: gemm.prepare(shape, dtype, device, impl=impl,
                                              free_bytes=suite.platform.memory_bytes()), **fields)
