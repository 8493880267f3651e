"""Fit the predictor's range (results/prediction.RANGE) on the stored calibration checks of several machines.

Each calibration check (tools/validate_predictor.py --models torchvision, never a blind draw) holds every model's
measured median on one machine and names the record it predicted from. This re-prices each of those models from
its record with the predictor as it is now (no model is run: counting and pricing only; a model's page faults
are the check's own count, else the ones its timed calls took, where the check kept them), pools measured / predicted
over all the machines, and prints the band that holds the asked share of them: (median / low, median x high),
low and high the lower and upper quantiles that leave (1 - share) / 2 outside on each side. Paste the figures
into results/prediction.py with this command's output as the comment; the blind check then tests them on models
and a seed none of this saw.

    python tools/fit_range.py                  # the checks in CHECKS, 85% band
    python tools/fit_range.py --share 0.8
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kernels import predict as kp  # noqa: E402
from kernels.pages import FaultCount  # noqa: E402
from results.predict import DeviceModel, PredictError  # noqa: E402
from results.prediction import RANGE  # noqa: E402
from results.record import read_record  # noqa: E402

EXAMPLES = ROOT / "results" / "examples"
#: (check file, section or None, the record it predicted from): the calibration lists of every machine the
#: predictor was checked on (the records as committed: a check made from /tmp names its record's copy here)
CHECKS = [
    ("2026-12-02_cpu_intel-xeon-emr-2core-vm.predictor-check.json", "calibration_batch1",
     "2026-12-02_cpu_intel-xeon-emr-2core-vm-predictor.json"),
    ("2026-12-02_cpu_intel-xeon-emr-2core-vm.predictor-check.json", "calibration_batch8",
     "2026-12-02_cpu_intel-xeon-emr-2core-vm-predictor.json"),
    ("2026-12-02_cpu_amd-epyc-zen4-2core-vm.predictor-check-torchvision.json", None,
     "2026-12-02_cpu_amd-epyc-zen4-2core-vm-roofs.json"),
    ("2026-12-02_cpu_amd-epyc-zen3-2core-vm.predictor-check.json", "calibration_batch1",
     "2026-12-02_cpu_amd-epyc-zen3-2core-vm-predictor.json"),
    ("2026-12-03_cpu_amd-epyc-zen5-2core-vm.predictor-check.json", "calibration_batch1",
     "2026-12-03_cpu_amd-epyc-zen5-2core-vm-predictor.json"),
    ("2026-12-03_cpu_amd-epyc-zen5-2core-vm.predictor-check.json", "calibration_batch8",
     "2026-12-03_cpu_amd-epyc-zen5-2core-vm-predictor.json"),
    ("2026-12-03_cpu_amd-epyc-zen5-2core-vm.predictor-check-faults.json", "calibration",
     "2026-12-03_cpu_amd-epyc-zen5-2core-vm-predictor-faults.json"),
    ("2026-12-03_cpu_amd-epyc-zen5-2core-vm.predictor-check-align.json", "calibration_batch1_second_record",
     "2026-12-03_cpu_amd-epyc-zen5-2core-vm-predictor-align-b.json"),
]


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default rule)."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (pos - lo) * (ordered[hi] - ordered[lo])


def repriced(check: str, section: str | None, record: str) -> list[tuple[str, float, float]]:
    """(model at batch, measured median / predicted median now, how much the prediction widens its band: the
    fallback share and the record's drift) for each measured model of one check."""
    data = json.loads((EXAMPLES / check).read_text())
    results = (data[section] if section else data)["results"]
    device = DeviceModel(read_record(str(EXAMPLES / record)), record)
    target = "cuda" if device.kind in ("cuda", "jetson") else "cpu"
    out = []
    for entry in results:
        measured = (entry.get("measured") or {}).get("median_s")
        if not measured:
            continue
        inputs = [(tuple(shape), None) for shape in entry["input"]]
        counts = kp.count_for(entry["model"], inputs, entry["dtype"], target)
        # the predictor counts a model's page faults by running it on the record's machine: here (another machine,
        # no model run) the check's own count stands for it, else the faults its timed calls took there, where the
        # check kept them (checks before 2026-12-03 did not: priced without)
        faults = entry.get("page_faults")  # the count the prediction used (checks since the count exists)
        if faults is None:
            faults = (entry.get("measured") or {}).get("faults_per_call")
        count = FaultCount(faults, [], True, 0.0, 0) if faults is not None and device.kind == "cpu" else None
        pred = kp.predict_counted(device, entry["model"], counts, entry["dtype"], target, count)
        out.append((f"{entry['model']} b{inputs[0][0][0]}", measured / pred.predicted_s,
                    pred.range_factors[1] / RANGE[1]))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--share", type=float, default=0.85, help="the share of measured medians the band holds")
    args = parser.parse_args(argv)
    if not 0.5 <= args.share < 1:
        print(f"error: --share {args.share}: give a share between 0.5 and 1 (e.g. 0.85)", file=sys.stderr)
        return 2
    pooled, per_check = [], []
    for check, section, record in CHECKS:
        if not (EXAMPLES / check).exists() or not (EXAMPLES / record).exists():
            print(f"  skip {check} {section or ''}: the check or its record is not in results/examples", flush=True)
            continue
        try:
            priced = repriced(check, section, record)
        except (PredictError, OSError, ValueError) as exc:
            print(f"  skip {check} {section or ''}: {exc}", flush=True)
            continue
        per_check.append((check, section, priced))
        pooled += priced
        ratios = [r for _m, r, _w in priced]
        print(f"  {check} {section or ''}: {len(priced)} models, measured / predicted median "
              f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})", flush=True)
    if len(pooled) < 10:
        print("error: fewer than 10 measured models in the stored checks: nothing to fit", file=sys.stderr)
        return 2
    # a prediction's band is (median / (low w), median x high w), w its own widening: inside where r / w <= high
    # and r w >= 1 / low, so each side is the quantile of the ratios with the widening taken out
    tail = (1 - args.share) / 2
    high = quantile([r / w for _m, r, w in pooled], 1 - tail)
    low = 1 / quantile([r * w for _m, r, w in pooled], tail)

    def held(priced):
        return sum(1 for _m, r, w in priced if 1 / (low * w) <= r <= high * w)

    ratios = [r for _m, r, _w in pooled]
    print(f"\n{len(pooled)} models on {len(per_check)} checks: measured / predicted median "
          f"{statistics.median(ratios):.2f}, {min(ratios):.2f}-{max(ratios):.2f}; "
          f"{sum(1 for *_x, w in pooled if w > 1)} predictions widen their band (fallbacks, the record's drift)")
    print(f"RANGE = ({low:.2f}, {high:.2f}): {held(pooled)} of {len(pooled)} inside "
          f"({100 * held(pooled) / len(pooled):.0f}%, asked {100 * args.share:.0f}%)")
    for check, section, priced in per_check:
        print(f"  {check} {section or ''}: {held(priced)} of {len(priced)} inside")
    return 0


if __name__ == "__main__":
    sys.exit(main())
