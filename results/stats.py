"""Statistics of repetition times. Pure Python: no torch, no numpy needed."""
from __future__ import annotations

import statistics


def summarise(times_s: list[float]) -> dict[str, float | int | None]:
    """best (min), median, mean, coefficient of variation (stdev/mean), IQR/median, n."""
    if not times_s:
        return {"best_s": None, "median_s": None, "mean_s": None, "cv": None, "iqr_rel": None, "n": 0}
    ordered = sorted(times_s)
    n = len(ordered)
    mean = sum(ordered) / n
    stdev = statistics.stdev(ordered) if n > 1 else 0.0
    if n >= 4:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1, q3 = ordered[0], ordered[-1]
    median = statistics.median(ordered)
    return {"best_s": ordered[0], "median_s": median, "mean_s": mean, "cv": stdev / mean if mean else None,
            "iqr_rel": (q3 - q1) / median if median else None, "n": n}
