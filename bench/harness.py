"""Times a prepared kernel through pytest-benchmark, verifies it, samples telemetry and records the result.

Per point: one cold call (lazy init, and an estimate), one warm call to size a block, then the rounds of
bench.timing's rule (``Budget.plan``). A point whose single call would exceed ``call_cap_s`` is cut short and
recorded as such. The run's own budget (``TimeBudget``: the whole run and each group of points) is here.

long: the harness is one object (``Suite``) whose timing, cutting, re-measuring of disturbed points and recording
share its state; split, each part would reach into the others' fields.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from bench.timing import Budget, block, per_call_times
from kernels.base import Prepared, Unsupported, is_out_of_memory
from kernels.pages import minor_faults
from platforms.load import LoadMonitor, describe_processes, top_processes
from results.record import RecordSaveError, measurement
from results.roofline import rate_unit
from results.stats import summarise
from results.units import si

#: pytest's own outcomes (skip, fail, exit) pass through the harness's error handling untouched
PASS_THROUGH = (pytest.skip.Exception, pytest.fail.Exception, pytest.exit.Exception)
#: a first call longer than this many call caps is cut without a second (warm) call
COLD_RETRY_FACTOR = 4.0
#: --quick: a dtype whose GEMM runs below this fraction of the fp32 GEMM has no fast path here (slow_path_cut)
SLOW_PATH_FRACTION = 1 / 8

#: the run's time budget in seconds by (platform kind, --quick); --budget SECONDS overrides it. Each group may spend
#: up to CAP_FACTOR x its share; an item starts only while the run's budget, less what the groups not yet started are
#: guaranteed (GUARANTEE x their share), has time left. No call longer than the cap is started twice, so a run ends
#: within its budget plus the items under way: within 1.5x of it by construction (tests/test_budget.py)
RUN_BUDGET_S = {("cpu", True): 80.0, ("cpu", False): 600.0, ("gpu", True): 180.0, ("gpu", False): 900.0}
#: each group's share of the run's budget (they add up to 1; budget groups are bench.progress's groups, with the
#: hardware stream kernels apart from torch's so that neither can starve the other; GEMM's share is split evenly over
#: the dtypes that have a path on the device). Set from a quiet --quick run on a 2-core Xeon VM (2026-12-01).
GROUP_SHARES = {"GEMM": 0.22, "stream": 0.30, "hardware stream": 0.10, "layers": 0.16, "probes": 0.08,
                "silicon peak": 0.05, "thread scaling": 0.03, "models": 0.03, "transfers": 0.03}
CAP_FACTOR, GUARANTEE = 1.5, 0.5
#: a layer whose warm median exceeds its cold-cache median by this factor was slowed while it was timed (a VM's
#: neighbours: a SiLU probe's warm median 457 us, cold 301 us, 157 us warm in the record before, a Zen 5 VM,
#: 2026-12-03, with no steal or load seen): it is timed again, as a disturbed point is
WARM_OVER_COLD = 1.2
#: re-measuring disturbed points may take at most this share of the run's budget
RETRY_SHARE = 0.15
#: once this share of the points measured so far (at least WHOLE_MIN_POINTS of them) was disturbed, the run is
#: disturbed as a whole: it says so once and stops re-measuring point by point
WHOLE_SHARE, WHOLE_MIN_POINTS = 0.5, 12


@dataclass
class TimeBudget:
    """The run's clock against its budget: seconds spent per budget group (the call phase of every item, timed by
    conftest's hooks), items still to run per group, the time spent re-measuring disturbed points, and the reason an
    item must not start."""

    run_s: float
    gemm_dtypes: int = 1
    shares: dict = field(default_factory=lambda: dict(GROUP_SHARES))
    started: float = field(default_factory=time.monotonic)
    spent: dict = field(default_factory=dict)
    pending: dict = field(default_factory=dict)
    retry_s: float = 0.0

    @classmethod
    def for_run(cls, kind: str, quick: bool, budget_s: float | None = None, gemm_dtypes: int = 1) -> "TimeBudget":
        run_s = budget_s if budget_s else RUN_BUDGET_S[("cpu" if kind == "cpu" else "gpu", bool(quick))]
        return cls(run_s=float(run_s), gemm_dtypes=max(1, gemm_dtypes))

    def add_group(self, group: str, seconds: float, extend: bool = True) -> None:
        """A group with a budget of its own (a --variants run): ``extend`` adds its seconds to the run's budget (the
        other groups keep theirs), else it takes its share out of the run's budget as given by --budget."""
        total = self.run_s + seconds if extend else self.run_s
        share = min(1.0, seconds / total)
        self.shares = {k: v * (1 - share) for k, v in self.shares.items()}
        self.shares[group] = share
        self.run_s = total

    def share(self, group: str) -> float:
        base = "GEMM" if group.startswith("GEMM") else group
        share = self.shares.get(base, 0.0)
        return share / self.gemm_dtypes if base == "GEMM" else share

    def group_s(self, group: str) -> float | None:
        """Seconds this budget group may spend (None: an item of no group, bounded by the run's budget only)."""
        share = self.share(group)
        return CAP_FACTOR * share * self.run_s if share else None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def expect(self, groups) -> None:
        """The items the run will try, by budget group (for the guarantee of groups not yet started). A run of some
        benchmark files only (the predictor's record: GEMM, stream, probes) gives the groups it has the shares of
        those it does not, in proportion: a budget is never kept for groups that will not run."""
        groups = list(groups)
        for group in groups:
            self.pending[group] = self.pending.get(group, 0) + 1
        bases = {"GEMM" if g.startswith("GEMM") else g for g in self.pending}
        present = sum(v for k, v in self.shares.items() if k in bases)
        if 0 < present < 1:
            self.shares = {k: (v / present if k in bases else 0.0) for k, v in self.shares.items()}

    def add(self, group: str, seconds: float) -> None:
        self.spent[group] = self.spent.get(group, 0.0) + seconds

    def finished(self, group: str) -> None:
        if self.pending.get(group):
            self.pending[group] -= 1

    def reserved_s(self, group: str) -> float:
        """What the groups that have not started yet (items pending, nothing spent) are guaranteed."""
        return sum(GUARANTEE * self.share(g) * self.run_s for g, n in self.pending.items()
                   if n and g != group and not self.spent.get(g))

    def cut_reason(self, group: str) -> str | None:
        left = self.run_s - self.elapsed()
        if left <= 0:
            return (f"the run's time budget ({self.run_s:.0f} s) is spent: not measured (--budget SECONDS gives a run "
                    "more time)")
        if left <= self.reserved_s(group):
            return (f"what is left of the run's time budget ({self.run_s:.0f} s) is kept for the groups not yet "
                    "started: not measured (--budget SECONDS gives a run more time)")
        limit = self.group_s(group)
        if limit is not None and self.spent.get(group, 0.0) >= limit:
            return (f"the {group} group's share of the run's budget ({limit:.1f} s of {self.run_s:.0f} s) is spent: "
                    "not measured (--budget SECONDS gives a run more time)")
        return None

    def retry_allowed(self) -> bool:
        return self.retry_s < RETRY_SHARE * self.run_s

    def to_dict(self) -> dict:
        return {"run_s": self.run_s, "elapsed_s": round(self.elapsed(), 2),
                "groups": {g: {"budget_s": None if self.group_s(g) is None else round(self.group_s(g), 2),
                               "spent_s": round(t, 2)} for g, t in sorted(self.spent.items())},
                "retry_s": round(self.retry_s, 2), "retry_budget_s": round(RETRY_SHARE * self.run_s, 2),
                "rule": (f"each group up to {CAP_FACTOR:g} x its share of the run's budget; groups not yet started are "
                         f"guaranteed {GUARANTEE:g} x theirs; re-measuring up to {RETRY_SHARE:.0%} of the budget")}


