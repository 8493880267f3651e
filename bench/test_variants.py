"""A model's variants (precision, quantisation, runtime) timed through the harness, one point per variant and batch:
``pytest bench/ --variants MODEL [--variant-input SHAPE] [--variant-batches 1,8] [--precisions ...] [--runtimes ...]``
or ``python -m bench.variants MODEL ...`` (which runs this file alone). Without --variants this file has no items.

Per point: the variant is built (``build_s``), called once (``first_call_s``: compile, engine build, lazy init),
then timed by the harness's rule (warm median with its spread, statistic "median"), its outputs checked (finite, the
reference's shape) and compared with fp32 eager on a fixed seeded input set (kernels.variants.quality). Counted
FLOPs are the model's; bytes are the variant's real widths (kernels.variants.counted). Where a record with
operator probes is at hand (this run's, or --variants-record), the predictor prices the variant beside it.
"""
from __future__ import annotations

import atexit
import threading
import time

import pytest

from bench.timing import block
from kernels.base import Prepared, Verdict
from kernels.runtimes import Exports, build
from kernels.variants import (
    QUALITY_BUDGET,
    QUALITY_NOTE,
    DeviceFacts,
    Variant,
    counted,
    quality,
    why_missing,
    within_budget,
)
from results.variants import cosine_of

#: samples in the quality set (seeded), and the seconds a point may spend on it beyond its first chunk
QUALITY_SAMPLES = 16
QUALITY_BUDGET_S = 3.0
CONVENTION = ("FLOPs = the model's counted FLOPs (2 x MACs + other); bytes = the counter's minimum traffic with each "
              "weight at its stored width (quantised weights with their scales) and activations in the compute "
              "dtype; time = median of warm calls")

_STATE: dict = {}


def pytest_generate_tests(metafunc):
    if "variant_point" not in metafunc.fixturenames:
        return
    from bench.variant_plan import plan_of

    plan = plan_of(metafunc.config)
    points = []
    for batch in plan.batches if plan is not None else []:
        points += [pytest.param((batch, v, False), id=f"b{batch}-{v.runtime}-{v.precision}") for v in plan.variants]
        # eager fp32 once more after the batch's variants: the machine drifts (a VM shares its cores and memory),
        # and a speed-up smaller than the reference's own drift is not a speed-up
        points.append(pytest.param((batch, plan.variants[0], True), id=f"b{batch}-eager-fp32-again"))
    metafunc.parametrize("variant_point", points)


class _PeakRSS:
    """The process's resident memory sampled every 10 ms while a variant is built and first called (psutil): its
    peak above the level before. A light thread (a read of /proc every 10 ms), never running while calls are timed."""

    def __init__(self):
        import psutil

        self.process = psutil.Process()
        self.before = self.peak = self.process.memory_info().rss
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        while not self.stop.wait(0.01):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)
        return False

    @property
    def added(self) -> int:
        return self.peak - self.before


def _facts(platform) -> DeviceFacts:
    capability = None
    if platform.kind != "cpu":
        import torch

        capability = tuple(torch.cuda.get_device_capability(platform.device))
    return DeviceFacts(platform.kind, capability)


def _shared(plan, suite):
    """Built once per run: the fp32 model (seeded weights), the quality inputs and fp32 eager's outputs on them, the
    ONNX exports, the predictor's device model."""
    if "model" in _STATE:
        return _STATE
    import torch

    from kernels.runtimes import torch_out
    from kernels.zoo import build_model

    platform = suite.platform
    device = platform.device
    torch.manual_seed(0)
    model = build_model(plan.source, "cpu").to(device).eval()
    gen = torch.Generator(device="cpu").manual_seed(1234)
    if plan.data is not None:
        samples = plan.data.to(device)
    else:
        samples = torch.randn((max(QUALITY_SAMPLES, *plan.batches), *plan.shape[1:]), generator=gen).to(device)
    from kernels.variants import settle_random_model

    # the suite's builders load no weights (no network): give the random model outputs with signal; a factory's
    # model may be trained, so only its all-zero weights are redrawn, its BatchNorm statistics are kept
    random_weights = ":" not in plan.source or plan.source.startswith("timm:")
    settled = settle_random_model(model, samples, batch_norm=random_weights)
    with torch.no_grad():  # fp32 eager in chunks of 8 (eager fp32's own quality shows the batch-size numerics)
        reference = torch.cat([torch_out(model(samples[i:i + 8])) for i in range(0, len(samples), 8)])
    if plan.record_path:  # the roofs the variants are placed under, copied so that the record stands alone
        from results.analysis import analyse
        from results.record import read_record
        from results.variants import roofs_dict

        suite.record.data["variant_roofs"] = roofs_dict(analyse(read_record(plan.record_path)), plan.record_path)
    suite.record.data["variant_model"] = {"source": plan.source, "random_weights": random_weights,
                                          "settled": settled, "quality_inputs": plan.data_path or
                                          f"{len(samples)} seeded N(0, 1) samples"}
    exports = Exports()
    atexit.register(exports.close)  # the ONNX files (a ResNet-50 is 100 MB with its int8 copy) go with the run
    _STATE.update(model=model, samples=samples, reference=reference, exports=exports, facts=_facts(platform),
                  per_sample={}, counts={})
    return _STATE


