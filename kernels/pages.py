"""Page faults a model's call takes from the OS, counted by running the model here.

A CPU model whose calls allocate memory the C allocator does not keep between calls faults a fresh 4 KiB page in
from the OS each time: glibc maps an allocation above its mmap threshold fresh and unmaps it on free, and trims the
heap's top when more than its trim threshold lies free there. Both thresholds move with the process's own history
(the mmap threshold rises to the largest mapped block freed, up to 32 MiB), so no rule on tensor sizes says how
many pages a model takes: on a 2-core Zen 5 VM (2026-12-03) SelecSLS-84 at batch 1 took 17,858 a call (73 MB; a
fifth of its call), HardCoReNAS-B at batch 8 14,080, ResNet-50 0, and the count stayed the same call after call
once warm. So it is counted, not modelled: the model is run here a few times, as the predictor's count ran it on
the meta device, and the steady per-call count is what the predictor prices (results/predict.py, at the
record's price of a page fault: DeviceModel.page_fault_s). bench/predict_cli.py skips the count (and says so) for a
model whose weights would not fit here or whose call is predicted to take over a third of BUDGET_S.

What the count depends on: the allocator (glibc's version, GLIBC_TUNABLES), torch's kernels and thread count (the
record's is used), the dtype and shapes; not on the CPU's speed. What it does not see: a process whose earlier
work raised glibc's thresholds (another, larger model before this one) faults less than one that runs this model
alone, which is what is counted here.
"""
from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass

#: a call's count is steady when it is within this share of the call before (or both are below STEADY_FLOOR)
STEADY_SHARE, STEADY_FLOOR = 0.05, 64
#: at most this many calls, and no new call once this many seconds have passed: the count's cost stays bounded
#: whatever a call costs here (the first one of a large model can take seconds)
MAX_CALLS, BUDGET_S = 8, 20.0
#: the model's weights must fit in this share of the memory available here
MEMORY_SHARE = 0.5


@dataclass
class FaultCount:
    """The steady count of minor page faults per call (``per_call``) and how it was reached."""

    per_call: float
    calls: list[int]
    steady: bool
    seconds: float
    threads: int

    def how(self) -> str:
        libc = " ".join(platform.libc_ver()) or "an unknown C library"
        tunables = os.environ.get("GLIBC_TUNABLES")
        state = ("steady" if self.steady else f"NOT steady after {len(self.calls)} calls (the last call's count is "
                 "used)")
        return (f"{self.per_call:.0f} page faults a call, counted by running the model here ({len(self.calls)} calls "
                f"in {self.seconds:.1f} s, {state}: {', '.join(str(c) for c in self.calls)}; {self.threads} threads, "
                f"{libc}" + (f", GLIBC_TUNABLES={tunables}" if tunables else "") + ")")


def minor_faults() -> int:
    """This process's minor page faults so far (0 where the OS does not say: no resource module on Windows)."""
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    except (ImportError, OSError):
        return 0


def steady_faults(call, *, max_calls: int = MAX_CALLS, budget_s: float = BUDGET_S) -> FaultCount:
    """Run ``call()`` (one model call, one probe call) until two calls in a row take the same number of page faults
    (within STEADY_SHARE), at most ``max_calls`` calls and none started after ``budget_s`` seconds."""
    import torch

    calls: list[int] = []
    start = time.perf_counter()
    while len(calls) < max_calls and (not calls or time.perf_counter() - start < budget_s):
        before = minor_faults()
        call()
        calls.append(minor_faults() - before)
        if len(calls) >= 3 and _same(calls[-1], calls[-2]):
            # the first two calls set up (weights' first touch, oneDNN's caches): three calls at least
            return FaultCount(calls[-1], calls, True, time.perf_counter() - start, torch.get_num_threads())
    return FaultCount(calls[-1], calls, False, time.perf_counter() - start, torch.get_num_threads())


def model_call(model, tensors: tuple):
    """One eval, no_grad call of ``model`` on ``tensors``, as a zero-argument function (for steady_faults)."""
    import torch

    def call():
        with torch.no_grad():
            model(*tensors)

    return call


def _same(a: int, b: int) -> bool:
    return max(a, b) < STEADY_FLOOR or abs(a - b) <= STEADY_SHARE * max(a, b)


def count_faults(source: str, inputs: list, dtype: str, threads: int | None = None,
                 weight_bytes: int = 0) -> FaultCount | str:
    """The steady page faults of model ``source`` (kernels.count's names) on ``inputs`` ((shape, dtype) each) in
    ``dtype`` on this CPU with ``threads`` torch threads (the record's; None: as set here), or why they could not
    be counted (one line: the prediction goes on without them)."""
    import psutil
    import torch

    from kernels.count import DTYPES
    from kernels.zoo import build_model, make_input

    if not minor_faults():
        return "this OS does not report page faults (no getrusage)"
    available = psutil.virtual_memory().available
    if weight_bytes > MEMORY_SHARE * available:
        return (f"the model's weights ({weight_bytes / 1e9:.1f} GB) exceed {MEMORY_SHARE:.0%} of the memory "
                f"available here ({available / 1e9:.1f} GB)")
    before = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(threads)
        model = build_model(source, "cpu").to(DTYPES[dtype]).eval()
        gen = torch.Generator().manual_seed(0)
        tensors = tuple(torch.randn(shape, generator=gen, dtype=DTYPES[d or dtype]) if (d or dtype) in DTYPES
                        else make_input(shape, d, dtype, "cpu") for shape, d in inputs)
        return steady_faults(model_call(model, tensors))
    except Exception as exc:  # the prediction stands without the count; say why
        return f"the model did not run here: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        torch.set_num_threads(before)
