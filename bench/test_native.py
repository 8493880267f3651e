"""Roofs at the hardware's limit (CPU): this project's own C kernels (kernels/native), timed by the same harness.

* the silicon peak per dtype: register-only FMA chains (no memory traffic), on torch's thread count;
* the memory's bandwidth: STREAM kernels with cached and non-temporal stores, a vectorised read, a non-temporal
  fill and glibc memcpy, over working sets per memory level (quick: one per cache level and two in DRAM);
* thread scaling: DRAM bandwidth (non-temporal copy) and the fp32 GEMM at 1 and all threads (quick), or at every
  count (full): how many cores saturate memory.
These are the roofs above torch's: the layer report keeps placing torch layers against torch's roofs."""
import pytest

from kernels import native, stream

DTYPES = ("fp32", "fp64")
#: a quick run times these inside the caches (all kernels in DRAM, where the store kind matters most)
QUICK_CACHE_KERNELS = ("copy", "read", "triad")


def _llc(config) -> int:
    return config._roofline_platform.llc_bytes()


def _is_cpu(config) -> bool:
    return config._roofline_platform.kind == "cpu"


def _levels(config):
    platform = config._roofline_platform
    levels = platform.cache_levels()
    llc = platform.llc_bytes()
    if not config.getoption("--quick"):
        return stream.sweep_sizes(llc, False, max_bytes=platform.memory_bytes() // 4)
    from results.roofline import effective_capacities

    sizes, previous = [], 0
    for _name, capacity in effective_capacities([vars(c) for c in levels]):
        sizes.append(max(16 << 10, (previous * 2 + capacity // 2) // 2))  # between 2x the level below and half this
        previous = capacity
    sizes += [4 * llc, 8 * llc]
    return sorted(set(s for s in sizes if s <= platform.memory_bytes() // 4))


def pytest_generate_tests(metafunc):
    config = metafunc.config
    cpu = _is_cpu(config)
    if "fma_dtype" in metafunc.fixturenames:
        metafunc.parametrize("fma_dtype", list(DTYPES) if cpu else [])
    if "native_point" in metafunc.fixturenames:
        sizes = _levels(config) if cpu else []
        quick = config.getoption("--quick")
        dram = [s for s in sizes if s >= 4 * _llc(config)]
        points = [pytest.param((name, size), id=f"{name}-{size >> 10}KiB")
                  for name in native.STREAM for size in sizes
                  if not quick or size in dram or name in QUICK_CACHE_KERNELS]
        metafunc.parametrize("native_point", points)
    if "scaling_threads" in metafunc.fixturenames:
        import torch

        top = torch.get_num_threads()
        counts = sorted({1, top}) if config.getoption("--quick") else list(range(1, top + 1))
        metafunc.parametrize("scaling_threads", counts if cpu else [])


def test_fma_peak(suite, benchmark, fma_dtype):
    suite.run(benchmark, lambda: native.prepare_fma(fma_dtype), group="peak", kernel="fma", dtype=fma_dtype,
              impl="native", convention=native.FMA_CONVENTION)


def test_native_stream(suite, benchmark, native_point):
    name, size = native_point
    suite.run(benchmark, lambda: native.prepare_stream(name, size), group="stream", kernel=name, dtype="fp64",
              impl="native", size_bytes=size, convention=native.NATIVE_CONVENTION)


def test_thread_scaling(suite, benchmark, scaling_threads):
    """DRAM bandwidth (native copy_nt at 4x the last-level cache) and fp32 GEMM (torch, 1024^3) at this many
    threads; recorded as group "scaling" (never a ceiling). torch's thread count is restored afterwards."""
    import torch

    from kernels import gemm

    llc = suite.platform.llc_bytes()
    before = torch.get_num_threads()

    def relabel(p):
        p.group, p.extra = "scaling", {**p.extra, "threads": scaling_threads}
        return p

    try:
        torch.set_num_threads(scaling_threads)
        for make, kernel in ((lambda: native.prepare_stream("copy_nt", 4 * llc, threads=scaling_threads), "copy_nt"),
                             (lambda: gemm.prepare(gemm.GemmShape(1024, 1024, 1024), "fp32", "cpu"), "gemm")):
            try:
                suite.run(benchmark if kernel == "copy_nt" else None, lambda: relabel(make()), group="scaling",
                          kernel=kernel, dtype="fp64" if kernel == "copy_nt" else "fp32", impl="native"
                          if kernel == "copy_nt" else "torch")
            except pytest.skip.Exception:
                continue
    finally:
        torch.set_num_threads(before)