def budget_group(item) -> str:
    """The budget group of a pytest item: its progress group, with the hardware (native, Triton) stream kernels apart
    from torch's."""
    from bench.progress import item_group

    group = item_group(item)
    function = getattr(getattr(item, "function", None), "__name__", "")
    if group == "stream" and function in ("test_native_stream", "test_triton_stream"):
        return "hardware stream"
    return group


def item_label(item, group: str) -> dict:
    """Record fields naming an item that is cut before it runs (its parameters where they say what it measures)."""
    params = getattr(getattr(item, "callspec", None), "params", {}) or {}
    if "gemm_point" in params:
        dtype, shape, impl = params["gemm_point"]
        return {"group": "gemm", "kernel": "gemm", "dtype": dtype, "impl": impl, "shape": shape.as_list(),
                "flops": shape.flops}
    for key, impl, dtype in (("stream_point", "torch", "fp32"), ("native_point", "native", "fp64"),
                             ("triton_stream_point", "triton", "fp32")):
        if key in params and isinstance(params[key], tuple):
            name, size = params[key][:2]
            return {"group": "stream", "kernel": name, "dtype": dtype, "impl": impl, "size_bytes": size}
    if "fma_dtype" in params:
        return {"group": "peak", "kernel": "fma", "dtype": params["fma_dtype"], "impl": "native"}
    if "triton_fma_dtype" in params:
        return {"group": "peak", "kernel": "fma", "dtype": params["triton_fma_dtype"], "impl": "triton"}
    if "variant_point" in params:
        from bench.variant_plan import plan_of

        batch, v, again = params["variant_point"]
        plan = plan_of(item.config)
        return {"group": "variant", "kernel": f"{plan.name if plan else '?'} b{batch} {v.name}"
                                              f"{' (again)' if again else ''}", "dtype": v.compute_dtype, "impl": v.runtime,
                "extra": {"model": plan.source if plan else None, "batch": batch, "runtime": v.runtime,
                          "precision": v.precision, "compute_dtype": v.compute_dtype, "again": again}}
    if "engine_point" in params:
        return {"group": "peak", "kernel": params["engine_point"][0], "dtype": params["engine_point"][1],
                "impl": "native"}
    name = getattr(item, "originalname", None) or item.name
    callspec = getattr(item, "callspec", None)
    return {"group": group, "kernel": name.removeprefix("test_"), "dtype": "-",
            "shape": [callspec.id] if callspec else None}


