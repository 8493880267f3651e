"""Stream kernels: bandwidth of each memory level, BabelStream-style; the one table of stream kernels for every
backend, and torch's implementation.

The kernel table (:data:`TABLE`) is data: each kernel's formula, arrays, bytes (both conventions:
``byte_counts``), FLOPs, expected value and store kind are written once here; torch (this module), native C
(kernels/native) and Triton (kernels/triton_kernels.py) supply only the implementation, and all are verified by
:func:`check`. Bytes follow STREAM's convention: every array element read or written counts once, with no
write-allocate traffic (a store that misses the cache really costs a read too on most CPUs; STREAM does not count
it, and neither do we; ``bytes_actual`` beside it estimates the traffic). FLOPs count one per add or multiply.

Arrays hold constants (a = 1, b = 2, c = 0.5, q = 3, fill value 5), so every output element has one known value:
the check after timing compares every element (or the sum, for the reductions) with it.

``read_repeat`` reads the same array R times in ONE call through a stride-0 view (``a.expand(R, n).sum()``): one
dispatch covers R passes, so small, cache-resident working sets are not hidden behind the per-call dispatch cost
(about 1-4 us on a CPU, about 5 us per launch on a GPU), which the other kernels pay once per pass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from kernels.base import ArrayPool, Prepared, Unsupported, Verdict, torch_dtype

STREAM_CONVENTION = ("STREAM convention: each array element read or written counts once "
                     "(copy = 2 x itemsize per element, add/triad = 3 x), no write-allocate traffic")
#: the arrays' constants, for every backend: a = 1, b = 2, c = 0.5, q = 3, fill value 5
A, B, C, Q, FILL = 1.0, 2.0, 0.5, 3.0, 5.0

#: how a kernel's stores reach memory: what decides the traffic beyond STREAM's count (``byte_counts``)
CACHED, NON_TEMPORAL, NO_STORES, LIBRARY = "cached", "non-temporal", "none", "library"


@dataclass(frozen=True)
class StreamKernel:
    """One stream kernel, for every backend: its formula, arrays, elements read and written per element, FLOPs per
    element, the value every output element must hold (``expected``; None: a reduction whose sum must equal
    ``A`` x elements), and how its stores reach memory. ``impls``: the backends that implement it."""

    name: str
    formula: str
    arrays: int
    reads: int  # arrays read per element
    writes: int  # arrays written per element
    flops_per_element: int
    expected: float | None
    stores: str
    impls: tuple[str, ...]


#: the one table of stream kernels (BabelStream's shape: one definition, one check; torch here, native C in
#: kernels/native, Triton in kernels/triton_kernels supply only the implementation). Triad is STREAM's
#: a = b + q*c in every backend.
TABLE = {k.name: k for k in (
    StreamKernel("copy", "c = a", 2, 1, 1, 0, A, CACHED, ("torch", "native", "triton")),
    StreamKernel("copy_nt", "c = a (non-temporal stores)", 2, 1, 1, 0, A, NON_TEMPORAL, ("native",)),
    StreamKernel("memcpy", "glibc memcpy, one chunk per thread", 2, 1, 1, 0, A, LIBRARY, ("native",)),
    StreamKernel("copy_persistent", "c = a (grid-stride, persistent programs)", 2, 1, 1, 0, A, CACHED, ("triton",)),
    StreamKernel("scale", "c = q*a", 2, 1, 1, 1, Q * A, CACHED, ("torch",)),
    StreamKernel("add", "c = a + b", 3, 2, 1, 1, A + B, CACHED, ("torch",)),
    StreamKernel("triad", "a = b + q*c", 3, 2, 1, 2, B + Q * C, CACHED, ("torch", "native", "triton")),
    StreamKernel("triad_nt", "a = b + q*c (non-temporal stores)", 3, 2, 1, 2, B + Q * C, NON_TEMPORAL, ("native",)),
    StreamKernel("triad_persistent", "a = b + q*c (grid-stride, persistent programs)", 3, 2, 1, 2, B + Q * C, CACHED,
                 ("triton",)),
    StreamKernel("read", "s = sum(a)", 1, 1, 0, 1, None, NO_STORES, ("torch", "native", "triton")),
    StreamKernel("read_persistent", "s = sum(a) (grid-stride, persistent programs)", 1, 1, 0, 1, None, NO_STORES,
                 ("triton",)),
    StreamKernel("read_repeat", "s = sum over R passes of a (stride-0 view, one call)", 1, 1, 0, 1, None, NO_STORES,
                 ("torch",)),
    StreamKernel("write", "a = 5", 1, 0, 1, 0, FILL, CACHED, ("torch", "triton")),
    StreamKernel("fill_nt", "a = 5 (non-temporal stores)", 1, 0, 1, 0, FILL, NON_TEMPORAL, ("native",)),
)}


def kernels_of(impl: str) -> dict[str, StreamKernel]:
    """The table's kernels that ``impl`` ("torch", "native", "triton") implements, in table order."""
    return {name: k for name, k in TABLE.items() if impl in k.impls}


