"""python -m results show RECORD [--json] | plot RECORD [-o PNG] | compare A B ... | validate RECORD |
report RECORD [RECORD ...] [-o report.html] | export RECORD [--dir results/examples]"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from results.analysis import analyse
from results.compare import compare_table, unique_labels
from results.distributed import dumps
from results.distributed import summary_text as distributed_text
from results.history import comparable_runs, run_to_run
from results.page import write_report
from results.plot import (
    busbw_png,
    compare_png,
    roofline_png,
    write_distributed_plots,
    write_layer_plots,
    write_variant_plots,
)
from results.record import RecordError, export_record, read_record
from results.specs import SpecError
from results.summary import dumps_ceilings, summary_text, validation_text


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        sys.stderr.close()
        return 0
    except OSError as exc:
        if exc.filename is None:  # writing the output itself failed (a full disk behind > FILE)
            print(f"error: cannot write the output: {exc.strerror or exc}", file=sys.stderr)
            return 2
        raise


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m results", description="Read run records of the roofline suite.")
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="print the summary of a record")
    show.add_argument("record")
    show.add_argument("--json", action="store_true", help="ceilings as machine-readable JSON")
    show.add_argument("--history", metavar="DIR",
                      help="also show the run-to-run spread over comparable records in DIR")
    plot = sub.add_parser("plot", help="draw the roofline PNG of a record")
    plot.add_argument("record")
    plot.add_argument("-o", "--output", help="PNG path (default: beside the record)")
    compare = sub.add_parser("compare", help="side-by-side table and overlaid rooflines of several records")
    compare.add_argument("records", nargs="+")
    compare.add_argument("-o", "--output", default="compare.png", help="PNG path (default: compare.png)")
    validate = sub.add_parser("validate", help="measured / spec for every ceiling of a record")
    validate.add_argument("record")
    validate.add_argument("--spec", help="a spec sheet (YAML); default: the bundled sheet that matches the device")
    report = sub.add_parser("report", help="one self-contained HTML page of one record, or of several compared")
    report.add_argument("records", nargs="+")
    report.add_argument("-o", "--output", help="HTML path (default: beside the record; several records: report.html)")
    export = sub.add_parser("export", help="copy a record and its plots under a dated device name (for committing "
                                           "an example); never overwrites")
    export.add_argument("record")
    export.add_argument("--dir", default="results/examples", help="target folder (default: results/examples)")
    args = parser.parse_args(argv)
    try:
        if args.command == "compare":
            return _compare(args)
        if args.command == "report":
            return _report(args)
        record = read_record(args.record)
    except RecordError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "export":
        try:
            for path in export_record(args.record, record, args.dir):
                print(path)
        except OSError as exc:
            print(f"error: cannot export to {args.dir}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "validate":
        try:
            print(validation_text(analyse(record, args.spec)))
        except SpecError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "show" and record.get("distributed"):
        print(dumps(record) if args.json else distributed_text(record, args.record))
        return 0
    if args.command == "plot" and record.get("distributed"):
        stem = args.output.rsplit(".png", 1)[0] if args.output else args.record.rsplit(".json", 1)[0]
        try:
            for path in write_distributed_plots(record, stem):
                print(path)
        except OSError as exc:
            print(f"error: cannot write {stem}.*.png: {exc.strerror or exc}; pass -o with a writable path",
                  file=sys.stderr)
            return 2
        return 0
    if args.command == "show":
        history = None
        if args.history:
            notes: list[str] = []
            if not os.path.isdir(args.history):
                notes.append(f"--history {args.history}: no such folder (no earlier runs to compare with)")
            history = run_to_run(comparable_runs(args.history, record, notes=notes))
            for note in notes[:5]:
                print(f"note: run-to-run history {note}", file=sys.stderr)
            if len(notes) > 5:
                print(f"note: ... and {len(notes) - 5} more unreadable files in {args.history}", file=sys.stderr)
        result = analyse(record)
        print(dumps_ceilings(result) if args.json else summary_text(result, args.record, history=history))
    elif args.command == "plot":
        out = _png_path(args.output) if args.output else args.record.rsplit(".json", 1)[0] + ".png"
        if out is None:
            return 2
        result = analyse(record)
        try:
            if result.compute or result.memory or not result.record.get("measurements"):
                print(roofline_png(result, out))
            stem = out.rsplit(".png", 1)[0]
            for path in write_layer_plots(result, stem) + write_variant_plots(result, stem):
                print(path)
        except OSError as exc:
            print(f"error: cannot write {out}: {exc.strerror or exc}; pass -o with a writable path", file=sys.stderr)
            return 2
    return 0


def _compare(args) -> int:
    import pandas as pd


    output = _png_path(args.output)
    if output is None:
        return 2
    records = [read_record(path) for path in args.records]
    twice = sorted({p for p in args.records if args.records.count(p) > 1})
    if twice:
        print(f"note: {', '.join(twice)} given more than once: its columns are the same run", file=sys.stderr)
    if len(records) < 2:
        print("note: one record: compare shows it alone (give two or more to compare)", file=sys.stderr)
    analyses = [analyse(r) for r in records]
    table = compare_table(analyses)
    with pd.option_context("display.max_rows", None, "display.width", 250, "display.max_colwidth", 40):
        print(table.to_string())
    try:
        plain = [a for a in analyses if not a.record.get("distributed")]
        spread = [r for r in records if r.get("distributed")]
        if plain:
            print(f"\nPlot: {compare_png(plain, output)}")
        if spread:
            labels = [label for r, label in zip(records, unique_labels(records)) if r.get("distributed")]
            target = output if not plain else output.rsplit(".png", 1)[0] + ".collectives.png"
            print(f"Plot: {busbw_png(spread, target, labels)}")
    except OSError as exc:
        print(f"error: cannot write the plot to {output}: {exc.strerror or exc}; pass -o with a writable path",
              file=sys.stderr)
        return 2
    return 0


def _report(args) -> int:

    records = [read_record(path) for path in args.records]
    if args.output:
        out = Path(args.output)
        if out.is_dir():
            out = out / "report.html"
        elif out.suffix.lower() not in (".html", ".htm"):
            print(f"error: -o {args.output}: the report is an HTML page; give a path ending in .html", file=sys.stderr)
            return 2
    else:
        out = Path(args.records[0]).with_suffix(".html") if len(records) == 1 else Path("report.html")
    if not out.parent.is_dir():
        print(f"error: -o {args.output}: folder {out.parent} does not exist", file=sys.stderr)
        return 2
    try:
        print(write_report([analyse(r) for r in records], list(args.records), out))
    except OSError as exc:
        print(f"error: cannot write {out}: {exc.strerror or exc}; pass -o with a writable path", file=sys.stderr)
        return 2
    return 0


def _png_path(text: str) -> str | None:
    """-o as given if it ends in .png; a bare name gets .png added (the printed path is the one written); any other
    suffix, or a folder that does not exist, is a one-line error (None)."""

    path = Path(text)
    if path.is_dir():
        path = path / "compare.png"
    elif path.suffix == "":
        path = path.with_suffix(".png")
    elif path.suffix.lower() != ".png":
        print(f"error: -o {text}: the plot is a PNG; give a path ending in .png", file=sys.stderr)
        return None
    if not path.parent.is_dir():
        print(f"error: -o {text}: folder {path.parent} does not exist", file=sys.stderr)
        return None
    return str(path)


if __name__ == "__main__":
    from results.cli import run

    run(main, "python -m results", "every file this command writes is written whole or not at all, the records are untouched")
