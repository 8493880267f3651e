"""Ceilings, ridge points and attainable performance from a run record. Pure Python: no torch.

* Compute ceiling per dtype: the best verified GEMM point of the sweep (best repetition), with its median and
  coefficient of variation beside it.
* Memory ceiling per level: stream points whose working set sits well inside that level (from the cache sizes the
  platform read from the machine), best over kernels; DRAM only from working sets >= 4x the last-level cache.
* Ridge point I_max = pi / beta, attainable(I) = min(pi, beta x I).

The functions here each derive one kind of figure from the record's rows; results/analysis.py calls them once per
record and holds the outcome (with the layer rows and the spec check) in one immutable ``Analysis``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from platforms.base import effective_capacities  # noqa: F401  (cache capacities are platform knowledge)
from results.units import binary_size

#: a stream point whose best time is below this many dispatch costs is "overhead bound" and not a ceiling
OVERHEAD_FACTOR = 10.0
#: DRAM working sets must be at least this many times the last-level cache
DRAM_FACTOR = 4


@dataclass(frozen=True)
class Ceiling:
    kind: str  # "compute" (GEMM) | "silicon" (register-only FMA) | "memory" | "transfer"
    name: str  # dtype for compute, level for memory, direction for transfer
    value: float  # flop_per_s or bytes_per_s, from the best repetition
    median_value: float | None
    cv: float | None
    kernel: str
    impl: str
    dtype: str
    shape: list | None
    size_bytes: int | None
    n: int
    statistic: str = "best repetition; median and CV of that point beside it"
    note: str = ""
    #: True when every candidate point was disturbed by other processes (so this figure rests on one)
    disturbed: bool = False

    @property
    def unit(self) -> str:
        return rate_unit(self.name) if self.kind in ("compute", "silicon") else "B/s"

    def to_dict(self) -> dict:
        return asdict(self)


def rate_unit(dtype: str) -> str:
    """int8 GEMM does integer operations: OP/s, not FLOP/s."""
    return "OP/s" if dtype == "int8" else "FLOP/s"


def attainable(intensity: float, peak_flop_per_s: float, bandwidth_bytes_per_s: float) -> float:
    """The roofline: min(pi, beta x I)."""
    if intensity < 0:
        raise ValueError("arithmetic intensity cannot be negative")
    return min(peak_flop_per_s, bandwidth_bytes_per_s * intensity)


def ridge_point(peak_flop_per_s: float, bandwidth_bytes_per_s: float) -> float:
    """I_max = pi / beta (FLOP/byte): below it a kernel is memory bound, above it compute bound."""
    if bandwidth_bytes_per_s <= 0:
        raise ValueError("bandwidth must be positive")
    return peak_flop_per_s / bandwidth_bytes_per_s


def bound(intensity: float, peak_flop_per_s: float, bandwidth_bytes_per_s: float) -> str:
    return "memory" if intensity < ridge_point(peak_flop_per_s, bandwidth_bytes_per_s) else "compute"


def _usable(row: dict) -> bool:
    return (row.get("status") == "ok" and row.get("verified") is True and bool(row.get("best_s"))
            and not row.get("superseded"))


def curve_outliers(rows: list[dict], caches: list[dict], factor: float = 0.5) -> list[dict]:
    """Stream points far below BOTH neighbours of their own kernel's curve (below ``factor`` x the lower of the
    two), where both neighbours sit in the same memory level as the point: a level's plateau does not dip alone,
    so such a point was most likely disturbed. Points at a level's edge are never called outliers."""
    windows = level_windows(caches)

    def level(size: int) -> str | None:
        for name, lo, hi, _label in windows:
            if size >= lo and (hi is None or size <= hi):
                return name
        return None

    out = []
    by_kernel: dict[str, list[dict]] = {}
    for row in rows:
        if row.get("group") == "stream" and _usable(row) and row.get("bytes_per_s"):
            by_kernel.setdefault(f"{row.get('impl')}:{row['kernel']}", []).append(row)
    for points in by_kernel.values():
        points.sort(key=lambda r: r["size_bytes"])
        for before, row, after in zip(points, points[1:], points[2:]):
            here = level(row["size_bytes"])
            if here is None or level(before["size_bytes"]) != here or level(after["size_bytes"]) != here:
                continue
            if row["bytes_per_s"] < factor * min(before["bytes_per_s"], after["bytes_per_s"]):
                out.append(row)
    return out


