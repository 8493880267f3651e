"""Dense matrix multiplication: C = A @ B, per dtype, over shapes.

Conventions (said in every record): FLOPs = 2 x M x N x K per matrix (one multiply and one add per MAC; the
"2K - 1" refinement is ignored), x batch for batched GEMM. Bytes = the minimum traffic, A, B and C each moved
once (M*K + K*N + M*N elements x itemsize; int8 C is int32, fp8 C is bf16).

Verification: after timing, sampled rows of C are recomputed in float64 from the same (already rounded) inputs;
the error is measured relative to |A| @ |B| of those rows, against a tolerance per dtype.
"""
from __future__ import annotations

from dataclasses import dataclass

from kernels.base import Prepared, Unsupported, Verdict, torch_dtype

GEMM_CONVENTION = "FLOPs = 2*M*N*K (x batch); bytes = (M*K + K*N) x in-itemsize + M*N x out-itemsize, each once"

#: relative error allowed against |A| @ |B| (float64 reference on the same rounded inputs)
TOLERANCE = {"fp64": 1e-10, "fp32": 1e-4, "tf32": 5e-3, "fp16": 5e-3, "bf16": 2e-2, "fp8": 2e-2, "int8": 0.0}
OUTPUT_DTYPE = {"int8": "int32", "fp8": "bfloat16"}
#: implementations of the fp8 GEMM on CUDA: torch._scaled_mm with its default (full-precision) accumulation, and
#: with use_fast_accum=True (what vendor peak figures assume; products are summed in reduced precision)
FP8_FAST_ACCUM = "torch+fast_accum"
#: the tiny square GEMM whose rate decides, before a dtype's first shape, whether it has a usable path at all
PROBE_SIZE = 128
#: CUDA's int8 and fp8 GEMMs need dimensions that are multiples of these (torch._int_mm / torch._scaled_mm checks)
CUDA_MULTIPLE = {"int8": 8, "fp8": 16}


@dataclass(frozen=True)
class GemmShape:
    m: int
    n: int
    k: int
    batch: int = 1
    tag: str = "square"

    @property
    def flops(self) -> int:
        return 2 * self.batch * self.m * self.n * self.k

    def elements(self) -> tuple[int, int, int]:
        b = self.batch
        return b * self.m * self.k, b * self.k * self.n, b * self.m * self.n

    def id(self) -> str:
        core = f"{self.m}x{self.n}x{self.k}"
        return f"{self.batch}x{core}" if self.batch > 1 else core

    def as_list(self) -> list[int]:
        return [self.batch, self.m, self.n, self.k]


def gemm_bytes(shape: GemmShape, dtype: str) -> int:
    import torch

    a, b, c = shape.elements()
    in_size = torch.empty((), dtype=torch_dtype(dtype)).element_size()
    out_size = torch.empty((), dtype=torch_dtype(OUTPUT_DTYPE.get(dtype, dtype))).element_size()
    return (a + b) * in_size + c * out_size


def sweep(kind: str, quick: bool) -> list[GemmShape]:
    """Shapes in increasing work, so a time-bounded sweep can stop a dtype once points get too slow."""
    if kind == "cpu":
        squares = [512, 1024, 2048] if quick else [256, 512, 1024, 2048, 3072, 4096]
        odd = [] if quick else [4095, 4097]
        shapes = [GemmShape(s, s, s) for s in squares] + [GemmShape(s, s, s, tag="odd") for s in odd]
        shapes.append(GemmShape(8192 if quick else 16384, 64, 1024, tag="tall-skinny"))
        shapes.append(GemmShape(256, 256, 256, batch=16 if quick else 64, tag="batched"))
    else:
        squares = [2048, 4096, 8192] if quick else [1024, 2048, 4096, 8192, 12288, 16384]
        odd = [8191] if quick else [8191, 8193]
        shapes = [GemmShape(s, s, s) for s in squares] + [GemmShape(s, s, s, tag="odd") for s in odd]
        if quick:
            shapes.append(GemmShape(16384, 16384, 16384, tag="square"))
        shapes.append(GemmShape(65536, 256, 8192, tag="tall-skinny"))
        shapes.append(GemmShape(1024, 1024, 1024, batch=64, tag="batched"))
    return sorted(shapes, key=lambda s: s.flops)


