"""Predict how long a model's forward takes on a measured device, before running it there.

    python -m kernels.predict --record results/runs/R.json resnet50 --input 1,3,224,224 [--dtype bf16] [--json]
    python -m kernels.predict --record R.json timm:convnext_tiny --input 8,3,224,224 --measure
    python -m kernels.predict --record A.json B.json C.json mypkg.models:build --input 1,128 --dtype fp32,bf16

The model is counted on the meta device (kernels.count: no weights are allocated), each aten op is priced from the
record's measured points (results/predict.py says how, and every prediction repeats it), and the ops are summed.
``--measure`` also times the real model here (eager, no grad, warm, median of repeats) and prints the error per
model and per layer; it refuses a record measured on another machine. The command line and ``--measure`` are
bench/predict_cli.py (which ``python -m kernels.predict`` runs); the pricing is results/predict.py.
"""
from __future__ import annotations

import math

from kernels.count import DTYPES, count_model
from kernels.opsweep import EVICTING_BLOCKS, EVICTING_INPUT, evicting_model
from kernels.zoo import build_model, make_input, parse_input
from results.prediction import Op

GEMM_OPS = {"aten.mm": "mm", "aten.addmm": "addmm", "aten.bmm": "bmm", "aten.baddbmm": "baddbmm",
            "aten.mv": "mv", "aten.addmv": "addmv"}
ATTENTION_OPS = ("aten._scaled_dot_product_flash_attention_for_cpu", "aten._scaled_dot_product_flash_attention",
                 "aten._scaled_dot_product_efficient_attention", "aten._scaled_dot_product_cudnn_attention",
                 "aten._scaled_dot_product_fused_attention_overrideable")


