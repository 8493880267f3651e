"""Probe layers for the predictor (kernels/opsweep.py): convolutions, depthwise and grouped convolutions,
linears, attention and element-wise layers over the shapes models use, each timed like a model's layer (cold
and warm, verified against float64). ``python -m kernels.predict`` interpolates between these points."""
import pytest

from bench.session import run_of
from kernels.count import count_model
from kernels.opsweep import build_probe, prepare_probe, probes

#: dtypes the probes run in (the predictor's --dtype); GEMM-only dtypes (int8, fp8, tf32, fp64) have no probes
PROBE_DTYPES = ("fp32", "bf16", "fp16")


def _dtypes(config) -> list[str]:
    kind = run_of(config).platform.kind
    native = "fp32" if kind == "cpu" else "bf16"
    chosen = [d for d in run_of(config).dtypes if d in PROBE_DTYPES]
    if config.getoption("--quick"):
        return [native] if native in chosen or not chosen else chosen[:1]
    return chosen


def pytest_generate_tests(metafunc):
    if "probe_point" not in metafunc.fixturenames:
        return
    config = metafunc.config
    quick = config.getoption("--quick")
    metafunc.parametrize("probe_point", [pytest.param((dtype, probe), id=f"{dtype}-{probe.name}")
                                         for dtype in _dtypes(config) for probe in probes(quick)])


def test_module_call_overhead(suite, benchmark):
    """What calling one nn.Module costs beyond its ops (``__call__``, hooks, the Python of a forward): a model's
    container modules (Sequential, a residual block) pay it once per call. Timed on a module whose forward returns
    its input (no op runs)."""
    import torch

    from kernels.base import Prepared, Verdict

    def make():
        module = torch.nn.Identity()
        x = torch.ones(1, device=suite.platform.device)
        state = {}

        def fn():
            state["out"] = module(x)

        def verify():
            ok = state.get("out") is x
            return Verdict(ok, "the module returned its input" if ok else "the module returned something else")

        return Prepared(group="overhead", kernel="module_call", dtype="fp32", impl="nn.Identity()(x)", fn=fn,
                        verify=verify, flops=0, bytes=0, convention="seconds per module call", shape=[1],
                        size_bytes=4, extra={"meaning": "host seconds per nn.Module call that runs no op"})

    suite.run(benchmark, make, group="overhead", kernel="module_call", dtype="fp32")


def test_fresh_memory_cost(suite):
    """What writing memory fresh from the OS costs beyond writing memory already held: ``torch.empty(n).fill_()``
    of FRESH_PROBE_BYTES each call (then freed: the unmapping is part of it) against ``fill_`` of one kept tensor.
    An allocation of results.predict.FRESH_BYTES or more is mapped afresh on every call (glibc), so a model's op
    whose output is that large pays a page fault per 4 KiB page each call (GELU on 8x56x56x384 floats: 14-18 ms
    against 1.5 ms to fill the same bytes held, a Zen 5 VM, 2026-12-03); the predictor prices each page fault a
    model's call takes (kernels.pages) at (fresh - held) per page. Measured in a child process with
    only torch loaded, as a model's process is: on a VM the cost depends on what the process holds (the same
    64 MiB cost 17 ms fresh in a new process, 140 ms in one holding 1 GiB: never-touched guest memory faults in the
    host too). CPU only: a GPU's caching allocator keeps its blocks."""
    import os

    from kernels.opsweep import FRESH_PROBE_BYTES
    from results.record import measurement

    if suite.platform.kind != "cpu":
        pytest.skip("CPU only: torch's CUDA caching allocator reuses its blocks, no page is faulted per call")
    calls = 5 if suite.budget.quick else 15
    try:
        times = _in_child("fresh_memory_times", FRESH_PROBE_BYTES, calls, timeout=120)
    except ChildFailed as exc:
        reason = f"the child process that measures it failed: {exc}"
        for kernel in ("held_memory", "fresh_memory"):
            suite.add(measurement(group="overhead", kernel=kernel, dtype="fp32", status="missing", reason=reason))
        return
    for kernel in ("held_memory", "fresh_memory"):
        fresh = kernel == "fresh_memory"
        ok = times["verified"]
        suite.add(measurement(
            group="overhead", kernel=kernel, dtype="fp32", impl="torch.empty(n).fill_(1)" if fresh else
            "kept.fill_(1)", shape=[FRESH_PROBE_BYTES // 4], size_bytes=FRESH_PROBE_BYTES, bytes=FRESH_PROBE_BYTES,
            times_s=times[kernel], number_per_run=1, verified=ok, status="ok" if ok else "failed",
            reason="" if ok else "the buffer was not filled", convention="bytes written per call",
            extra={"meaning": "seconds to write this many bytes " + ("into a fresh allocation and free it "
                              "(page faults and unmapping included)" if fresh else "into memory already held"),
                   "where": "a child process with only torch loaded (kernels.opsweep.fresh_memory_times)",
                   "glibc_tunables": os.environ.get("GLIBC_TUNABLES", "")}))


class ChildFailed(Exception):
    """A child process of _in_child failed; its message says how (one line)."""


def _in_child(function: str, *args, timeout: float, env: dict | None = None):
    """kernels.opsweep's ``function(*args)`` (plain Python arguments) run in a child process with only torch
    loaded and this process's torch thread count, its JSON result parsed; ChildFailed where the child fails, times
    out or prints no JSON. The measurements that must not carry this process's allocation history run so."""
    import json
    import os
    import subprocess
    import sys

    import torch

    code = (f"import json, torch; from kernels.opsweep import {function}; "
            f"torch.set_num_threads({torch.get_num_threads()}); print(json.dumps({function}(*{args!r})))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=timeout,
                             check=True, env=env)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError) as exc:
        raise ChildFailed(f"{type(exc).__name__}: {str(exc)[:200]}") from None


