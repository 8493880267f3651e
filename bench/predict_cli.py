"""`python -m kernels.predict`: the predictor's command line and its ``--measure`` (kernels/predict.py joins a count
with a record; results/predict.py prices the ops). `python -m kernels.predict` stays the command users type.

    python -m kernels.predict --record results/runs/R.json resnet50 --input 1,3,224,224 [--dtype bf16] [--json]
    python -m kernels.predict --record R.json timm:convnext_tiny --input 8,3,224,224 --measure
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from bench.timing import measure_model
from kernels.count import DTYPES, CountError
from kernels.pages import count_faults
from kernels.predict import (
    count_for,
    input_config,
    load_model,
    predict_counted,
    weight_bytes,
)
from kernels.zoo import check_output_path, make_input
from results.predict import DRIFT_NOTICE, DeviceModel, PredictError
from results.prediction import Prediction, compare_table


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


def measure(source: str, inputs: list, dtype: str, device: str) -> dict:
    """The real model here, timed by bench.timing.measure_model (the harness's round rule, the platform's clock)."""
    import torch

    from platforms import resolve

    model = load_model(source, "cpu").to(device=device, dtype=DTYPES[dtype]).eval()
    gen = torch.Generator(device=device).manual_seed(0)
    tensors = tuple(torch.randn(shape, generator=gen, device=device, dtype=DTYPES[d or dtype])
                    if (d or dtype) in DTYPES else make_input(shape, d, dtype, device) for shape, d in inputs)
    return measure_model(model, tensors, resolve(device))


#: the machine now against the record: the record's reference model timed here for about this long (5 calls at
#: least), and a move of more than results.predict.DRIFT_NOTICE is said beside every prediction from that record
NOW_BUDGET_S = 0.15


def machine_now(device) -> dict | None:
    """For a CPU record made on this machine: its reference model (the whole-model calibration's) timed here now,
    kernels.opsweep.working_set_times at the calibration's image for NOW_BUDGET_S, against the record's median (the
    geometric mean of its timings before and after the probes): how much slower (> 1) or faster the machine runs now
    than when the record was made (a VM's neighbours move it 2.5x within half an hour: a 2-core Zen 5 VM,
    2026-12-03). None for another machine, a GPU record (not timed: no device to check this on yet) or a record
    without the calibration."""
    import torch

    from kernels.opsweep import working_set_times

    row, at_record = device.calibration.get("fp32"), device.reference_median_s("fp32")
    if device.kind != "cpu" or not at_record or same_machine(device.record):
        return None
    side = ((row.get("extra") or {}).get("input") or row.get("shape") or (1, 3, 128, 128))[-1]
    threads = (device.record.get("platform") or {}).get("torch_threads")
    before = torch.get_num_threads()
    try:  # the prediction stands without this check: a failure here (the model, the threads) only drops it
        if threads:
            torch.set_num_threads(int(threads))
        timed = working_set_times(int(side), NOW_BUDGET_S, most=200)
    except (RuntimeError, ValueError):
        return None
    finally:
        torch.set_num_threads(before)
    now = timed["median_s"]
    return {"reference_median_s": now, "record_median_s": at_record, "ratio": now / at_record, "n": timed["n"]}


def _now_note(now: dict) -> str:
    """One line: how the machine's speed now compares with the record's (machine_now)."""
    ratio = now["ratio"]
    said = (f"the machine now: the record's reference model runs at a median of {now['reference_median_s'] * 1e3:.3g} "
            f"ms here ({now['n']} calls), {ratio:.2f}x its {now['record_median_s'] * 1e3:.3g} ms while the record "
            "was made: ")
    if 1 / DRIFT_NOTICE <= ratio <= DRIFT_NOTICE:
        return said + f"within {100 * (DRIFT_NOTICE - 1):.0f}%, the prediction stands as made"
    return said + (f"while that lasts, expect calls about {ratio:.2f}x the prediction, which is of the machine as "
                   "recorded (a VM's neighbours move it within minutes)")


def _count_faults(device, source: str, counts, inputs: list, dtype: str, target: str, threads):
    """kernels.pages.count_faults, unless a call of the model is predicted (without faults, from ``device``) to
    take so long that the 3+ calls of the count would outlast its budget: then why not (a string)."""
    from kernels.pages import BUDGET_S

    best = predict_counted(device, source, counts, dtype, target).best_s
    if 3 * best > BUDGET_S:
        return (f"a call is predicted to take {best:.1f} s, and counting its faults takes 3 calls or more (over "
                f"{BUDGET_S:g} s)")
    return count_faults(source, inputs, dtype, threads, weight_bytes(counts, dtype))


# ---- output -----------------------------------------------------------------------------------------------------
#: page faults per model call from which --measure names them (a few hundred are noise; 18,400 cost NF-ResNet-50
#: a third of its call on a Zen 5 VM)
FAULTS_NOTICE = 500


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"


def print_prediction(p: Prediction, top: int, measured: dict | None) -> None:
    print(f"\n{p.model} {p.dtype} on {p.device} ({p.record}): predicted median {_ms(p.predicted_s)}, best "
          f"{_ms(p.best_s)} ({p.range_note().split(' (')[0]}: {_ms(p.low_s)} .. {_ms(p.high_s)}); {len(p.ops)} ops, "
          f"{p.module_calls} container module calls x {p.module_call_s * 1e6:.2f} us"
          + (f"; {p.page_faults:.0f} page faults a call (+{_ms(p.fault_s)} in the best)" if p.page_faults else ""))
    share = p.bound_share()
    print("  time by bound: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in sorted(share.items(), key=lambda kv: -kv[1])))
    if measured:
        err = p.predicted_s / measured["median_s"] - 1
        inside = "inside" if p.low_s <= measured["median_s"] <= p.high_s else "OUTSIDE"
        print(f"  measured here: median {_ms(measured['median_s'])}, best {_ms(measured['best_s'])} "
              f"({measured['method']}, IQR {100 * measured['iqr_rel']:.0f}%)")
        print(f"  predicted / measured: median {_ms(p.predicted_s)} / {_ms(measured['median_s'])} ({100 * err:+.0f}%), "
              f"best {_ms(p.best_s)} / {_ms(measured['best_s'])} ({100 * (p.best_s / measured['best_s'] - 1):+.0f}%); "
              f"the measured median is {inside} the range")
        faults = measured.get("faults_per_call") or 0
        if faults >= FAULTS_NOTICE or (p.page_faults or 0) >= FAULTS_NOTICE:
            counted = (f"{p.page_faults:.0f} counted for the prediction" if p.page_faults is not None else
                       "not counted for the prediction")
            print(f"  page faults: {faults:.0f} per call in the timed calls here, {counted} (~{faults * 4096 / 1e6:.0f} "
                  f"MB of fresh memory from the OS each call; the count follows the process's allocation history); "
                  f"GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456 "
                  f"(glibc keeps freed memory) removed them for NF-ResNet-50 on a Zen 5 VM")
    print(f"  range: {p.range_note()}")
    fallback = p.fallback_ops()
    if fallback:
        print("  priced by the fallback (no probe of their own): " + ", ".join(
            f"{op} x{n} ({_ms(t)})" for op, n, t in fallback[:6]) + (f" and {len(fallback) - 6} more" if len(fallback) > 6 else ""))
    for note in p.notes:
        print(f"  note: {note}")
    layers = sorted(p.layers(), key=lambda r: -r["predicted_s"])[:top]
    print(f"  top {len(layers)} layers by predicted time (the sum of each layer's ops at their probes' times):")
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
    parser = argparse.ArgumentParser(prog="python -m kernels.predict", description="Predict how long a model's forward takes on a measured device, before running it there.")
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
    parser.add_argument("--no-faults", action="store_true",
                        help="do not run the model here to count the page faults its calls take (kernels.pages; for "
                             "a CPU record, on by default): for a model too large to run here")
    parser.add_argument("--no-now", action="store_true",
                        help="do not time the record's reference model here to say how far the machine's speed "
                             "moved since the record (CPU records made on this machine; 0.15 s)")
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
        faults_of: dict[tuple, object] = {}
        now_of = {d.name: None if args.no_now else machine_now(d) for d in devices}
        for source in models:
            predictions = []
            inputs = input_config(load_model(source, "meta"), args.input)  # once per model, not per dtype
            for dtype in dtypes:
                for device in devices:
                    target = args.target or ("cuda" if device.kind in ("cuda", "jetson") else "cpu")
                    start = time.perf_counter()
                    counts = count_for(source, inputs, dtype, target)
                    try:
                        faults = None
                        if device.kind == "cpu":
                            threads = (device.record.get("platform") or {}).get("torch_threads")
                            if args.no_faults:
                                faults = "--no-faults"
                            else:
                                key = (source, dtype, threads)  # once per model, dtype and thread count, not record
                                if key not in faults_of:
                                    faults_of[key] = _count_faults(device, source, counts, inputs, dtype, target,
                                                                   threads)
                                faults = faults_of[key]
                        pred = predict_counted(device, source, counts, dtype, target, faults)
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
                    now = now_of.get(device.name)
                    if now:
                        pred.notes.append(_now_note(now))
                    elapsed = time.perf_counter() - start
                    measured = None
                    if args.measure:
                        try:
                            measured = measure(source, inputs, dtype,
                                                     "cuda" if device.kind in ("cuda", "jetson") else "cpu")
                        except Exception as exc:  # the prediction stands; the model could not run here
                            pred.notes.append(f"--measure: the model failed here: {type(exc).__name__}: "
                                              f"{str(exc).splitlines()[0] if str(exc) else ''}")
                    predictions.append(pred)
                    entry = pred.as_dict(top=args.top)
                    entry.update(input=[list(s) for s, _ in inputs], seconds_to_predict=elapsed)
                    if now:
                        entry["machine_now"] = now
                    if measured:
                        entry["measured"] = {k: v for k, v in measured.items() if k != "layers"}
                        entry["error"] = pred.predicted_s / measured["median_s"] - 1
                        entry["best_error"] = pred.best_s / measured["best_s"] - 1
                        entry["inside_range"] = pred.low_s <= measured["median_s"] <= pred.high_s
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