def _counts(plan, batch: int, dtype: str):
    key = (batch, dtype)
    if key not in _STATE["counts"]:
        from kernels.predict import count_for

        _STATE["counts"][key] = count_for(plan.source, [((batch, *plan.shape[1:]), None)], dtype, plan.target)
    return _STATE["counts"][key]


def test_variant(suite, benchmark, variant_point, request):
    from bench.variant_plan import plan_of

    batch, v, again = variant_point
    plan = plan_of(request.config)
    shape = [batch, *plan.shape[1:]]
    label = {"model": plan.source, "batch": batch, "runtime": v.runtime, "precision": v.precision,
             "compute_dtype": v.compute_dtype, "again": again}
    fields = dict(group="variant", kernel=f"{plan.name} b{batch} {v.name}{' (again)' if again else ''}",
                  dtype=v.compute_dtype, impl=v.runtime, shape=shape, extra=dict(label))
    state = _shared(plan, suite)
    why = why_missing(v, state["facts"])
    if why:
        suite.not_measured("missing", why, **fields)
    slower = _too_slow(v, batch, suite.budget.call_cap_s)
    if slower:
        suite.not_measured("cut", slower, **fields)

    def make() -> Prepared:
        return _prepare(plan, v, batch, shape, label, state, suite)

    row = suite.run(benchmark, make, **fields)
    if row and row.get("median_s") and not again:
        state["per_sample"].setdefault(v, {})[batch] = row["median_s"] / batch


def _too_slow(v: Variant, batch: int, cap_s: float) -> str | None:
    """A variant whose per-sample time at a smaller batch says this batch's one call would pass the cap is not
    started (fp16 on a CPU without fp16 arithmetic: seconds a call)."""
    seen = _STATE.get("per_sample", {}).get(v, {})
    smaller = {b: t for b, t in seen.items() if b < batch}
    if not smaller:
        return None
    b, per = max(smaller.items())
    estimate = per * batch
    if estimate > cap_s:
        return (f"at batch {b} one call took {per * b:.2f} s ({per:.3g} s a sample): batch {batch} would take about "
                f"{estimate:.1f} s a call, over the {cap_s:g} s cap per call (no fast path here); not started")
    return None


