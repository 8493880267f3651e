"""Check the predictor against real models on this machine: for each model (and batch), predict from a record of
this machine and time the model here (the predictor's --measure), then print the table (markdown, for the README)
with the machine's name, and write every result to a JSON file. A benchmark: run it alone, on a quiet machine.

    python tools/validate_predictor.py --record R.json --models torchvision          # the calibration list
    python tools/validate_predictor.py --record R.json --blind 20 --seed 1 --batch 1  # timm models drawn blind
    python tools/validate_predictor.py --record R.json --blind 20 --seed 1 --batch 8 --limit 10
    python tools/validate_predictor.py --record R.json --blind 20 --seed 3 --passes 2   # twice, minutes apart

``--blind N --seed S`` draws N models from ``timm.list_models()`` in a fixed order (the seed), one per family, from
families no probe shape was chosen for and none named in the predictor's earlier checks (``NAMED_FAMILIES``), and
small enough to time on a laptop CPU (at most ``MAX_GFLOP`` GFLOP and ``MAX_PARAMS`` parameters at batch 1).
"""
from __future__ import annotations

import argparse
import json
import math
import random
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import predict_cli as predict  # noqa: E402
from kernels.predict import REFERENCE_SOURCE  # noqa: E402
from results.predict import DeviceModel  # noqa: E402

#: (model, input shape at batch 1): torchvision classifiers of several families, and the suite's decoder block; the
#: predictor's range is calibrated on these (never on the blind draw)
MODELS = [("resnet18", "3,224,224"), ("resnet50", "3,224,224"), ("mobilenet_v2", "3,224,224"),
          ("mobilenet_v3_large", "3,224,224"), ("efficientnet_b0", "3,224,224"), ("densenet121", "3,224,224"),
          ("regnet_y_400mf", "3,224,224"), ("convnext_tiny", "3,224,224"), ("shufflenet_v2_x1_0", "3,224,224"),
          ("squeezenet1_0", "3,224,224"), ("googlenet", "3,224,224"), ("mnasnet1_0", "3,224,224"),
          ("vit_b_16", "3,224,224"), ("swin_t", "3,224,224"), ("kernels.models:bench_decoder_block", "128,2048"),
          ("kernels.models:bench_decoder_block", "1,2048")]
#: families the probes were chosen for or the predictor was checked on before (the list above, the issue that asked
#: for a blind check): a blind draw skips every timm name that starts with one of these
NAMED_FAMILIES = ("resnet", "resnext", "wide_resnet", "mobilenet", "efficientnet", "tf_efficientnet", "densenet",
                  "regnet", "convnext", "shufflenet", "squeezenet", "googlenet", "inception", "mnasnet", "tf_mnasnet",
                  "vit_", "deit", "swin", "ghostnet", "poolformer", "lcnet", "semnasnet", "mixnet", "tf_mixnet",
                  "tf_mobilenet")  # tf_mobilenetv3_* is MobileNetV3 (drawn by seed 4 before it was named here)
MAX_GFLOP, MAX_PARAMS = 12.0, 100e6


def family(name: str) -> str:
    return re.match(r"[a-z]+", name.split(".")[0]).group(0)


