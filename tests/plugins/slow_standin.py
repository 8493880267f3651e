"""A stand-in device whose GEMM is slow: every call of the GEMM of the chosen dtypes (the probe included) is followed
by native work (this project's FMA chains on one thread, through ctypes: like a BLAS call, it runs on when a signal
arrives, and Python's handlers wait for it) lasting 999x the call's own duration.

Environment: ``ROOFLINE_STANDIN_FACTOR`` (default 1000), ``ROOFLINE_STANDIN_DTYPES`` (default fp32),
``ROOFLINE_STANDIN_SLEEP_S`` (every call lasts that long instead), ``ROOFLINE_STANDIN_MARK`` (a file created when a
slow call starts, for tests that signal the run mid-call)."""
import os
import time


def _native_wait():
    """A function that computes for about ``seconds`` in one native call (calibrated once)."""
    import numpy as np

    from kernels import native

    lib = native.library()
    out = np.zeros(lib.build_info["accumulators"] * 16, dtype=np.float64)
    ptr = out.ctypes.data_as(native.ctypes.POINTER(native.ctypes.c_double))
    start, probe = time.perf_counter(), 1 << 16
    lib.rn_fma_f64(probe, 0.5, 0.9999, 1e-4, 1, 1, ptr)
    per_iteration = max(time.perf_counter() - start, 1e-6) / probe

    def wait(seconds: float) -> None:
        if seconds > 0:
            lib.rn_fma_f64(int(seconds / per_iteration), 0.5, 0.9999, 1e-4, 1, 1, ptr)
    return wait


def pytest_configure(config):
    from kernels import gemm

    factor = float(os.environ.get("ROOFLINE_STANDIN_FACTOR", "1000"))
    fixed = os.environ.get("ROOFLINE_STANDIN_SLEEP_S")
    dtypes = os.environ.get("ROOFLINE_STANDIN_DTYPES", "fp32").split(",")
    original, waits = gemm.prepare, []

    def prepare(shape, dtype, device, **kwargs):
        p = original(shape, dtype, device, **kwargs)
        if dtype in dtypes:
            if not waits:
                waits.append(_native_wait())
            fn = p.fn

            def slow():
                if os.environ.get("ROOFLINE_STANDIN_MARK"):
                    open(os.environ["ROOFLINE_STANDIN_MARK"], "a").close()
                start = time.perf_counter()
                fn()
                waits[0](float(fixed) if fixed else (factor - 1) * (time.perf_counter() - start))
            p.fn = slow
        return p

    gemm.prepare = prepare


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """``ROOFLINE_STANDIN_SUMMARY_MARK``: a file created when the end-of-run summary starts, which then lasts
    ``ROOFLINE_STANDIN_SUMMARY_S`` longer (for tests that signal the run while it writes its outputs)."""
    mark = os.environ.get("ROOFLINE_STANDIN_SUMMARY_MARK")
    if mark:
        open(mark, "a").close()
        end = time.monotonic() + float(os.environ.get("ROOFLINE_STANDIN_SUMMARY_S", "2"))
        while time.monotonic() < end:  # Python-level waiting: a signal's handler runs at once
            time.sleep(0.01)
