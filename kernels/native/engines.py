"""Matrix and dot-product engines as silicon roofs: this project's own tile/register-only kernels
(``roofline_engines.c``), built and cached by the same loader as the FMA chains, verified the same way.

What runs where the CPU flags show it (never assumed from the model name):

* ``amx`` (Intel AMX: ``amx_tile`` + ``amx_bf16`` / ``amx_int8``): TDPBF16PS / TDPBSSD on 4 accumulator tiles from
  2 A and 2 B tiles loaded once; no memory traffic in the timed loop. Linux hands a process the tile state only after
  ``arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA)``: refused -> missing, with that reason.
* ``dot`` (``avx512_bf16``: VDPBF16PS) and ``vnni`` (``avx512_vnni``: VPDPBUSD): 24 independent zmm chains.

Inputs are small integers (bf16 and int8: 1, 2, -1, 0), so every partial sum is exact in fp32 / int32 and the
check is an equality with the closed form, for the timed run and for a short run (which catches a kernel that ignores
its iteration count). FLOPs (int8: OPs) = 2 per multiply-add, as for a GEMM.
"""
from __future__ import annotations

import ctypes

from kernels.base import Prepared, Unsupported, Verdict

ENGINE_CONVENTION = ("FLOPs (int8: OPs) = 2 per multiply-add of the engine's instruction (tile: 2 x 16 x 16 x K; "
                     "dot: 2 x lanes x pairs), no memory traffic in the timed loop")

#: (kernel, dtype) -> (CPU flags needed, C function, instruction, multiply-adds per instruction per thread iteration)
ENGINES = {
    ("amx", "bf16"): (("amx_tile", "amx_bf16"), "rn_amx_bf16", "TDPBF16PS", 8 * 16 * 16 * 32),
    ("amx", "int8"): (("amx_tile", "amx_int8"), "rn_amx_int8", "TDPBSSD", 8 * 16 * 16 * 64),
    ("dot", "bf16"): (("avx512f", "avx512_bf16"), "rn_dot_bf16", "VDPBF16PS zmm", 24 * 16 * 2),
    ("vnni", "int8"): (("avx512f", "avx512_vnni"), "rn_dot_int8", "VPDPBUSD zmm", 24 * 16 * 4),
}
#: iterations per call: tiles 2^19 (8 tile multiplies each: ~30 ms a call on a Sapphire/Emerald Rapids core, which
#: needs a few ms of back-to-back tile work to reach its rate; the chains grow by 1 or 2 an iteration, exact far
#: beyond that), dot products 2^21 (~20-40 ms)
ITERATIONS = {"amx": 1 << 19, "dot": 1 << 21, "vnni": 1 << 21}
BF16_ONE, BF16_TWO, BF16_MINUS_ONE = 0x3F80, 0x4000, 0xBF80
#: seconds of back-to-back work in the first call before anything is timed: on this project's Emerald Rapids VM the
#: tile unit ran at a quarter to a half of its rate for the first few hundred ms of tile work (measured 2026-12-01:
#: 1.4-2.4 TOP/s int8 on one core, then 5.2), wide-vector units warm up faster
WARMUP_S = {"amx": 0.5, "dot": 0.15, "vnni": 0.15}
_LIB: dict[str, object] = {}


def engines_for(flags) -> list[tuple[str, str]]:
    """(kernel, dtype) pairs this CPU's flags allow, AMX first (the fastest engine for its dtype)."""
    have = set(flags or [])
    return [key for key, (need, *_rest) in ENGINES.items() if set(need) <= have]


def missing_reason(kernel: str, dtype: str, flags) -> str | None:
    """Why this engine cannot run on a CPU with these flags (None: it can)."""
    if (kernel, dtype) not in ENGINES:
        return f"no {kernel} engine kernel for {dtype}; known: {', '.join(f'{k} {d}' for k, d in ENGINES)}"
    need = ENGINES[(kernel, dtype)][0]
    lacking = [f for f in need if f not in set(flags or [])]
    if lacking:
        return f"this CPU lacks {', '.join(lacking)} (from its flags): no {ENGINES[(kernel, dtype)][2]} here"
    return None


def library():
    """The engines library (built once per process, cached like the stream kernels)."""
    if "lib" not in _LIB:
        from kernels import native

        path, info = native.build(source=native.ENGINES_SOURCE)
        try:
            lib = ctypes.CDLL(str(path))
        except OSError as exc:
            raise Unsupported(f"the engines library built but cannot be loaded: {exc}") from exc
        try:
            lib.rn_engines.restype = ctypes.c_char_p
        except AttributeError as exc:  # not our library: the next run builds a fresh one
            native.discard(path)
            raise Unsupported(f"the cached engines library {path} lacks this version's kernels: removed it; the next "
                              "run rebuilds it") from exc
        compiled = lib.rn_engines().decode().split()
        if compiled:
            L, I, U, cp = ctypes.c_long, ctypes.c_int, ctypes.c_uint32, ctypes.c_char_p
            for name in ("rn_amx_bf16", "rn_amx_int8"):
                getattr(lib, name).argtypes = [L, cp, cp, I, I, ctypes.c_void_p]
                getattr(lib, name).restype = None
            for name in ("rn_dot_bf16", "rn_dot_int8"):
                getattr(lib, name).argtypes = [L, U, U, I, I, ctypes.c_void_p]
                getattr(lib, name).restype = None
            lib.rn_amx_permit.restype = ctypes.c_int
        lib.build_info = {**info, "engines_compiled": compiled}
        _LIB["lib"] = lib
    return _LIB["lib"]