def dtype_support(dtype: str, device: str, capability: tuple[int, int] | None = None) -> str | None:
    """None if the dtype has a GEMM path on this device, else the reason it has not."""
    import torch

    if dtype not in TOLERANCE:
        return f"unknown GEMM dtype {dtype!r}; known: {', '.join(TOLERANCE)}"
    if device.startswith("cuda"):
        major, minor = capability or torch.cuda.get_device_capability(device)
        if dtype == "tf32" and major < 8:
            return f"TF32 tensor cores need compute capability >= 8.0 (this GPU is {major}.{minor})"
        if dtype == "bf16" and major < 8:
            return f"bf16 tensor cores need compute capability >= 8.0 (this GPU is {major}.{minor})"
        if dtype == "fp8" and (major, minor) < (8, 9):
            return f"fp8 GEMM (torch._scaled_mm) needs compute capability >= 8.9 (this GPU is {major}.{minor})"
        return None
    if dtype == "tf32":
        return "TF32 is an NVIDIA tensor-core mode; fp32 GEMM on a CPU has no TF32 path"
    if dtype == "fp8" and not hasattr(torch, "_scaled_mm"):
        return f"torch {torch.__version__} has no torch._scaled_mm"
    return None


def shape_support(shape: GemmShape, dtype: str, device: str) -> str | None:
    """None if this shape can run for this dtype on this device, else why not (a missing point, not a failure)."""
    if device.startswith("cuda") and dtype in CUDA_MULTIPLE:
        multiple = CUDA_MULTIPLE[dtype]
        op = "torch._int_mm" if dtype == "int8" else "torch._scaled_mm"
        dims = {"K": shape.k, "N": shape.n}
        bad = [f"{name}={value}" for name, value in dims.items() if value % multiple]
        if bad:
            return f"{op} on CUDA needs {', '.join(dims)} to be multiples of {multiple} ({', '.join(bad)})"
        if dtype == "int8" and shape.m <= 16:
            return f"torch._int_mm on CUDA needs M > 16 (M={shape.m})"
    return None


def _set_tf32(enabled: bool):
    import torch

    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        matmul.fp32_precision = "tf32" if enabled else "ieee"
    else:  # older torch
        matmul.allow_tf32 = enabled


def _inputs(shape: GemmShape, dtype: str, device: str, generator):
    import torch

    dims_a = (shape.batch, shape.m, shape.k) if shape.batch > 1 else (shape.m, shape.k)
    dims_b = (shape.batch, shape.k, shape.n) if shape.batch > 1 else (shape.k, shape.n)
    if dtype == "int8":
        a = torch.randint(-8, 8, dims_a, dtype=torch.int8, device=device, generator=generator)
        b = torch.randint(-8, 8, dims_b, dtype=torch.int8, device=device, generator=generator)
        # B column-major: cuBLASLt's int8 GEMM is fast only for the "TN" layout; a row-major B takes a slow path
        # (reported 3-13x slower). On the CPU too it is about 2x faster (measured here at 1024^3).
        return a, b.t().contiguous().t()
    work = torch.float64 if dtype == "fp64" else torch.float32
    a = torch.rand(dims_a, dtype=work, device=device, generator=generator).mul_(2).sub_(1)
    b = torch.rand(dims_b, dtype=work, device=device, generator=generator).mul_(2).sub_(1)
    if dtype == "fp8":
        a = a.to(torch.float8_e4m3fn)
        b = b.to(torch.float8_e4m3fn).t().contiguous().t()  # _scaled_mm wants B column-major
    elif dtype not in ("fp64", "fp32", "tf32"):
        a, b = a.to(torch_dtype(dtype)), b.to(torch_dtype(dtype))
    return a, b


def _f64(x):
    import torch

    # float8 has few kernels (no index_select on some builds): widen through float32 first
    return x.to(torch.float32).to(torch.float64) if x.element_size() == 1 and x.is_floating_point() else x.to(torch.float64)


