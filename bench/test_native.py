"""Roofs at the hardware's limit (CPU): this project's own C kernels (kernels/native), timed by the same harness.

* the silicon peak per dtype: register-only FMA chains (no memory traffic), on torch's thread count, and the matrix
  and dot-product engines the CPU flags show (AMX tiles for bf16 and int8, AVX512-BF16, VNNI: kernels/native/engines);
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
    sizes.append(4 * llc)  # one DRAM size in a quick run (a full run sweeps beyond it)
    return sorted(set(s for s in sizes if s <= platform.memory_bytes() // 4))


def pytest_generate_tests(metafunc):
    config = metafunc.config
    cpu = _is_cpu(config)
    if "fma_dtype" in metafunc.fixturenames:
        metafunc.parametrize("fma_dtype", list(DTYPES) if cpu else [])
    if "engine_point" in metafunc.fixturenames:
        from kernels.native import engines

        flags = config._roofline_platform.info().get("simd_flags") if cpu else []
        metafunc.parametrize("engine_point", [pytest.param(key, id=f"{key[0]}-{key[1]}")
                                              for key in engines.engines_for(flags)])
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
    """The FMA chains; a result below this run's GEMM of the same dtype (which runs on the same units) cannot be the
    silicon's peak: it is measured again, twice at most (the analysis never draws such a figure as a roof)."""
    make = lambda: native.prepare_fma(fma_dtype)  # noqa: E731
    row = suite.run(benchmark, make, group="peak", kernel="fma", dtype=fma_dtype, impl="native",
                    convention=native.FMA_CONVENTION)
    for _ in range(2):
        gemm = suite.best_rate.get(fma_dtype)
        if not gemm or not row or (row.get("flop_per_s") or 0) >= gemm:
            break
        suite.say(f"  silicon {fma_dtype}: {row['flop_per_s'] / 1e9:.4g} GFLOP/s is below the {fma_dtype} GEMM "
                  f"({gemm / 1e9:.4g}): measured again")
        new = suite.remeasure(row, make)
        if new is None:
            break
        if (new.get("flop_per_s") or 0) < (row.get("flop_per_s") or 0):  # keep the better of the two
            row.pop("superseded", None)
            new["superseded"] = True
            suite.record.save()
        else:
            row = new


def test_engine_peak(suite, benchmark, engine_point):
    from kernels.native import engines

    kernel, dtype = engine_point
    flags = suite.platform.info().get("simd_flags")
    suite.run(benchmark, lambda: engines.prepare_engine(kernel, dtype, flags), group="peak", kernel=kernel,
              dtype=dtype, impl="native", convention=engines.ENGINE_CONVENTION)


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
    before = top = torch.get_num_threads()

    def relabel(p):
        p.group, p.extra = "scaling", {**p.extra, "threads": scaling_threads}
        return p

    try:
        torch.set_num_threads(scaling_threads)
        shape = gemm.GemmShape(1024, 1024, 1024)
        for make, kernel in ((lambda: native.prepare_stream("copy_nt", 4 * llc, threads=scaling_threads), "copy_nt"),
                             (lambda: gemm.prepare(shape, "fp32", "cpu"), "gemm")):
            # the GEMM sweep's knowledge holds here too: no call expected over the cap (or of a dtype with no path)
            reason = suite.estimate_cut("fp32", shape.flops * top // scaling_threads) if kernel == "gemm" else None
            try:
                if reason:
                    suite.not_measured("cut", reason, group="scaling", kernel="gemm", dtype="fp32", impl="torch",
                                       shape=shape.as_list())
                suite.run(benchmark if kernel == "copy_nt" else None, lambda: relabel(make()), group="scaling",
                          kernel=kernel, dtype="fp64" if kernel == "copy_nt" else "fp32", impl="native"
                          if kernel == "copy_nt" else "torch")
            except pytest.skip.Exception:
                continue
    finally:
        torch.set_num_threads(before)
