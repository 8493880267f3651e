"""What a collective moves and how its bandwidth is counted, and the collectives themselves, ready to time.

Byte conventions follow nccl-tests (doc/PERFORMANCE.md there): ``size`` is the buffer the collective is named by
(all_reduce and broadcast: the buffer; all_gather: the gathered output; reduce_scatter: the input before
scattering; all_to_all: one rank's whole send buffer), algorithm bandwidth = size / time, and bus bandwidth =
algorithm bandwidth x a factor that makes it comparable to the link's rate whatever the rank count:

    all_reduce 2(n-1)/n, all_gather (n-1)/n, reduce_scatter (n-1)/n, all_to_all (n-1)/n, broadcast 1, send/recv 1.

Every collective is verified with values that tell ranks apart (rank-tagged fills, a known sum), once after it
was timed, on a fresh fill (timing runs repeat in place on whatever the buffer holds).
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Callable

from kernels.base import Verdict

COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast")
CONVENTION = ("nccl-tests: algbw = size / time of the slowest rank; busbw = algbw x factor (all_reduce 2(n-1)/n, "
              "all_gather/reduce_scatter/all_to_all (n-1)/n, broadcast and send/recv 1); size = the named buffer "
              "(all_gather: output, reduce_scatter: input)")


class CollectiveError(RuntimeError):
    """A collective that did not finish (a timeout, a rank gone); the message names the collective."""


def bus_factor(kind: str, world: int) -> float:
    """nccl-tests' factor from algorithm to bus bandwidth for ``world`` ranks."""
    if world < 1:
        raise ValueError(f"world size must be >= 1, got {world}")
    n = world
    factors = {"all_reduce": 2 * (n - 1) / n, "all_gather": (n - 1) / n, "reduce_scatter": (n - 1) / n,
               "all_to_all": (n - 1) / n, "broadcast": 1.0, "send_recv": 1.0, "barrier": 0.0}
    if kind not in factors:
        raise ValueError(f"unknown collective {kind!r}; choose from {', '.join(factors)}")
    return factors[kind]


def bandwidths(kind: str, size_bytes: int, seconds: float, world: int) -> tuple[float, float]:
    """(algorithm, bus) bandwidth in bytes/s of one call of ``kind`` on ``size_bytes`` that took ``seconds``."""
    alg = size_bytes / seconds if seconds > 0 else float("nan")
    return alg, alg * bus_factor(kind, world)