#: the calibration's own point budget (seconds: full run, --quick) and most calls: enough calls for a median and a
#: best that mean something (a model call of ~15 ms; the probes' 0.6 s would give 40)
CALIBRATION_BUDGET_S, CALIBRATION_ROUNDS = (1.5, 0.75), 100


def _time_whole_model(suite, benchmark, kernel: str, dtype: str, build, shape: tuple, extra: dict) -> dict:
    """Time ``build()`` (an nn.Module) whole on ``shape``, call after call, as a calibration row (group
    "calibration", ``kernel``), under the calibration's own point budget; returns the row (best and median)."""
    import dataclasses

    import torch

    from kernels.base import torch_dtype
    from kernels.layers import prepare_model

    device = suite.platform.device

    def make():
        model = build().to(device=device, dtype=torch_dtype(dtype)).eval()
        x = torch.randn(shape, generator=torch.Generator(device=device).manual_seed(0), device=device,
                        dtype=torch_dtype(dtype))
        with torch.no_grad():
            counts = count_model(model, (x,))
        p = prepare_model(model, (x,), kernel, counts)
        p.group, p.dtype = "calibration", dtype
        p.extra.update({"input": list(shape), **extra})
        return p

    full = suite.budget
    suite.budget = dataclasses.replace(full, point_budget_s=CALIBRATION_BUDGET_S[1 if full.quick else 0],
                                       max_rounds=CALIBRATION_ROUNDS)
    try:
        return suite.run(benchmark, make, group="calibration", kernel=kernel, dtype=dtype, shape=list(shape))
    finally:
        suite.budget = full


def test_model_calibration(suite, benchmark):
    """A whole reference model (kernels.opsweep.reference_model, torch.nn only), timed call after call as a user's
    model is: the predictor learns from it how far this machine's model calls sit from the sum of their ops (best
    call vs the probes) and how far the median call sits above the best (a whole model's calls spread more than one
    op repeated back to back)."""
    from kernels.opsweep import REFERENCE_INPUT, reference_model

    dtype = "fp32" if suite.platform.kind == "cpu" else "bf16"
    _time_whole_model(suite, benchmark, "reference_model", dtype, reference_model, REFERENCE_INPUT,
                      {"what": "kernels.opsweep.reference_model, eval, no_grad, one call per round where a call "
                               "outlasts a block"})


def test_eviction_calibration(suite, benchmark):
    """A whole model whose weights are twice the last-level cache (kernels.opsweep.evicting_model), timed call after
    call: the predictor prices it with the probes' warm and cold-cache times and learns where between them a model
    that evicts its own weights lands on this machine (on one VM near the cold end, on another near the warm)."""
    from kernels.opsweep import (
        EVICTING_BLOCK_BYTES,
        EVICTING_INPUT,
        evicting_blocks,
        evicting_model,
    )
    from results.predict import last_level_cache

    if suite.platform.kind != "cpu":
        pytest.skip("the eviction calibration is for CPU records (a GPU's L2 holds no model's weights)")
    llc = last_level_cache(suite.record.data["platform"])
    blocks = evicting_blocks(llc)
    _time_whole_model(suite, benchmark, "evicting_model", "fp32", lambda: evicting_model(blocks), EVICTING_INPUT,
                      {"blocks": blocks, "llc_bytes": llc,
                       "what": f"kernels.opsweep.evicting_model({blocks}), eval, no_grad: weights "
                               f"{blocks * EVICTING_BLOCK_BYTES / 1e6:.0f} MB against a {(llc or 0) / 2**20:.0f} MiB "
                               f"last-level cache"})