def prefer_clean(rows: list[dict]) -> list[dict]:
    """The points other processes did not disturb, where there are any; else all of them (flagged downstream)."""
    clean = [r for r in rows if not r.get("disturbed")]
    return clean or rows


def _best(rows: list[dict], key: str) -> dict:
    return max(prefer_clean(rows), key=lambda r: r[key])


def _best_by(rows: list[dict], group: str, rate: str, key, keep=lambda row: True) -> dict:
    """The best usable row of ``group`` per ``key(row)`` by ``rate`` (clean points first), among rows ``keep`` takes."""
    candidates: dict = {}
    for row in rows:
        if row.get("group") == group and _usable(row) and row.get(rate) and keep(row):
            candidates.setdefault(key(row), []).append(row)
    return {k: _best(v, rate) for k, v in candidates.items()}


def _ceiling(kind: str, name: str, row: dict, rate_key: str, note: str = "") -> Ceiling:
    disturbed = bool(row.get("disturbed"))
    if disturbed:
        note = (note + "; " if note else "") + "DISTURBED: rests on a point other processes slowed (no clean one)"
    return Ceiling(kind=kind, name=name, value=row[rate_key], median_value=row.get(rate_key + "_median"),
                   cv=row.get("cv"), kernel=row["kernel"], impl=row.get("impl", ""), dtype=row["dtype"],
                   shape=row.get("shape"), size_bytes=row.get("size_bytes"), n=row.get("n", 0), note=note,
                   disturbed=disturbed)


def compute_ceilings(rows: list[dict]) -> dict[str, Ceiling]:
    best = _best_by(rows, "gemm", "flop_per_s", lambda row: row["dtype"])
    return {dtype: _ceiling("compute", dtype, row, "flop_per_s",
                            f"best GEMM shape {row.get('extra', {}).get('shape_id', row.get('shape'))}"
                            + (f", {row['extra']['mode']}" if (row.get("extra") or {}).get("mode") else ""))
            for dtype, row in best.items()}


def dispatch_overhead_s(rows: list[dict]) -> float | None:
    values = [r["median_s"] for r in rows if r.get("group") == "overhead" and _usable(r)]
    return min(values) if values else None


def sync_latency_s(rows: list[dict]) -> float:
    """Seconds of one idle device sync (0 on a CPU, and for records made before it was measured)."""
    values = [(r.get("extra") or {}).get("sync_latency_s") for r in rows if r.get("group") == "overhead" and _usable(r)]
    values = [v for v in values if isinstance(v, (int, float))]
    return min(values) if values else 0.0