def _blocked_products(a_rows, a_colsum, a_abs_colsum, b, block: int = 2048):
    """In float64, block by block over K (so no full float64 copy of B is made):
    rows of A @ B, |rows of A| @ |B|, colsum(A) @ B, colsum(|A|) @ |B|, B @ 1 and |B| @ 1."""
    import torch

    k, n = b.shape
    dev = b.device
    rows = torch.zeros(a_rows.shape[0], n, dtype=torch.float64, device=dev)
    rows_abs = torch.zeros_like(rows)
    col = torch.zeros(n, dtype=torch.float64, device=dev)
    col_abs = torch.zeros_like(col)
    b_rowsum = torch.empty(k, dtype=torch.float64, device=dev)
    b_abs_rowsum = torch.empty_like(b_rowsum)
    for lo in range(0, k, block):
        hi = min(k, lo + block)
        bb = _f64(b[lo:hi])
        rows += a_rows[:, lo:hi] @ bb
        rows_abs += a_rows[:, lo:hi].abs() @ bb.abs()
        col += a_colsum[lo:hi] @ bb
        col_abs += a_abs_colsum[lo:hi] @ bb.abs()
        b_rowsum[lo:hi] = bb.sum(1)
        b_abs_rowsum[lo:hi] = bb.abs().sum(1)
    return rows, rows_abs, col, col_abs, b_rowsum, b_abs_rowsum


def verify_rows(a, b, c, dtype: str, rows: int = 16, seed: int = 1, block: int = 2048) -> Verdict:
    """Check C = A @ B in float64 without materialising float64 copies of the whole matrices:
    ``rows`` random rows of C recomputed exactly, plus ABFT checksums (Huang & Abraham) over ALL of C: column sums
    against colsum(A) @ B and row sums against A @ (B @ 1), so an error in a row the sample missed still shows.
    Errors are relative to |A| @ |B| of the same row / column (dtype-aware tolerance, TOLERANCE)."""
    import torch

    if c.dim() == 3:
        checks = [(a[i], b[i], c[i]) for i in sorted({0, c.shape[0] - 1})]
    else:
        checks = [(a, b, c)]
    worst = 0.0
    for a2, b2, c2 in checks:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        idx = torch.randperm(a2.shape[0], generator=gen)[:rows].to(a2.device)
        if a2.element_size() == 1 and a2.is_floating_point():  # float8: index the raw bytes, then widen
            a_rows = _f64(a2.view(torch.uint8)[idx].view(a2.dtype))
        else:
            a_rows = _f64(a2[idx])
        a_colsum = torch.zeros(a2.shape[1], dtype=torch.float64, device=a2.device)
        a_abs_colsum = torch.zeros_like(a_colsum)
        c_colsum = torch.zeros(c2.shape[1], dtype=torch.float64, device=c2.device)
        c_rowsum = torch.empty(c2.shape[0], dtype=torch.float64, device=c2.device)
        ab_rowsum_parts = []
        for lo in range(0, a2.shape[0], block):
            hi = min(a2.shape[0], lo + block)
            ab, cb = _f64(a2[lo:hi]), _f64(c2[lo:hi])
            if not torch.isfinite(cb).all():
                return Verdict(False, "non-finite values in C")
            a_colsum += ab.sum(0)
            a_abs_colsum += ab.abs().sum(0)
            c_colsum += cb.sum(0)
            c_rowsum[lo:hi] = cb.sum(1)
            ab_rowsum_parts.append((lo, hi))
        ref, scale, col, col_abs, b_rowsum, b_abs_rowsum = _blocked_products(a_rows, a_colsum, a_abs_colsum, b2, block)
        got = _f64(c2[idx])  # C is int32 or a float type: indexable everywhere
        err = (got - ref).abs()
        if dtype == "int8":
            bad = int((err > 0).sum())
            if bad:
                return Verdict(False, f"int8 GEMM differs from the exact integer result in {bad} sampled elements")
        else:
            worst = max(worst, float((err / scale.clamp_min(1e-300)).max()))
        worst = max(worst, float(((c_colsum - col).abs() / col_abs.clamp_min(1e-300)).max()))
        for lo, hi in ab_rowsum_parts:
            ab = _f64(a2[lo:hi])
            want, want_abs = ab @ b_rowsum, ab.abs() @ b_abs_rowsum
            worst = max(worst, float(((c_rowsum[lo:hi] - want).abs() / want_abs.clamp_min(1e-300)).max()))
    tol = TOLERANCE[dtype]
    if worst > tol:
        return Verdict(False, f"max relative error {worst:.3g} > tolerance {tol:g} (float64 reference: sampled rows "
                              "and row/column checksums)")
    return Verdict(True, f"max relative error {worst:.3g} <= {tol:g} (float64 reference: {rows} sampled rows, "
                         "row and column checksums)")