def classify(op) -> tuple[str, tuple | None]:
    """(family, implicit GEMM (m, n, k, batch)) of one counted op (kernels.count.OpRecord)."""
    name, ins, outs = op.op, op.input_shapes, op.output_shapes
    try:
        if name in ("aten.convolution", "aten._convolution") and len(ins) >= 2 and outs:
            x, w, y = ins[0], ins[1], outs[0]
            groups = x[1] // w[1] if w[1] and x[1] % w[1] == 0 else 1
            m = y[0] * math.prod(y[2:])
            n, k = max(1, w[0] // groups), w[1] * math.prod(w[2:])
            family = "conv" if groups == 1 else "conv_dw" if n == 1 else "conv_grouped"
            return family, (m, n, k, groups)
        kind = GEMM_OPS.get(name)
        if kind in ("mm", "addmm"):
            a, b = ins[-2], ins[-1]
            return "linear", (a[0], b[1], a[1], 1)
        if kind in ("bmm", "baddbmm"):
            a, b = ins[-2], ins[-1]
            return "bmm", (a[1], b[2], a[2], a[0])
        if kind in ("mv", "addmv"):
            a = ins[-2]
            return "linear", (1, a[0], a[1], 1)
        if name in ATTENTION_OPS:
            q, k = ins[0], ins[1]
            return "attention", (q[-2], k[-2], q[-1], math.prod(q[:-2]))
    except (IndexError, TypeError, ZeroDivisionError):
        pass
    if op.macs:  # a matrix product with no shape rule here: a cube of its MACs (widened by distance)
        side = max(1, round(op.macs ** (1 / 3)))
        return "linear", (side, side, side, 1)
    return "elementwise", None


def ops_of(counts, dtype: str) -> list[Op]:
    return [Op(module=o.module, op=o.op, dtype=dtype, flops=2 * o.macs + o.other_flops,
               bytes=o.bytes_read + o.bytes_written, family=family, gemm=gemm, taps=taps(o, family),
               variant=o.variant, out_bytes=out_bytes(o))
            for o in counts.ops for family, gemm in [classify(o)]]


def out_bytes(op) -> int:
    """Bytes of the largest output tensor an op allocates: its written bytes, split over its outputs by elements;
    0 for an in-place op (aten.relu_: it writes its input)."""
    name = op.op.split(".")[1] if op.op.count(".") >= 1 else op.op
    if name.endswith("_") and not name.endswith("__"):
        return 0
    sizes = [math.prod(shape) for shape in op.output_shapes if shape is not None]
    total = sum(sizes)
    return round(op.bytes_written * max(sizes) / total) if total else 0


def taps(op, family: str) -> int:
    """A convolution's kernel taps (kh x kw, from its weight's shape); 1 for other matrix products; 0 otherwise."""
    if family.startswith("conv"):
        try:
            return max(1, math.prod(op.input_shapes[1][2:]))
        except (IndexError, TypeError):
            return 0
    return 1 if family in ("linear", "bmm") else 0


def weight_bytes(counts, dtype: str) -> int:
    """The model's parameters in bytes at ``dtype`` (what must stay in cache between two calls of an op)."""
    import torch

    return counts.total_params * torch.empty((), dtype=DTYPES[dtype]).element_size()


def module_calls(counts) -> int:
    """Calls of modules whose cost no priced op carries: containers (Sequential, a residual block) and leaves that
    ran no op (Identity, Dropout in eval)."""
    with_ops = {o.module for o in counts.ops}
    return sum(calls for name, calls in counts.calls.items() if name in counts.parents or name not in with_ops)


def load_model(source: str, device: str = "meta"):
    """kernels.count's names: torchvision, package.module:factory, timm:NAME."""
    return build_model(source, device)


def input_config(model, inputs_text: list[str] | None) -> list:
    """--input as given, or a timm model's own default input size at batch 1."""
    if inputs_text:
        return [parse_input(text) for text in inputs_text]
    size = getattr(model, "default_cfg", {}).get("input_size") if hasattr(model, "default_cfg") else None
    return [((1, *size), None)] if size else [((1, 3, 224, 224), None)]


def count_for(source: str, inputs: list, dtype: str, target: str):
    import torch

    model = load_model(source, "meta").to(DTYPES[dtype])
    tensors = tuple(make_input(shape, d, dtype, "meta") for shape, d in inputs)
    with torch.no_grad():
        return count_model(model, tensors, target=target)


#: the calibration's reference model, by the names every entry point takes
REFERENCE_SOURCE = "kernels.opsweep:reference_model"


def calibrate(device, dtype: str, target: str) -> None:
    """Price the record's reference model from the record itself and set the device's best and typical factors for
    ``dtype`` (results.predict.DeviceModel.calibrate), once; a record without the calibration row is left as is."""
    import torch

    for measured, evicting in device.eviction_row.items():  # fp32 on a CPU; it stands for the record's other dtypes
        if measured in device.eviction:
            continue
        blocks = (evicting.get("extra") or {}).get("blocks") or EVICTING_BLOCKS[0]
        with torch.device("meta"):
            model = evicting_model(blocks).to(DTYPES[measured])
        x = torch.empty(EVICTING_INPUT, device="meta", dtype=DTYPES[measured])
        with torch.no_grad():
            counts = count_model(model, (x,), target=target)
        device.calibrate_eviction(measured, ops_of(counts, measured))
    counted: dict[tuple, object] = {}  # the reference model's counts by (input, dtype): each counted once here

    def reference(row: dict, in_dtype: str):
        key = (_input_of(row), in_dtype)
        if key not in counted:
            counted[key] = count_for(REFERENCE_SOURCE, [(key[0], None)], in_dtype, target)
        return counted[key]

    for measured, large in device.working_set_row.items():  # fp32 on a CPU, as the eviction row
        if measured in device.working_set:
            continue
        small_row = device.calibration.get(measured)  # the same model at the smaller image, in the same dtype
        small_counts = reference(small_row, measured) if small_row else None
        counts = reference(large, measured)
        device.calibrate_working_set(measured, ops_of(counts, measured), module_calls(counts),
                                     ops_of(small_counts, measured) if small_counts else None,
                                     module_calls(small_counts) if small_counts else 0)
    small = device.calibration.get(dtype)
    if small is None or dtype in device.factors:
        return
    counts = reference(small, dtype)
    priced = device.predict(REFERENCE_SOURCE, ops_of(counts, dtype), module_calls(counts), dtype,
                            weight_bytes(counts, dtype))
    device.calibrate(dtype, priced.sum_s, len(priced.ops))


def _input_of(row: dict) -> tuple:
    """The input shape a calibration row's model was timed on."""
    return tuple((row.get("extra") or {}).get("input") or row.get("shape") or ())

def predict_counted(device, source: str, counts, dtype: str, target: str, faults=None):
    """The prediction of one counted model from one record (``device``: results.predict.DeviceModel), the record's
    calibrations set first: what the command line and tools/fit_range.py price. ``faults``: its page faults per
    call (kernels.pages.count_faults: a FaultCount, or why they were not counted)."""
    calibrate(device, dtype, target)
    return device.predict(source, ops_of(counts, dtype), module_calls(counts), dtype, weight_bytes(counts, dtype),
                          faults)


def price_variant(device, source: str, variant, counts, eager, storage: dict, dynamic: set, target: str) -> dict:
    """A variant priced from a record (results.predict.DeviceModel), or why it cannot be: eager in a dtype the
    record probed is the predictor's own prediction; a quantised eager variant is that, with each quantised op that
    the record's probes say is memory-bound sped up by its fewer bytes (the record has no int8 GEMM rate, so a
    compute-bound one keeps its time); a fusing runtime (compile, ONNX Runtime, OpenVINO, TensorRT) is the model's
    GEMM-like ops at their probes' times, its element-wise ops taken as fused into them and no per-op dispatch."""
    from dataclasses import replace

    from results.predict import GEMM_FAMILIES

    dtype = variant.compute_dtype
    if dtype not in device.dtypes():
        return {"unavailable": f"{device.name} has no {dtype} GEMM and operator probes"}
    if variant.runtime != "eager" and variant.precision not in ("fp32", "bf16", "fp16"):
        return {"unavailable": f"{variant.runtime}'s {variant.precision} kernels: the record has no int8/fp8/int4 "
                               "operator probes to price them from"}
    calibrate(device, dtype, target)
    quantised = bool(storage)
    priced = counts.with_weights(storage, dynamic) if quantised else counts
    pred = device.predict(source, ops_of(priced, dtype), module_calls(priced), dtype, weight_bytes(counts, dtype))
    if variant.runtime == "eager":
        basis = "the predictor's median call from the record's probes (kernels.predict)"
        if quantised:
            plain = ops_of(counts, dtype)
            changed = 0
            for i, (p, before) in enumerate(zip(pred.ops, plain)):
                if p.op.bytes != before.bytes and p.bound == "memory" and before.bytes:
                    pred.ops[i] = replace(p, time_s=p.time_s * p.op.bytes / before.bytes)
                    changed += 1
            basis += (f"; {changed} memory-bound quantised op(s) sped up by their fewer bytes (the record has no "
                      "int8 GEMM rate: compute-bound ones keep their time; quantise/dequantise work is not priced)")
        return {"predicted_s": pred.predicted_s, "best_s": pred.best_s, "low_s": pred.low_s, "high_s": pred.high_s,
                "basis": basis}
    gemm = [p for p in pred.ops if p.op.family in GEMM_FAMILIES and p.op.gemm]
    best = sum(p.time_s for p in gemm)
    return {"predicted_s": best * pred.typical_factor, "best_s": best, "low_s": None, "high_s": None,
            "basis": (f"fused: the model's {len(gemm)} GEMM-like ops at their {dtype} probes' times, its other "
                      f"{len(pred.ops) - len(gemm)} ops taken as fused into them (no per-op dispatch), x the record's "
                      "median-over-best; an optimistic bound, no range")}


if __name__ == "__main__":  # the command users type; the command line itself is bench/predict_cli.py
    from bench.predict_cli import main
    from results.cli import run

    run(main, "python -m kernels.predict", "no prediction was written (--measure: the model timings in progress are "
        "lost, the record is untouched)")
