"""Roofs at the hardware's limit (CPU): this project's own C kernels (kernels/native), timed by the same harness.

* the silicon peak per dtype: register-only FMA chains (no memory traffic), on torch's thread count, and the matrix
  and dot-product engines the CPU flags show (AMX tiles for bf16 and int8, AVX512-BF16, VNNI: kernels/native/engines);
* the memory's bandwidth: STREAM kernels with cached and non-temporal stores, a vectorised read, a non-temporal
  fill and glibc memcpy, over working sets per memory level (quick: one per cache level and two in DRAM);
* thread scaling: DRAM bandwidth (non-temporal copy) and the fp32 GEMM at 1 and all threads (quick), or at every
  count (full): how many cores saturate memory.
These are the roofs above torch's: the layer report keeps placing torch layers against torch's roofs."""
import pytest

from bench.session import run_of
from kernels import native, stream

DTYPES = ("fp32", "fp64")
#: a quick run times these inside the caches (all kernels in DRAM, where the store kind matters most)
QUICK_CACHE_KERNELS = ("copy", "read", "triad")


def _llc(config) -> int:
    return run_of(config).platform.llc_bytes()


def _is_cpu(config) -> bool:
    return run_of(config).platform.kind == "cpu"


def _levels(config):
    platform = run_of(config).platform
    return native.stream_levels([vars(c) for c in platform.cache_levels()], platform.llc_bytes(),
                                platform.memory_bytes(), config.getoption("--quick"))


def pytest_generate_tests(metafunc):
    config = metafunc.config
    cpu = _is_cpu(config)
    if "fma_dtype" in metafunc.fixturenames:
        metafunc.parametrize("fma_dtype", list(DTYPES) if cpu else [])
    if "engine_point" in metafunc.fixturenames:
        from kernels.native import engines

        flags = run_of(config).platform.info().get("simd_flags") if cpu else []
        metafunc.parametrize("engine_point", [pytest.param(key, id=f"{key[0]}-{key[1]}")
                                              for key in engines.engines_for(flags)])
    if "native_point" in metafunc.fixturenames:
        sizes = _levels(config) if cpu else []
        quick = config.getoption("--quick")
        dram = [s for s in sizes if s >= 4 * _llc(config)]
        platform = run_of(config).platform
        first = native.stream_levels([vars(c) for c in platform.cache_levels()], platform.llc_bytes(),
                                     platform.memory_bytes(), True) if cpu else []
        points = [pytest.param((name, size), id=f"{name}-{size >> 10}KiB")
                  for name, size in stream.budget_order(
                      native.STREAM, sizes, stream.level_points([vars(c) for c in platform.cache_levels()],
                                                                platform.llc_bytes(), sizes) if cpu else [], first)
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


#: a silicon figure below its GEMM is measured again at most this many times, this long apart
SILICON_RETRIES, SILICON_PAUSE_S = 3, 0.5


def test_silicon_above_gemm(suite):
    """A silicon figure below this run's GEMM of the same dtype (which runs on the same units) cannot be the silicon's
    peak: on a VM the clock the cores get drifts with the neighbours, and the GEMM may have run at a better moment.
    Such a figure is measured again at the end of this file, seconds after its first measurement (bounded:
    SILICON_RETRIES); the best of all is kept, and what
    stays below is no roof (results.roofline.silicon_below_gemm says so)."""
    import time

    from kernels.native import engines

    flags = suite.platform.info().get("simd_flags")
    makers = {}
    for row in suite.record.measurements:
        if row.get("group") == "peak" and row.get("impl") == "native" and row.get("status") == "ok":
            kernel, dtype = row["kernel"], row["dtype"]
            makers[(kernel, dtype)] = ((lambda d=dtype: native.prepare_fma(d)) if kernel == "fma" else
                                       (lambda k=kernel, d=dtype: engines.prepare_engine(k, d, flags)))

    def best_row(kernel, dtype):
        rows = [m for m in suite.record.measurements if m.get("group") == "peak" and m.get("kernel") == kernel
                and m.get("dtype") == dtype and m.get("status") == "ok" and not m.get("superseded")]
        return max(rows, key=lambda m: m.get("flop_per_s") or 0, default=None)

    for dtype in sorted({d for _k, d in makers}):
        for _ in range(SILICON_RETRIES):
            gemm = suite.best_rate.get(dtype)
            rows = [best_row(k, d) for k, d in makers if d == dtype]
            top = max((r for r in rows if r), key=lambda m: m.get("flop_per_s") or 0, default=None)
            if not gemm or top is None or (top.get("flop_per_s") or 0) >= gemm:
                break
            if suite.clock.cut_reason("silicon peak"):
                break
            suite.say(f"  silicon {dtype}: {top['flop_per_s'] / 1e9:.4g} G/s is below the {dtype} GEMM "
                      f"({gemm / 1e9:.4g}): measured again")
            time.sleep(SILICON_PAUSE_S)
            new = suite.remeasure(top, makers[(top["kernel"], dtype)])
            if new is not None and (new.get("flop_per_s") or 0) < (top.get("flop_per_s") or 0):
                top.pop("superseded", None)  # keep the better of the two
                new["superseded"] = True
                suite.record.save()