#: torch's kernels (this module's implementation)
KERNELS = kernels_of("torch")

#: bytes one read_repeat call moves unless the caller says otherwise (the platform sizes it: see
#: ``Platform.stream_call_bytes``; a GPU needs gigabytes per call to outlast one launch)
REPEAT_TARGET_BYTES = 32 << 20


def bytes_per_element(kernel: StreamKernel, itemsize: int) -> int:
    return (kernel.reads + kernel.writes) * itemsize


def byte_counts(kernel: StreamKernel, elements: int, itemsize: int) -> tuple[int, int | None, str]:
    """Both byte conventions for ``elements`` elements: (STREAM's count, the estimated actual traffic or None, how the
    estimate was made). Cached stores cost a write-allocate read per element written; non-temporal ones do not."""
    stream_bytes = bytes_per_element(kernel, itemsize) * elements
    if kernel.stores == LIBRARY:
        return stream_bytes, None, "glibc picks cached or non-temporal stores by size: actual traffic not estimated"
    if kernel.stores == NON_TEMPORAL:
        return stream_bytes, stream_bytes, "non-temporal stores: no write-allocate read"
    if kernel.stores == NO_STORES:
        return stream_bytes, stream_bytes, "no stores: the bytes read are the traffic"
    return (stream_bytes, stream_bytes + kernel.writes * elements * itemsize,
            "cached stores: + one write-allocate read per element written")


def check(kernel: StreamKernel, n: int, target=None, total: float | None = None, elements: int | None = None,
          rel_tol: float = 0.0) -> Verdict:
    """The one verification of every backend. A kernel with an ``expected`` value: every element of ``target`` (a
    torch tensor or numpy array of ``n`` elements) equals it (min == max == value: one pass, no temporary, NaN
    fails; the count of wrong ones only on failure). A reduction: ``total`` equals ``A`` x ``elements`` (all the
    elements it summed), within ``rel_tol`` (0: exactly; a float32 sum of many ones rounds)."""
    if kernel.expected is not None:
        want = kernel.expected
        wrong = 0 if float(target.min()) == float(target.max()) == want else int((target != want).sum())
        if wrong:
            return Verdict(False, f"{wrong} of {n} elements differ from {want}")
        return Verdict(True, f"all {n} elements equal {want}")
    if total is None:
        return Verdict(False, "the kernel never ran")
    want = A * elements
    if not math.isfinite(total) or abs(total - want) > rel_tol * want:
        return Verdict(False, f"sum {total:.17g} != {want:.17g}" + (f" (relative tolerance {rel_tol:g})" if rel_tol else ""))
    return Verdict(True, f"sum {total:.0f} == {want:.0f}" + (f" within {rel_tol:g}" if rel_tol else " exactly"))


#: a quick sweep keeps every octave up to this working set (cheap points: allocation and the check cost little);
#: beyond it only the middle of each larger cache level and one DRAM size (points of a GiB cost seconds each)
QUICK_OCTAVES_UP_TO = 32 << 20