def level_windows(caches: list[dict]) -> list[tuple[str, int, int | None, str]]:
    """(level, lowest working set, highest working set or None, label) for each level, DRAM last.

    A working set counts for a level when it is at most half that level's capacity and at least twice the
    level below it (the transition zones are left out); DRAM from DRAM_FACTOR x the last-level cache."""
    levels = effective_capacities(caches)
    windows, previous = [], 0
    for name, capacity in levels:
        windows.append((name, 2 * previous + 1 if previous else 0, capacity // 2, f"{name} ({_size(capacity)})"))
        previous = capacity
    if levels:
        windows.append(("DRAM", DRAM_FACTOR * levels[-1][1], None, f"DRAM (>= {DRAM_FACTOR} x {_size(levels[-1][1])})"))
    return windows


def _size(n: int) -> str:
    return binary_size(n, "g")


#: implementations that measure the hardware, not torch: their points make the "hardware" roofs
HARDWARE_IMPLS = ("native", "triton")


def is_hardware(row: dict) -> bool:
    return row.get("impl") in HARDWARE_IMPLS


def silicon_ceilings(rows: list[dict]) -> dict[str, Ceiling]:
    """Per dtype: the best register-only FMA point (group "peak"): what the silicon computes with no memory."""
    best = _best_by(rows, "peak", "flop_per_s", lambda row: row["dtype"])
    return {dtype: _ceiling("silicon", dtype, row, "flop_per_s",
                            f"register-only FMA chains ({row.get('impl')}), no memory traffic")
            for dtype, row in best.items()}


def silicon_below_gemm(silicon: dict[str, Ceiling], compute: dict[str, Ceiling]) -> dict[str, dict]:
    """Silicon figures below the GEMM of the same dtype, which runs on the same (or slower) units: such a figure is no
    roof (the chains were disturbed, or ran on fewer units). {dtype: {"ceiling": Ceiling, "reason": text}}; the
    analysis leaves them out of ``silicon`` so no plot or summary draws them as a roof."""
    out = {}
    for dtype, c in silicon.items():
        gemm = compute.get(dtype)
        if gemm and c.value < gemm.value:
            out[dtype] = {"ceiling": c, "reason": (
                f"the {dtype} silicon figure ({c.value / 1e9:.4g} G/s, {c.kernel}) is below the {dtype} GEMM "
                f"({gemm.value / 1e9:.4g} G/s, {gemm.impl}), which cannot outrun the units it runs on: the chains were "
                f"disturbed{' (flagged)' if c.disturbed else ''} or ran on fewer units; not a roof")}
    return out


def memory_ceilings(rows: list[dict], caches: list[dict], hardware: bool = False) -> dict[str, Ceiling]:
    """Per memory level: torch's stream points (``hardware=False``: the roofs torch layers are placed against) or
    the native kernels' (``hardware=True``: cached and non-temporal stores, what the memory itself delivers)."""
    overhead = dispatch_overhead_s(rows)
    points = [r for r in rows if r.get("group") == "stream" and _usable(r) and r.get("bytes_per_s")
              and is_hardware(r) == hardware]
    if overhead and not hardware:  # native calls cost ~1 us of ctypes; Triton points are DRAM-sized
        points = [r for r in points if r["best_s"] >= OVERHEAD_FACTOR * overhead]
    out: dict[str, Ceiling] = {}
    windows = level_windows(caches)
    if not windows:  # no cache sizes could be read: report the largest working set only, unlabelled
        if points:
            largest = max(r["size_bytes"] for r in points)
            row = _best([r for r in points if r["size_bytes"] == largest], "bytes_per_s")
            out["largest"] = _ceiling("memory", "largest", row, "bytes_per_s",
                                      "cache sizes unknown: the largest working set, not proven to be DRAM")
        return out
    for name, lo, hi, label in windows:
        inside = [r for r in points if r["size_bytes"] >= lo and (hi is None or r["size_bytes"] <= hi)]
        if inside:
            row = _best(inside, "bytes_per_s")
            out[name] = _ceiling("memory", name, row, "bytes_per_s",
                                 f"{label}: best of {len(inside)} points, working set {_size(row['size_bytes'])}")
    return out


def transfer_ceilings(rows: list[dict]) -> dict[str, Ceiling]:
    best = _best_by(rows, "transfer", "bytes_per_s", lambda row: row["kernel"])
    return {k: _ceiling("transfer", k, r, "bytes_per_s", f"size {_size(r['size_bytes'])}") for k, r in best.items()}


def detect_plateaus(sizes: list[float], values: list[float], rel_drop: float = 0.2) -> list[dict]:
    """Split a bandwidth-vs-working-set curve into plateaus, from the data alone.

    Walking from small to large working sets, a new plateau starts where the value falls below
    (1 - rel_drop) x the median of the current plateau. Returns [{lo, hi, median, max, n}] per plateau."""
    pairs = sorted(zip(sizes, values))
    plateaus: list[list[tuple[float, float]]] = []
    for size, value in pairs:
        if plateaus:
            current = sorted(v for _, v in plateaus[-1])
            median = current[len(current) // 2]
            if value >= (1 - rel_drop) * median:
                plateaus[-1].append((size, value))
                continue
        plateaus.append([(size, value)])
    out = []
    for plateau in plateaus:
        vals = sorted(v for _, v in plateau)
        out.append({"lo": plateau[0][0], "hi": plateau[-1][0], "median": vals[len(vals) // 2], "max": vals[-1],
                    "n": len(plateau)})
    return out


def best_curve(rows: list[dict]) -> tuple[list[int], list[float]]:
    """Best bandwidth over stream kernels at each working-set size (usable points only)."""
    best = {size: row["bytes_per_s"] for size, row in _best_by(
        rows, "stream", "bytes_per_s", lambda row: row["size_bytes"], keep=lambda row: not is_hardware(row)).items()}
    sizes = sorted(best)
    return sizes, [best[s] for s in sizes]
