"""How a point is timed, written once: the per-point budget and the rule that turns one call's time into calls per
round and rounds (the harness, the torchrun job and the predictor's ``--measure`` all use it), a timed block of
calls, and the whole-model timing the predictor compares its predictions with.

Stop rule (time-bounded, not count-bounded): ``iterations`` calls per round so a round lasts at least ``block_s``
(timer and sync overhead well under 0.1%), and as many rounds as ``point_budget_s`` allows, at least ``min_rounds``
and at most ``max_rounds``. The run-level budget (how long a whole run and each group of points may take) is
bench.harness.TimeBudget.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Budget:
    point_budget_s: float
    call_cap_s: float
    block_s: float
    min_rounds: int = 3
    max_rounds: int = 60
    #: per timing of a real layer (warm, cold and its implicit GEMM each get this much)
    layer_budget_s: float = 0.1
    #: a point disturbed by other processes (platforms.load) is measured again at most this many times
    retries: int = 2
    retry_pause_s: float = 0.2
    #: a --quick run: a dtype with no fast path here gets one GEMM shape (Suite.slow_path_cut)
    quick: bool = False

    @classmethod
    def for_run(cls, kind: str, quick: bool) -> "Budget":
        """The benchmarks' points (bench/harness.py)."""
        block = 0.002 if kind == "cpu" else 0.01
        if quick:
            return cls(point_budget_s=0.12, call_cap_s=0.6, block_s=block, min_rounds=3, max_rounds=25,
                       layer_budget_s=0.08, quick=True)
        return cls(point_budget_s=0.6, call_cap_s=4.0, block_s=block * 5, min_rounds=5, max_rounds=60,
                   layer_budget_s=0.3)

    @classmethod
    def for_collectives(cls, kind: str, quick: bool) -> "Budget":
        """A collective's points under torchrun (bench/distributed.py): every rank plans from the slowest rank's
        first call, so every rank makes the same number of calls; a hang is bounded by --timeout-s, not a cap."""
        return cls(point_budget_s=0.15 if quick else 0.6, call_cap_s=math.inf,
                   block_s=0.002 if kind == "cpu" else 0.005, min_rounds=3 if quick else 5,
                   max_rounds=20 if quick else 50, quick=quick)

    def for_layers(self) -> "Budget":
        return dataclasses.replace(self, point_budget_s=self.layer_budget_s, max_rounds=min(self.max_rounds, 30))

    def plan(self, call_s: float) -> tuple[int, int]:
        """(calls per round, rounds) for a call of ``call_s`` seconds."""
        call_s = max(call_s, 1e-9)
        iterations = max(1, math.ceil(self.block_s / call_s))
        rounds = int(self.point_budget_s / (call_s * iterations))
        return iterations, max(self.min_rounds, min(self.max_rounds, rounds))


def block(clock: Callable[[], float], fn: Callable[[], Any], iterations: int) -> float:
    """Seconds of ``iterations`` back-to-back calls of ``fn`` (``clock`` syncs the device where it has one)."""
    start = clock()
    for _ in range(iterations):
        fn()
    return clock() - start


def per_call_times(clock: Callable[[], float], fn: Callable[[], Any], budget: Budget,
                   warm_s: float) -> tuple[list[float], int]:
    """Per-call seconds of each round (``budget.plan`` from one warm call of ``warm_s``), and calls per round."""
    iterations, rounds = budget.plan(warm_s)
    return [block(clock, fn, iterations) / iterations for _ in range(rounds)], iterations


# ---- a whole model, for the predictor's --measure ----------------------------------------------------------------
#: the predictor's measured reference: one call per round (a model call is long), at least 5, at most 200, in 2 s
MODEL_BUDGET = Budget(point_budget_s=2.0, call_cap_s=math.inf, block_s=0.0, min_rounds=5, max_rounds=200)


def measure_model(model, tensors: tuple, platform, budget: Budget = MODEL_BUDGET, warmup: int = 2) -> dict:
    """A real model on ``platform``: eval, no_grad, ``warmup`` calls, then rounds of ``budget.plan`` (the harness's
    rule), timed with the platform's clock; the median and best. One more pass with module hooks gives per-layer
    times (leaf modules)."""
    import torch

    from kernels.pages import minor_faults
    from results.stats import summarise

    def call():
        model(*tensors)

    with torch.no_grad():
        for _ in range(warmup - 1):
            call()
        warm = block(platform.clock, call, 1)
        faults_before = minor_faults()
        times, iterations = per_call_times(platform.clock, call, budget, warm)
        faults = minor_faults() - faults_before
        layers = layer_times(model, tensors, platform.sync)
    stats = summarise(times)
    return {"median_s": stats["median_s"], "best_s": stats["best_s"], "n": stats["n"], "iqr_rel": stats["iqr_rel"],
            "layers": layers, "faults_per_call": faults / max(len(times) * iterations, 1),
            "method": f"eager, eval, no_grad, {platform.device}, {warmup} warm-up calls, median of "
                      f"{len(times)} (bench.timing: the harness's round rule, {iterations} per round)"}


def layer_times(model, tensors: tuple, sync: Callable[[], None], passes: int = 3) -> dict[str, float]:
    """Median over ``passes`` forwards of each leaf module's own time (pre- to post-hook, synchronised)."""
    import torch

    names = {id(m): n for n, m in model.named_modules()}
    has_children = {id(m) for m in model.modules() if any(True for _ in m.children())}
    starts: dict[int, float] = {}
    seen: dict[str, list[float]] = {}
    current: dict[str, float] = {}

    def pre(module, args):
        if id(module) not in has_children:
            sync()
            starts[id(module)] = time.perf_counter()

    def post(module, args, out):
        if id(module) in starts:
            sync()
            name = names.get(id(module), type(module).__name__)
            current[name] = current.get(name, 0.0) + time.perf_counter() - starts.pop(id(module))

    handles = [torch.nn.modules.module.register_module_forward_pre_hook(pre),
               torch.nn.modules.module.register_module_forward_hook(post)]
    try:
        for _ in range(passes):
            current.clear()
            model(*tensors)
            for name, t in current.items():
                seen.setdefault(name, []).append(t)
    finally:
        for h in handles:
            h.remove()
    return {name: statistics.median(ts) for name, ts in seen.items()}