def round_elements(size_bytes: int, world: int, element_size: int = 4) -> int:
    """Elements of the named buffer: at least one per rank and a multiple of ``world`` (all_gather,
    reduce_scatter and all_to_all split the buffer into ``world`` equal chunks)."""
    elements = max(world, size_bytes // element_size)
    return elements - elements % world


def message_sizes(max_bytes: int, min_bytes: int = 4, step: int = 4) -> list[int]:
    """Logarithmic sizes from ``min_bytes`` to ``max_bytes`` (both included), x ``step`` apart."""
    if max_bytes < min_bytes:
        raise ValueError(f"the largest message ({max_bytes} B) is below the smallest ({min_bytes} B)")
    sizes, size = [], min_bytes
    while size < max_bytes:
        sizes.append(size)
        size *= step
    return sizes + [max_bytes]


@dataclass
class Collective:
    """One collective on one buffer size, ready to call on every rank: ``fn`` runs one call (blocking up to the
    timeout), ``verify`` refills with rank-tagged values, runs once and checks; sizes in bytes per the
    convention above."""

    kind: str
    size_bytes: int
    elements: int
    dtype: str
    fn: Callable[[], Any]
    verify: Callable[[], Verdict]
    state: dict = field(default_factory=dict, repr=False)


def _run(op, kind: str, timeout_s: float | None, *args, **kwargs) -> None:
    """Call ``op``; with ``timeout_s`` as an async op whose wait gives up after it (a rank that never arrives raises
    CollectiveError instead of hanging), without (NCCL, where the process group's watchdog bounds a hang) as a
    plain blocking call."""
    if timeout_s is None:
        op(*args, **kwargs)
        return
    try:
        op(*args, async_op=True, **kwargs).wait(_dt.timedelta(seconds=timeout_s))
    except Exception as exc:
        raise CollectiveError(f"{kind} did not finish (waited at most {timeout_s:g} s): {type(exc).__name__}: "
                              f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}") from exc


def _check(name: str, got, want) -> Verdict:
    import torch

    if got.shape != want.shape:
        return Verdict(False, f"{name}: shape {tuple(got.shape)} != {tuple(want.shape)}")
    bad = (got != want).nonzero()
    if bad.numel():
        i = bad[0].tolist()
        return Verdict(False, f"{name}: {bad.shape[0]} of {got.numel()} elements wrong, first at {i}: "
                              f"{got[tuple(i)].item()} != {want[tuple(i)].item()}")
    return Verdict(True, f"{name}: all {got.numel()} elements exact ({torch.finfo(got.dtype).bits}-bit floats "
                         "holding small integers)")


def prepare(kind: str, size_bytes: int, device, group=None, timeout_s: float | None = 60.0,
            dtype: str = "fp32") -> Collective:
    """Buffers for ``kind`` on ``device`` (this rank's), sized by nccl-tests' ``size``; values are small integers
    that float32 holds exactly, so verification compares bit for bit."""
    import torch
    import torch.distributed as dist

    from kernels.base import torch_dtype

    if kind not in COLLECTIVES:
        raise ValueError(f"unknown collective {kind!r}; choose from {', '.join(COLLECTIVES)}")
    rank, n = dist.get_rank(group), dist.get_world_size(group)
    tdt = torch_dtype(dtype)
    elements = round_elements(size_bytes, n, torch.empty((), dtype=tdt).element_size())
    chunk = elements // n
    nbytes = elements * torch.empty((), dtype=tdt).element_size()
    root = dist.get_global_rank(group, 0) if group is not None else 0
    gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor  # renamed in torch 2.14
    scatter = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
    ranks = torch.arange(n, device=device, dtype=tdt)

    if kind == "all_reduce":
        buf = torch.zeros(elements, device=device, dtype=tdt)

        def call():
            _run(dist.all_reduce, kind, timeout_s, buf, group=group)

        def verify():
            buf.fill_(rank + 1)
            call()
            return _check(kind, buf, torch.full_like(buf, n * (n + 1) // 2))
        state = {"buf": buf}
    elif kind == "all_gather":
        src = torch.zeros(chunk, device=device, dtype=tdt)
        out = torch.empty(elements, device=device, dtype=tdt)

        def call():
            _run(gather, kind, timeout_s, out, src, group=group)

        def verify():
            src.fill_(rank + 1)
            out.fill_(-1)
            call()
            return _check(kind, out, (ranks + 1).repeat_interleave(chunk))
        state = {"src": src, "out": out}
    elif kind == "reduce_scatter":
        src = torch.zeros(elements, device=device, dtype=tdt)
        out = torch.empty(chunk, device=device, dtype=tdt)

        def call():
            _run(scatter, kind, timeout_s, out, src, group=group)

        def verify():
            # chunk j of rank r holds (r + 1) * (j + 1): this rank's result is (rank + 1) * n(n+1)/2
            src.copy_(((ranks + 1) * (rank + 1)).repeat_interleave(chunk))
            out.fill_(-1)
            call()
            return _check(kind, out, torch.full_like(out, (rank + 1) * n * (n + 1) // 2))
        state = {"src": src, "out": out}
    elif kind == "all_to_all":
        src = torch.zeros(elements, device=device, dtype=tdt)
        out = torch.empty(elements, device=device, dtype=tdt)

        def call():
            _run(dist.all_to_all_single, kind, timeout_s, out, src, group=group)

        def verify():
            # chunk j of rank r holds r * n + j; after the exchange chunk i of this rank holds i * n + rank
            src.copy_((ranks + rank * n).repeat_interleave(chunk))
            out.fill_(-1)
            call()
            return _check(kind, out, (ranks * n + rank).repeat_interleave(chunk))
        state = {"src": src, "out": out}
    else:  # broadcast
        buf = torch.zeros(elements, device=device, dtype=tdt)

        def call():
            _run(dist.broadcast, kind, timeout_s, buf, src=root, group=group)

        def verify():
            buf.fill_(7 if rank == 0 else -1)
            call()
            return _check(kind, buf, torch.full_like(buf, 7))
        state = {"buf": buf}
    return Collective(kind=kind, size_bytes=nbytes, elements=elements, dtype=dtype, fn=call, verify=verify,
                      state=state)


def prepare_send_recv(src: int, dst: int, size_bytes: int, device, timeout_s: float | None = 60.0,
                      dtype: str = "fp32") -> Collective:
    """One message from rank ``src`` to rank ``dst``; the other ranks' ``fn`` does nothing. Verified by a payload
    tagged with the sender (src * 1000 + element index mod 1000)."""
    import torch
    import torch.distributed as dist

    from kernels.base import torch_dtype

    rank = dist.get_rank()
    tdt = torch_dtype(dtype)
    elements = max(1, size_bytes // torch.empty((), dtype=tdt).element_size())
    buf = torch.zeros(elements, device=device, dtype=tdt)
    tag = (torch.arange(elements, device=device) % 1000).to(tdt) + src * 1000

    def call():
        if rank == src:
            _send_recv(dist.isend, dist.send, buf, dst, "send", timeout_s)
        elif rank == dst:
            _send_recv(dist.irecv, dist.recv, buf, src, "recv", timeout_s)

    def verify():
        if rank == src:
            buf.copy_(tag)
        elif rank == dst:
            buf.fill_(-1)
        call()
        if rank != dst:
            return Verdict(True, "not the receiver")
        return _check(f"send {src}->{dst}", buf, tag)
    return Collective(kind="send_recv", size_bytes=elements * buf.element_size(), elements=elements, dtype=dtype,
                      fn=call, verify=verify, state={"buf": buf})


def _send_recv(async_op, blocking_op, buf, peer: int, kind: str, timeout_s: float | None) -> None:
    if timeout_s is None:
        blocking_op(buf, peer)
        return
    try:
        async_op(buf, peer).wait(_dt.timedelta(seconds=timeout_s))
    except Exception as exc:
        raise CollectiveError(f"{kind} with rank {peer} did not finish (waited at most {timeout_s:g} s): "
                              f"{type(exc).__name__}: {str(exc).strip()[:200]}") from exc