def blind_draw(n: int, seed: int, batch_shape: str | None = None) -> list[tuple[str, str]]:
    """``n`` timm models, one per family, in the order a seeded shuffle of timm.list_models() gives, skipping the
    named families, models over the size limits and models that do not build or count here (said as it goes)."""
    import timm

    from kernels import predict as kp

    names = sorted(timm.list_models())
    random.Random(seed).shuffle(names)
    chosen, families = [], set()
    for name in names:
        if len(chosen) == n:
            break
        if name.startswith(NAMED_FAMILIES) or family(name) in families:
            continue
        source = f"timm:{name}"
        try:
            model = kp.load_model(source, "meta")
            inputs = kp.input_config(model, None)
            counts = kp.count_for(source, inputs, "fp32", "cpu")
        except Exception as exc:  # a model timm lists but that does not build here: skipped, said
            print(f"  skip {name}: {type(exc).__name__}: {str(exc)[:80]}", flush=True)
            continue
        if counts.flops > MAX_GFLOP * 1e9 or counts.total_params > MAX_PARAMS:
            continue
        shape = ",".join(str(v) for v in inputs[0][0][1:])
        chosen.append((source, shape))
        families.add(family(name))
        print(f"  drew {name} ({counts.flops / 1e9:.2f} GFLOP, {counts.total_params / 1e6:.1f} M params, input "
              f"{shape})", flush=True)
    return chosen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", required=True)
    parser.add_argument("--out", default="predictor-check.json")
    parser.add_argument("--models", default=None,
                        help="'torchvision' (the calibration list) or comma-separated names (as the predictor takes)")
    parser.add_argument("--blind", type=int, default=None, metavar="N", help="draw N timm models blind (see above)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", default="1", help="comma-separated batch sizes (default 1)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N models at batches above 1")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--passes", type=int, default=1,
                        help="time the whole list this many times, one pass after another (default 1): the same "
                             "model's medians minutes apart say how repeatable the machine is")
    args = parser.parse_args(argv)
    if args.blind:
        print(f"blind draw: {args.blind} timm models, seed {args.seed}", flush=True)
        models = blind_draw(args.blind, args.seed)
    elif args.models in (None, "torchvision"):
        models = MODELS
    else:
        models = [(m.strip(), None) for m in args.models.split(",") if m.strip()]
    batches = [int(b) for b in args.batch.split(",")]
    if args.passes < 1:
        print(f"error: --passes {args.passes}: give 1 or more", file=sys.stderr)
        return 2
    runs = [(m, s, b, k) for k in range(1, args.passes + 1) for b in batches for i, (m, s) in enumerate(models)
            if b == 1 or args.limit is None or i < args.limit]
    record = json.loads(Path(args.record).read_text())
    machine = f"{record['platform'].get('name')} ({record['platform'].get('physical_cores')} cores, host " \
              f"{record.get('host')})"
    results = []
    tmp = Path(args.out).with_suffix(".part.json")
    check_machine = machine_sentinel(record)
    for i, (model, shape, batch, pass_no) in enumerate(runs, 1):
        print(f"[{i}/{len(runs)}] {model} batch {batch} {args.dtype}"
              + (f" (pass {pass_no} of {args.passes})" if args.passes > 1 else ""), flush=True)
        state = check_machine()
        inputs = ["--input", f"{batch},{shape}"] if shape else []
        start = time.perf_counter()
        rc = predict.main(["--record", args.record, model, *inputs, "--dtype", args.dtype, "--measure", "--json",
                           "--out", str(tmp), "--top", "5"])
        if rc != 0 or not tmp.exists():
            results.append({"model": model, "batch": batch, "dtype": args.dtype, "error": None, "failed": rc,
                            "pass": pass_no})
            continue
        entry = json.loads(tmp.read_text())[0]
        entry.update(batch=batch, seconds=time.perf_counter() - start, **{"pass": pass_no})
        if state and entry.get("error") is not None:
            entry["machine"] = state
            entry["error_machine"] = entry["predicted_s"] * state["ratio"] / entry["measured"]["median_s"] - 1
        results.append(entry)
        tmp.unlink(missing_ok=True)
    Path(args.out).write_text(json.dumps({"machine": machine, "record": args.record, "seed": args.seed,
                                          "blind": args.blind, "passes": args.passes, "results": results},
                                         indent=1, default=str))
    print(f"\nMachine: {machine}; record {Path(args.record).name}; {args.dtype}; eager, no_grad\n")
    print(table(results))
    print("\n" + "\n".join(summary(results)))
    return 0


def machine_sentinel(record: dict):
    """A function that times the record's reference model here (kernels.opsweep.reference_model, as its calibration
    row was timed: the predictor's --measure) and returns its median over the record's: how much slower (>1) or
    faster the machine is now than when the record was made. A VM's neighbours change that by 1.5x within minutes
    (a 2-core Zen 5 VM, 2026-12-03: a 1024^3 GEMM at 114-173 GFLOP/s seconds apart, no steal shown), so each
    model's error is also given against the machine's state just before it was timed. None where the record has
    no calibration row (nothing to compare with)."""
    rows = [m for m in record.get("measurements", []) if m.get("group") == "calibration"
            and m.get("kernel") == "reference_model" and m.get("status") == "ok" and m.get("median_s")]
    if not rows:
        print("  the record has no reference-model calibration: no machine sentinel", flush=True)
        return lambda: None
    row = rows[0]
    shape = tuple((row.get("extra") or {}).get("input") or row["shape"])
    # the machine's state while the probes were measured: the reference model's median as the predictor calibrates
    # on it (the geometric mean of its timings before and after the probes, where the record has both)
    at_record = DeviceModel(record).reference_median_s(row.get("dtype") or "fp32") or row["median_s"]
    device = "cuda" if (record.get("platform") or {}).get("kind") in ("cuda", "jetson") else "cpu"

    import torch

    from bench.timing import measure_model
    from platforms import resolve

    platform = resolve(device)
    model = predict.load_model(REFERENCE_SOURCE, device).to(predict.DTYPES[row.get("dtype") or "fp32"]).eval()
    x = torch.randn(shape, device=device, generator=torch.Generator(device=device).manual_seed(0))

    def check() -> dict:
        # one model kept for the whole check (a fresh one would pay its first calls' setup each time) with the
        # calibration's warm-up; the first check of a process also warms the process (allocator, oneDNN)
        now = measure_model(model, (x,), platform, warmup=5)
        return {"reference_median_s": now["median_s"], "record_median_s": at_record,
                "ratio": now["median_s"] / at_record}

    check()
    return check


