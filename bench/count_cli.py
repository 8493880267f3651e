"""`python -m kernels.count`: the counter's command line (kernels/count.py counts; kernels/zoo.py builds models by
name). `python -m kernels.count` stays the command users type; this module is what it runs.

    python -m kernels.count resnet50 --input 1,3,224,224 --dtype bf16
    python -m kernels.count mypkg.models:build --input 8,3,224,224 --csv layers.csv
    python -m kernels.count torchvision-check
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import pandas as pd

from kernels.count import BYTES_CONVENTION, DTYPES, FLOPS_CONVENTION, CountError
from kernels.zoo import (
    batch_sweep,
    check_device,
    check_output_path,
    count_named,
    parse_batches,
    parse_input,
    torchvision_check,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernels.count", description="Theoretical counts for any model: parameters, MACs, FLOPs, bytes read/written, arithmetic intensity.")
    parser.add_argument("model", help="torchvision model name, package.module:factory, timm:NAME, or 'torchvision-check' "
                        "to compare every torchvision classification model with its published counts")
    parser.add_argument("--input", action="append", default=None,
                        help="input shape, e.g. 1,3,224,224 (default); repeat for a forward that takes several "
                             "inputs; add :int64 (or :int32, :bool, :bf16 ...) for an input of another dtype")
    parser.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    parser.add_argument("--device", default="meta", help="meta (default: allocates nothing) or cpu/cuda")
    parser.add_argument("--train", action="store_true", help="forward + backward (a training step)")
    parser.add_argument("--per-op", action="store_true", help="print the per-op table instead of per layer")
    parser.add_argument("--batch-sweep", help="comma-separated batch sizes: print intensity per batch")
    parser.add_argument("--csv", help="write the per-layer table to this CSV")
    parser.add_argument("--json", help="write totals and the per-layer table to this JSON")
    args = parser.parse_args(argv)
    if args.model == "torchvision-check":
        start = time.perf_counter()
        table = torchvision_check()
        with pd.option_context("display.max_rows", None, "display.width", 250):
            print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        bad = table[~(table["params_ok"] & table["macs_ok"])]
        print(f"\n{len(table)} models counted in {time.perf_counter() - start:.1f} s; {len(bad)} disagree with "
              f"torchvision's published counts{': ' + ', '.join(bad['model']) if len(bad) else ''}")
        return 1 if len(bad) else 0
    try:
        inputs = [parse_input(text) for text in (args.input or ["1,3,224,224"])]
        shape = inputs[0][0]
        batches = parse_batches(args.batch_sweep) if args.batch_sweep else None
        if batches and len(inputs) > 1:
            raise CountError("--batch-sweep takes a model with one input; give a single --input")
        check_device(args.device)
        for option, path in (("--csv", args.csv), ("--json", args.json)):
            if path:
                check_output_path(path, option)
        counts = count_named(args.model, shape, args.dtype, args.device, args.train, inputs=inputs)
        sweep = batch_sweep(args.model, shape, batches, args.dtype, args.device) if batches else None
    except CountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = counts.op_table() if args.per_op else counts.layer_table()
    with pd.option_context("display.max_rows", None, "display.width", 250, "display.max_colwidth", 40):
        print(table.to_string(index=False))
    t = counts.totals()
    print(f"\n{args.model} {' + '.join(args.input or ['1,3,224,224'])} {args.dtype} ({'train step' if args.train else 'inference'}): "
          f"{t['params']:,} parameters, {t['macs'] / 1e9:.3f} GMAC = {t['flops'] / 1e9:.3f} GFLOP "
          f"(+ {t['other_flops'] / 1e9:.3f} G other FLOPs), {t['bytes_read'] / 1e6:.1f} MB read, "
          f"{t['bytes_written'] / 1e6:.1f} MB written, intensity {t['intensity']:.1f} FLOP/B")
    print(f"  {FLOPS_CONVENTION}; {BYTES_CONVENTION}")
    if t["uncounted_ops"]:
        print(f"  uncounted ops (bytes counted, no FLOP formula): {t['uncounted_ops']}")
    if sweep is not None:
        print("\nbatch sweep:\n" + sweep.to_string(index=False))
    if args.csv:
        counts.layer_table().to_csv(args.csv, index=False)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"model": args.model, "input": list(shape), "dtype": args.dtype, "totals": t,
                       "layers": counts.layer_table().to_dict(orient="records")}, handle, indent=1, default=str)
    return 0


if __name__ == "__main__":
    from results.cli import run

    run(main, "python -m kernels.count", "no --csv/--json file was written, the rows printed above are complete")