def _prepare(plan, v: Variant, batch: int, shape: list, label: dict, state: dict, suite) -> Prepared:
    import torch

    platform = suite.platform
    device = platform.device
    samples, reference = state["samples"], state["reference"]
    example = samples[:batch]
    if platform.kind != "cpu":
        torch.cuda.reset_peak_memory_stats(device)
    from torch._dynamo.utils import counters

    cache_before = dict(counters["inductor"])
    with _PeakRSS() as rss:
        built = build(v, state["model"], example, device, state["exports"])
        fed = built.feed(example)
        first_s = block(platform.clock, lambda: built.run(fed), 1)
    peak = torch.cuda.max_memory_allocated(device) if platform.kind != "cpu" else rss.added
    counts = _counts(plan, batch, v.compute_dtype)
    cost = counted(counts, built.storage, built.dynamic)
    eager = _counts(plan, batch, "fp32")
    facts = {k: val for k, val in built.facts.items() if k != "metrics"}
    if "metrics" in built.facts:
        facts["generated_kernels"] = int(built.facts["metrics"].generated_kernel_count)
    facts["eager_ops"] = len(eager.ops)
    if v.runtime == "compile":  # a warm on-disk cache makes the first call (the compile) far shorter: say which
        hits, misses = (counters["inductor"][k] - cache_before.get(k, 0) for k in ("fxgraph_cache_hit",
                                                                                   "fxgraph_cache_miss"))
        facts["inductor_cache"] = f"{hits} graph(s) from inductor's on-disk cache, {misses} compiled"
    out: dict = {}

    def fn():
        out["raw"] = built.run(fed)

    extra = {**label, "build_s": built.build_s, "first_call_s": first_s, "peak_memory_bytes": int(peak),
             "peak_memory_how": ("torch.cuda.max_memory_allocated over build and first call" if platform.kind
                                 != "cpu" else "process RSS above its level before the build, sampled every 10 ms "
                                 "over build and first call (psutil)"),
             "counted": cost, "eager_fp32_bytes": eager.bytes_read + eager.bytes_written, "notes": built.notes,
             "facts": facts, "quality_budget": QUALITY_BUDGET, "quality_note": QUALITY_NOTE,
             "throughput_note": "samples per second = batch / median call"}
    extra["predicted"] = plan.price(v, counts, eager, built.storage, built.dynamic, suite.record.data)

    def verify() -> Verdict:
        got = built.output(out.get("raw"))
        if tuple(got.shape) != (batch, *reference.shape[1:]):
            return Verdict(False, f"output shape {list(got.shape)}, expected {[batch, *reference.shape[1:]]}")
        # non-finite outputs (fp16 overflow) are the variant's quality, not a fault of the timing: within_budget
        # marks them, and the time stands beside the mark
        extra["quality"] = _quality(built, got, batch, samples, reference)
        if not label["again"]:
            extra["layers"], extra["layers_how"] = _layers(built, fed, first_s, platform)
        ok, why = within_budget(extra["quality"])
        extra["quality_ok"], extra["quality_why"] = ok, why
        return Verdict(True, f"output shaped as fp32 eager's; quality vs fp32 eager on "
                             f"{extra['quality']['n']} samples: cosine {cosine_of(extra['quality']):.6f}"
                       + ("" if ok else f" (outside the quality budget: {why})"))

    return Prepared(group="variant", kernel=f"{plan.name} b{batch} {v.name}{' (again)' if label['again'] else ''}",
                    dtype=v.compute_dtype, impl=v.runtime,
                    fn=fn, verify=verify, flops=cost["flops"], bytes=cost["bytes"], convention=CONVENTION,
                    shape=shape, extra=extra, state={"built": built})


#: a variant whose call is longer than this is not timed layer by layer (three more calls)
LAYER_CALL_CAP_S = 1.0


def _layers(built, fed, call_s: float, platform) -> tuple[dict, str]:
    """Per-layer seconds of one call where the runtime can say: eager through module hooks (bench.timing's
    layer_times), ONNX Runtime through its profiler; the others say why not."""
    import torch

    from bench.timing import layer_times

    why = {"compile": "inductor's generated kernels span modules (no per-module time)",
           "openvino": "OpenVINO's per-node counters are not collected yet",
           "tensorrt": "a TensorRT engine is one call"}
    if built.variant.runtime in why:
        return {}, f"not available: {why[built.variant.runtime]}"
    if call_s > LAYER_CALL_CAP_S:
        return {}, f"not timed: one call takes {call_s:.2f} s"
    if built.variant.runtime == "eager":
        with torch.no_grad():
            return (layer_times(built.keep[0], (fed,), platform.sync),
                    "module hooks (pre/post, synchronised), median of 3 passes; leaf modules")
    if built.layers is not None:
        try:
            return built.layers(fed)
        except Exception as exc:  # a profiler that fails costs the per-layer view only
            return {}, f"the runtime's profiler failed: {type(exc).__name__}: {str(exc)[:120]}"
    return {}, "not available: the runtime does not say"


def _quality(built, first_out, batch: int, samples, reference) -> dict:
    """The variant against fp32 eager on the quality set, in chunks of the batch it was built for (a static-shape
    runtime is not asked another shape): the timed call's inputs first, then more chunks while they fit
    QUALITY_BUDGET_S."""
    import torch

    outs, n = [first_out], batch
    start = time.perf_counter()
    per_chunk = None
    while n + batch <= len(samples):
        if per_chunk is not None and time.perf_counter() - start + per_chunk > QUALITY_BUDGET_S:
            break
        t0 = time.perf_counter()
        outs.append(built.output(built.run(built.feed(samples[n:n + batch]))))
        per_chunk = time.perf_counter() - t0
        n += batch
    got = torch.cat(outs)
    q = quality(reference[:n], got)
    if n < len(samples):
        q["limited"] = (f"{n} of {len(samples)} samples (chunks of batch {batch}; more would pass the "
                        f"{QUALITY_BUDGET_S:g} s quality budget of a point)")
    return q
