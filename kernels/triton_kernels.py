"""GPU kernels in Triton (it ships with torch's CUDA wheels): a stream family and an FMA-chain kernel for the
non-tensor-core fp32/fp64 peak (the tensor-core peak stays the GEMM sweep). ``impl = "triton"`` in the record.

Missing, with the reason, where Triton cannot be imported (Jetson builds often lack it). On a CPU-only machine the
same kernels run under Triton's interpreter (``TRITON_INTERPRET=1``, set before this module is imported) on CPU
tensors: that is how tests/test_triton.py checks correctness and the byte and FLOP counts without a GPU.

Bytes: STREAM's convention (each element read or written once), as the torch stream kernels. FLOPs of the FMA
kernel: 2 x CHAINS x BLOCK x programs x iterations (one multiply and one add per fused multiply-add).
"""
from __future__ import annotations

from kernels.base import Prepared, Unsupported, Verdict

STREAM = {"copy": (2, 1, 1, "c = a"), "triad": (3, 2, 1, "a = b + q*c"), "write": (1, 0, 1, "a = 5")}
CHAINS = 8
BLOCK = 1024
A, B, C, Q, FILL = 1.0, 2.0, 0.5, 3.0, 5.0
FMA_M, FMA_A, FMA_X0 = 0.9999, 1e-4, 0.5
CONVENTION = "STREAM convention: each element read or written once (Triton kernel, one launch per call)"

try:  # import errors are the reason a point is missing, never a crash
    import triton
    import triton.language as tl

    _IMPORT_ERROR = None
except Exception as exc:  # noqa: BLE001 (ImportError, or a broken Triton install)
    triton = tl = None
    _IMPORT_ERROR = f"{type(exc).__name__}: {exc}"


def available() -> str | None:
    """None if Triton kernels can run here, else why not."""
    if _IMPORT_ERROR:
        return f"Triton is not importable ({_IMPORT_ERROR}); the Triton kernels are missing"
    return None


