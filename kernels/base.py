"""The contract between a kernel and the benchmark that times it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

DTYPE_ALIASES = {
    "fp64": "float64", "fp32": "float32", "tf32": "float32", "fp16": "float16", "bf16": "bfloat16",
    "int8": "int8", "fp8": "float8_e4m3fn", "uint8": "uint8",
}
ALL_GEMM_DTYPES = ("fp64", "fp32", "tf32", "fp16", "bf16", "int8", "fp8")


class Unsupported(Exception):
    """This kernel cannot run here (no such dtype path, not enough memory); the message says why."""


@dataclass
class Verdict:
    ok: bool
    detail: str


@dataclass
class Prepared:
    """A ready-to-time kernel: ``fn`` does one unit of work, ``verify`` checks the output afterwards.

    ``flops`` and ``bytes`` are per call of ``fn``; ``convention`` says how they were counted.
    """

    group: str  # "gemm" | "stream" | "transfer"
    kernel: str
    dtype: str
    impl: str
    fn: Callable[[], Any]
    verify: Callable[[], Verdict]
    flops: int
    bytes: int
    convention: str
    shape: list[int] | None = None
    size_bytes: int | None = None  # working set (all arrays touched)
    extra: dict[str, Any] = field(default_factory=dict)
    cleanup: Callable[[], None] | None = None
    #: live tensors (inputs / outputs) for tests and verification; never written to a record
    state: dict[str, Any] = field(default_factory=dict, repr=False)


def torch_dtype(name: str):
    import torch

    return getattr(torch, DTYPE_ALIASES.get(name, name))


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return True
    text = str(exc).lower()
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text
        or isinstance(exc, MemoryError))


class ArrayPool:
    """Large arrays kept between points of a sweep: a fresh GiB-sized array costs its page faults (about 0.5 s a GiB
    on a VM), which a DRAM sweep would pay at every kernel. Arrays below ``min_bytes`` are not kept (cheap to make);
    the pool holds at most ``cap_fraction`` of the memory available when an array is given back, oldest out first."""

    def __init__(self, min_bytes: int = 64 << 20, cap_fraction: float = 1 / 8):
        self.min_bytes, self.cap_fraction = min_bytes, cap_fraction
        self.items: list[tuple[Any, int, Any]] = []  # (key, bytes, array), oldest first

    def take(self, key, make: Callable[[], Any]):
        for i, (k, _n, arr) in enumerate(self.items):
            if k == key:
                del self.items[i]
                return arr
        return make()

    def give(self, key, nbytes: int, arr) -> None:
        if arr is None or nbytes < self.min_bytes:
            return
        import psutil

        cap = self.cap_fraction * (psutil.virtual_memory().available + sum(n for _k, n, _a in self.items))
        self.items.append((key, nbytes, arr))
        while self.items and sum(n for _k, n, _a in self.items) > cap:
            self.items.pop(0)

    def clear(self) -> None:
        self.items.clear()