def test_working_set_calibration(suite, benchmark):
    """The reference model again on an image so large that one call touches WORKING_SET_TIMES the last-level cache
    anew (its weights and every op's output), timed call after call: the predictor prices it with the probes' warm
    and cold-cache times and learns how far toward cold the ops of a model that outgrows the cache land here (on
    five records of a 2-core Zen 5 VM, 2026-12-03, at 256x256: -13% to +5% of the way, fault-free)."""
    from kernels.opsweep import WORKING_SET_TIMES, reference_model, working_set_side
    from kernels.predict import REFERENCE_SOURCE, count_for, ops_of, weight_bytes
    from results.predict import FAULTS_IN_PROBE, last_level_cache, working_set_bytes

    if suite.platform.kind != "cpu":
        pytest.skip("the working-set calibration is for CPU records (a GPU's L2 holds no model's working set)")
    llc = last_level_cache(suite.record.data["platform"])

    def working_set(side: int) -> tuple[int, int]:  # (weights, working set) in bytes, counted on the meta device
        counts = count_for(REFERENCE_SOURCE, [((1, 3, side, side), None)], "fp32", "cpu")
        weights = weight_bytes(counts, "fp32")
        return weights, working_set_bytes(weights, (o.out_bytes for o in ops_of(counts, "fp32")))

    weights, at_224 = working_set(224)
    side = working_set_side(llc, weights, at_224 - weights)
    touched = working_set(side)[1] if side != 224 else at_224
    what = (f"kernels.opsweep.reference_model at {side}x{side}, eval, no_grad: one call touches {touched / 1e6:.0f} "
            f"MB anew (weights and outputs) against a {(llc or 0) / 2**20:.0f} MiB last-level cache (asked: "
            f"{WORKING_SET_TIMES}x)")
    row = _time_whole_model(suite, benchmark, "working_set_model", "fp32", reference_model, (1, 3, side, side),
                            {"llc_bytes": llc, "working_set_bytes": touched, "what": what})
    if row.get("status") == "ok" and (row.get("extra") or {}).get("faults_per_call", 0) >= FAULTS_IN_PROBE:
        _working_set_without_faults(suite, side, touched, row["extra"]["faults_per_call"])


def _working_set_without_faults(suite, side: int, touched: int, with_faults: float) -> None:
    """The working-set model's calls faulted pages in (their price is a machine's, and noisy): timed again in a
    child process whose glibc keeps freed memory, so the calibration rests on its calls without faults (a Zen 5 VM,
    2026-12-03: 6,000-6,700 faults a call at 256x256)."""
    import os

    from kernels.opsweep import KEEP_MEMORY_TUNABLES
    from results.record import measurement

    tunables = ":".join(t for t in (os.environ.get("GLIBC_TUNABLES"), KEEP_MEMORY_TUNABLES) if t)
    fields = dict(group="calibration", kernel="working_set_model_without_faults", dtype="fp32",
                  shape=[1, 3, side, side])
    try:
        # bounded: 3 warm calls, then calls for 1.5 s (5 at least, 100 at most), plus importing torch
        t = _in_child("working_set_times", side, timeout=90, env={**os.environ, "GLIBC_TUNABLES": tunables})
    except ChildFailed as exc:
        suite.add(measurement(**fields, status="missing", reason=f"the child process that measures it failed: {exc}"))
        return
    ok = t["verified"] and t["faults_per_call"] < 0.1 * with_faults
    suite.add(measurement(
        **fields, status="ok" if ok else "missing", times_s=t["times_s"] if ok else None, verified=t["verified"],
        reason="" if ok else (f"still {t['faults_per_call']:.0f} faults a call there" if t["verified"] else
                              "its output was not finite"),
        extra={"input": [1, 3, side, side], "working_set_bytes": touched, "faults_per_call": t["faults_per_call"],
               "faults_per_call_with": with_faults,
               "where": f"a child process with GLIBC_TUNABLES={tunables} (kernels.opsweep.working_set_times)"}))


def test_probe(suite, benchmark, probe_point):
    dtype, probe = probe_point
    fields = dict(group="opsweep", kernel=probe.name, dtype=dtype, shape=list(probe.input_shape))
    device = suite.platform.device
    estimate = suite.estimate_cut(dtype, 2 * _macs_on_meta(probe))
    if estimate:
        suite.not_measured("cut", estimate, **fields)

    def make():
        p, counts = prepare_probe(probe, dtype, device)
        p.group, p.kernel, p.dtype = "opsweep", probe.name, dtype
        p.extra.update({"family": probe.family, "ops": sorted({o.op for o in counts.ops}),
                        "conv": list(probe.build[1]) if probe.build[0] == "conv" else None,
                        # what torch ran each op as (a CPU convolution's backend, a batch norm's training form)
                        "variants": {o.op: o.variant for o in counts.ops if o.variant}})
        return p

    suite.run_layer(benchmark, make, None, **fields)


