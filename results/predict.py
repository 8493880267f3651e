"""Predict a model's forward time on a measured device from its count and the device's record (pure Python).

The model (inputs and limits are stated in every prediction, ``MODEL_NOTE``):
- An op that is a GEMM (convolution as im2col, mm/addmm/bmm, attention): time = FLOPs / rate, the rate
  interpolated (inverse-distance weights on log M, N, K, batch and, where both say, the kernel's taps: a 16x16 patch
  embedding runs other code than a 1x1 convolution of the same GEMM; the 4 nearest points) among the record's measured
  points of the same family: probe layers (bench/test_opsweep.py), the layers of timed models, and, for
  linears and batched products, the GEMM sweep. The points' times are warm back-to-back calls of one layer, so
  they include that op's dispatch cost; the prediction is never below the family's fastest measured call.
- Any other op (element-wise, norms, pooling, softmax, cat): time interpolated on log bytes among the probe
  points of the same aten op; an op without probes uses the median of all element-wise probes at its size
  ("generic"); a record without probes falls back to dispatch cost + bytes / stream bandwidth at that size.
- Each nn.Module call that is not a single op's layer adds the measured module-call cost.
- The best call and the typical one: the sum of the ops is what the record's warm probes say, each op timed alone and
  back to back. In a model, ops follow other ops, and small ones cost more than alone: on the calibration check the
  measured best call sat 0-60% above the sum, most for models of many small ops (ShuffleNet, MobileNetV3, Swin).
  A record with the whole-model calibration (bench/test_opsweep.py: a reference model of small mobile ops timed call
  after call) says how much more per op on this machine (its measured best minus its predicted sum, per op) and how
  far its median call sits above its best. ``best_s`` = sum + ops x ``per_op_s`` (``K_OP`` x the reference's excess
  per op); ``predicted_s`` = best_s x ``typical_factor`` (1 + ``K_TYPICAL`` x the reference's median/best - 1): the
  median a user will see. K_OP and K_TYPICAL were fitted on the calibration check (torchvision models, never the
  blind draw): the reference model, all small ops, overstates both for a typical model.
- The range: a band around the predicted median whose width was calibrated on a check of models of other families
  than the blind check's (``RANGE``: the share of measured medians it held there is ``RANGE_COVERAGE``); wider by
  ``RANGE_WIDEN`` where more than a quarter of the time rests on ops priced by a fallback or far outside the
  measured shapes, which the prediction names.
- A grouped convolution whose groups are wide (``WIDE_GROUP`` output channels or more) runs like a dense one of one
  group's size, once per group: priced from the dense points.
- An op is priced among points that ran the same way where the record says (kernels.backends.op_variant: a CPU
  convolution's backend, a batch norm computing statistics); an op whose output is ``FRESH_BYTES`` or more pays the
  record's measured cost of fresh pages; the range widens by the machine's drift while the record was made.
- Where what one call touches anew (its weights and every op's output: ``working_set_bytes``) exceeds the
  last-level cache, an op finds a share ``1 - cache / working set`` of its data evicted since its last call: priced
  that share times the record's working-set factor of the way from its probes' warm to their cold-cache time (the
  factor: how far the reference model, on an image that touches 3x the cache, landed between its ops' warm and cold
  sums, over its own share; bench/test_opsweep.py::test_working_set_calibration). A record without that row: where
  the weights alone exceed the cache, ``1 - cache / weights`` of the way, times how far the record's evicting model
  (dense convolutions with twice the cache in weights, timed whole) landed (one VM: the whole way; another: not at
  all).
- A convolution is priced nearer points whose channel counts are as aligned (``channel_alignment``: 72 channels
  run other oneDNN code than 64 or 80 on AVX-512), and a probe's warm time is never taken above its cold one.
Limits: eager mode, one stream, no overlap of host and device work, the caches' state as in the probes (warm);
fusion (torch.compile) and a different BLAS than the record's are not modelled.

long: one pricing model read from one record (the GEMM interpolation, the element-wise curves and the record's
calibrations of the typical call, eviction, drift and fresh memory all act on the same DeviceModel's points); the
prediction's own data types are results/prediction.py.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import replace
from typing import Iterable

from results.prediction import Op, OpPrediction, Point, Prediction, base_op, probe_key

GEMM_FAMILIES = ("conv", "conv_dw", "conv_grouped", "linear", "bmm", "attention")
#: families that may stand in for each other when a record has no point of the asked family (widens the range)
FALLBACK = {"conv": ["conv_grouped", "linear", "bmm"], "conv_grouped": ["conv", "conv_dw", "linear"],
            "conv_dw": ["conv_grouped", "conv", "linear"], "linear": ["bmm", "conv", "attention"],
            "bmm": ["linear", "attention", "conv"], "attention": ["bmm", "linear", "conv"]}
MIN_SPREAD = 0.15
NEIGHBOURS = 4
#: the share of the reference model's per-op excess and of its median-over-best spread a typical model shows (fitted
#: on the calibration check, tools/validate_predictor.py --models torchvision, 2026-12-02, 2-core Xeon VM: median
#: |error| of the median 15% -> 8%, worst -42% -> +22%)
K_OP, K_TYPICAL = 0.5, 0.35
#: a calibration outside these bounds (the reference's best over its sum; its median over its best) says more about a
#: disturbed calibration than the machine: not used
FACTOR_BOUNDS = (0.8, 4.0)
#: an op with this many times less work than every probe of its family is priced from the GEMM sweep where the
#: sweep reaches its size, and the family's fastest probe is no floor for it
SMALLER_THAN_PROBES = 8
#: a grouped convolution whose groups are at least this wide (output channels per group) is priced as a dense one
WIDE_GROUP = 32
#: the machine's speed moving more than this while the record was made (DeviceModel.drift) widens the range by it
DRIFT_NOTICE = 1.1
#: an allocation at least this large is mapped fresh from the OS on every call: glibc's largest dynamic mmap
#: threshold on 64-bit Linux (DEFAULT_MMAP_THRESHOLD_MAX, 32 MiB), so an op whose output is this large pays a page
#: fault per 4 KiB page each call (the record measures what a page costs: bench/test_opsweep.py)
FRESH_BYTES, PAGE_BYTES = 32 * 2**20, 4096
#: a probe whose calls take this many page faults or more is priced from its fault-free time where the record
#: timed it again without faults, else from its best call less the faults' price (conv1x1 16->96 at 112x112, batch
#: 8, writes a 38.5 MB output: 9,400 faults, best 18 ms, median 64 ms; 3.9 ms without faults, a Zen 5 VM, 2026-12-03)
FAULTS_IN_PROBE = 64


#: channel counts are told apart up to this power of two (oneDNN blocks fp32 channels by 16 on AVX-512, by 8 on
#: AVX2): a convolution is priced nearer probes whose channels are as aligned (_distance)
ALIGN = 16
#: a record's working-set calibration (DeviceModel.calibrate_working_set) saying an evicted model lands beyond
#: this many times its share of the way to cold is no longer measuring eviction: bounded
WORKING_SET_BOUNDS = (0.0, 1.5)


def working_set_bytes(weight_bytes: int, out_bytes: Iterable[int]) -> int:
    """What one call of a model touches anew between two calls of any one op: its weights and every op's output
    (an op reads the weights and earlier ops' outputs); where it exceeds the last-level cache, each op finds a share
    of its data evicted since its last call (DeviceModel.predict)."""
    return int(weight_bytes or 0) + sum(int(b) for b in out_bytes)


def faulting_probes(rows: list[dict]) -> list[dict]:
    """The measured probe rows whose calls took FAULTS_IN_PROBE page faults or more each."""
    return [r for r in rows if r.get("group") == "opsweep" and r.get("status") == "ok"
            and ((r.get("extra") or {}).get("faults_per_call") or 0) >= FAULTS_IN_PROBE]


def reference_drift(first: dict, again: dict) -> float:
    """The larger over the smaller median call of the reference model timed before (``first``) and after
    (``again``) a record's probes: how far the machine's speed moved meanwhile (1.0: not at all)."""
    a, b = first["median_s"], again["median_s"]
    return max(a, b) / min(a, b)


class PredictError(ValueError):
    """The record cannot predict this (no GEMM points for the dtype, not a record)."""


def _ok(row: dict) -> bool:
    return row.get("status") == "ok" and not row.get("superseded") and (row.get("median_s") or 0) > 0


def _warm_s(row: dict) -> float:
    """A probe's warm time: its warm median; for a probe whose calls fault pages in, its best warm call (the
    faults' cost varies from call to call on a VM; DeviceModel replaces it by the probe's fault-free time, or takes
    the faults out of it at the record's price of a fault)."""
    extra = row.get("extra") or {}
    if (extra.get("faults_per_call") or 0) >= FAULTS_IN_PROBE and extra.get("warm_times_s"):
        return min(extra["warm_times_s"])
    warm = extra.get("warm_median_s")
    if warm and row.get("median_s") and extra.get("warm_times_s") is not None:
        # warm calls cannot be slower than cold-cache ones: where they were, the machine slowed while they ran (a VM's
        # neighbours: a SiLU probe's warm median 457 us beside its cold 301 us, 157 us warm in the record before)
        return min(warm, row["median_s"])
    return warm or row.get("median_s")


def _cold_s(row: dict) -> float | None:
    """A layer or probe row's cold-cache median (the row's own median where a warm one is kept beside it)."""
    return row.get("median_s") if (row.get("extra") or {}).get("warm_median_s") else None


def _cold_ratio(points) -> float:
    """Geometric mean of cold / warm over the points an op leaned on (1 where none has a cold time)."""
    ratios = [p.cold_s / p.time_s for p in points if p.cold_s and p.time_s]
    return math.exp(sum(math.log(max(r, 1.0)) for r in ratios) / len(ratios)) if ratios else 1.0


def last_level_cache(platform: dict) -> int | None:
    """The last-level cache in bytes from a record's platform facts (caches smallest first); None where it names none."""
    caches = [c for c in platform.get("caches") or [] if isinstance(c, dict) and c.get("size_bytes")]
    return caches[-1]["size_bytes"] if caches else None


def _conv_family(groups: int, n: int) -> str:
    if groups <= 1:
        return "conv"
    return "conv_dw" if n == 1 else "conv_grouped"


class DeviceModel:
    """What one record says about how long ops take: measured points per family and dtype, the stream curve,
    the dispatch and module-call costs."""

    def __init__(self, record: dict, name: str = ""):
        if not isinstance(record, dict) or "measurements" not in record:
            raise PredictError(f"{name or 'the record'} is not a run record (no measurements)")
        self.record, self.name = record, name
        host = record.get("host") or {}
        platform = record.get("platform") or {}
        self.device = platform.get("name") or platform.get("device_name") or host.get("hostname") or "?"
        self.kind = platform.get("kind", "?")
        self.points: dict[tuple[str, str], list[Point]] = {}
        self.eltwise: dict[tuple[str, str], list[Point]] = {}
        self.stream: list[tuple[float, float]] = []
        self.dispatch_s = self.module_call_s = None
        self.peaks: dict[str, float] = {}
        #: "fresh_memory" / "held_memory" -> the record's rows (bench/test_opsweep.py::test_fresh_memory_cost)
        self.fresh_rows: dict[str, dict] = {}
        #: (point label, dtype) -> the probe timed again with no page faults (bench/test_opsweep.py::
        #: test_probes_without_faults, records since 2026-12-03)
        self.fault_free: dict[tuple[str, str], dict] = {}
        #: the last-level cache (bytes), from the record's platform facts (None where it names none)
        self.llc_bytes = last_level_cache(platform)
        #: dtype -> the whole-model calibration row (bench/test_opsweep.py::test_model_calibration)
        self.calibration: dict[str, dict] = {}
        #: dtype -> (per_op_s, typical_factor, how), set by ``calibrate``
        self.factors: dict[str, tuple[float, float, str]] = {}
        #: dtype -> the reference model timed again after the probes (bench/test_opsweep.py, records since
        #: 2026-12-03): with the first, how far the machine's speed moved while the probes were measured
        self.drift_row: dict[str, dict] = {}
        #: dtype -> the eviction calibration row (bench/test_opsweep.py::test_eviction_calibration)
        self.eviction_row: dict[str, dict] = {}
        #: dtype -> (how far from warm to cold an evicting model's ops land, 0..1; how), set by ``calibrate_eviction``
        self.eviction: dict[str, tuple[float, str]] = {}
        #: dtype -> the working-set calibration row (bench/test_opsweep.py::test_working_set_calibration, records
        #: since 2026-12-03)
        self.working_set_row: dict[str, dict] = {}
        #: dtype -> (how far toward cold an op lands per unit of evicted share, WORKING_SET_BOUNDS; how), set by
        #: ``calibrate_working_set``
        self.working_set: dict[str, tuple[float, str]] = {}
        for row in record["measurements"]:
            if _ok(row):
                self._take(row)
        self._take_out_faults()
        self.stream.sort()
        for pts in self.eltwise.values():
            pts.sort(key=lambda p: p.key)

    # -- reading the record ----------------------------------------------------------------------------------
    def _take_out_faults(self) -> None:
        """Probes whose calls fault pages in are priced without them (their fault-free time where the record has
        it, else their best call less the faults at page_fault_s): an op is priced fault-free and the model's own
        counted faults are added once (a model's allocation pattern, not its probe's, says which memory comes
        fresh)."""
        page_s = self.page_fault_s()[0]
        for (family, dtype), pts in [*self.points.items(), *self.eltwise.items()]:
            for i, p in enumerate(pts):
                if p.faults < FAULTS_IN_PROBE:
                    continue
                free = (self.fault_free.get((p.label, dtype)) or {}).get("extra") or {}
                if free.get("warm_median_s"):  # timed without faults: its own time
                    pts[i] = replace(p, time_s=free["warm_median_s"], faults=0.0)
                elif page_s:
                    pts[i] = replace(p, time_s=max(p.time_s - p.faults * page_s, p.time_s / 4))

    def page_fault_s(self) -> tuple[float, str]:
        """(seconds one page fault costs a call here, where that figure comes from): over the probes timed with
        and without faults, the time their faults added (best with - best without) over the faults, the price inside
        an op (a sum over the probes, so a probe of 75 faults, whose difference is noise, weighs little); else the
        record's fresh-memory write (fresh_page_s); (0, why) where the record has neither."""
        rows = [row["extra"] for row in self.fault_free.values() if row.get("status") == "ok"
                and (row.get("extra") or {}).get("faults_per_call_with") and row["extra"].get("best_s")]
        faults = sum(e["faults_per_call_with"] for e in rows)
        added = sum(max(0.0, e["best_with_faults_s"] - e["best_s"]) for e in rows)
        if faults and added:
            each = sorted(e["page_fault_s"] for e in rows if e["faults_per_call_with"] >= 1000)
            return added / faults, (f"the record's {len(rows)} faulting probes timed with and without faults: "
                                    f"{added * 1e3:.3g} ms added by {faults:.0f} faults"
                                    + (f"; {each[0] * 1e6:.2f}-{each[-1] * 1e6:.2f} us a fault in those of 1000 or "
                                       "more" if each else ""))
        fresh = self.fresh_page_s()
        if fresh:
            return fresh, "the record's fresh-memory write (best calls; no probe timed without faults)"
        return 0.0, "the record has no fresh-memory measurement (a run before bench/test_opsweep.py::test_fresh_memory_cost)"

    def _add(self, family: str, dtype: str, point: Point) -> None:
        self.points.setdefault((family, dtype), []).append(point)

    def _take(self, row: dict) -> None:
        group, dtype, extra = row.get("group"), row.get("dtype"), row.get("extra") or {}
        if group == "gemm" and row.get("impl") == "torch" and row.get("shape"):
            batch, m, n, k = row["shape"]
            rate = row.get("flop_per_s_median") or row.get("flop_per_s")
            if rate:
                self._add("linear" if batch == 1 else "bmm", dtype,
                          Point("linear" if batch == 1 else "bmm", (m, n, k, batch), row["flops"] / rate, row["flops"],
                                f"GEMM {batch}x{m}x{n}x{k}", taps=1))
                self.peaks[dtype] = max(self.peaks.get(dtype, 0.0), row.get("flop_per_s") or 0.0)
        elif group in ("opsweep", "layer"):
            time_s = _warm_s(row)
            if not time_s:
                return
            label = f"{'probe' if group == 'opsweep' else 'layer'} {row['kernel']}"
            faults = extra.get("faults_per_call") or 0.0
            variants = extra.get("variants") or {}  # aten op -> kernels.backends.op_variant (records since 2026-12-03)
            family = extra.get("family")
            g = extra.get("implicit_gemm")
            if g and row.get("flops"):
                if family is None:
                    family = _conv_family(g["batch"], g["n"]) if row.get("impl") == "Conv2d" else \
                        "linear" if row.get("impl") == "Linear" else None
                if family:
                    conv = extra.get("conv")  # a probe's (cin, cout, kernel, stride, groups); a layer row has none
                    taps = conv[2] ** 2 if conv else 1 if row.get("impl") == "Linear" else 0
                    self._add(family, dtype, Point(family, (g["m"], g["n"], g["k"], g["batch"]), time_s, row["flops"],
                                                   label, cold_s=_cold_s(row), taps=taps,
                                                   variant=variants.get("aten.convolution", ""), faults=faults))
            elif family == "attention" and row.get("shape") and row.get("flops"):
                b, h, t, d = row["shape"]
                self._add("attention", dtype, Point("attention", (t, t, d, b * h), time_s, row["flops"], label,
                                                    cold_s=_cold_s(row), faults=faults))
            elif family == "elementwise" and row.get("bytes"):
                for op in extra.get("ops") or []:
                    self.eltwise.setdefault((probe_key(op, variants.get(op, "")), dtype), []).append(
                        Point("elementwise", (row["bytes"],), time_s, row.get("flops") or 0, label, op=base_op(op),
                              cold_s=_cold_s(row), faults=faults))
        elif group == "stream" and row.get("impl") in ("torch", "", None) and \
                row.get("kernel") in ("copy", "add", "triad", "scale"):  # records before impl was kept: torch
            rate = row.get("bytes_per_s_median") or row.get("bytes_per_s")
            if rate and row.get("size_bytes"):
                self.stream.append((float(row["size_bytes"]), float(rate)))
        elif group == "calibration" and row.get("kernel") == "reference_model" and row.get("best_s"):
            self.calibration[dtype] = row
        elif group == "calibration" and row.get("kernel") == "reference_model_again" and row.get("median_s"):
            self.drift_row[dtype] = row
        elif group == "calibration" and row.get("kernel") == "evicting_model" and row.get("best_s"):
            self.eviction_row[dtype] = row
        elif group == "calibration" and row.get("kernel") in ("working_set_model", "working_set_model_without_faults") \
                and row.get("best_s") and extra.get("working_set_bytes"):
            # the calls without page faults (timed again where the record's faulted) stand for the model's
            if row["kernel"].endswith("without_faults") or \
                    not self.working_set_row.get(dtype, {}).get("kernel", "").endswith("without_faults"):
                self.working_set_row[dtype] = row
        elif group == "overhead" and row.get("kernel") == "dispatch":
            self.dispatch_s = row.get("median_s")
        elif group == "overhead" and row.get("kernel") == "module_call":
            self.module_call_s = row.get("median_s")
        elif group == "overhead" and row.get("kernel") == "probe_without_faults" and extra.get("probe"):
            self.fault_free[(f"probe {extra['probe']}", dtype)] = row
        elif group == "overhead" and row.get("kernel") in ("fresh_memory", "held_memory") and row.get("size_bytes"):
            self.fresh_rows[row["kernel"]] = row

    def dtypes(self) -> list[str]:
        return sorted({d for _f, d in self.points})

    def calibrate(self, dtype: str, reference_sum_s: float, reference_ops: int) -> tuple[float, float, str]:
        """Set the ``dtype`` calibration from the calibration row and what this model predicts for the reference
        model (``reference_sum_s`` over ``reference_ops`` ops, priced by kernels.predict from this record); returns
        (per_op_s, typical_factor, how)."""
        row = self.calibration[dtype]
        best_s, median_s, when = row["best_s"], row["median_s"], ""
        again = self.drift_row.get(dtype)
        if again and again.get("best_s") and again.get("median_s"):
            # timed before and after the probes: the geometric mean stands for the machine while they were measured
            best_s, median_s = math.sqrt(best_s * again["best_s"]), math.sqrt(median_s * again["median_s"])
            when = ", geometric mean of its timings before and after the probes"
        faults = (row.get("extra") or {}).get("faults_per_call") or 0
        page_s = self.page_fault_s()[0] if faults else 0.0
        if page_s:
            # a prediction adds the model's own counted faults: the reference model's come out of its calls first
            paid = faults * page_s
            best_s, median_s = max(best_s - paid, best_s / 2), max(median_s - paid, median_s / 2)
            when += f", less its {faults:.0f} page faults a call ({paid * 1e3:.2g} ms)"
        over, spread = best_s / reference_sum_s, median_s / best_s
        per_op = K_OP * (best_s - reference_sum_s) / max(reference_ops, 1)
        typical = 1.0 + K_TYPICAL * (spread - 1.0)
        how = (f"calibrated on the record's reference model ({row['n']} calls: best {best_s * 1e3:.3g} ms, "
               f"median {median_s * 1e3:.3g} ms{when}; its {reference_ops} ops sum to {reference_sum_s * 1e3:.3g} ms "
               f"here): best call = the sum of ops + {per_op * 1e6:.1f} us per op, median call = {typical:.3f} x the "
               f"best (K_OP {K_OP:g}, K_TYPICAL {K_TYPICAL:g})")
        if not (FACTOR_BOUNDS[0] <= over <= FACTOR_BOUNDS[1] and 1.0 <= spread <= FACTOR_BOUNDS[1]):
            per_op, typical = 0.0, 1.0
            how = (f"the record's reference model gave a calibration outside {FACTOR_BOUNDS} (best over its sum "
                   f"{over:.2f}, median over best {spread:.2f}): a disturbed calibration, not used")
        per_op = max(per_op, 0.0)
        self.factors[dtype] = (per_op, typical, how)
        return self.factors[dtype]

    def reference_median_s(self, dtype: str) -> float | None:
        """The reference model's median call while the record was made: the geometric mean of its timings before
        and after the probes where the record has both (what ``calibrate`` uses), else the first; None without."""
        first, again = self.calibration.get(dtype), self.drift_row.get(dtype)
        if not (first and first.get("median_s")):
            return None
        if again and again.get("median_s"):
            return math.sqrt(first["median_s"] * again["median_s"])
        return first["median_s"]

    def fresh_page_s(self, statistic: str = "best_s") -> float:
        """Seconds one 4 KiB page of fresh memory costs beyond writing held memory, from the best calls (the
        least it costs) or ``statistic`` "median_s"; 0 where the record did not measure it or it cost nothing
        (e.g. under GLIBC_TUNABLES that keep large blocks). The best, not the median: on a 2-core Zen 5 VM the
        same 64 MiB fresh write took 16 ms or 140 ms from one call to the next (bimodal: the host takes freed guest
        pages back and faults them in again). Records from kernels.opsweep.fresh_memory_times since 2026-12-03
        time the free too (1.17 us a page at best there, as probes and models paid 1.2-1.5 us); older ones timed
        the fault and zeroing only (0.65-0.8 us), and price faults low."""
        fresh, held = self.fresh_rows.get("fresh_memory"), self.fresh_rows.get("held_memory")
        if not (fresh and held and fresh.get(statistic) and held.get(statistic)):
            return 0.0
        return max(0.0, (fresh[statistic] - held[statistic]) / (fresh["size_bytes"] / PAGE_BYTES))

    def drift(self, dtype: str) -> tuple[float, str]:
        """How far the machine's speed moved while the record's probes were measured: the larger over the smaller
        median of the reference model timed before and after them (1.0 and "" where the record has one or none)."""
        first, again = self.calibration.get(dtype), self.drift_row.get(dtype)
        if not (first and again and first.get("median_s")):
            return 1.0, ""
        a, b = first["median_s"], again["median_s"]
        moved = reference_drift(first, again)
        return moved, (f"the machine's speed moved while the record was made: its reference model's median call took "
                       f"{a * 1e3:.3g} ms before the probes and {b * 1e3:.3g} ms after ({moved:.2f}x)")

    def calibrate_eviction(self, dtype: str, ops: list[Op]) -> tuple[float, str]:
        """Set ``dtype``'s eviction factor from the record's evicting model (``ops``: its count, priced here): its
        measured best call against the sum of its ops at their probes' warm times and at their cold-cache times;
        the factor is where between the two it landed (0 warm, 1 cold)."""
        row = self.eviction_row[dtype]
        priced = [self.predict_op(op) for op in ops]
        warm = sum(p.time_s for p in priced)
        cold = sum(p.time_s * p.cold_ratio for p in priced)
        best = row["best_s"]
        factor = min(1.0, max(0.0, (best - warm) / (cold - warm))) if cold > warm * 1.01 else 1.0
        how = (f"eviction calibrated on the record's evicting model ({(row.get('extra') or {}).get('blocks', '?')} "
               f"blocks: best call {best * 1e3:.3g} ms; its ops sum to {warm * 1e3:.3g} ms warm, {cold * 1e3:.3g} ms "
               f"cold): a model whose weights exceed the cache lands {100 * factor:.0f}% of the way to cold here")
        self.eviction[dtype] = (factor, how)
        return self.eviction[dtype]

    def evicted_share(self, touched_bytes: int) -> float:
        """The share of an op's data found evicted since its last call in a model that touches ``touched_bytes``
        anew each call (working_set_bytes): 1 - cache / touched, 0 where it fits the last-level cache."""
        if not self.llc_bytes or touched_bytes <= self.llc_bytes:
            return 0.0
        return 1.0 - self.llc_bytes / touched_bytes

    def calibrate_working_set(self, dtype: str, ops: list[Op], module_calls: int, small_ops: list[Op] | None = None,
                              small_calls: int = 0) -> tuple[float, str]:
        """Set ``dtype``'s working-set factor from the record's working-set row: the reference model on an image
        whose one call touches several times the cache anew (``ops``, ``module_calls``: its count, priced here).
        Its measured best call against the sum of its ops at their probes' warm and cold-cache times says how far
        toward cold it landed; over its evicted share (evicted_share) that is the factor a model's share is
        multiplied by. ``small_ops``/``small_calls``: the same model at the whole-model calibration's image, whose
        excess over its sum per op (dispatch between ops, not eviction) is taken out first."""
        row = self.working_set_row[dtype]
        touched = row["extra"]["working_set_bytes"]
        calls_s = (self.module_call_s or 0.0) * module_calls

        def sums(these: list[Op]) -> tuple[float, float]:  # (warm, cold) over the ops that eviction can slow
            priced = [self.predict_op(op) for op in these]
            kept = [p for p in priced if not (self.llc_bytes and p.op.bytes >= self.llc_bytes)]
            return (sum(p.time_s for p in priced), sum(p.time_s * (p.cold_ratio - 1) for p in kept))

        warm, extra_cold = sums(ops)
        per_op, small = 0.0, self.calibration.get(dtype)
        if small_ops and small and small.get("best_s"):
            small_warm = sums(small_ops)[0] + (self.module_call_s or 0.0) * small_calls
            per_op = max(0.0, (small["best_s"] - small_warm) / len(small_ops))
        share = self.evicted_share(touched)
        faults = (row.get("extra") or {}).get("faults_per_call") or 0
        paid = faults * self.page_fault_s()[0] if faults else 0.0  # its page faults are priced apart, as a model's
        best = max(row["best_s"] - paid, row["best_s"] / 2) - per_op * len(ops)
        side = (row.get("extra") or {}).get("input") or row.get("shape") or ["?"]
        if share <= 0 or extra_cold <= 0:
            factor, why = 0.0, ("it fits the cache" if share <= 0 else "its probes have no cold-cache times")
            how = (f"working set calibrated on the record's reference model at {side[-1]}x{side[-1]}: {why}, so "
                   "no model is priced as evicted")
        else:
            landed = (best - warm - calls_s) / extra_cold
            factor = min(WORKING_SET_BOUNDS[1], max(WORKING_SET_BOUNDS[0], landed / share))
            how = (f"working set calibrated on the record's reference model at {side[-1]}x{side[-1]} (touches "
                   f"{touched / 1e6:.0f} MB a call anew, {100 * share:.0f}% evicted from the "
                   f"{self.llc_bytes / 2**20:.0f} MiB cache: best call {row['best_s'] * 1e3:.3g} ms"
                   + (f", less its {faults:.0f} page faults a call ({paid * 1e3:.2g} ms)" if paid else "")
                   + (f", less {per_op * 1e6:.1f} us per op the same model at its smaller image sat above its sum"
                      if per_op else "")
                   + f"; its ops sum to {(warm + calls_s) * 1e3:.3g} ms warm, +{extra_cold * 1e3:.3g} ms cold): "
                   f"it landed {100 * landed:.0f}% of the way to cold, so a model's ops land {factor:.2f} x their "
                   f"evicted share of the way")
        self.working_set[dtype] = (factor, how)
        return self.working_set[dtype]

    # -- GEMM-like ops ---------------------------------------------------------------------------------------
    def gemm_time(self, op: Op) -> OpPrediction:
        if op.family == "conv_grouped" and op.gemm[1] >= WIDE_GROUP and self.points.get(("conv", op.dtype)):
            # a few wide groups run like a dense convolution of one group's size, each group in turn: priced from
            # the dense points at one group's GEMM (ResNeSt's radix groups ran 4x faster than the narrow-group
            # probes' rate said)
            m, n, k, _groups = op.gemm
            return replace(self.gemm_time(replace(op, family="conv", gemm=(m, n, k, 1))), op=op)
        family, dtype = op.family, op.dtype
        widened = ""
        pts = self.points.get((family, dtype), [])
        if not pts:
            for other in FALLBACK.get(family, []):
                if self.points.get((other, dtype)):
                    widened = f"no {family} points for {dtype}: leaned on {other} points (range x2)"
                    pts = self.points[(other, dtype)]
                    break
        if not pts:
            raise PredictError(f"the record has no measured {family} points (nor {', '.join(FALLBACK.get(family, []))}) "
                               f"in {dtype}: run the suite with --dtypes {dtype} on that device")
        if op.variant and any(p.variant for p in pts):
            # the record says which backend ran each probe: an op is priced among the probes torch runs the same
            # way (a CPU convolution's oneDNN and im2col paths differ by 1.3-1.5x at one shape), where it has 2+
            same = [p for p in pts if p.variant == op.variant]
            if len(same) >= 2:
                pts = same
            else:
                widened = widened or f"only {len(same)} {family} probe(s) ran as {op.variant}: priced among all"
        smallest = min(p.flops for p in pts)
        if op.flops * SMALLER_THAN_PROBES < smallest:
            # the family was probed only at larger sizes (a --quick record holds a few large dense convolutions):
            # the GEMM sweep, where it reaches this size, prices the op better than extrapolated large probes
            for other in ("linear", "bmm"):
                cand = self.points.get((other, dtype), [])
                if other != family and cand and min(p.flops for p in cand) <= op.flops * SMALLER_THAN_PROBES:
                    widened = (f"{smallest / max(op.flops, 1):.0f}x less work than the smallest {family} probe: "
                               f"priced from the {other} (GEMM) points of its size (range x2)")
                    pts = cand
                    break
        scored = sorted(((_distance(op, p), p) for p in pts), key=lambda s: s[0])[:NEIGHBOURS]
        weights = [1.0 / (d + 1e-3) for d, _p in scored]
        log_rate = sum(w * math.log(p.rate) for w, (_d, p) in zip(weights, scored)) / sum(weights)
        rate = math.exp(log_rate)
        # the floor: a family probed at this op's size (3+ points, one with at most SMALLER_THAN_PROBES x its work)
        # has its fastest call as the least any call costs (dispatch, setup); else only a point with no more work
        # than this op bounds it from below, and failing that the record's dispatch cost. (The fastest of a few
        # large probes is no floor: a --quick record's 1.45 ms dense conv once priced every small conv at 1.45 ms.)
        near = [p for p in pts if p.flops <= op.flops * SMALLER_THAN_PROBES]
        floor = min(p.time_s for p in pts) if len(pts) >= 3 and near else \
            min((p.time_s for p in pts if p.flops <= op.flops), default=self.dispatch_s or 0.0)
        time_s = max(op.flops / rate, floor)
        nearest = math.sqrt(scored[0][0])
        rates = [p.rate for _d, p in scored]
        spread = max(MIN_SPREAD, (max(rates) / min(rates) - 1) / 2)
        if nearest > math.log(4):  # more than 4x away from every measured shape in some dimension
            spread *= 2
            widened = widened or f"{math.exp(nearest):.0f}x from the nearest measured shape (range x2)"
        if widened.startswith("no "):
            spread *= 2
        bound = "overhead" if op.flops / rate < 0.999 * floor else "compute"
        if bound == "compute" and self.peaks.get(dtype) and rate < 0.05 * self.peaks[dtype]:
            bound = "memory/overhead"  # the points it leaned on ran far below this dtype's GEMM peak
        basis = f"{family} at {rate / 1e9:.3g} G{'OP' if dtype == 'int8' else 'FLOP'}/s from {scored[0][1].label}" + \
                (f" +{len(scored) - 1} more" if len(scored) > 1 else "")
        return OpPrediction(op, time_s, time_s / (1 + spread), time_s * (1 + spread), bound, basis, widened,
                            cold_ratio=_cold_ratio([p for _d, p in scored]))

    # -- everything else ------------------------------------------------------------------------------------------
    def other_time(self, op: Op) -> OpPrediction:
        pts = self.eltwise.get((probe_key(op.op, op.variant), op.dtype))
        basis = f"probes of {probe_key(op.op, op.variant)}"
        widened = ""
        if not pts and op.variant:
            pts = self.eltwise.get((base_op(op.op), op.dtype))
            basis = f"probes of {base_op(op.op)}"
            widened = f"no probe of {probe_key(op.op, op.variant)}: priced as {base_op(op.op)} (range x2)"
        if not pts:
            pts = self._generic(op.dtype)
            basis, widened = "generic element-wise probes", f"no probe of {base_op(op.op)}: the median of all (range x2)"
        if pts:
            time_s = _interp_bytes(pts, max(op.bytes, 1))
            spread = MIN_SPREAD * (2 if widened else 1)
            if op.bytes > 4 * pts[-1].key[0]:
                spread *= 2
            bound = "overhead" if op.bytes <= pts[0].key[0] else "memory"
            return OpPrediction(op, time_s, time_s / (1 + spread), time_s * (1 + spread), bound, basis, widened,
                                cold_ratio=_cold_ratio(pts))
        if not self.stream or not self.dispatch_s:
            raise PredictError("the record has neither element-wise probes nor a stream sweep and dispatch cost: "
                               "it cannot price non-GEMM ops")
        bw = _interp_curve(self.stream, max(op.bytes, 1))
        time_s = self.dispatch_s + op.bytes / bw
        bound = "memory" if op.bytes / bw > self.dispatch_s else "overhead"
        return OpPrediction(op, time_s, time_s / 1.6, time_s * 1.6, bound,
                            f"dispatch {self.dispatch_s * 1e6:.1f} us + stream {bw / 1e9:.3g} GB/s",
                            "no element-wise probes in the record: stream curve + dispatch (range x3)")

    def _generic(self, dtype: str) -> list[Point]:
        by_size: dict[float, list[float]] = {}
        for (_op, d), pts in self.eltwise.items():
            if d == dtype:
                for p in pts:
                    by_size.setdefault(p.key[0], []).append(p.time_s)
        return [Point("elementwise", (size,), statistics.median(ts), 0, "generic") for size, ts in sorted(by_size.items())]

    def predict_op(self, op: Op) -> OpPrediction:
        return self.gemm_time(op) if op.family in GEMM_FAMILIES and op.gemm else self.other_time(op)

    def predict(self, model: str, ops: Iterable[Op], module_calls: int, dtype: str,
                weight_bytes: int | None = None, faults=None) -> Prediction:
        """``weight_bytes``: the model's parameters in bytes. Where they exceed the record's last-level cache, a
        model's op finds its weights evicted since its last call, as its back-to-back probe did not: each op is
        priced that share (1 - cache / weights) of the way from its probes' warm time to their cold-cache time.
        ``faults``: the model's page faults per call counted by running it (kernels.pages.FaultCount: ``per_call``
        and ``how()``), each priced at the record's price of a fault (page_fault_s); a string says why they were not
        counted, and then (as with None) only outputs of FRESH_BYTES or more are priced as fresh."""
        ops = list(ops)
        if dtype not in self.dtypes():
            groups = sorted({str(m.get("group")) for m in self.record.get("measurements", [])
                             if m.get("status") == "ok" and m.get("dtype") == dtype})
            had = (f"its {dtype} points are {' and '.join(groups)} points only, " if groups else
                   f"it has GEMM/operator points in {', '.join(self.dtypes()) or 'no dtype'}, ")
            raise PredictError(f"{self.name or 'the record'} cannot price {dtype} operators: {had}and the predictor "
                               f"needs {dtype} GEMM and operator points; make a record with pytest "
                               f"bench/test_gemm.py bench/test_stream.py bench/test_opsweep.py --dtypes {dtype}")
        notes = []
        if self.module_call_s is None:
            notes.append("the record has no module-call cost: container modules are counted as free")
        if (self.record.get("options") or {}).get("quick") and any(o.family.startswith("conv") for o in ops):
            notes.append("a --quick record: its convolution probes are a few large dense shapes, so smaller "
                         "convolutions are priced from the GEMM sweep or by extrapolation (wider range); a record "
                         "from pytest bench/test_gemm.py bench/test_stream.py bench/test_opsweep.py without --quick "
                         "probes them")
        if not any(f == "conv" for f, _d in self.points) and any(o.family.startswith("conv") for o in ops):
            notes.append("the record has no convolution probes (a run before bench/test_opsweep.py): convolutions "
                         "lean on GEMM points, expect a wide error")
        predictions = [self.predict_op(op) for op in ops]
        working = self.working_set.get(dtype) or next(iter(self.working_set.values()), None)
        share = 0.0
        if working and self.llc_bytes:
            # the record measured how a model that outgrows the cache lands: each op's data is evicted in the share
            # the model's working set exceeds the cache by
            touched = working_set_bytes(weight_bytes or 0, (op.out_bytes for op in ops))
            evicted_share = self.evicted_share(touched)
            share = working[0] * evicted_share
            if evicted_share > 0:
                notes.append(f"one call touches {touched / 1e6:.0f} MB anew (weights and outputs), "
                             f"{100 * evicted_share:.0f}% past the last-level cache ({self.llc_bytes / 2**20:.0f} MiB): "
                             + (f"each op that moves less than the cache is priced {100 * share:.0f}% of the way from "
                                f"its probes' warm time to their cold-cache time" if share > 0 else
                                "priced at the probes' warm times all the same, as the record's calibration says")
                             + f"; {working[1]}")
        elif weight_bytes and self.llc_bytes and weight_bytes > self.llc_bytes:
            # a record without the working-set calibration: eviction where the weights alone exceed the cache, as
            # far toward cold as the record's evicting model (dense convolutions) landed
            landed, how_evicted = self.eviction.get(dtype) or next(iter(self.eviction.values()), None) or \
                (1.0, "the record has no eviction calibration (a run before bench/test_opsweep.py timed its evicting "
                      "model): priced the full way")
            share = landed * (1.0 - self.llc_bytes / weight_bytes)
            notes.append(f"the model's weights ({weight_bytes / 1e6:.0f} MB) exceed the last-level cache "
                         f"({self.llc_bytes / 2**20:.0f} MiB): each op that moves less than the cache is priced "
                         f"{100 * share:.0f}% of the way from its probes' warm time to their cold-cache time; "
                         f"{how_evicted}")
        if share > 0:
            # an op that alone moves more than the cache already streamed from memory in its warm probe
            def evicted(p: OpPrediction) -> OpPrediction:
                if p.op.bytes >= self.llc_bytes:
                    return p
                factor = 1 + share * (p.cold_ratio - 1)
                return replace(p, time_s=p.time_s * factor, low_s=p.low_s * factor, high_s=p.high_s * factor)

            predictions = [evicted(p) for p in predictions]
        page_s, price_how = self.page_fault_s() if self.kind == "cpu" else (0.0, "")
        fault_s, page_faults = 0.0, None
        if self.kind == "cpu" and isinstance(faults, str):
            notes.append(f"page faults not counted: {faults}")
        elif self.kind == "cpu" and faults is not None:
            page_faults = faults.per_call
            if page_s:
                fault_s = page_faults * page_s
                notes.append(f"{faults.how()}: each costs {page_s * 1e6:.2f} us here ({price_how}), "
                             f"+{fault_s * 1e3:.3g} ms a call, in the best and median call (not in any layer's time)")
            else:
                notes.append(f"{faults.how()}: not priced, {price_how}")
        fresh = [p for p in predictions if p.op.out_bytes >= FRESH_BYTES] if page_faults is None else []
        if page_s and fresh:
            # glibc maps these outputs afresh on every call: a page fault per 4 KiB page they write
            def faulted(p: OpPrediction) -> OpPrediction:
                if p.op.out_bytes < FRESH_BYTES:
                    return p
                extra = p.op.out_bytes / PAGE_BYTES * page_s
                return replace(p, time_s=p.time_s + extra, low_s=p.low_s + extra, high_s=p.high_s + extra,
                               basis=f"{p.basis} + {extra * 1e3:.2g} ms fresh pages")

            predictions = [faulted(p) for p in predictions]
            total = sum(p.op.out_bytes for p in fresh)
            typical_page_s = self.fresh_page_s("median_s")
            notes.append(f"{len(fresh)} ops write outputs of {FRESH_BYTES // 2**20} MiB or more ({total / 1e6:.0f} MB a "
                         f"call), which the allocator maps fresh from the OS on every call: each page costs at least "
                         f"{page_s * 1e6:.2f} us more here ({price_how}), "
                         f"+{total / PAGE_BYTES * page_s * 1e3:.3g} ms (other fresh memory is priced where a model's "
                         "faults are counted: kernels.pages)"
                         + (f"; the fresh-memory write's median calls cost {typical_page_s * 1e6:.2f} us a page, which "
                            f"would add {total / PAGE_BYTES * typical_page_s * 1e3:.3g} ms"
                            if typical_page_s > 2 * page_s else ""))
        per_op, typical, how = self.factors.get(dtype, (0.0, 1.0, ""))
        if how:
            notes.append(how)
        elif dtype not in self.calibration:
            notes.append("the record has no whole-model calibration (a run before bench/test_opsweep.py timed its "
                         "reference model): the prediction is the sum of the ops at their warm probes' times, which "
                         "sits near a model's best call; its median call is usually slower")
        drift, how_drift = self.drift(dtype)
        if drift > DRIFT_NOTICE:
            notes.append(f"{how_drift}: the range is widened by it (a prediction cannot be steadier than the machine "
                         f"it was measured on)")
        else:
            drift = 1.0
        return Prediction(model, dtype, self.name, self.device, predictions, module_calls, self.module_call_s or 0.0,
                          notes, per_op_s=per_op, typical_factor=typical, drift=drift, fault_s=fault_s,
                          page_faults=page_faults)


def channel_alignment(family: str, gemm: tuple, taps: int) -> int:
    """The largest power of two up to ALIGN that divides a convolution's channel counts (input and output per
    group; a depthwise one's channels), from its implicit GEMM (M, N, K, groups) and kernel taps; 0 where it is no
    convolution or the taps are unknown."""
    if not family.startswith("conv") or not taps or not gemm:
        return 0
    _m, n, k, groups = gemm
    channels = [groups] if family == "conv_dw" else [n, max(1, k // taps)]
    return min(ALIGN, *(c & -c for c in channels if c > 0))


def _distance(op: Op, point: Point) -> float:
    """Squared distance in log M, N, K, batch, and, where both say, log kernel taps (a 16x16 patch embedding and a
    1x1 convolution of the same implicit GEMM run different code) and log2 channel alignment (channel_alignment:
    72 channels run other code than 64 or 80)."""
    d = sum((math.log(max(a, 1)) - math.log(max(b, 1))) ** 2 for a, b in zip(op.gemm, point.key))
    if op.taps and point.taps:
        d += (math.log(op.taps) - math.log(point.taps)) ** 2
        a, b = channel_alignment(op.family, op.gemm, op.taps), channel_alignment(point.family, point.key, point.taps)
        if a and b:
            d += (math.log(a) - math.log(b)) ** 2
    return d


def _interp_bytes(points: list[Point], size: float) -> float:
    """log-log interpolation of time on bytes; below the smallest probe its time (a floor: dispatch), above the
    largest its time scaled linearly with bytes (bandwidth-bound)."""
    first, last = points[0], points[-1]
    if size <= first.key[0]:
        return first.time_s
    if size >= last.key[0]:
        return last.time_s * size / last.key[0]
    for a, b in zip(points, points[1:]):
        if a.key[0] <= size <= b.key[0]:
            if b.key[0] == a.key[0]:
                return (a.time_s + b.time_s) / 2
            f = (math.log(size) - math.log(a.key[0])) / (math.log(b.key[0]) - math.log(a.key[0]))
            return math.exp(math.log(a.time_s) + f * (math.log(b.time_s) - math.log(a.time_s)))
    return last.time_s


def _interp_curve(curve: list[tuple[float, float]], size: float) -> float:
    """Bandwidth at a working-set size: the median of the stream points at the nearest measured size (log)."""
    nearest = min(curve, key=lambda c: abs(math.log(c[0]) - math.log(size)))[0]
    return statistics.median(rate for s, rate in curve if s == nearest)