def _permit_amx(lib) -> None:
    if "amx_permit" not in _LIB:
        _LIB["amx_permit"] = lib.rn_amx_permit()
    if _LIB["amx_permit"] != 0:
        raise Unsupported("Linux refused the AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM, XTILEDATA): a kernel "
                          "older than 5.16, or a hypervisor that does not pass AMX through; no tile kernel can run")


def expected(kernel: str, dtype: str, iterations: int, chains: int) -> list[float]:
    """Each chain's value after ``iterations`` (closed form; exact in fp32/int32 for these inputs)."""
    if kernel == "amx":  # per iteration A x (B+ + B-) = A x (K - (K - 1)): A0 = 1 (tiles 0, 1), A1 = 2 (tiles 2, 3)
        return [iterations * s for s in (1, 1, 2, 2)]
    per = 2 if kernel == "dot" else 4  # bf16 pairs / int8 quads of 1 x 1 per lane
    return [c + per * iterations for c in range(chains)]


def prepare_engine(kernel: str, dtype: str, flags, threads: int | None = None,
                   iterations: int | None = None) -> Prepared:
    import numpy as np

    reason = missing_reason(kernel, dtype, flags)
    if reason:
        raise Unsupported(reason)
    lib = library()
    need, c_name, instruction, macs = ENGINES[(kernel, dtype)]
    if not lib.build_info["engines_compiled"]:
        raise Unsupported("the engine kernels are x86 (AMX, AVX512-BF16, VNNI): none is built for this architecture")
    if kernel == "amx":
        _permit_amx(lib)
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    iterations = iterations or ITERATIONS[kernel]
    fn_c = getattr(lib, c_name)
    if kernel == "amx":
        chains, lanes = 4, 256  # 4 tiles of 16 x 16
        # B tiles hold K/2 (bf16 pairs) or K/4 (int8 quads) rows of 16 dwords, one dword per column n: zeroing the
        # first element of each dword of row 0 removes one K position from every column of B-
        if dtype == "bf16":
            a = np.concatenate([np.full(512, BF16_ONE), np.full(512, BF16_TWO)]).astype(np.uint16)
            minus = np.full(512, BF16_MINUS_ONE, dtype=np.uint16)
            minus[0:32:2] = 0
            b = np.concatenate([np.full(512, BF16_ONE, dtype=np.uint16), minus])
            out = np.zeros(threads * chains * lanes, dtype=np.float32)
        else:
            a = np.concatenate([np.full(1024, 1), np.full(1024, 2)]).astype(np.int8)
            minus = np.full(1024, -1, dtype=np.int8)
            minus[0:64:4] = 0
            b = np.concatenate([np.full(1024, 1, dtype=np.int8), minus])
            out = np.zeros(threads * chains * lanes, dtype=np.int32)
        pa, pb = a.ctypes.data_as(ctypes.c_char_p), b.ctypes.data_as(ctypes.c_char_p)

        def call(n, target):
            fn_c(n, pa, pb, threads, threads, target.ctypes.data_as(ctypes.c_void_p))
    else:
        chains, lanes = 24, 16
        one = (BF16_ONE << 16) | BF16_ONE if dtype == "bf16" else 0x01010101
        out = np.zeros(threads * chains * lanes, dtype=np.float32 if dtype == "bf16" else np.int32)
        a = b = None

        def call(n, target):
            fn_c(n, one, one, threads, threads, target.ctypes.data_as(ctypes.c_void_p))

    warm = {"done": False}

    def fn():
        if not warm["done"]:  # the first (cold) call also warms the unit up: see WARMUP_S
            import time

            end = time.perf_counter() + WARMUP_S[kernel]
            while time.perf_counter() < end:
                call(iterations, out)
            warm["done"] = True
        call(iterations, out)

    def check(values, n) -> str | None:
        want = np.repeat(np.array(expected(kernel, dtype, n, chains), dtype=np.float64), lanes)
        got = values.reshape(threads, chains * lanes).astype(np.float64)
        wrong = int((got != want).sum())
        return f"{wrong} of {got.size} accumulator elements differ from the closed form after {n} steps" if wrong else None

    def verify() -> Verdict:
        problem = check(out, iterations)
        if problem:
            return Verdict(False, f"timed run: {problem}")
        probe, short = np.zeros_like(out), 1000
        call(short, probe)
        problem = check(probe, short)
        if problem:
            return Verdict(False, f"short run: {problem}")
        return Verdict(True, f"every accumulator equal to its closed form (exact integers) after {iterations} and "
                             f"{short} steps")

    flops = 2 * macs * iterations * threads
    return Prepared(group="peak", kernel=kernel, dtype=dtype, impl="native", fn=fn, verify=verify, flops=flops,
                    bytes=0, convention=ENGINE_CONVENTION, shape=[threads, chains, lanes, iterations],
                    extra={"threads": threads, "instruction": instruction, "cpu_flags": list(need),
                           "iterations": iterations, "build": lib.build_info,
                           "what": f"{instruction} chains on {'tiles' if kernel == 'amx' else 'zmm registers'}: "
                                   f"the {dtype} engine's silicon peak"},
                    state={"out": out, "a": a, "b": b})
