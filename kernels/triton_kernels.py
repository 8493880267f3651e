"""GPU kernels in Triton (it ships with torch's CUDA wheels): a stream family and an FMA-chain kernel for the
non-tensor-core fp32/fp64 peak (the tensor-core peak stays the GEMM sweep). ``impl = "triton"`` in the record.

Missing, with the reason, where Triton cannot be imported (Jetson builds often lack it). On a CPU-only machine the
same kernels run under Triton's interpreter (``TRITON_INTERPRET=1``, set before this module is imported) on CPU
tensors: that is how tests/test_triton.py checks correctness and the byte and FLOP counts without a GPU. The
interpreter keeps Python scalars as Python floats, where compiled Triton types a Python float argument as fp32:
so no kernel takes a float scalar argument (the FMA constants come from a tensor of the kernel's dtype), and
tests/test_triton_aot.py compiles every launch for sm_90 / sm_87 on the CPU (kernels/triton_aot.py) and reads the
argument and accumulator types from the IR.

Two shapes of stream kernel: one tile per program (``copy``, ``triad``, ``write``, ``read``; BLOCK elements) and
grid-stride persistent ones (``*_persistent``: a few programs per SM, each looping over tiles of PERSISTENT_BLOCK
elements, so no launch of a million tiny programs and no tail wave stands between the memory and its roof).

Bytes: STREAM's convention (each element read or written once), as the torch stream kernels; the reductions
(``read``, ``read_persistent``) also write one partial sum per program, 1/BLOCK of what they read, not counted.
FLOPs of the FMA kernel: 2 x CHAINS x BLOCK x programs x iterations (one multiply and one add per fused
multiply-add).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kernels import stream
from kernels.base import Prepared, Unsupported, Verdict

#: the Triton kernels of the one stream table (kernels/stream.py: formula, bytes, FLOPs, expected value, stores);
#: ``*_persistent`` are the grid-stride shapes of copy, triad and read
STREAM = stream.kernels_of("triton")
CHAINS = 8
BLOCK = 1024
#: a persistent program's tile (16 KiB of fp32) and its warps: 16 elements a thread, four 128-bit loads in flight
PERSISTENT_BLOCK = 4096
PERSISTENT_WARPS = 8
#: persistent programs per SM (an H100/H200 SM holds 64 warps: 4 programs of 8 warps leave room to hide latency)
PERSISTENT_PER_SM = 4
A, B, C, Q, FILL = stream.A, stream.B, stream.C, stream.Q, stream.FILL
FMA_M, FMA_A, FMA_X0, FMA_STEP = 0.9999, 1e-4, 0.5, 0.001
#: FMA iterations per launch in the suite: 2048 x 8 chains x 1024 elements x 16 programs per SM is ~1 ms of fp32
#: work on an H200 (132 SMs at ~67 TFLOP/s), so the gap between back-to-back launches (a few us) costs well under 1 %
FMA_ITERATIONS = 2048
CONVENTION = ("STREAM convention: each element read or written once (Triton kernel, one launch per call; the "
              "reductions' partial sums, 1/BLOCK of the bytes read, are not counted)")
#: Triton indexes with int32: one array stays below 2^31 elements
MAX_ELEMENTS = (1 << 31) - PERSISTENT_BLOCK

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


@dataclass
class Launch:
    """One kernel launch as the suite makes it: what is timed (``fn``) and what tests compile ahead of time."""

    kernel: Any
    grid: tuple
    args: tuple
    kwargs: dict = field(default_factory=dict)

    def __call__(self):
        self.kernel[self.grid](*self.args, **self.kwargs)


if triton is not None:
    @triton.jit
    def _copy_kernel(a_ptr, c_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        tl.store(c_ptr + offs, tl.load(a_ptr + offs, mask=mask), mask=mask)

    @triton.jit
    def _triad_kernel(a_ptr, b_ptr, c_ptr, q_ptr, n, BLOCK: tl.constexpr):
        q = tl.load(q_ptr)  # from a tensor of the arrays' dtype: a Python float argument would be typed fp32
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        b = tl.load(b_ptr + offs, mask=mask)
        c = tl.load(c_ptr + offs, mask=mask)
        tl.store(a_ptr + offs, b + q * c, mask=mask)

    @triton.jit
    def _write_kernel(a_ptr, value_ptr, n, BLOCK: tl.constexpr):
        value = tl.load(value_ptr)
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        tl.store(a_ptr + offs, tl.zeros([BLOCK], dtype=a_ptr.dtype.element_ty) + value, mask=mask)

    @triton.jit
    def _read_kernel(a_ptr, part_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        x = tl.load(a_ptr + offs, mask=offs < n, other=0.0)
        tl.store(part_ptr + tl.program_id(0), tl.sum(x, axis=0))

    @triton.jit
    def _copy_persistent_kernel(a_ptr, c_ptr, n, BLOCK: tl.constexpr):
        tiles = tl.cdiv(n, BLOCK)
        for t in range(tl.program_id(0), tiles, tl.num_programs(0)):
            offs = t * BLOCK + tl.arange(0, BLOCK)
            mask = offs < n
            tl.store(c_ptr + offs, tl.load(a_ptr + offs, mask=mask), mask=mask)

    @triton.jit
    def _triad_persistent_kernel(a_ptr, b_ptr, c_ptr, q_ptr, n, BLOCK: tl.constexpr):
        q = tl.load(q_ptr)
        tiles = tl.cdiv(n, BLOCK)
        for t in range(tl.program_id(0), tiles, tl.num_programs(0)):
            offs = t * BLOCK + tl.arange(0, BLOCK)
            mask = offs < n
            b = tl.load(b_ptr + offs, mask=mask)
            c = tl.load(c_ptr + offs, mask=mask)
            tl.store(a_ptr + offs, b + q * c, mask=mask)

    @triton.jit
    def _read_persistent_kernel(a_ptr, part_ptr, n, BLOCK: tl.constexpr):
        acc = tl.zeros([BLOCK], dtype=a_ptr.dtype.element_ty)
        tiles = tl.cdiv(n, BLOCK)
        for t in range(tl.program_id(0), tiles, tl.num_programs(0)):
            offs = t * BLOCK + tl.arange(0, BLOCK)
            acc += tl.load(a_ptr + offs, mask=offs < n, other=0.0)
        tl.store(part_ptr + tl.program_id(0), tl.sum(acc, axis=0))

    @triton.jit
    def _fma_kernel(out_ptr, p_ptr, iterations: tl.constexpr, BLOCK: tl.constexpr):
        # 8 independent chains per element: enough instruction-level parallelism to hide the FMA latency.
        # m, a and the 8 start values are loaded from p_ptr, a tensor of out's dtype: compiled Triton types a Python
        # float argument as fp32, so fp64 chains given 0.9999 would multiply by float32(0.9999) (the interpreter
        # keeps Python floats and cannot show it). iterations is a compile-time constant (one compile per count;
        # the suite uses one): a runtime loop bound also breaks Triton 3.6's interpreter under numpy >= 2.4
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        m = tl.load(p_ptr)
        a = tl.load(p_ptr + 1)
        zero = tl.zeros([BLOCK], dtype=out_ptr.dtype.element_ty)
        x1 = zero + tl.load(p_ptr + 2)
        x2 = zero + tl.load(p_ptr + 3)
        x3 = zero + tl.load(p_ptr + 4)
        x4 = zero + tl.load(p_ptr + 5)
        x5 = zero + tl.load(p_ptr + 6)
        x6 = zero + tl.load(p_ptr + 7)
        x7 = zero + tl.load(p_ptr + 8)
        x8 = zero + tl.load(p_ptr + 9)
        for _ in range(iterations):
            x1 = tl.fma(x1, m, a)
            x2 = tl.fma(x2, m, a)
            x3 = tl.fma(x3, m, a)
            x4 = tl.fma(x4, m, a)
            x5 = tl.fma(x5, m, a)
            x6 = tl.fma(x6, m, a)
            x7 = tl.fma(x7, m, a)
            x8 = tl.fma(x8, m, a)
        tl.store(out_ptr + offs, (x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8) * 0.125)

    _STREAM_KERNELS = {"copy": _copy_kernel, "triad": _triad_kernel, "write": _write_kernel, "read": _read_kernel,
                       "copy_persistent": _copy_persistent_kernel, "triad_persistent": _triad_persistent_kernel,
                       "read_persistent": _read_persistent_kernel}


def _sms(device: str) -> int:
    import torch

    return torch.cuda.get_device_properties(device).multi_processor_count if device.startswith("cuda") else 1


def stream_elements(name: str, working_set_bytes: int) -> int:
    """Elements per array for a working set: a multiple of the tile, so the length Triton specialises on is divisible
    by 16 and the masked loads stay 128-bit vectors (a triad over 1 GiB is 2^30/12 elements, an odd number, which
    would turn every load into a predicated 32-bit one)."""
    arrays, persistent = STREAM[name].arrays, name.endswith("_persistent")
    tile = PERSISTENT_BLOCK if persistent else BLOCK
    return max(tile, working_set_bytes // (arrays * 4) // tile * tile)


def prepare_stream(name: str, working_set_bytes: int, device: str, elements: int | None = None,
                   programs: int | None = None) -> Prepared:
    """``elements`` (tests: a masked tail) overrides the working set; ``programs`` the persistent grid
    (default PERSISTENT_PER_SM per SM)."""
    import torch

    reason = available()
    if reason:
        raise Unsupported(reason)
    if name not in STREAM:
        raise Unsupported(f"unknown Triton stream kernel {name!r}; known: {', '.join(STREAM)}")
    kernel = STREAM[name]
    arrays, persistent = kernel.arrays, name.endswith("_persistent")
    n = elements or stream_elements(name, working_set_bytes)
    if n > MAX_ELEMENTS:
        raise Unsupported(f"{n} elements per array: Triton's int32 offsets stop at {MAX_ELEMENTS}")
    block = PERSISTENT_BLOCK if persistent else BLOCK
    tiles = -(-n // block)
    grid = (min(tiles, programs or PERSISTENT_PER_SM * _sms(device)),) if persistent else (tiles,)
    kwargs = {"BLOCK": block, **({"num_warps": PERSISTENT_WARPS} if persistent else {})}
    a = torch.full((n,), A, dtype=torch.float32, device=device)
    b = torch.full((n,), B, dtype=torch.float32, device=device) if arrays >= 2 else None
    c = torch.full((n,), C, dtype=torch.float32, device=device) if arrays == 3 else None
    kernel_fn, base = _STREAM_KERNELS[name], name.replace("_persistent", "")
    state: dict[str, Any] = {"a": a, "b": b, "c": c}
    if base == "copy":
        dst = torch.zeros_like(a)
        launch, target = Launch(kernel_fn, grid, (a, dst, n), kwargs), dst
    elif base == "triad":
        q = torch.full((1,), Q, dtype=torch.float32, device=device)
        launch, target = Launch(kernel_fn, grid, (a, b, c, q, n), kwargs), a
    elif base == "write":
        value = torch.full((1,), FILL, dtype=torch.float32, device=device)
        launch, target = Launch(kernel_fn, grid, (a, value, n), kwargs), a
    else:
        parts = torch.zeros(grid[0], dtype=torch.float32, device=device)
        launch, target = Launch(kernel_fn, grid, (a, parts, n), kwargs), parts
    state.update(target=target, launch=launch)

    def verify() -> Verdict:  # the table's check; the partial sums of ones are exact integers in fp32, summed in fp64
        if kernel.expected is None:
            return stream.check(kernel, n, total=float(target.double().sum()), elements=n)
        return stream.check(kernel, n, target)

    return Prepared(group="stream", kernel=name, dtype="fp32", impl="triton", fn=launch, verify=verify,
                    flops=kernel.flops_per_element * n,
                    bytes=stream.bytes_per_element(kernel, 4) * n, convention=CONVENTION, shape=[n],
                    size_bytes=n * arrays * 4, extra={"formula": kernel.formula, "elements": n, "block": block, "programs": grid[0],
                           "persistent": persistent, **({"num_warps": PERSISTENT_WARPS} if persistent else {})},
                    state=state)


def fma_start_values() -> list[float]:
    return [FMA_X0 + FMA_STEP * k for k in range(CHAINS)]


def prepare_fma(dtype: str, device: str, programs: int | None = None, iterations: int = 4096) -> Prepared:
    """The non-tensor-core peak: ``programs`` x BLOCK elements, each running CHAINS independent FMA chains."""
    import torch

    reason = available()
    if reason:
        raise Unsupported(reason)
    if dtype not in ("fp32", "fp64"):
        raise Unsupported(f"the Triton FMA kernel runs fp32 and fp64, not {dtype}")
    if programs is None:
        programs = 16 * _sms(device)  # several blocks per SM keep every SM's pipes full
    tdtype = torch.float32 if dtype == "fp32" else torch.float64
    out = torch.zeros(programs * BLOCK, dtype=tdtype, device=device)
    params = torch.tensor([FMA_M, FMA_A, *fma_start_values()], dtype=tdtype, device=device)
    launch = Launch(_fma_kernel, (programs,), (out, params), {"iterations": iterations, "BLOCK": BLOCK})

    def verify() -> Verdict:
        import math

        # closed form of x = x*m + a = 1 + m^k (x0 - 1) with a = 1 - m, from the values the kernel was given
        # (rounded to its dtype), averaged over the chains
        m, a, *starts = (float(v) for v in params.double().cpu())
        fixed = a / (1.0 - m)
        want = sum(fixed + m ** iterations * (s - fixed) for s in starts) / CHAINS
        err = float((out.double() - want).abs().max())
        tol = 2e-3 if dtype == "fp32" else 1e-9
        ok = math.isfinite(err) and err <= tol
        return Verdict(ok, f"max deviation from the closed form {err:.3g} ({'<=' if ok else '>'} {tol:g})")

    return Prepared(group="peak", kernel="fma", dtype=dtype, impl="triton", fn=launch, verify=verify,
                    flops=2 * CHAINS * BLOCK * programs * iterations, bytes=0,
                    convention="FLOPs = 2 per fused multiply-add (x = x*m + a), CUDA cores (no tensor cores)",
                    shape=[programs, BLOCK, CHAINS, iterations],
                    extra={"programs": programs, "block": BLOCK, "chains": CHAINS, "iterations": iterations},
                    state={"out": out, "params": params, "launch": launch})