def sweep_sizes(llc_bytes: int, quick: bool, max_bytes: int, start: int = 16 << 10, min_end: int = 0,
                level_tops: list[int] | tuple = ()) -> list[int]:
    """Working sets (bytes, all arrays together) from ``start`` to at least 4x the last-level cache (and at least
    ``min_end``: GPUs need large arrays to saturate HBM), never above ``max_bytes`` (a share of the free memory).

    Logarithmic: one point per octave in quick runs, two in full runs (the second at 1.5x). A quick run keeps the
    octaves up to QUICK_OCTAVES_UP_TO and beyond it only ``level_tops`` (the largest working set that still counts
    for each cache level: half its capacity) and the DRAM size, so a 300 MiB L3 does not cost ten GiB-sized points
    (the thinning applies where ``level_tops`` are given: the CPU's sweep)."""
    end = max(4 * llc_bytes, 64 << 20, min_end) if quick else max(8 * llc_bytes, 128 << 20, 4 * min_end)
    end = min(end, max_bytes)
    sizes, size = [], start
    while size <= end:
        if not quick or not level_tops or size <= QUICK_OCTAVES_UP_TO:
            sizes.append(size)
        if not quick and size * 3 // 2 <= end:
            sizes.append(size * 3 // 2)
        size *= 2
    if quick:
        sizes += [top for top in level_tops if QUICK_OCTAVES_UP_TO < top < end]
    if sizes and max(sizes) < end and end >= 4 * llc_bytes:
        sizes.append(end)
    return sorted(set(sizes))


#: large CPU tensors kept between the points of a sweep (kernels.base.ArrayPool); GPU memory is cached by torch
_POOL = ArrayPool()


def _take(n: int, value: float, dtype, device):
    import torch

    if str(device) == "cpu":
        t = _POOL.take((n, dtype), lambda: None)
        if t is not None:
            return t.fill_(value)
    return torch.full((n,), value, dtype=dtype, device=device)


def _give(*tensors) -> None:
    for t in tensors:
        if t is not None:
            _POOL.give((t.numel(), t.dtype), t.numel() * t.element_size(), t)


def cpu_sweep(caches: list[dict], llc_bytes: int, available_bytes: int, quick: bool) -> list[int]:
    """The torch stream sweep a CPU with these caches (dicts as the record keeps them) and this much free memory is
    asked for: every working set within a quarter of the free memory."""
    from platforms.base import effective_capacities

    tops = [capacity // 2 for _name, capacity in effective_capacities(caches)]
    return sweep_sizes(llc_bytes, quick, max_bytes=available_bytes // 4, level_tops=tops)


def budget_order(names, sizes: list[int], *tiers: list[int]) -> list[tuple[str, int]]:
    """(kernel, size) points in the order a time budget cuts best: every kernel at the sizes of the first tier (one
    per memory level, see level_points), then every kernel at the next tier's (a quick run's sizes), then the rest,
    so a run that runs out of time loses resolution of the curves, never a kernel or a memory level."""
    order, seen = [], set()
    for tier in (*tiers, sizes):
        wanted = set(tier)
        for name in names:
            for size in sizes:
                if size in wanted and (name, size) not in seen:
                    seen.add((name, size))
                    order.append((name, size))
    return order


def level_points(caches: list[dict], llc_bytes: int, sizes: list[int]) -> list[int]:
    """One size per memory level among ``sizes``: the largest inside each cache level's window (above twice the level
    below, at most half this one) and the smallest DRAM size (>= 4x the last-level cache)."""
    from platforms.base import effective_capacities

    out, previous = [], 0
    for _name, capacity in effective_capacities(caches):
        inside = [s for s in sizes if 2 * previous < s <= capacity // 2]
        if inside:
            out.append(max(inside))
        previous = capacity
    dram = [s for s in sizes if s >= 4 * llc_bytes]
    return out + dram[:1]


def dram_fits(llc_bytes: int, available_bytes: int) -> str | None:
    """None if a DRAM working set (4x the last-level cache) fits a quarter of the free memory, else why not."""
    if 4 * llc_bytes <= available_bytes // 4:
        return None
    return (f"a DRAM working set of 4 x the last-level cache ({4 * llc_bytes / 2**30:.2f} GiB) does not fit a quarter "
            f"of the free memory ({available_bytes / 4 / 2**30:.2f} GiB): no DRAM point, and no DRAM ceiling")


def point_size(name: str, working_set_bytes: int, itemsize: int, repeat_bytes: int = REPEAT_TARGET_BYTES) -> dict:
    """What one call of a stream point touches and counts, without allocating: elements per array, passes per call
    (read_repeat only), bytes (STREAM convention) and FLOPs per call, and the working set."""
    kernel = KERNELS[name]
    n = max(64, working_set_bytes // (kernel.arrays * itemsize))
    repeats = max(1, -(-int(repeat_bytes) // (n * itemsize))) if name == "read_repeat" else 1  # >= target
    elements = n * repeats
    return {"elements": n, "repeats": repeats, "bytes": bytes_per_element(kernel, itemsize) * elements,
            "flops": kernel.flops_per_element * elements, "size_bytes": n * kernel.arrays * itemsize}


def prepare(name: str, working_set_bytes: int, device: str, dtype: str = "fp32", *,
            repeat_bytes: int = REPEAT_TARGET_BYTES, repeat_rule: str = "") -> Prepared:
    """One stream point. ``repeat_bytes``: what one read_repeat call reads in all (R = repeat_bytes / array
    bytes passes), with ``repeat_rule`` saying why (both go into the record)."""
    import torch

    if name not in KERNELS:
        raise Unsupported(f"unknown stream kernel {name!r}; known: {', '.join(KERNELS)}")
    kernel = KERNELS[name]
    tdtype = torch_dtype(dtype)
    itemsize = torch.empty((), dtype=tdtype).element_size()
    size = point_size(name, working_set_bytes, itemsize, repeat_bytes)
    n, repeats = size["elements"], size["repeats"]
    a = _take(n, A, tdtype, device)
    b = _take(n, B, tdtype, device) if kernel.arrays >= 2 else None
    c = _take(n, C, tdtype, device) if kernel.arrays == 3 else None
    out: dict[str, object] = {}
    target = {"copy": b, "scale": b, "add": c, "triad": a, "write": a}.get(name)

    if name == "copy":
        def fn():
            b.copy_(a)  # c = a: the second array is the copy's target
    elif name == "scale":
        def fn():
            torch.mul(a, Q, out=b)
    elif name == "add":
        def fn():
            torch.add(a, b, out=c)
    elif name == "triad":
        def fn():
            torch.add(b, c, alpha=Q, out=a)  # a = b + q*c
    elif name == "read":
        def fn():
            out["s"] = a.sum()
    elif name == "write":
        def fn():
            a.fill_(FILL)
    else:  # read_repeat
        view = a.expand(repeats, n)

        def fn():
            out["s"] = view.sum()

    elements, nbytes, flops = n * repeats, size["bytes"], size["flops"]
    _, actual, how = byte_counts(kernel, elements, itemsize)

    def verify() -> Verdict:
        total = float(out["s"]) if "s" in out else None
        return check(kernel, n, target, total, elements, rel_tol=1e-5 if itemsize >= 4 else 1e-2)

    return Prepared(
        group="stream", kernel=name, dtype=dtype, impl="torch", fn=fn, verify=verify, flops=flops, bytes=nbytes,
        convention=STREAM_CONVENTION, shape=[n], size_bytes=size["size_bytes"],
        extra={"formula": kernel.formula, "elements": n, "repeats": repeats,
               "bytes_per_element": bytes_per_element(kernel, itemsize),
               # torch's stores go through the cache: each element written also costs a write-allocate read
               "bytes_actual": actual, "bytes_actual_how": f"estimated: {how}",
               "launches_per_call": 1, "launch_amortisation": (
                   f"one call = {repeats} passes in one kernel (stride-0 view); {repeat_rule or 'fixed size'}"
                   if name == "read_repeat" else "none: one pass per call")},
        state={"a": a, "b": b, "c": c, "out": out, "target": target},
        cleanup=(lambda: _give(a, b, c)) if str(device) == "cpu" else None)
