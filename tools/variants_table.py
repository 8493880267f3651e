"""The README's variants table from records of `python -m bench.variants` (or their --json files): one markdown row
per measured variant, the choice per model and batch, the pairs the predictor ordered, and what was missing.

    python tools/variants_table.py results/examples/*variants-*.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from results.analysis import analyse  # noqa: E402
from results.variants import summary  # noqa: E402


def _data(path: str) -> dict:
    raw = json.loads(Path(path).read_text())
    return raw if "rows" in raw else summary(analyse(raw))


def _ms(s):
    return "-" if s is None else f"{s * 1e3:.3g}"


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    print("| model | batch | variant | median ms (± half IQR) | speed-up | samples/s | first call ms | bytes | FLOP/B | "
          "bound | quality vs fp32 eager | predicted ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    pairs = agree = tied = 0
    notes = []
    for path in paths:
        data = _data(path)
        rows = sorted(data["rows"], key=lambda r: (r["batch"] or 0, r.get("median_s") or float("inf")))
        for r in rows:
            if not r.get("median_s"):
                continue
            q = r.get("quality") or {}
            quality = (f"cos {q['cosine']:.4f}" if q.get("cosine") is not None else "cos -") + (
                f", top-1 {100 * q['top1_agreement']:.0f}%" if "top1_agreement" in q else "") + (
                "" if r.get("quality_ok") else " **outside**")
            print(f"| {r['model']} | {r['batch']} | {r['variant']} | {_ms(r['median_s'])} "
                  f"(±{100 * (r.get('iqr_rel') or 0) / 2:.0f}%) | {r.get('speedup', 0):.2f}x | {r['throughput']:.3g} | "
                  f"{_ms(r.get('first_call_s'))} | {r['bytes'] / 1e6:.0f} MB | {r['intensity']:.3g} | "
                  f"{r.get('bound', '?')} | {quality} | {_ms(r.get('predicted_s'))} |")
        for key, d in data["decisions"].items():
            notes.append(f"- {key}: **{d.get('choice')}** — {d['why']}" + (f" ({d['close_note']})" if d.get("close_note")
                                                                            else ""))
        o = data["ordering"]
        pairs, agree, tied = pairs + o["pairs"], agree + o["agree"], tied + o.get("tied", 0)
        notes += [f"  - order not as predicted: {w}" for w in o["disagree"]]
        missing = sorted({f"{r['variant']} ({r['status']}: {r['reason']})" for r in rows if not r.get("median_s")})
        if missing:
            notes.append(f"  - {rows[0]['model']}, not measured: " + "; ".join(missing))
    print()
    print("\n".join(notes))
    if pairs:
        print(f"\nPredicted vs measured order: {agree} of {pairs} pairs agree ({100 * agree / pairs:.0f}%); {tied} pairs "
              "with predictions within 5% of each other left out (no order claimed).")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