def label(r: dict) -> str:
    return f" (pass {r['pass']})" if r.get("pass", 1) > 1 else ""


def table(results: list[dict]) -> str:
    lines = ["| model | batch | predicted median (best) | range | measured median (best) | error of median | inside | "
             "machine then | error against it | page faults / call (counted; measured) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if r.get("error") is None:
            lines.append(f"| {r['model']}{label(r)} | {r['batch']} | failed | | | | | | | |")
            continue
        m = r["measured"]
        lines.append(f"| {r['model']}{label(r)} | {r['batch']} | {r['predicted_s'] * 1e3:.1f} ms ({r['best_s'] * 1e3:.1f}) | "
                     f"{r['low_s'] * 1e3:.1f}-{r['high_s'] * 1e3:.1f} | {m['median_s'] * 1e3:.1f} ms "
                     f"({m['best_s'] * 1e3:.1f}) | {100 * r['error']:+.0f}% | {'yes' if r['inside_range'] else 'no'} | "
                     + (f"{r['machine']['ratio']:.2f}x | {100 * r['error_machine']:+.0f}% |" if r.get("machine")
                        else "| |") + f" {_count(r.get('page_faults'))}; {m.get('faults_per_call', 0):.0f} |")
    return "\n".join(lines)


def _count(faults) -> str:
    return "-" if faults is None else f"{faults:.0f}"


def summary(results: list[dict]) -> list[str]:
    out = []
    passes = sorted({r.get("pass", 1) for r in results})
    for batch, pass_no in [(b, k) for k in passes for b in sorted({r["batch"] for r in results})]:
        ok = [r for r in results if r.get("error") is not None and r["batch"] == batch and r.get("pass", 1) == pass_no]
        if not ok:
            continue
        if len(passes) > 1:
            out.append(f"pass {pass_no}:")
        errs = [abs(r["error"]) for r in ok]
        ratio = [math.exp(abs(math.log(1 + r["error"]))) for r in ok]
        worst = max(ok, key=lambda r: abs(math.log(1 + r["error"])))
        inside = sum(1 for r in ok if r["inside_range"])
        best_errs = [abs(r["best_error"]) for r in ok if r.get("best_error") is not None]
        out.append(f"batch {batch}: {len(ok)} models; median |error| of the median {100 * statistics.median(errs):.0f}%"
                   f" (of the best {100 * statistics.median(best_errs):.0f}%); worst {worst['model']} "
                   f"{100 * worst['error']:+.0f}% ({max(ratio):.2f}x); {sum(e <= 0.2 for e in errs)} within 20%; the "
                   f"range held {inside} of {len(ok)} measured medians ({100 * inside / len(ok):.0f}%)")
        adjusted = [r for r in ok if r.get("error_machine") is not None]
        if adjusted:
            states = sorted(r["machine"]["ratio"] for r in adjusted)
            errs_m = [abs(r["error_machine"]) for r in adjusted]
            worst_m = max(adjusted, key=lambda r: abs(math.log(1 + r["error_machine"])))
            out.append(f"  the machine: the reference model ran at {states[0]:.2f}-{states[-1]:.2f}x (median "
                       f"{statistics.median(states):.2f}x) its record-time median before each model; against the "
                       f"machine's state then, median |error| {100 * statistics.median(errs_m):.0f}%, worst "
                       f"{worst_m['model']} {100 * worst_m['error_machine']:+.0f}%, {sum(e <= 0.2 for e in errs_m)} "
                       f"within 20%")
    if len(passes) > 1:
        by_model: dict[tuple, list[float]] = {}
        for r in results:
            if r.get("error") is not None:
                by_model.setdefault((r["model"], r["batch"]), []).append(r["measured"]["median_s"])
        moved = sorted((max(v) / min(v), m) for m, v in by_model.items() if len(v) > 1)
        if moved:
            out.append(f"repeatability: the same model's measured median moved {statistics.median(r for r, _m in moved):.2f}x "
                       f"between passes for the median model, {moved[-1][0]:.2f}x at most ({moved[-1][1][0]} batch "
                       f"{moved[-1][1][1]}): a prediction cannot be closer to a measurement than two measurements "
                       f"are to each other")
    return out


if __name__ == "__main__":
    sys.exit(main())