def _macs_on_meta(probe) -> int:
    import torch

    module = build_probe(probe).to("meta")
    return count_model(module, (torch.empty(probe.input_shape, device="meta"),)).macs


#: at most this many faulting probes are timed again without faults (the largest faulters first)
FAULT_FREE_PROBES = 8


def test_probes_without_faults(suite):
    """The probes whose timed calls faulted pages in (an output or a oneDNN reorder buffer above glibc's mmap
    threshold, mapped fresh every call), timed again in a child process whose allocator keeps freed memory
    (kernels.opsweep.KEEP_MEMORY_TUNABLES; this process's environment is not changed): the op's own time, which the
    predictor prices ops by, and with the faulting time the price of one page fault inside an op, which it prices a
    model's counted faults at (conv1x1 16->96 at 112x112, batch 8: 15.4 ms with 9,409 faults a call, 3.7 ms
    without, a Zen 5 VM, 2026-12-03: 1.2 us a fault where the fresh-memory write says 0.95). CPU only."""
    import os

    from kernels.opsweep import KEEP_MEMORY_TUNABLES
    from results.predict import faulting_probes
    from results.record import measurement

    if suite.platform.kind != "cpu":
        pytest.skip("CPU only: torch's CUDA caching allocator reuses its blocks, no page is faulted per call")
    rows = faulting_probes(suite.record.data["measurements"])
    if not rows:
        pytest.skip("no probe faulted pages in on this machine")
    rows = sorted(rows, key=lambda r: -r["extra"]["faults_per_call"])[:FAULT_FREE_PROBES]
    by_dtype: dict[str, list[dict]] = {}
    for r in rows:
        by_dtype.setdefault(r["dtype"], []).append(r)
    tunables = ":".join(t for t in (os.environ.get("GLIBC_TUNABLES"), KEEP_MEMORY_TUNABLES) if t)
    for dtype, group in by_dtype.items():
        names = [r["kernel"] for r in group]
        try:
            # bounded: at most FAULT_FREE_PROBES probes, each 3 warm calls then 5 calls or 0.5 s (plus importing torch)
            times = _in_child("fault_free_times", names, dtype, timeout=90,
                              env={**os.environ, "GLIBC_TUNABLES": tunables})
        except ChildFailed as exc:
            reason = f"the child process that measures them failed: {exc}"
            for r in group:
                suite.add(measurement(group="overhead", kernel="probe_without_faults", dtype=dtype, status="missing",
                                      reason=reason, extra={"probe": r["kernel"]}))
            continue
        for r in group:
            t = times[r["kernel"]]
            with_faults = r["extra"]["faults_per_call"]
            removed = t["faults_per_call"] < 0.1 * with_faults
            ok = t["verified"] and removed
            best_with = min(r["extra"].get("warm_times_s") or [r["extra"].get("warm_median_s") or r["median_s"]])
            suite.add(measurement(
                group="overhead", kernel="probe_without_faults", dtype=dtype, shape=r.get("shape"),
                flops=r.get("flops"), bytes=r.get("bytes"), times_s=t["times_s"], number_per_run=1,
                verified=t["verified"], status="ok" if ok else "failed", statistic="median",
                reason="" if ok else ("the output did not verify" if not t["verified"] else
                                      f"the child still faulted {t['faults_per_call']:.0f} pages a call"),
                convention="the probe's own FLOPs and bytes",
                extra={"probe": r["kernel"], "best_s": t["best_s"], "warm_median_s": t["median_s"], "n": t["n"],
                       "faults_per_call": t["faults_per_call"], "faults_per_call_with": with_faults,
                       "best_with_faults_s": best_with,
                       "page_fault_s": max(0.0, (best_with - t["best_s"]) / with_faults),
                       "where": f"a child process with GLIBC_TUNABLES={tunables} (kernels.opsweep.fault_free_times)",
                       "meaning": "the probe's warm calls with no page faults; page_fault_s: what one fault cost "
                                  "its calls (best with faults - best without, per fault)"}))


def test_model_calibration_again(suite, benchmark):
    """The reference model once more, after the probes (this test runs last in the file): its median against the
    first's says how far the machine's speed moved while the probes were measured. A VM's neighbours move it by
    1.5x within minutes and no steal or load counter shows it (a 2-core Zen 5 VM, 2026-12-03: the reference model's
    median 5.6 ms, then 9.2 ms a quarter of an hour later); the predictor widens its range by that move."""
    from kernels.opsweep import REFERENCE_INPUT, reference_model

    dtype = "fp32" if suite.platform.kind == "cpu" else "bf16"
    _time_whole_model(suite, benchmark, "reference_model_again", dtype, reference_model, REFERENCE_INPUT,
                      {"what": "kernels.opsweep.reference_model after the probes: the machine's drift meanwhile"})
