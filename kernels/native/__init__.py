"""Native CPU kernels: this project's own C (``roofline_native.c``), compiled at run time, cached, loaded by ctypes.

Why not a library: the roofs must be what the silicon and the memory can do, not what an implementation reaches.
A BLAS GEMM or a torch op measures its own code (torch's stores go through the cache and pay a read-for-ownership
that STREAM's byte convention does not count); a register-only FMA loop and non-temporal stores measure the
hardware. These kernels are implementations beside ``torch`` and ``numpy`` (``impl = "native"`` in the record),
timed by the same harness and verified the same way.

Build: ``$CC`` or gcc/cc, ``-O3 -march=native -ffp-contract=fast -fopenmp -shared -fPIC``, cached under
``$XDG_CACHE_HOME/measured-roofline/native/<hash>`` where the hash covers the source, the flags, the compiler's
version and the CPU (``-march=native`` code from one CPU may not run on another). No compiler, a failed build or an
ISA without a path: :class:`Unsupported` with the reason (the point is reported missing).
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path

from kernels import stream
from kernels.base import ArrayPool, Prepared, Unsupported, Verdict

SOURCE = Path(__file__).resolve().parent / "roofline_native.c"
#: the matrix and dot-product engines (AMX tiles, AVX512-BF16, VNNI): a library of its own (kernels/native/engines.py)
ENGINES_SOURCE = Path(__file__).resolve().parent / "roofline_engines.c"
FLAGS = ["-O3", "-march=native", "-ffp-contract=fast", "-fopenmp", "-shared", "-fPIC"]
NATIVE_CONVENTION = ("STREAM convention (each element read or written once, no write-allocate); bytes_actual adds "
                     "the write-allocate read of cached stores (none for non-temporal stores)")
FMA_CONVENTION = "FLOPs = 2 per lane per fused multiply-add (x = x*m + a), no memory traffic"

_LIB: dict[str, object] = {}


def _compiler() -> str | None:
    cc = os.environ.get("CC")
    if cc and shutil.which(cc):
        return shutil.which(cc)
    return shutil.which("gcc") or shutil.which("cc")


def _cpu_signature() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        import platform

        return platform.machine() + platform.processor()
    keep = [line for line in text.splitlines() if line.split(":")[0].strip() in ("model name", "flags", "Features",
                                                                                  "cpu family", "model")]
    return "\n".join(sorted(set(keep)))


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "measured-roofline" / "native"


def build(force: bool = False, source: Path | None = None) -> tuple[Path, dict]:
    """Compile (or find in the cache) the shared library of ``source`` (default: the stream and FMA kernels);
    returns its path and how it was built."""
    source = source or SOURCE
    cc = _compiler()
    if cc is None:
        raise Unsupported("no C compiler found (set CC, or install gcc): the native kernels cannot be built")
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
    digest = hashlib.sha256(source.read_bytes() + " ".join(FLAGS).encode() + "".join(version).encode()
                            + _cpu_signature().encode()).hexdigest()[:16]
    target = cache_dir() / digest / f"lib{source.stem}.so"
    info = {"compiler": cc, "compiler_version": version[0] if version else "?", "flags": " ".join(FLAGS),
            "cache": str(target), "source": str(source)}
    rebuilt = ""
    if target.exists() and not force:
        damage = cached_damage(target)
        if damage is None:
            return target, {**info, "built": "cached"}
        rebuilt = f"rebuilt: the cached {target.name} {damage}"  # a truncated library crashes dlopen (SIGBUS)
        warnings.warn(f"native kernels: {rebuilt} ({target})", stacklevel=2)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        probe = target.parent / f".write-test.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise Unsupported(f"the native kernels' build cache {target.parent} cannot be written ({exc.strerror or exc}): "
                          "set XDG_CACHE_HOME to a writable folder (a read-only HOME needs it)") from exc
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    import time

    start = time.perf_counter()
    done = subprocess.run([cc, *FLAGS, str(source), "-o", str(tmp)], capture_output=True, text=True)
    if done.returncode:
        tmp.unlink(missing_ok=True)
        said = done.stderr.strip()[:300] or f"it exited with status {done.returncode} and printed nothing"
        raise Unsupported(f"{Path(cc).name} could not build the native kernels ({source.name}): {said}")
    os.replace(tmp, target)  # atomic: a concurrent build never sees half a library
    _write_checksum(target)
    took = f"compiled in {time.perf_counter() - start:.1f} s"
    return target, {**info, "built": f"{rebuilt}; {took}" if rebuilt else took}


def _checksum_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_checksum(target: Path) -> None:
    """The library's size and sha256 beside it, written after it (atomically): the cache is trusted only when
    they match, never because the file exists."""
    from results.record import atomic_write

    atomic_write(_checksum_path(target), json.dumps({"sha256": _digest(target), "size": target.stat().st_size}))


def cached_damage(target: Path) -> str | None:
    """None if the cached library is the one this process's build wrote (ELF header, size and sha256 as recorded
    beside it), else what is wrong with it."""
    try:
        head = target.read_bytes()[:4]
        size = target.stat().st_size
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if head != b"\x7fELF":
        return "is not a shared library (no ELF header): a foreign or garbage file"
    try:
        recorded = json.loads(_checksum_path(target).read_text())
        want_size, want_hash = int(recorded["size"]), str(recorded["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return "has no valid checksum beside it (an older cache, or a file put there by hand)"
    if size != want_size:
        return f"is {size} bytes, {want_size} when built: truncated or overwritten"
    if _digest(target) != want_hash:
        return "differs from what was built (its sha256 changed)"
    return None


def discard(path: Path) -> None:
    for p in (path, _checksum_path(path)):
        with contextlib.suppress(OSError):
            p.unlink()


def library():
    """The loaded library (built once per process), with ``build_info``."""
    if "lib" not in _LIB:
        path, info = build()
        try:
            lib = ctypes.CDLL(str(path))
        except OSError as exc:
            raise Unsupported(f"the native library built but cannot be loaded: {exc}") from exc
        try:
            _declare(lib)
        except AttributeError as exc:  # a library without our symbols: not ours; the next run builds a fresh one
            discard(path)
            raise Unsupported(f"the cached native library {path} lacks this version's kernels ({exc}): removed "
                              "it; the next run rebuilds it") from exc
        info.update(isa=lib.rn_isa().decode(), vector_bytes=lib.rn_vector_bytes(), accumulators=lib.rn_accumulators(),
                    nt_stores=bool(lib.rn_nt_stores()), fma_form=lib.rn_fma_form(),
                    fma_per_iteration=lib.rn_fma_per_iteration())
        lib.build_info = info
        _LIB["lib"] = lib
    return _LIB["lib"]


def _declare(lib) -> None:
    dp, fp, L, I, D = (ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_float), ctypes.c_long,
                       ctypes.c_int, ctypes.c_double)
    lib.rn_isa.restype = ctypes.c_char_p
    lib.rn_fma_form.restype = lib.rn_fma_per_iteration.restype = ctypes.c_int
    for name, args in (("rn_fma_f32", [L, D, D, D, I, I, fp]), ("rn_fma_f64", [L, D, D, D, I, I, dp]),
                       ("rn_copy", [dp, dp, L, L, I]), ("rn_copy_nt", [dp, dp, L, L, I]),
                       ("rn_memcpy", [dp, dp, L, L, I]), ("rn_triad", [dp, dp, dp, D, L, L, I]),
                       ("rn_triad_nt", [dp, dp, dp, D, L, L, I]), ("rn_fill_nt", [dp, D, L, L, I]),
                       ("rn_read", [dp, L, L, I])):
        getattr(lib, name).argtypes = args
        getattr(lib, name).restype = D if name == "rn_read" else None


def _threads(threads: int | None) -> int:
    if threads:
        return threads
    import torch

    return torch.get_num_threads()


# ---- the register-only FMA peak -----------------------------------------------------------------------------
#: x = x*m + a converges to a / (1 - m) = 1.0; chains start at 0.5 + 0.001 c
FMA_M, FMA_A, FMA_X0 = 0.9999, 1e-4, 0.5
FMA_ITERATIONS = 1 << 21


def prepare_fma(dtype: str, threads: int | None = None, iterations: int = FMA_ITERATIONS) -> Prepared:
    import numpy as np

    if dtype not in ("fp32", "fp64"):
        raise Unsupported(f"the native FMA peak kernel runs fp32 and fp64, not {dtype}")
    lib = library()
    threads = _threads(threads)
    np_dtype = np.float32 if dtype == "fp32" else np.float64
    lanes = lib.build_info["vector_bytes"] // np.dtype(np_dtype).itemsize
    acc = lib.build_info["accumulators"]
    out = np.zeros(threads * acc * lanes, dtype=np_dtype)
    fn_c = lib.rn_fma_f32 if dtype == "fp32" else lib.rn_fma_f64
    ptr = out.ctypes.data_as(ctypes.POINTER(ctypes.c_float if dtype == "fp32" else ctypes.c_double))

    def fn():
        fn_c(iterations, FMA_X0, FMA_M, FMA_A, threads, threads, ptr)

    def verify() -> Verdict:
        if lib.build_info["fma_form"] == 1:
            return verify_fma_in_place(fn_c, dtype, out, threads, acc, lanes, iterations)
        return verify_fma(fn_c, dtype, out, threads, acc, lanes, iterations)

    flops = 2 * lanes * acc * iterations * threads * lib.build_info["fma_per_iteration"]
    return Prepared(group="peak", kernel="fma", dtype=dtype, impl="native", fn=fn, verify=verify, flops=flops,
                    bytes=0, convention=FMA_CONVENTION, shape=[threads, acc, lanes, iterations],
                    extra={"threads": threads, "accumulators": acc, "lanes": lanes, "iterations": iterations,
                           "build": lib.build_info, "what": "register-only FMA chains: the silicon's peak"},
                    state={"out": out})


def verify_fma(fn_c, dtype: str, out, threads: int, acc: int, lanes: int, iterations: int,
               short: int = 1000) -> Verdict:
    """Two checks: the timed run's chains against the closed form 1 + m^n (x0 - 1) of the recurrence (rounding
    errors stay below eps / (1 - m), hence the tolerance), and a short run replayed step by step in numpy in the same
    dtype (FMA rounds once where numpy rounds twice, hence a tolerance there too)."""
    import numpy as np

    np_dtype = out.dtype.type
    x0 = np.repeat(np.array([FMA_X0 + 0.001 * c for c in range(acc)]), lanes)
    closed = np.tile(1.0 + FMA_M ** iterations * (x0 - 1.0), threads)
    deviation = float(np.abs(out.astype(np.float64) - closed).max()) if np.isfinite(out).all() else float("inf")
    if deviation > (2e-3 if dtype == "fp32" else 1e-9):
        return Verdict(False, f"timed chains off the recurrence's fixed point path by {deviation:.3g}")
    probe = np.zeros_like(out)
    fn_c(short, FMA_X0, FMA_M, FMA_A, threads, threads,
         probe.ctypes.data_as(ctypes.POINTER(ctypes.c_float if dtype == "fp32" else ctypes.c_double)))
    x = np.array([FMA_X0 + 0.001 * c for c in range(acc)], dtype=np_dtype)
    m, a = np_dtype(FMA_M), np_dtype(FMA_A)
    for _ in range(short):
        x = x * m + a
    want = np.tile(np.repeat(x, lanes), threads)
    err = float(np.abs(probe.astype(np.float64) - want).max())
    tol = 1e-4 if dtype == "fp32" else 1e-12
    if err > tol:
        return Verdict(False, f"short run differs from the numpy replay by {err:.3g} (> {tol:g})")
    return Verdict(True, f"replay of {short} steps within {err:.2g}; timed chains at the fixed point")


def verify_fma_in_place(fn_c, dtype: str, out, threads: int, acc: int, lanes: int, iterations: int,
                       short: int = 1000) -> Verdict:
    """The Arm form (x += x*h; x -= x*h, h = 2^-11: FMLA/FMLS in place): the timed chains against the closed form
    x0 (1 - h^2)^n (relative), and a short run replayed step by step in numpy, which rounds the same (x*h is exact)."""
    import numpy as np

    np_dtype, h = out.dtype.type, 2.0 ** -11
    x0 = np.repeat(np.array([FMA_X0 + 0.001 * c for c in range(acc)]), lanes)
    closed = np.tile(x0 * (1 - h * h) ** iterations, threads)
    deviation = float(np.abs(out.astype(np.float64) / closed - 1).max()) if np.isfinite(out).all() else float("inf")
    if deviation > (2e-2 if dtype == "fp32" else 1e-9):
        return Verdict(False, f"timed chains off the closed form x0 (1 - h^2)^n by {deviation:.3g} (relative)")
    probe = np.zeros_like(out)
    fn_c(short, FMA_X0, FMA_M, FMA_A, threads, threads,
         probe.ctypes.data_as(ctypes.POINTER(ctypes.c_float if dtype == "fp32" else ctypes.c_double)))
    x, hh = np.array([FMA_X0 + 0.001 * c for c in range(acc)], dtype=np_dtype), np_dtype(h)
    for _ in range(short):
        x = x + x * hh
        x = x - x * hh
    want = np.tile(np.repeat(x, lanes), threads)
    if not np.array_equal(probe, want):
        return Verdict(False, f"short run differs from the numpy replay by {float(np.abs(probe - want).max()):.3g}")
    return Verdict(True, f"replay of {short} steps exact; timed chains within {deviation:.2g} of the closed form")


def stream_levels(caches: list[dict], llc_bytes: int, available_bytes: int, quick: bool) -> list[int]:
    """The native stream sweep's working sets: the torch sweep's sizes in a full run; in a quick run one size inside
    each cache level (between twice the level below and half this one) and one DRAM size (4x the last-level cache),
    every one within a quarter of the free memory."""
    from platforms.base import effective_capacities

    if not quick:
        return stream.sweep_sizes(llc_bytes, False, max_bytes=available_bytes // 4)
    sizes, previous = [], 0
    for _name, capacity in effective_capacities(caches):
        sizes.append(max(16 << 10, (previous * 2 + capacity // 2) // 2))
        previous = capacity
    sizes.append(4 * llc_bytes)
    return sorted(set(s for s in sizes if s <= available_bytes // 4))


# ---- stream kernels -----------------------------------------------------------------------------------------
#: the native kernels of the one stream table (kernels/stream.py: formula, bytes, FLOPs, expected value, stores)
STREAM = stream.kernels_of("native")
A, B, C, Q, FILL = stream.A, stream.B, stream.C, stream.Q, stream.FILL


def byte_counts(name: str, n: int, itemsize: int = 8) -> tuple[int, int | None, str]:
    """(STREAM-convention bytes, estimated actual bytes or None, how the estimate was made) for one call."""
    return stream.byte_counts(STREAM[name], n, itemsize)


def aligned(n: int, value: float):
    """A float64 numpy array of ``n`` elements starting on a 64-byte boundary, filled with ``value``."""
    import numpy as np

    buf = np.empty(n + 8, dtype=np.float64)
    offset = (-buf.ctypes.data % 64) // 8
    arr = buf[offset:offset + n]
    arr.fill(value)
    return arr


#: large arrays kept between the points of a sweep (kernels.base.ArrayPool: page faults cost more than the point)
_POOL = ArrayPool()


def _take(n: int, value: float):
    arr = _POOL.take(n, lambda: None)
    if arr is None:
        return aligned(n, value)
    arr.fill(value)
    return arr


def _give(*arrays) -> None:
    for arr in arrays:
        if arr is not None:
            _POOL.give(len(arr), arr.nbytes, arr)


#: bytes one call should move (R passes over a cache-resident working set), as the torch read_repeat does
CALL_BYTES = 32 << 20


def prepare_stream(name: str, working_set_bytes: int, threads: int | None = None,
                   call_bytes: int = CALL_BYTES) -> Prepared:
    """One native stream point; a call runs R = ceil(call_bytes / bytes per pass) passes (1 for DRAM sizes)."""
    if name not in STREAM:
        raise Unsupported(f"unknown native stream kernel {name!r}; known: {', '.join(STREAM)}")
    lib = library()
    kernel = STREAM[name]
    arrays, nt = kernel.arrays, kernel.stores == stream.NON_TEMPORAL
    if nt and not lib.build_info["nt_stores"]:
        raise Unsupported(f"no non-temporal store instruction on this ISA ({lib.build_info['isa']})")
    threads = _threads(threads)
    n = max(64, working_set_bytes // (arrays * 8))
    a = _take(n, A)
    b = _take(n, B) if arrays >= 2 else None
    c = _take(n, C if arrays == 3 else 0.0) if arrays >= 2 else None
    P = ctypes.POINTER(ctypes.c_double)
    pa, pb, pc = (x.ctypes.data_as(P) if x is not None else None for x in (a, b, c))
    out: dict[str, float] = {}
    per_pass, _, _ = byte_counts(name, n)
    reps = max(1, -(-int(call_bytes) // per_pass))
    if name in ("copy", "copy_nt", "memcpy"):
        call = getattr(lib, "rn_" + name)

        def fn():
            call(pa, pb, n, reps, threads)  # b = a
        target = b
    elif name in ("triad", "triad_nt"):
        call = getattr(lib, "rn_" + name)

        def fn():
            call(pa, pb, pc, Q, n, reps, threads)  # a = b + q*c
        target = a
    elif name == "fill_nt":
        def fn():
            lib.rn_fill_nt(pa, FILL, n, reps, threads)
        target = a
    else:
        def fn():
            out["s"] = lib.rn_read(pa, n, reps, threads)
        target = None

    def verify() -> Verdict:  # the table's check; a sum of ones in float64 is exact (far below 2^53)
        return stream.check(kernel, n, target, out.get("s"), n * reps)

    stream_bytes, actual, how = byte_counts(name, n)
    stream_bytes, actual = stream_bytes * reps, actual * reps if actual is not None else None
    return Prepared(group="stream", kernel=name, dtype="fp64", impl="native", fn=fn, verify=verify,
                    flops=kernel.flops_per_element * n * reps, bytes=stream_bytes,
                    convention=NATIVE_CONVENTION, shape=[n], size_bytes=n * arrays * 8,
                    extra={"formula": kernel.formula, "elements": n, "repeats": reps, "threads": threads, "bytes_actual": actual,
                           "bytes_actual_how": how, "non_temporal": nt, "build": lib.build_info},
                    state={"a": a, "b": b, "c": c, "out": out}, cleanup=lambda: _give(a, b, c))