@dataclass
class Suite:
    """Session state shared by the benchmarks: platform, record, budget, and best rate per dtype so far."""

    platform: Any
    record: Any
    budget: Budget
    reporter: Any = None
    capture: Any = None  # pytest's capture manager: progress lines must bypass output capture
    best_rate: dict[str, float] = field(default_factory=dict)
    monitor: Any = field(default_factory=LoadMonitor)
    #: the run's clock and budget (conftest times every item against it)
    clock: TimeBudget = field(default_factory=lambda: TimeBudget(run_s=math.inf))
    #: dtype -> why it has no usable path here (its first call on the smallest shape was over the cap)
    no_path: dict[str, str] = field(default_factory=dict)
    #: dtype -> the rate of a tiny GEMM probe (probe_cut), None where the probe could not run
    probe_rate: dict[str, float | None] = field(default_factory=dict)
    #: points measured / first attempt disturbed (for "disturbed as a whole")
    points_seen: int = 0
    points_disturbed: int = 0
    #: the sentence said once when the run is disturbed as a whole (then no point is re-measured)
    disturbed_whole: str | None = None
    #: the DRAM sentinel's prepared copy, kept between checks where it is small enough (Suite.sentinel)
    _sentinel_arrays: Any = None

    # -- progress ------------------------------------------------------------------------------------------
    progress: Any = None  # bench.progress.RunProgress (live view / plain lines / quiet), set by conftest.py
    #: the telemetry sampler that runs through the whole run (its summary goes into the record)
    run_sampler: Any = None

    def say(self, text: str, kind: str = "note") -> None:
        """``kind``: "point" (a clean measurement: a plain line, or only the live view's headline), "note"
        (missing, cut, disturbed, start-up facts: always shown unless -q), "error" (always)."""
        mode = self.progress.mode if self.progress is not None else "plain"
        if self.reporter is None or (mode == "quiet" and kind != "error") or (mode == "live" and kind == "point"):
            return
        if self.capture is not None:
            with self.capture.global_and_fixture_disabled():
                self._write(text)
        else:
            self._write(text)

    def _write(self, text: str) -> None:
        if self.progress is not None and self.progress.mode == "live":
            self.progress.note(text)
            return
        self.reporter.ensure_newline()
        self.reporter.write_line(text)

    # -- recording helpers ---------------------------------------------------------------------------------
    def add(self, row: dict) -> None:
        """Add a row and save the record. The first save that fails stops the whole run at once (no more
        measuring into a record that cannot be kept), saying where the last good record is."""
        try:
            self.record.add(row)
        except RecordSaveError as exc:
            self.save_error = str(exc)
            pytest.exit(f"roofline: {exc}. The run stops here.", returncode=pytest.ExitCode.INTERRUPTED)

    save_error: str | None = None

    def not_measured(self, status: str, reason: str, **fields) -> None:
        """Record a point without a figure; "failed" fails the test, the rest skip it (with the reason)."""
        self.add(measurement(status=status, reason=reason, **fields))
        self.say(f"  {fields.get('group')} {fields.get('kernel')} {fields.get('dtype')} {fields.get('shape') or ''}: "
                 f"{status}: {reason}", kind="error" if status == "failed" else "note")
        if status == "failed":
            pytest.fail(f"{status}: {reason}", pytrace=False)
        pytest.skip(f"{status}: {reason}")

    def estimate_cut(self, dtype: str, flops: int) -> str | None:
        """Reason to cut a point before running it: the dtype has no usable path here, or the rate it reached on
        smaller shapes says one call would be over the cap."""
        if dtype in self.no_path:
            return self.no_path[dtype]
        rate = self.best_rate.get(dtype)
        if rate and flops / rate > self.budget.call_cap_s:
            return (f"one call would take about {flops / rate:.2f} s at the {rate / 1e9:.3g} GFLOP/s this dtype "
                    f"reached so far, over the {self.budget.call_cap_s:g} s cap per call: point cut short")
        return None

    def probe_cut(self, dtype: str, flops: int, make_probe: Callable[[], Prepared]) -> str | None:
        """Before a dtype's first GEMM point: two calls of a tiny GEMM (``make_probe``) estimate its rate. Where one
        call of the first (smallest) shape would take over COLD_RETRY_FACTOR x the cap, the dtype has no usable path
        here and none of its shapes is tried (fp8 torch._scaled_mm on a CPU: seconds per 512^3 call)."""
        if dtype in self.no_path:
            return self.no_path[dtype]
        if dtype in self.best_rate or dtype in self.probe_rate:
            return None
        self.probe_rate[dtype] = None
        try:
            p = make_probe()
            set_running(f"gemm {dtype} probe {'x'.join(map(str, p.shape[1:]))}")
            seconds = min(block(self.platform.clock, p.fn, 1) for _ in range(2))
            rate, what = p.flops / max(seconds, 1e-9), "x".join(map(str, p.shape[1:]))
            p.state.clear()
        except Exception:  # the point itself will say what is wrong
            return None
        finally:
            set_running(None)
        self.probe_rate[dtype] = rate
        estimate = flops / rate
        if estimate > COLD_RETRY_FACTOR * self.budget.call_cap_s:
            self.no_path[dtype] = (
                f"no usable {dtype} GEMM path on this device: a {what} probe ran at {rate / 1e9:.3g} "
                f"G{'OP' if dtype == 'int8' else 'FLOP'}/s, so one call of its smallest shape would take about "
                f"{estimate:.1f} s, over {COLD_RETRY_FACTOR:g} x the {self.budget.call_cap_s:g} s cap per call; no shape "
                "is tried")
            self.say(f"  gemm {dtype}: {self.no_path[dtype]}")
            return self.no_path[dtype]
        return None

    def slow_path_cut(self, dtype: str) -> str | None:
        """--quick only: once a dtype's GEMM has run below SLOW_PATH_FRACTION of the fp32 GEMM rate of this run, it
        has no fast path on this device (bf16, fp16, int8 on a CPU without those units are emulated at a few
        GFLOP/s): its other shapes are cut, which saves most of a quick run's time on such a CPU and changes no
        ceiling that matters. A full run measures every shape."""
        rate, fp32 = self.best_rate.get(dtype), self.best_rate.get("fp32")
        if not self.budget.quick or dtype == "fp32" or not rate or not fp32 or rate >= SLOW_PATH_FRACTION * fp32:
            return None
        return (f"--quick: {dtype} reached {rate / 1e9:.3g} G{'OP' if dtype == 'int8' else 'FLOP'}/s on its shapes so "
                f"far, {rate / fp32:.2g}x the fp32 GEMM's {fp32 / 1e9:.3g} GFLOP/s: no fast {dtype} path on this "
                f"device, so a quick run measures one shape of it (a full run measures every shape)")

    # -- the measurement -----------------------------------------------------------------------------------
    def run(self, benchmark, make: Callable[[], Prepared], **fields) -> dict:
        """``fields`` (group, kernel, dtype, shape, ...) label the point if it cannot be measured. A kernel that
        cannot be built or raises while running (a shape a backend refuses, out of memory) is recorded as skipped
        with the reason, and the sweep goes on; only a failed verification fails the test."""
        prepared = self._prepare(make, fields)
        try:
            return self._time(benchmark, prepared)
        except PASS_THROUGH:
            raise
        except Exception as exc:
            what = "out of memory while running" if is_out_of_memory(exc) else f"failed while running ({type(exc).__name__})"
            self.not_measured("skipped", f"{what}: {_short(exc)}", **_label(prepared))
        finally:
            set_running(None)
            if prepared.cleanup:
                prepared.cleanup()
            prepared.state.clear()

    def sentinel(self, when: str) -> dict | None:
        """A DRAM copy (torch, a working set >= 4x the last-level cache), best of 5 calls, measured at the start and
        end of every benchmark file: the machine's memory bandwidth drifts (a VM shares it with neighbours), so the
        summary reports the spread of these beside the DRAM ceiling. Group "sentinel": never a ceiling."""
        from kernels import stream

        if self.save_error:  # the run is stopping: measure nothing more
            return None
        def missing(reason: str) -> None:
            self.add(measurement(group="sentinel", kernel="copy", dtype="fp32", status="missing", reason=reason,
                                 extra={"when": when}))

        if self.clock.elapsed() >= self.clock.run_s:  # past the run's budget: nothing more is measured, the
            # sentinel included (its arrays cost seconds where fresh pages are dear: up to 9 us each on a VM)
            missing(f"cut: the run's time budget ({self.clock.run_s:.0f} s) is spent")
            return None
        size = max(4 * self.platform.llc_bytes(), (1 << 30) if self.platform.kind != "cpu" else 0)
        size = min(size, self.platform.memory_bytes() // 4)
        try:
            # the arrays are kept for the next check where they take at most 1/8 of the free memory (allocating and
            # faulting in GiB-sized arrays cost more than the check itself); the output is zeroed before each check
            # (so verify sees this check's copy)
            p = self._sentinel_arrays or stream.prepare("copy", size, self.platform.device)
            p.state["target"].zero_()  # the copy's output (kernels.stream keeps it as "target")
            p.fn()
            self.monitor.start()
            times = [block(self.platform.clock, p.fn, 1) for _ in range(5)]
            load = self.monitor.stop()
            verdict = p.verify()
        except Exception as exc:  # a sentinel must never stop a run, but its failure is kept, not swallowed
            error = f"{type(exc).__name__}: {_short(exc)}"
            missing(f"the DRAM sentinel ({when}) could not run: {error}")
            return {"error": error}
        row = measurement(group="sentinel", kernel="copy", dtype="fp32", impl="torch", shape=p.shape,
                          size_bytes=p.size_bytes, bytes=p.bytes, times_s=times, number_per_run=1,
                          verified=verdict.ok, status="ok" if verdict.ok else "failed", convention=p.convention,
                          extra={"when": when, "statistic": "best of 5 single calls"})
        if 2 * p.size_bytes <= self.platform.memory_bytes() // 8:
            self._sentinel_arrays = p
        else:
            self._sentinel_arrays = None
            p.state.clear()
        self.add(_with_load(row, load))
        return row

    def remeasure(self, old: dict, make: Callable[[], Prepared]) -> dict | None:
        """Measure a point again (timed by the harness itself: pytest-benchmark allows one benchmark per test). The
        new row is added and the old one kept, marked ``superseded`` (analysis skips it; the record keeps both)."""
        try:
            new = self.run(None, make)
        except pytest.skip.Exception:
            return None
        index = next(i for i, row in enumerate(self.record.measurements) if row is old)
        old["superseded"] = True
        new["remeasure_of"] = index
        self.record.save()
        return new

    def _warm_times(self, benchmark, p: Prepared) -> tuple[list[float], int, float]:
        """(per-call times, calls per round, the cold first call): blocks of calls, warm caches.

        The first call may be slow for reasons that say nothing of the kernel (lazy loading of a library module,
        autotuning, page faults), so it never sets the per-dtype rate used to cut larger shapes, and a first call
        over the cap is followed by one warm call before the point is cut."""
        budget = self.budget
        first_of_dtype = p.group == "gemm" and p.dtype not in self.best_rate
        set_running(f"{p.group} {p.kernel} {p.dtype} {_where(p)}: first call")
        cold = block(self.platform.clock, p.fn, 1)
        if cold > COLD_RETRY_FACTOR * budget.call_cap_s:
            if first_of_dtype:
                self._no_path(p, f"its first call on its smallest shape ({_where(p)}) took {cold:.2f} s")
            self.not_measured("cut", (
                f"the first call took {cold:.2f} s, over {COLD_RETRY_FACTOR:g} x the {budget.call_cap_s:g} s cap per "
                "call: point cut short, no figure (a first call is not used to estimate the rate of larger shapes)"),
                **_label(p))
        set_running(f"{p.group} {p.kernel} {p.dtype} {_where(p)}: warm call (the first took {cold:.2f} s)")
        warm = max(block(self.platform.clock, p.fn, 1), 1e-9)
        set_running(f"{p.group} {p.kernel} {p.dtype} {_where(p)}: timed calls of about {warm:.2g} s each")
        faults = minor_faults()
        if warm > budget.call_cap_s:
            if p.group == "gemm":
                self.best_rate[p.dtype] = min(self.best_rate.get(p.dtype, math.inf), p.flops / warm)
                if first_of_dtype:
                    self._no_path(p, f"one warm call on its smallest shape ({_where(p)}) took {warm:.2f} s")
            self.not_measured("cut", (f"one warm call took {warm:.2f} s (the first {cold:.2f} s), over the "
                                      f"{budget.call_cap_s:g} s cap per call: point cut short, no figure"), **_label(p))
        if benchmark is None or benchmark.disabled:  # pytest-benchmark runs fn once then: time it ourselves
            times, iterations = per_call_times(self.platform.clock, p.fn, budget, warm)
            calls = len(times) * iterations
        else:
            iterations, rounds = budget.plan(warm)
            # a warm-up round only where a round is a block of short calls: a call that fills a block alone was just
            # warmed by the warm call above (another would add a whole call: 20% of an expensive --quick point)
            benchmark.pedantic(p.fn, rounds=rounds, iterations=iterations, warmup_rounds=1 if iterations > 1 else 0)
            times = list(benchmark.stats.stats.data)  # per-call seconds, one per round
            calls = (rounds + (1 if iterations > 1 else 0)) * iterations
        if self.platform.kind == "cpu":
            # the page faults the timed calls took (an output or a oneDNN reorder buffer above glibc's mmap
            # threshold is mapped fresh on every call, a few us a page on a VM): the predictor takes them out of a
            # probe's time and adds a model's own counted faults instead (kernels.pages). Counted over the timed
            # calls themselves: a later count in this process can differ (the heap the cache flush left behind
            # served a 38.5 MB probe's buffers with no fault, 2026-12-03)
            p.extra["faults_per_call"] = (minor_faults() - faults) / max(calls, 1)
        return times, iterations, cold

    def _no_path(self, p: Prepared, what: str) -> None:
        self.no_path[p.dtype] = (f"no usable {p.dtype} GEMM path on this device: {what}, over the "
                                 f"{self.budget.call_cap_s:g} s cap per call; larger shapes are not tried")
        self.say(f"  gemm {p.dtype}: {self.no_path[p.dtype]}")

    def cold_times(self, p: Prepared, device_times: list[float] | None = None) -> list[float]:
        """One call per round after flushing the caches (triton / nvFuser practice for per-layer timings): host
        wall times (``Platform.time_call``); where the device times itself, its times go to ``device_times``."""
        budget = self.budget
        times: list[float] = []
        spent, start = 0.0, time.perf_counter()
        while len(times) < budget.min_rounds or (spent < budget.point_budget_s and len(times) < budget.max_rounds):
            self.platform.flush_caches()
            self.platform.last_device_s = None
            times.append(self.platform.time_call(p.fn))
            if device_times is not None and self.platform.last_device_s is not None:
                device_times.append(self.platform.last_device_s)
            spent = time.perf_counter() - start
        return times

    def _attempts(self, measure: Callable[[Any], Any],
                  implausible: Callable[[Any], str] | None = None) -> tuple[Any, dict]:
        """Run ``measure(benchmark_or_None)`` under the load monitor; while other processes disturb it, or
        ``implausible(result)`` names a reason its figures cannot be (a warm time above the cold one: a VM's
        neighbours, which no counter shows, slowed it), run it again (at most ``budget.retries`` times, after a short
        pause). Returns the first clean result, else the least disturbed one, and what the monitor saw
        (``interference``, with every attempt and, if it stayed disturbed, the processes that were busy)."""
        tries = []
        retry_started = None
        for attempt in range(1 + self.budget.retries):
            if attempt:
                if not self._may_retry():
                    break
                retry_started = retry_started or time.monotonic()
                time.sleep(self.budget.retry_pause_s)
            self.monitor.start()
            result = measure(attempt)
            load = self.monitor.stop()
            load["implausible"] = implausible(result) if implausible else ""
            tries.append((result, load))
            if attempt == 0:
                self._count_disturbed(load)
            if not load["disturbed"] and not load["implausible"]:
                break
        if retry_started is not None:
            self.clock.retry_s += time.monotonic() - retry_started
        result, load = min(tries, key=lambda t: (t[1]["disturbed"], bool(t[1]["implausible"]),
                                                 t[1]["wait_threads"] + t[1]["other_cores"]))
        info = {**load, "attempts": len(tries), "attempt_loads": [
            {k: t[1][k] for k in ("other_cores", "wait_threads", "steal_frac", "disturbed", "implausible")}
            for t in tries]}
        if load["disturbed"]:
            busy = top_processes(window_s=0.2)
            info["top_processes"] = busy
            if busy:
                info["evidence"] += f"; busy: {describe_processes(busy)}"
        return result, info

    def _may_retry(self) -> bool:
        """Re-measuring draws on a bounded share of the run (RETRY_SHARE), and stops once the run is disturbed as
        a whole."""
        return self.disturbed_whole is None and self.clock.retry_allowed()

    def _count_disturbed(self, load: dict) -> None:
        self.points_seen += 1
        self.points_disturbed += bool(load.get("disturbed"))
        if (self.disturbed_whole is None and self.points_seen >= WHOLE_MIN_POINTS
                and self.points_disturbed >= WHOLE_SHARE * self.points_seen):
            self.disturbed_whole = (
                f"this run is disturbed as a whole: {self.points_disturbed} of the first {self.points_seen} points were "
                f"disturbed ({load.get('evidence') or 'other work on the cores'}); points are no longer re-measured "
                "one by one, and every disturbed figure is flagged as it stands")
            self.record.data["disturbed_whole"] = self.disturbed_whole
            self.say(f"  {self.disturbed_whole}")

    def _time(self, benchmark, p: Prepared) -> dict:
        def measure(attempt):
            with self.platform.sampler() as sampler:
                # pytest-benchmark times the first attempt; a re-measurement times itself (pedantic runs once a test)
                times, iterations, cold = self._warm_times(benchmark if attempt == 0 else None, p)
            return times, iterations, cold, sampler

        (times, iterations, cold, sampler), load = self._attempts(measure)
        verdict = p.verify()
        status = "ok" if verdict.ok else "failed"
        row = measurement(
            group=p.group, kernel=p.kernel, dtype=p.dtype, impl=p.impl, shape=p.shape, size_bytes=p.size_bytes,
            flops=p.flops, bytes=p.bytes, times_s=times, number_per_run=iterations, verified=verdict.ok, status=status,
            reason="" if verdict.ok else f"verification failed: {verdict.detail}", convention=p.convention,
            statistic="median" if p.group in ("model", "calibration", "variant") else "best",  # whole models: the typical call
            telemetry=sampler.summary(), extra={**p.extra, "verification": verdict.detail, "cold_call_s": cold})
        return self._finish(benchmark, p, _with_load(row, load), verdict)

    def _finish(self, benchmark, p: Prepared, row: dict, verdict) -> dict:
        self.add(row)
        if row["flop_per_s"] and p.group == "gemm":
            self.best_rate[p.dtype] = max(self.best_rate.get(p.dtype, 0.0), row["flop_per_s"])
        if benchmark is not None:
            benchmark.extra_info.update({
                "group": p.group, "kernel": p.kernel, "dtype": p.dtype, "impl": p.impl, "shape": p.shape,
                "flops": p.flops, "bytes": p.bytes, "flop_per_s_best": row["flop_per_s"],
                "bytes_per_s_best": row["bytes_per_s"], "statistic": row["statistic"], "cv": row["cv"],
                "verified": verdict.ok, "convention": p.convention})
        self.say(_progress(row), kind="point" if verdict.ok and not row.get("disturbed") else "note")
        if self.progress is not None:
            self.progress.headline(_headline(row, self))
        if not verdict.ok:
            pytest.fail(f"{p.group} {p.kernel} {p.dtype} {p.shape}: {row['reason']}", pytrace=False)
        return row

    def run_layer(self, benchmark, make_layer: Callable[[], Prepared], make_gemm: Callable[[], Prepared] | None,
                  **fields) -> dict:
        """A real layer: warm times (pytest-benchmark), cold-cache times (flush before each call; the primary
        figure, statistic = median), and the same work as a plain GEMM of its implicit shape, cold, for the gap."""
        p = self._prepare(make_layer, fields)
        full_budget, self.budget = self.budget, self.budget.for_layers()
        try:
            def measure(attempt):
                with self.platform.sampler() as sampler:
                    warm, iterations, first = self._warm_times(benchmark if attempt == 0 else None, p)
                    device: list[float] = []
                    cold = self.cold_times(p, device)
                return warm, iterations, first, device, cold, sampler

            def implausible(result) -> str:
                warm_median, cold_median = summarise(result[0])["median_s"], summarise(result[4])["median_s"]
                if warm_median and cold_median and warm_median > WARM_OVER_COLD * cold_median:
                    return (f"its warm median ({warm_median * 1e6:.0f} us) sat above its cold-cache one "
                            f"({cold_median * 1e6:.0f} us): the machine slowed while it was timed")
                return ""

            (warm, iterations, first, device, cold, sampler), load = self._attempts(measure, implausible)
            verdict = p.verify()
            gemm = self._gemm_for_gap(make_gemm) if make_gemm else None
        except Exception as exc:
            if isinstance(exc, PASS_THROUGH):
                raise
            if is_out_of_memory(exc):
                self.not_measured("skipped", f"out of memory while running: {_short(exc)}", **_label(p))
            self.not_measured("skipped", f"the layer failed: {type(exc).__name__}: {_short(exc)}", **_label(p))
        finally:
            set_running(None)
            self.budget = full_budget
            if p.cleanup:
                p.cleanup()
        row = measurement(
            group=p.group, kernel=p.kernel, dtype=p.dtype, impl=p.impl, shape=p.shape, size_bytes=p.size_bytes,
            flops=p.flops, bytes=p.bytes, times_s=cold, number_per_run=1, verified=verdict.ok,
            status="ok" if verdict.ok else "failed", statistic="median",
            reason="" if verdict.ok else f"verification failed: {verdict.detail}", convention=p.convention,
            telemetry=sampler.summary(),
            extra={**p.extra, "verification": verdict.detail, "timing": {
                "cold": f"flush caches, then one call: {self.platform.single_call_method}",
                "warm": f"blocks of {iterations} back-to-back calls (pytest-benchmark rounds)"},
                "warm_times_s": warm, "warm_median_s": summarise(warm)["median_s"], "first_call_s": first, "gemm": gemm,
                **({"device_times_s": device, "device_median_s": summarise(device)["median_s"],
                    "device_times_note": getattr(self.platform, "DEVICE_TIMES_NOTE", "")} if device else {})})
        p.state.clear()
        return self._finish(benchmark, p, _with_load(row, load), verdict)

    def _prepare(self, make, fields) -> Prepared:
        try:
            return make()
        except Unsupported as exc:
            self.not_measured("missing", str(exc), **fields)
        except Exception as exc:
            if is_out_of_memory(exc):
                self.not_measured("skipped", f"out of memory while allocating: {_short(exc)}", **fields)
            self.not_measured("skipped", f"could not be built: {type(exc).__name__}: {_short(exc)}", **fields)

    def _gemm_for_gap(self, make_gemm) -> dict:
        """The implicit GEMM, timed cold like the layer; a failure here is recorded, never fatal to the layer."""
        try:
            g = make_gemm()
        except Exception as exc:
            return {"status": "missing", "reason": f"{type(exc).__name__}: {_short(exc)}"}
        try:
            g.fn()
            first = block(self.platform.clock, g.fn, 1)
            if first > self.budget.call_cap_s:  # e.g. bf16 torch.mm on a CPU without bf16 units: seconds per call
                return {"status": "cut", "shape": g.shape, "reason": (
                    f"one call of the implicit GEMM took {first:.2f} s, over the {self.budget.call_cap_s:g} s cap per "
                    "call: no GEMM comparison for this layer")}
            device: list[float] = []
            times = self.cold_times(g, device)
            verdict = g.verify()
            out = {"status": "ok" if verdict.ok else "failed", "shape": g.shape, "flops": g.flops, "bytes": g.bytes,
                   "times_s": times, "median_s": summarise(times)["median_s"], "verification": verdict.detail, "impl": g.impl}
            if device:
                out.update(device_times_s=device, device_median_s=summarise(device)["median_s"],
                           device_times_note=getattr(self.platform, "DEVICE_TIMES_NOTE", ""))
            return out
        except Exception as exc:
            return {"status": "skipped", "reason": f"{type(exc).__name__}: {_short(exc)}"}
        finally:
            g.state.clear()


#: what the process is running now, for the signal watcher's message (conftest: a SIGTERM or Ctrl-C that arrives
#: while a long native call runs is answered only when the call returns)
RUNNING: dict[str, Any] = {"what": None, "since": None}


def set_running(what: str | None) -> None:
    RUNNING["what"], RUNNING["since"] = what, time.monotonic()


def _where(p: Prepared) -> str:
    if p.group == "gemm" and p.shape:
        return "x".join(map(str, p.shape[1:])) + (f" batch {p.shape[0]}" if p.shape[0] > 1 else "")
    return f"{(p.size_bytes or 0) >> 10} KiB" if p.size_bytes else "x".join(map(str, p.shape or []))


def _with_load(row: dict, load: dict) -> dict:
    """Attach what the load monitor saw: ``disturbed`` (bool, top level) and ``interference`` (the evidence)."""
    row["disturbed"] = bool(load["disturbed"])
    row["interference"] = load
    return row


#: the fields of a point's extra that name it (a variant's model, batch, runtime, precision): kept on a row that
#: has no figure, so a reader can still tell which point it was
LABEL_EXTRA = ("model", "batch", "runtime", "precision", "compute_dtype", "again", "spec", "batch_tag", "source")


def _label(p: Prepared) -> dict:
    return {"group": p.group, "kernel": p.kernel, "dtype": p.dtype, "impl": p.impl, "shape": p.shape,
            "size_bytes": p.size_bytes, "flops": p.flops, "bytes": p.bytes, "convention": p.convention,
            "extra": {k: p.extra[k] for k in LABEL_EXTRA if k in p.extra}}


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


def _progress(row: dict) -> str:
    what = f"{row['group']} {row['kernel']} {row['dtype']}"
    if row["group"] in ("layer", "model"):
        warm = (row.get("extra") or {}).get("warm_median_s")
        kind = "cold" if row["group"] == "layer" else "warm"
        return (f"  {what}: median {row['median_s'] * 1e3:.3g} ms {kind}" + (f", {warm * 1e3:.3g} ms warm" if warm else "")
                + f" ({si(row['flop_per_s_median'], 'FLOP/s')}), {'verified' if row['verified'] else 'VERIFICATION FAILED'}"
                + _load_note(row))
    if row["group"] == "variant":
        from results.variants import cosine_of

        x = row.get("extra") or {}
        q = x.get("quality") or {}
        return (f"  {row['kernel']}: median {row['median_s'] * 1e3:.3g} ms (IQR {100 * (row.get('iqr_rel') or 0):.0f}%, "
                f"n={row['n']}), first call {x.get('first_call_s', 0) * 1e3:.3g} ms, "
                f"{si(row['flop_per_s_median'], 'FLOP/s')}; cosine vs fp32 eager {cosine_of(q):.5f}"
                + ("" if x.get("quality_ok", True) else " (outside the quality budget)") + _load_note(row))
    where = ("x".join(map(str, row["shape"])) if row["group"] == "gemm" else f"{(row['size_bytes'] or 0) / 2**10:.0f} KiB")
    rate = si(row["flop_per_s"], "FLOP/s") if row["group"] == "gemm" else si(row["bytes_per_s"], "B/s")
    check = "verified" if row["verified"] else "VERIFICATION FAILED"
    cv = f"{100 * row['cv']:.1f}%" if row.get("cv") is not None else "-"
    return f"  {what} {where}: {rate} best of {row['n']} (CV {cv}), {check}{_load_note(row)}"


def _headline(row: dict, suite: "Suite") -> str:
    """The figure a person watching wants beside the group's line: the best so far, or the last layer's time."""
    group = row.get("group")
    if group == "gemm" and suite.best_rate.get(row["dtype"]):
        return f"best {si(suite.best_rate[row['dtype']], rate_unit(row['dtype']))}"
    if group == "stream" and row.get("bytes_per_s"):
        dram = 4 * suite.platform.llc_bytes()
        best = max((m["bytes_per_s"] for m in suite.record.measurements if m.get("group") == "stream"
                    and m.get("bytes_per_s") and (m.get("size_bytes") or 0) >= dram and not m.get("disturbed")),
                   default=None)
        return f"DRAM so far {si(best, 'B/s')}" if best else f"last {si(row['bytes_per_s'], 'B/s')}"
    if group == "variant" and row.get("median_s"):
        x = row.get("extra") or {}
        return f"last: b{x.get('batch')} {x.get('runtime')}/{x.get('precision')} {row['median_s'] * 1e3:.3g} ms"
    if group in ("layer", "model", "probe") and row.get("median_s"):
        return f"last: {row['kernel']} {row['median_s'] * 1e3:.3g} ms"
    return ""


def _load_note(row: dict) -> str:
    load = row.get("interference") or {}
    if row.get("disturbed"):
        return f"; DISTURBED after {load.get('attempts', 1)} attempts ({load.get('evidence')})"
    if load.get("implausible"):
        return f"; {load['implausible']} on all {load.get('attempts', 1)} attempts"
    if load.get("attempts", 1) > 1:
        why = "others were busy" if any(a.get("disturbed") for a in load.get("attempt_loads") or []) else \
            "the first's warm time sat above its cold one"
        return f"; clean on attempt {load['attempts']} (re-measured: {why})"
    return ""