if triton is not None:
    @triton.jit
    def _copy_kernel(a_ptr, c_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        tl.store(c_ptr + offs, tl.load(a_ptr + offs, mask=mask), mask=mask)

    @triton.jit
    def _triad_kernel(a_ptr, b_ptr, c_ptr, q, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        b = tl.load(b_ptr + offs, mask=mask)
        c = tl.load(c_ptr + offs, mask=mask)
        tl.store(a_ptr + offs, b + q * c, mask=mask)

    @triton.jit
    def _write_kernel(a_ptr, value, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        tl.store(a_ptr + offs, tl.zeros([BLOCK], dtype=a_ptr.dtype.element_ty) + value, mask=mask)

    @triton.jit
    def _fma_kernel(out_ptr, m, a, x0, iterations: tl.constexpr, BLOCK: tl.constexpr):
        # 8 independent chains per element: enough instruction-level parallelism to hide the FMA latency.
        # iterations is a compile-time constant (one compile per count; the suite uses one): a runtime loop bound
        # also breaks Triton 3.6's interpreter under numpy >= 2.4 (it converts a 1-element array to an int)
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        zero = tl.zeros([BLOCK], dtype=out_ptr.dtype.element_ty)
        x1 = zero + x0
        x2 = zero + x0 + 0.001
        x3 = zero + x0 + 0.002
        x4 = zero + x0 + 0.003
        x5 = zero + x0 + 0.004
        x6 = zero + x0 + 0.005
        x7 = zero + x0 + 0.006
        x8 = zero + x0 + 0.007
        for _ in range(iterations):
            x1 = x1 * m + a
            x2 = x2 * m + a
            x3 = x3 * m + a
            x4 = x4 * m + a
            x5 = x5 * m + a
            x6 = x6 * m + a
            x7 = x7 * m + a
            x8 = x8 * m + a
        tl.store(out_ptr + offs, (x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8) * 0.125)


def _grid(n: int) -> tuple[int]:
    return (-(-n // BLOCK),)


def prepare_stream(name: str, working_set_bytes: int, device: str) -> Prepared:
    import torch

    reason = available()
    if reason:
        raise Unsupported(reason)
    if name not in STREAM:
        raise Unsupported(f"unknown Triton stream kernel {name!r}; known: {', '.join(STREAM)}")
    arrays, reads, writes, formula = STREAM[name]
    n = max(BLOCK, working_set_bytes // (arrays * 4))
    a = torch.full((n,), A, dtype=torch.float32, device=device)
    b = torch.full((n,), B, dtype=torch.float32, device=device) if arrays >= 2 else None
    c = torch.full((n,), C, dtype=torch.float32, device=device) if arrays == 3 else None
    grid = _grid(n)
    if name == "copy":
        dst = torch.zeros_like(a)

        def fn():
            _copy_kernel[grid](a, dst, n, BLOCK=BLOCK)
        target, want = dst, A
    elif name == "triad":
        def fn():
            _triad_kernel[grid](a, b, c, Q, n, BLOCK=BLOCK)
        target, want = a, B + Q * C
    else:
        def fn():
            _write_kernel[grid](a, FILL, n, BLOCK=BLOCK)
        target, want = a, FILL

    def verify() -> Verdict:
        wrong = int((target != want).sum())
        return Verdict(not wrong, f"all {n} elements equal {want}" if not wrong else f"{wrong} of {n} elements differ")

    return Prepared(group="stream", kernel=name, dtype="fp32", impl="triton", fn=fn, verify=verify, flops=0,
                    bytes=(reads + writes) * n * 4, convention=CONVENTION, shape=[n], size_bytes=n * arrays * 4,
                    extra={"formula": formula, "elements": n, "block": BLOCK, "programs": grid[0]},
                    state={"a": a, "b": b, "c": c})


def prepare_fma(dtype: str, device: str, programs: int | None = None, iterations: int = 4096) -> Prepared:
    """The non-tensor-core peak: ``programs`` x BLOCK elements, each running CHAINS independent FMA chains."""
    import torch

    reason = available()
    if reason:
        raise Unsupported(reason)
    if dtype not in ("fp32", "fp64"):
        raise Unsupported(f"the Triton FMA kernel runs fp32 and fp64, not {dtype}")
    if programs is None:
        sms = torch.cuda.get_device_properties(device).multi_processor_count if device.startswith("cuda") else 1
        programs = 16 * sms  # several blocks per SM keep every SM's pipes full
    tdtype = torch.float32 if dtype == "fp32" else torch.float64
    out = torch.zeros(programs * BLOCK, dtype=tdtype, device=device)

    def fn():
        _fma_kernel[(programs,)](out, FMA_M, FMA_A, FMA_X0, iterations=iterations, BLOCK=BLOCK)

    def verify() -> Verdict:
        import math

        # closed form of x = x*m + a from x0 + 0.001 k, averaged over the 8 chains
        want = sum(1.0 + FMA_M ** iterations * (FMA_X0 + 0.001 * k - 1.0) for k in range(CHAINS)) / CHAINS
        got = out.double()
        err = float((got - want).abs().max())
        tol = 2e-3 if dtype == "fp32" else 1e-9
        ok = math.isfinite(err) and err <= tol
        return Verdict(ok, f"max deviation from the closed form {err:.3g} ({'<=' if ok else '>'} {tol:g})")

    return Prepared(group="peak", kernel="fma", dtype=dtype, impl="triton", fn=fn, verify=verify,
                    flops=2 * CHAINS * BLOCK * programs * iterations, bytes=0,
                    convention="FLOPs = 2 per fused multiply-add (x = x*m + a), CUDA cores (no tensor cores)",
                    shape=[programs, BLOCK, CHAINS, iterations],
                    extra={"programs": programs, "block": BLOCK, "chains": CHAINS, "iterations": iterations},
                    state={"out": out})
