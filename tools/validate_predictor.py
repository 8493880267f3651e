"""Check the predictor against the real models on this machine: for each model, batch and dtype, predict from a
record of this machine and time the model here (kernels.predict --measure), then print the error table (markdown,
for the README) and write every result to a JSON file. A benchmark: run it alone, on a quiet machine.

    python tools/validate_predictor.py --record results/runs/R.json [--out predictor-check.json] [--quick]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import predict_cli as predict  # noqa: E402

#: (model, input shape at batch 1): torchvision classifiers of several families, and the suite's decoder block
MODELS = [("resnet18", "3,224,224"), ("resnet50", "3,224,224"), ("mobilenet_v2", "3,224,224"),
          ("mobilenet_v3_large", "3,224,224"), ("efficientnet_b0", "3,224,224"), ("densenet121", "3,224,224"),
          ("regnet_y_400mf", "3,224,224"), ("convnext_tiny", "3,224,224"), ("shufflenet_v2_x1_0", "3,224,224"),
          ("squeezenet1_0", "3,224,224"), ("googlenet", "3,224,224"), ("mnasnet1_0", "3,224,224"),
          ("vit_b_16", "3,224,224"), ("swin_t", "3,224,224"), ("kernels.models:bench_decoder_block", "128,2048"),
          ("kernels.models:bench_decoder_block", "1,2048")]
#: bf16 on a CPU without bf16 units runs tens of times slower: a few small models only, at batch 1
BF16_MODELS = ["resnet18", "mobilenet_v2", "efficientnet_b0", "kernels.models:bench_decoder_block"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", required=True)
    parser.add_argument("--out", default="predictor-check.json")
    parser.add_argument("--quick", action="store_true", help="batch 1 fp32 only")
    args = parser.parse_args(argv)
    runs = [(m, s, b, "fp32") for b in ((1,) if args.quick else (1, 8)) for m, s in MODELS]
    if not args.quick:
        runs += [(m, s, 1, "bf16") for m, s in MODELS if m in BF16_MODELS]
    results = []
    tmp = Path(args.out).with_suffix(".part.json")
    for i, (model, shape, batch, dtype) in enumerate(runs, 1):
        print(f"[{i}/{len(runs)}] {model} batch {batch} {dtype}", flush=True)
        rc = predict.main(["--record", args.record, model, "--input", f"{batch},{shape}", "--dtype", dtype,
                           "--measure", "--json", "--out", str(tmp), "--top", "5"])
        if rc != 0:
            results.append({"model": model, "batch": batch, "dtype": dtype, "error": None, "failed": rc})
            continue
        entry = json.loads(tmp.read_text())[0]
        entry["batch"] = batch
        results.append(entry)
    tmp.unlink(missing_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1, default=str))
    print("\n| model | batch | dtype | predicted | measured (median) | error |\n|---|---|---|---|---|---|")
    for r in results:
        if r.get("error") is None:
            print(f"| {r['model']} | {r['batch']} | {r['dtype']} | failed | | |")
            continue
        print(f"| {r['model']} | {r['batch']} | {r['dtype']} | {r['predicted_s'] * 1e3:.1f} ms | "
              f"{r['measured']['median_s'] * 1e3:.1f} ms | {100 * r['error']:+.0f}% |")
    for batch in (1, 8):
        for dtype in ("fp32", "bf16"):
            errs = [abs(r["error"]) for r in results if r.get("error") is not None and r["batch"] == batch
                    and r["dtype"] == dtype]
            if errs:
                worst = max(results, key=lambda r: abs(r["error"]) if r.get("error") is not None and r["batch"] == batch
                            and r["dtype"] == dtype else -1)
                print(f"\nbatch {batch} {dtype}: {len(errs)} models, median |error| {100 * statistics.median(errs):.0f}%, "
                      f"worst {worst['model']} {100 * worst['error']:+.0f}%, "
                      f"{sum(e <= 0.2 for e in errs)} within 20%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
