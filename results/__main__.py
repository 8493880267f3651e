"""python -m results show RECORD [--json] | plot RECORD [-o PNG]"""
from __future__ import annotations

import argparse
import sys

from results.record import RecordError, read_record


def main(argv: list[str] | None = None) -> int:
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
    args = parser.parse_args(argv)
    try:
        record = read_record(args.record)
    except RecordError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "show":
        from results.report import dumps_ceilings, summary_text

        history = None
        if args.history:
            from results.history import comparable_runs, run_to_run

            history = run_to_run(comparable_runs(args.history, record))
        print(dumps_ceilings(record) if args.json else summary_text(record, args.record, history=history))
    elif args.command == "plot":
        from results.plot import roofline_png

        out = args.output or args.record.rsplit(".json", 1)[0] + ".png"
        print(roofline_png(record, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
