"""Times a prepared kernel through pytest-benchmark, verifies it, samples telemetry and records the result.

Stop rule (time-bounded, not count-bounded): one cold call (lazy init, and an estimate), one warm call to size a
block, then ``iterations`` calls per round so a round lasts at least ``block_s`` (timer + sync overhead well under
0.1 %), and as many rounds as ``point_budget_s`` allows (at least ``min_rounds``, at most ``max_rounds``).
A point whose single call would exceed ``call_cap_s`` is cut short and recorded as such.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from kernels.base import Prepared, Unsupported, is_out_of_memory
from results.record import measurement


@dataclass
class Budget:
    point_budget_s: float
    call_cap_s: float
    block_s: float
    min_rounds: int = 3
    max_rounds: int = 60

    @classmethod
    def for_run(cls, kind: str, quick: bool) -> "Budget":
        block = 0.002 if kind == "cpu" else 0.01
        if quick:
            return cls(point_budget_s=0.12, call_cap_s=0.6, block_s=block, min_rounds=3, max_rounds=25)
        return cls(point_budget_s=1.0, call_cap_s=4.0, block_s=block * 5, min_rounds=5, max_rounds=60)


@dataclass
class Suite:
    """Session state shared by the benchmarks: platform, record, budget, and best rate per dtype so far."""

    platform: Any
    record: Any
    budget: Budget
    reporter: Any = None
    capture: Any = None  # pytest's capture manager: progress lines must bypass output capture
    best_rate: dict[str, float] = field(default_factory=dict)

    # -- progress ------------------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        if self.reporter is None:
            return
        if self.capture is not None:
            with self.capture.global_and_fixture_disabled():
                self.reporter.ensure_newline()
                self.reporter.write_line(text)
        else:
            self.reporter.ensure_newline()
            self.reporter.write_line(text)

    # -- recording helpers ---------------------------------------------------------------------------------
    def not_measured(self, status: str, reason: str, **fields) -> None:
        self.record.add(measurement(status=status, reason=reason, **fields))
        self.say(f"  {fields.get('group')} {fields.get('kernel')} {fields.get('dtype')} {fields.get('shape') or ''}: "
                 f"{status}: {reason}")
        pytest.skip(f"{status}: {reason}")

    def estimate_cut(self, dtype: str, flops: int) -> str | None:
        """Reason to cut a point before running it, from the rate this dtype reached on smaller shapes."""
        rate = self.best_rate.get(dtype)
        if rate and flops / rate > self.budget.call_cap_s:
            return (f"one call would take about {flops / rate:.2f} s at the {rate / 1e9:.3g} GFLOP/s this dtype "
                    f"reached so far, over the {self.budget.call_cap_s:g} s cap per call: point cut short")
        return None

    # -- the measurement -----------------------------------------------------------------------------------
    def run(self, benchmark, make: Callable[[], Prepared], **fields) -> dict:
        """``fields`` (group, kernel, dtype, shape, ...) label the point if it cannot be measured."""
        try:
            prepared = make()
        except Unsupported as exc:
            self.not_measured("missing", str(exc), **fields)
        except Exception as exc:
            if is_out_of_memory(exc):
                self.not_measured("skipped", f"out of memory while allocating: {_short(exc)}", **fields)
            raise
        try:
            return self._time(benchmark, prepared)
        except Exception as exc:
            if is_out_of_memory(exc):
                self.not_measured("skipped", f"out of memory while running: {_short(exc)}", **_label(prepared))
            raise
        finally:
            if prepared.cleanup:
                prepared.cleanup()
            prepared.state.clear()

    def _call_time(self, fn) -> float:
        clock = self.platform.clock
        start = clock()
        fn()
        return clock() - start

    def _time(self, benchmark, p: Prepared) -> dict:
        budget = self.budget
        with self.platform.sampler() as sampler:
            cold = self._call_time(p.fn)
            if cold > budget.call_cap_s:
                reason = (f"one call took {cold:.2f} s (cold), over the {budget.call_cap_s:g} s cap per call: "
                          "point cut short, no figure")
                if p.group == "gemm":
                    self.best_rate[p.dtype] = min(self.best_rate.get(p.dtype, math.inf), p.flops / cold)
                self.not_measured("cut", reason, **_label(p))
            warm = max(self._call_time(p.fn), 1e-9)
            iterations = max(1, math.ceil(budget.block_s / warm))
            rounds = int(budget.point_budget_s / (warm * iterations))
            rounds = max(budget.min_rounds, min(budget.max_rounds, rounds))
            if benchmark.disabled:  # --benchmark-disable: pytest-benchmark runs fn once; time it ourselves
                times = []
                for _ in range(rounds):
                    times.append(_block(self.platform.clock, p.fn, iterations) / iterations)
            else:
                benchmark.pedantic(p.fn, rounds=rounds, iterations=iterations, warmup_rounds=1)
                times = list(benchmark.stats.stats.data)  # per-call seconds, one per round
        verdict = p.verify()
        status = "ok" if verdict.ok else "failed"
        row = measurement(
            group=p.group, kernel=p.kernel, dtype=p.dtype, impl=p.impl, shape=p.shape, size_bytes=p.size_bytes,
            flops=p.flops, bytes=p.bytes, times_s=times, number_per_run=iterations, verified=verdict.ok, status=status,
            reason="" if verdict.ok else f"verification failed: {verdict.detail}", convention=p.convention,
            telemetry=sampler.summary(), extra={**p.extra, "verification": verdict.detail, "cold_call_s": cold})
        self.record.add(row)
        if row["flop_per_s"] and p.group == "gemm":
            self.best_rate[p.dtype] = max(self.best_rate.get(p.dtype, 0.0), row["flop_per_s"])
        benchmark.extra_info.update({
            "group": p.group, "kernel": p.kernel, "dtype": p.dtype, "impl": p.impl, "shape": p.shape,
            "flops": p.flops, "bytes": p.bytes, "flop_per_s_best": row["flop_per_s"],
            "bytes_per_s_best": row["bytes_per_s"], "statistic": "best round (per-call time)", "cv": row["cv"],
            "verified": verdict.ok, "convention": p.convention})
        self.say(_progress(row))
        if not verdict.ok:
            pytest.fail(f"{p.group} {p.kernel} {p.dtype} {p.shape}: {row['reason']}", pytrace=False)
        return row


def _block(clock, fn, iterations: int) -> float:
    start = clock()
    for _ in range(iterations):
        fn()
    return clock() - start


def _label(p: Prepared) -> dict:
    return {"group": p.group, "kernel": p.kernel, "dtype": p.dtype, "impl": p.impl, "shape": p.shape,
            "size_bytes": p.size_bytes, "flops": p.flops, "bytes": p.bytes, "convention": p.convention}


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


def _progress(row: dict) -> str:
    from results.report import si

    what = f"{row['group']} {row['kernel']} {row['dtype']}"
    where = ("x".join(map(str, row["shape"])) if row["group"] == "gemm" else f"{(row['size_bytes'] or 0) / 2**10:.0f} KiB")
    rate = si(row["flop_per_s"], "FLOP/s") if row["group"] == "gemm" else si(row["bytes_per_s"], "B/s")
    check = "verified" if row["verified"] else "VERIFICATION FAILED"
    cv = f"{100 * row['cv']:.1f}%" if row.get("cv") is not None else "-"
    return f"  {what} {where}: {rate} best of {row['n']} (CV {cv}), {check}"

