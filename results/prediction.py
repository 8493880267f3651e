"""What a prediction is (results/predict.py makes them): the ops the model was counted as, each op's priced time,
and the whole model's sum of ops, best call, typical (median) call and calibrated range, per layer and as a table
of several records or dtypes. Pure Python.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MODEL_NOTE = ("per op: GEMM-like ops at FLOPs / the rate interpolated among measured points of the same family "
              "and, where the record says, the same backend (probe layers, model layers, GEMM sweep; 4 nearest on log "
              "M,N,K,batch, kernel taps and channel alignment; a grouped "
              "convolution of wide groups as a dense one of one group's size); other ops at the time of "
              "probes of the same aten op interpolated on log bytes; + the module-call cost per container call. "
              "Eager, warm caches (where a call's working set, or in older records its weights, exceeds the last-level "
              "cache: between warm and cold, as far as the record's working-set or evicting model says), no "
              "host/device overlap.")
#: the calibrated band around the predicted median: (low, high) = (median / RANGE[0], median x RANGE[1]), and the
#: share of measured medians inside it on the calibration checks: tools/fit_range.py, 2026-12-03 (after page faults
#: were counted), re-pricing the stored torchvision checks of four 2-core VMs (Xeon EMR batch 1 and 8, Zen 3, Zen 4,
#: Zen 5 batch 1 and 8 twice, the second after the fault count; never a blind draw) with this predictor: measured /
#: predicted median 0.65-2.36, median 1.07; 108 of 128 inside the band with each prediction's own widening
#: (fallbacks, the record's drift); the fit asked for 85%
RANGE, RANGE_COVERAGE, RANGE_CHECK = (1.18, 1.53), 0.84, "108 of 128 measured medians inside, 4 machines"
#: the band is this much wider where over a quarter of the time rests on fallback or extrapolated ops
RANGE_WIDEN = 1.5

def base_op(name: str) -> str:
    """aten.relu_ -> aten.relu; aten.add.Tensor -> aten.add (in-place and overloads share their probes)."""
    name = name.split(".Tensor")[0].split(".default")[0]
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name


def probe_key(name: str, variant: str = "") -> str:
    """The key an element-wise op's probes are kept under: its base op, and its variant where it has one
    (aten.native_batch_norm[train] is another kernel than aten.native_batch_norm)."""
    return f"{base_op(name)}[{variant}]" if variant else base_op(name)



@dataclass
class Op:
    """One aten op of the model, as the predictor sees it (built by kernels.predict from a count)."""

    module: str
    op: str
    dtype: str
    flops: int  # 2 x MACs + other FLOPs
    bytes: int
    family: str  # a GEMM family or "elementwise"
    gemm: tuple | None = None  # (m, n, k, batch)
    #: a convolution's kernel taps (kh x kw; 1 for a matrix product; 0 where unknown)
    taps: int = 0
    #: what runs it where that changes its cost (kernels.backends.op_variant: a CPU convolution's backend, "train"
    #: for a batch norm computing batch statistics; "" where nothing does or the count could not say)
    variant: str = ""
    #: bytes of its largest output tensor that the op allocates (0 for an in-place op or where unknown)
    out_bytes: int = 0


@dataclass
class Point:
    family: str
    key: tuple  # (m, n, k, batch) for GEMM families; (bytes,) for element-wise
    time_s: float
    flops: float
    label: str
    op: str = ""
    #: the same probe timed with cold caches (the layer harness's cold median), where the record has it
    cold_s: float | None = None
    #: a convolution probe's kernel taps (kh x kw; 1 for a matrix product; 0 where the record does not say)
    taps: int = 0
    #: what ran it (the probe's ``extra.variants``, as ``Op.variant``); "" where the record does not say
    variant: str = ""
    #: page faults each call of the probe took (``extra.faults_per_call``, records since 2026-12-03): taken out of
    #: ``time_s`` when the record is read (results.predict.DeviceModel), as a model's own faults are priced apart
    faults: float = 0.0

    @property
    def rate(self) -> float:
        return self.flops / self.time_s


@dataclass
class OpPrediction:
    op: Op
    time_s: float
    low_s: float
    high_s: float
    bound: str  # compute | memory | overhead
    basis: str  # which points / roof it leaned on
    widened: str = ""
    #: cold-cache time over warm of the probes it leaned on (1: no cold times in the record)
    cold_ratio: float = 1.0


@dataclass
class Prediction:
    model: str
    dtype: str
    record: str
    device: str
    ops: list[OpPrediction]
    module_calls: int
    module_call_s: float
    notes: list[str] = field(default_factory=list)
    #: the record's whole-model calibration (0 and 1 where it has none): seconds a model adds per op beyond its
    #: probes' times, and median call / best call
    per_op_s: float = 0.0
    typical_factor: float = 1.0
    #: how far the machine's speed moved while the record was made (results.predict.DeviceModel.drift; 1: steady
    #: or not measured): the range is this much wider on each side
    drift: float = 1.0
    #: the model's page faults per call, counted by running it (kernels.pages; None: not counted), and the seconds
    #: they cost a call at the record's price of a fault (part of the best and median call, not of any layer)
    page_faults: float | None = None
    fault_s: float = 0.0

    @property
    def op_time_s(self) -> float:
        return sum(p.time_s for p in self.ops)

    @property
    def sum_s(self) -> float:
        """The sum of the ops and module calls, each at its warm probes' time."""
        return self.op_time_s + self.module_calls * self.module_call_s

    @property
    def best_s(self) -> float:
        """The best call this machine should give: the sum + each op's excess in a model (the calibration) + the
        fresh pages its calls fault in."""
        return self.sum_s + len(self.ops) * self.per_op_s + self.fault_s

    @property
    def predicted_s(self) -> float:
        """The typical (median) call: the best x the calibration's median-over-best."""
        return self.best_s * self.typical_factor

    @property
    def uncertain_share(self) -> float:
        """The share of the op time that rests on fallback pricing or extrapolation far from measured shapes."""
        return sum(p.time_s for p in self.ops if p.widened) / (self.op_time_s or 1.0)

    @property
    def range_factors(self) -> tuple[float, float]:
        widen = (RANGE_WIDEN if self.uncertain_share > 0.25 else 1.0) * self.drift
        return RANGE[0] * widen, RANGE[1] * widen

    @property
    def low_s(self) -> float:
        return self.predicted_s / self.range_factors[0]

    @property
    def high_s(self) -> float:
        return self.predicted_s * self.range_factors[1]

    def range_note(self) -> str:
        """What the range means, and why it is wider where it is."""
        lo, hi = self.range_factors
        why = (f"; widened {RANGE_WIDEN:g}x: {100 * self.uncertain_share:.0f}% of the time rests on ops priced by a "
               "fallback or far from the measured shapes" if self.uncertain_share > 0.25 else "")
        if self.drift > 1.0:
            why += f"; widened {self.drift:.2f}x: the machine's speed moved that much while the record was made"
        return (f"{100 * RANGE_COVERAGE:.0f}% range (median / {lo:.2f} .. median x {hi:.2f}; on the calibration check "
                f"{RANGE_CHECK}){why}")

    def fallback_ops(self) -> list[tuple[str, int, float]]:
        """(aten op, calls, predicted seconds) of the ops priced by a fallback (no probe of their own), most first."""
        out: dict[str, list] = {}
        for p in self.ops:
            if p.widened.startswith("no "):  # no probe, no points of its family, no element-wise probes at all
                entry = out.setdefault(probe_key(p.op.op, p.op.variant), [0, 0.0])
                entry[0] += 1
                entry[1] += p.time_s
        return sorted(((op, n, t) for op, (n, t) in out.items()), key=lambda e: -e[2])

    def layers(self) -> list[dict[str, Any]]:
        """Per module: predicted time, range, the dominant op's bound and basis, in call order."""
        rows: dict[str, dict[str, Any]] = {}
        for p in self.ops:
            row = rows.setdefault(p.op.module, {"layer": p.op.module, "predicted_s": 0.0, "low_s": 0.0, "high_s": 0.0,
                                                "flops": 0, "bytes": 0, "ops": 0, "_top": None})
            row["predicted_s"] += p.time_s
            row["low_s"] += p.low_s
            row["high_s"] += p.high_s
            row["flops"] += p.op.flops
            row["bytes"] += p.op.bytes
            row["ops"] += 1
            if row["_top"] is None or p.time_s > row["_top"].time_s:
                row["_top"] = p
        out = []
        for row in rows.values():
            top = row.pop("_top")
            row.update(bound=top.bound, basis=top.basis, op=top.op.op, widened=top.widened)
            out.append(row)
        return out

    def as_dict(self, top: int | None = None) -> dict[str, Any]:
        layers = self.layers()
        if top:
            layers = sorted(layers, key=lambda r: -r["predicted_s"])[:top]
        return {"model": self.model, "dtype": self.dtype, "record": self.record, "device": self.device,
                "predicted_s": self.predicted_s, "statistic": "median call (typical)", "best_s": self.best_s,
                "sum_s": self.sum_s, "per_op_s": self.per_op_s, "page_faults": self.page_faults,
                "fault_s": self.fault_s, "typical_factor": self.typical_factor, "drift": self.drift,
                "low_s": self.low_s, "high_s": self.high_s, "range": self.range_note(),
                "range_coverage": RANGE_COVERAGE, "uncertain_share": self.uncertain_share,
                "fallback_ops": [{"op": op, "calls": n, "predicted_s": t} for op, n, t in self.fallback_ops()],
                "op_time_s": self.op_time_s, "module_calls": self.module_calls, "module_call_s": self.module_call_s,
                "n_ops": len(self.ops), "bound_share": self.bound_share(), "notes": self.notes,
                "method": MODEL_NOTE, "layers": layers}

    def bound_share(self) -> dict[str, float]:
        total = self.op_time_s or 1.0
        share: dict[str, float] = {}
        for p in self.ops:
            share[p.bound] = share.get(p.bound, 0.0) + p.time_s / total
        return share



def compare_table(predictions: list[Prediction]) -> list[dict[str, Any]]:
    """Several records or dtypes of one model: fastest first, with the speedup over the slowest and the share of
    time that is memory-bound (what fewer bytes would buy) vs compute-bound (what a higher peak would buy)."""
    if not predictions:
        return []
    slowest = max(p.predicted_s for p in predictions)
    fastest = min(p.predicted_s for p in predictions)
    rows = []
    for p in sorted(predictions, key=lambda p: p.predicted_s):
        share = p.bound_share()
        rows.append({"record": p.record, "device": p.device, "dtype": p.dtype, "predicted_s": p.predicted_s,
                     "low_s": p.low_s, "high_s": p.high_s, "x_fastest": p.predicted_s / fastest,
                     "speedup_vs_slowest": slowest / p.predicted_s,
                     "compute_share": share.get("compute", 0.0),
                     "memory_share": share.get("memory", 0.0) + share.get("memory/overhead", 0.0),
                     "overhead_share": share.get("overhead", 0.0)})
    return rows