def _mode(dtype: str, impl: str, device: str) -> dict:
    """How the GEMM was called, where it matters for the figure (kept in the record, shown with the peak)."""
    if dtype == "fp8":
        return {"mode": "use_fast_accum=True" if impl == FP8_FAST_ACCUM else "use_fast_accum=False (default)"}
    if dtype == "int8":
        return {"mode": "B column-major (TN layout)"}
    if dtype in ("fp32", "tf32") and device.startswith("cuda"):
        return {"mode": "TF32 tensor cores" if dtype == "tf32" else "IEEE fp32 (TF32 off)"}
    return {}


def prepare(shape: GemmShape, dtype: str, device: str, *, impl: str = "torch", free_bytes: int | None = None,
            seed: int = 0) -> Prepared:
    """Allocate inputs and output for one GEMM point and return the callable to time."""
    import torch

    reason = dtype_support(dtype, device)
    if reason:
        raise Unsupported(reason)
    nbytes = gemm_bytes(shape, dtype)
    if free_bytes is not None and nbytes * 1.5 > free_bytes:
        raise Unsupported(f"needs {nbytes / 1e9:.2f} GB for A, B, C; only {free_bytes / 1e9:.2f} GB free")
    if shape.batch > 1 and dtype in ("int8", "fp8"):
        raise Unsupported(f"{'torch._int_mm' if dtype == 'int8' else 'torch._scaled_mm'} has no batched form")
    reason = shape_support(shape, dtype, device)
    if reason:
        raise Unsupported(reason)
    if impl == FP8_FAST_ACCUM and (dtype != "fp8" or not device.startswith("cuda")):
        raise Unsupported("use_fast_accum is a CUDA fp8 (torch._scaled_mm) mode")
    gen = torch.Generator(device=device).manual_seed(seed)
    a, b = _inputs(shape, dtype, device, gen)
    out_dtype = getattr(torch, OUTPUT_DTYPE[dtype]) if dtype in OUTPUT_DTYPE else a.dtype
    c = torch.empty(*a.shape[:-1], b.shape[-1], dtype=out_dtype, device=device)

    if impl == "numpy":
        if device != "cpu" or dtype not in ("fp32", "fp64"):
            raise Unsupported("the numpy implementation runs fp32/fp64 on the CPU only")
        import numpy as np

        an, bn, cn = a.numpy(), b.numpy(), c.numpy()  # share memory with the torch tensors

        def fn():
            np.matmul(an, bn, out=cn)
    elif dtype == "int8":

        def fn():
            torch._int_mm(a, b, out=c)
    elif dtype == "fp8":
        one = torch.ones((), dtype=torch.float32, device=device)
        fast = impl == FP8_FAST_ACCUM

        def fn():
            torch._scaled_mm(a, b, one, one, out_dtype=torch.bfloat16, use_fast_accum=fast, out=c)
    else:
        mm = torch.bmm if shape.batch > 1 else torch.mm
        if device.startswith("cuda") and dtype in ("fp32", "tf32"):
            tf32 = dtype == "tf32"

            def fn():
                _set_tf32(tf32)
                mm(a, b, out=c)
        else:
            def fn():
                mm(a, b, out=c)

    def verify() -> Verdict:
        return verify_rows(a, b, c, dtype)

    def cleanup():
        if device.startswith("cuda") and dtype == "tf32":
            _set_tf32(False)

    return Prepared(
        group="gemm", kernel="gemm", dtype=dtype, impl=impl, fn=fn, verify=verify, flops=shape.flops,
        bytes=nbytes, convention=GEMM_CONVENTION, shape=shape.as_list(), size_bytes=nbytes,
        extra={"shape_tag": shape.tag, "shape_id": shape.id(), "tolerance": TOLERANCE[dtype],
               "intensity_flop_per_byte": shape.flops / nbytes, **_mode(dtype, impl, device)},
        cleanup=cleanup, state={"a": a, "b": b, "c": c})

