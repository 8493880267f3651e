"""Predict how long a model's forward takes on a measured device, before running it there.

    python -m kernels.predict --record results/runs/R.json resnet50 --input 1,3,224,224 [--dtype bf16] [--json]
    python -m kernels.predict --record R.json timm:convnext_tiny --input 8,3,224,224 --measure
    python -m kernels.predict --record A.json B.json C.json mypkg.models:build --input 1,128 --dtype fp32,bf16

The model is counted on the meta device (kernels.count: no weights are allocated), each aten op is priced from the
record's measured points (results/predict.py says how, and every prediction repeats it), and the ops are summed.
``--measure`` also times the real model here (eager, no grad, warm, median of repeats) and prints the error per
model and per layer; it refuses a record measured on another machine.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

from kernels.count import (
    DTYPES,
    CountError,
    build_model,
    check_output_path,
    count_model,
    make_input,
    parse_input,
)
from results.predict import DeviceModel, Op, PredictError, Prediction, compare_table
from results.stats import summarise

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
               bytes=o.bytes_read + o.bytes_written, family=family, gemm=gemm)
            for o in counts.ops for family, gemm in [classify(o)]]


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


def parse_records(records: list[str], models: list[str]) -> tuple[list[str], list[str]]:
    """``--record A.json B.json model`` : argparse gives the model to --record; anything there that is not a file
    ending in .json is a model."""
    files = [r for r in records if r.endswith(".json") or os.path.isfile(r)]
    models = [r for r in records if r not in files] + models
    return files, models


def read_record(path: str) -> dict:
    from results.record import RecordError
    from results.record import read_record as read

    try:
        return read(path)
    except RecordError as exc:
        raise PredictError(str(exc)) from None
    except FileNotFoundError:
        raise PredictError(f"--record {path}: no such file") from None


# ---- measuring here -------------------------------------------------------------------------------------------
def same_machine(record: dict) -> str | None:
    """None when the record was measured on this machine, else why not."""
    import socket

    platform = record.get("platform") or {}
    if platform.get("kind") not in ("cpu", None):
        import torch

        if not torch.cuda.is_available():
            return f"the record is of a {platform.get('kind')} device ({platform.get('name')}); this machine has none"
        here = torch.cuda.get_device_name(0)
        return None if here == platform.get("name") else f"the record is of {platform.get('name')}, this GPU is {here}"
    if record.get("host") != socket.gethostname():
        return f"the record was measured on host {record.get('host')!r}, this is {socket.gethostname()!r}"
    from platforms.cpu import cpu_identity

    here = cpu_identity()
    for key, value in here.items():
        if platform.get(key) is not None and platform.get(key) != value:
            return f"the record's CPU {key} is {platform.get(key)!r}, this machine's is {value!r}"
    return None


def measure_model(source: str, inputs: list, dtype: str, device: str, budget_s: float = 2.0,
                  min_repeats: int = 5) -> dict:
    """The real model here: eager, eval, no_grad, 2 warm-up calls, then repeats until ``budget_s`` (at least
    ``min_repeats``); the median. One more pass with module hooks gives per-layer times (leaf modules)."""
    import torch

    model = load_model(source, "cpu").to(device=device, dtype=DTYPES[dtype]).eval()
    gen = torch.Generator(device=device).manual_seed(0)
    tensors = tuple(torch.randn(shape, generator=gen, device=device, dtype=DTYPES[d or dtype])
                    if (d or dtype) in DTYPES else make_input(shape, d, dtype, device) for shape, d in inputs)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    times = []
    with torch.no_grad():
        for _ in range(2):
            model(*tensors)
        sync()
        start = time.perf_counter()
        while len(times) < min_repeats or (time.perf_counter() - start < budget_s and len(times) < 200):
            t0 = time.perf_counter()
            model(*tensors)
            sync()
            times.append(time.perf_counter() - t0)
        layers = _layer_times(model, tensors, sync)
    stats = summarise(times)
    return {"median_s": stats["median_s"], "best_s": stats["best_s"], "n": stats["n"],
            "iqr_rel": stats["iqr_rel"], "layers": layers,
            "method": f"eager, eval, no_grad, {device}, 2 warm-up calls, median of {len(times)}"}


def _layer_times(model, tensors, sync, passes: int = 3) -> dict[str, float]:
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


# ---- output -----------------------------------------------------------------------------------------------------
def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"


def print_prediction(p: Prediction, top: int, measured: dict | None) -> None:
    print(f"\n{p.model} {p.dtype} on {p.device} ({p.record}): predicted {_ms(p.predicted_s)} "
          f"(range {_ms(p.low_s)} .. {_ms(p.high_s)}); {len(p.ops)} ops, {p.module_calls} container module calls "
          f"x {p.module_call_s * 1e6:.2f} us")
    share = p.bound_share()
    print("  time by bound: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in sorted(share.items(), key=lambda kv: -kv[1])))
    if measured:
        err = p.predicted_s / measured["median_s"] - 1
        print(f"  measured here: {_ms(measured['median_s'])} ({measured['method']}, IQR {100 * measured['iqr_rel']:.0f}%): "
              f"error {100 * err:+.0f}%")
    for note in p.notes:
        print(f"  note: {note}")
    layers = sorted(p.layers(), key=lambda r: -r["predicted_s"])[:top]
    print(f"  top {len(layers)} layers by predicted time:")
    name_w = min(48, max((len(r["layer"]) for r in layers), default=10))
    for r in layers:
        here = (measured or {}).get("layers", {}).get(r["layer"])
        vs = f"  measured {_ms(here)} ({100 * (r['predicted_s'] / here - 1):+.0f}%)" if here else ""
        print(f"    {r['layer'][:name_w]:<{name_w}} {_ms(r['predicted_s']):>9}  {r['bound']:<15} {r['basis']}"
              f"{' [' + r['widened'] + ']' if r['widened'] else ''}{vs}")


def print_table(rows: list[dict], model: str) -> None:
    print(f"\n{model}: fastest first")
    for r in rows:
        print(f"  {r['device'][:28]:<28} {r['dtype']:<5} {_ms(r['predicted_s']):>10}  x{r['x_fastest']:.2f} of the fastest "
              f"({r['speedup_vs_slowest']:.2f}x the slowest); compute-bound {100 * r['compute_share']:.0f}%, "
              f"memory {100 * r['memory_share']:.0f}%, overhead {100 * r['overhead_share']:.0f}%  [{r['record']}]")
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        why = ("mostly compute-bound: the faster roof is the higher GEMM rate of its dtype/device"
               if a["compute_share"] >= 0.5 else
               "mostly memory- or overhead-bound: fewer bytes (a narrower dtype) or cheaper dispatch pays most")
        print(f"  {a['device']} {a['dtype']} is {b['predicted_s'] / a['predicted_s']:.2f}x faster than "
              f"{b['device']} {b['dtype']}; {why}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernels.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", nargs="+", required=True, help="one or more run records (JSON)")
    parser.add_argument("model", nargs="*", help="torchvision name, package.module:factory or timm:NAME "
                        "(several: one prediction each)")
    parser.add_argument("--input", action="append", default=None,
                        help="input shape, e.g. 1,3,224,224 (default; a timm model's own size); repeat for several "
                             "inputs; :int64 for token ids")
    parser.add_argument("--dtype", default="fp32", help="comma-separated dtypes, e.g. fp32,bf16")
    parser.add_argument("--target", default=None, choices=("cpu", "cuda"),
                        help="which fused attention to count (default: the record's kind)")
    parser.add_argument("--measure", action="store_true", help="also time the model here and print the error")
    parser.add_argument("--top", type=int, default=10, help="layers to list (default 10)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--out", help="also write the JSON to this file")
    args = parser.parse_args(argv)
    try:
        files, models = parse_records(args.record, args.model)
        if not files:
            raise PredictError("--record: give at least one run record (a .json file from results/runs/)")
        if not models:
            raise PredictError("give a model: a torchvision name, package.module:factory or timm:NAME")
        dtypes = [d.strip() for d in args.dtype.split(",") if d.strip()]
        bad = [d for d in dtypes if d not in DTYPES]
        if bad or not dtypes:
            raise PredictError(f"--dtype {args.dtype!r}: choose from {', '.join(DTYPES)} (comma-separated)")
        if args.out:
            check_output_path(args.out, "--out")
        devices = [DeviceModel(read_record(f), Path(f).name) for f in files]
        if args.measure:
            for f, d in zip(files, devices):
                why = same_machine(d.record)
                if why:
                    raise PredictError(f"--measure compares with this machine, but {Path(f).name} is not from here: "
                                       f"{why}. Predict without --measure, or measure this machine first")
        results = []
        for source in models:
            predictions = []
            inputs = input_config(load_model(source, "meta"), args.input)  # once per model, not per dtype
            for dtype in dtypes:
                for device in devices:
                    target = args.target or ("cuda" if device.kind in ("cuda", "jetson") else "cpu")
                    start = time.perf_counter()
                    counts = count_for(source, inputs, dtype, target)
                    try:
                        pred = device.predict(source, ops_of(counts, dtype), module_calls(counts), dtype)
                    except PredictError as exc:
                        if len(devices) * len(dtypes) == 1:
                            raise
                        # one record or dtype that cannot predict this does not lose the others
                        results.append({"model": source, "dtype": dtype, "record": device.name,
                                        "unavailable": str(exc)})
                        if not args.json:
                            print(f"\n{source} {dtype} on {device.device} ({device.name}): cannot predict: {exc}")
                        continue
                    if counts.attention:
                        pred.notes.append(counts.attention)
                    elapsed = time.perf_counter() - start
                    measured = None
                    if args.measure:
                        try:
                            measured = measure_model(source, inputs, dtype,
                                                     "cuda" if device.kind in ("cuda", "jetson") else "cpu")
                        except Exception as exc:  # the prediction stands; the model could not run here
                            pred.notes.append(f"--measure: the model failed here: {type(exc).__name__}: "
                                              f"{str(exc).splitlines()[0] if str(exc) else ''}")
                    predictions.append(pred)
                    entry = pred.as_dict(top=args.top)
                    entry.update(input=[list(s) for s, _ in inputs], seconds_to_predict=elapsed)
                    if measured:
                        entry["measured"] = {k: v for k, v in measured.items() if k != "layers"}
                        entry["error"] = pred.predicted_s / measured["median_s"] - 1
                        entry["layer_errors"] = {r["layer"]: r["predicted_s"] / measured["layers"][r["layer"]] - 1
                                                 for r in pred.layers() if measured["layers"].get(r["layer"])}
                    results.append(entry)
                    if not args.json:
                        print_prediction(pred, args.top, measured)
            if len(predictions) > 1:
                table = compare_table(predictions)
                results.append({"model": source, "compare": table})
                if not args.json:
                    print_table(table, source)
    except (CountError, PredictError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not any("predicted_s" in r for r in results):
        print("error: no record could predict the model in the dtypes asked (see above)", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(results, indent=1, default=str))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=1, default=str)
    return 0


if __name__ == "__main__":
    from results.cli import run

    run(main, "python -m kernels.predict", "no prediction was written (--measure: the model timings in progress are lost, the record is untouched)")
