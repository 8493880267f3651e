"""Everything derived from one run record, computed once: ``analyse(record) -> Analysis``.

An ``Analysis`` is immutable (a frozen dataclass; its tables are read-only mappings and tuples) and holds the record
it was made from, so every reader takes just this one object: the text summary (results/summary.py), the page
(results/page.py), the plots, compare and the spec check. The shape follows torch.utils.benchmark's split of
measuring (the harness), statistics (this object) and presentation (the readers), written for this project.

What it holds:
* ceilings (results/roofline.py): compute per dtype (GEMM), silicon (register-only chains and engines; figures below
  their GEMM are set aside in ``silicon_below_gemm`` with the reason), memory per level (torch's and the hardware's),
  host<->device transfers, ridge points against DRAM, plateaus, the dispatch cost and one device sync;
* layer rows and model rows (results/layers.py): every timed layer on the roofline with its gap split;
* the spec check (results/speccheck.py): the sheet used (or how none was), its rows, or the error a broken sheet
  raised, kept so that a broken sheet never hides the measurements.
Pure Python: no torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping

from results import roofline
from results.layers import layer_rows, model_rows
from results.roofline import Ceiling
from results.speccheck import validate
from results.specs import spec_for_record

_EMPTY: Mapping = MappingProxyType({})


@dataclass(frozen=True)
class Analysis:
    record: Mapping[str, Any]
    compute: Mapping[str, Ceiling] = field(default_factory=lambda: _EMPTY)
    memory: Mapping[str, Ceiling] = field(default_factory=lambda: _EMPTY)
    transfer: Mapping[str, Ceiling] = field(default_factory=lambda: _EMPTY)
    silicon: Mapping[str, Ceiling] = field(default_factory=lambda: _EMPTY)
    memory_hw: Mapping[str, Ceiling] = field(default_factory=lambda: _EMPTY)
    #: silicon figures below the GEMM of their dtype: {dtype: {"ceiling": Ceiling, "reason": text}}, no roof
    silicon_below_gemm: Mapping[str, Mapping] = field(default_factory=lambda: _EMPTY)
    ridge_flop_per_byte: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    dram_level: str | None = None
    plateaus: tuple = ()
    dispatch_overhead_s: float | None = None
    sync_latency_s: float = 0.0
    #: one row per timed layer (results.layers.layer_rows), one per timed model (results.layers.model_rows)
    layers: tuple = ()
    models: tuple = ()
    #: the sheet checked against (None: a CPU's computed peak, or no sheet matched), how it was chosen, the rows
    spec: Any = None
    spec_how: str = ""
    validation: tuple = ()
    #: the exception a broken or missing sheet raised (the check is then empty; the figures stand)
    spec_error: Exception | None = None

    @property
    def info(self) -> Mapping[str, Any]:
        return self.record.get("platform") or {}

    @property
    def dram(self) -> Ceiling | None:
        """The memory roof ridge points are taken against: DRAM, or the largest working set if caches are unknown."""
        return self.memory.get(self.dram_level) if self.dram_level else None


def _frozen(table: dict) -> Mapping:
    return MappingProxyType(dict(table))


def analyse(record: dict, spec_path: str | None = None) -> Analysis:
    """The analysis of ``record``; the spec check uses ``spec_path`` if given, else the record's own ``--spec``, else
    the bundled sheet that matches the device (none on a CPU: its peak is computed)."""
    rows = record["measurements"]
    caches = (record.get("platform") or {}).get("caches") or []
    compute = roofline.compute_ceilings(rows)
    memory = roofline.memory_ceilings(rows, caches)
    silicon = roofline.silicon_ceilings(rows)
    below = roofline.silicon_below_gemm(silicon, compute)
    for dtype in below:
        del silicon[dtype]
    memory_hw = roofline.memory_ceilings(rows, caches, hardware=True) if any(map(roofline.is_hardware, rows)) else {}
    dram = memory.get("DRAM") or memory.get("largest")
    sizes, values = roofline.best_curve(rows)
    base = Analysis(
        record=record, compute=_frozen(compute), memory=_frozen(memory),
        transfer=_frozen(roofline.transfer_ceilings(rows)), silicon=_frozen(silicon), memory_hw=_frozen(memory_hw),
        silicon_below_gemm=_frozen({d: MappingProxyType(e) for d, e in below.items()}),
        ridge_flop_per_byte=_frozen({d: roofline.ridge_point(c.value, dram.value) for d, c in compute.items()}
                                    if dram else {}),
        dram_level=dram.name if dram else None,
        plateaus=tuple(roofline.detect_plateaus(sizes, values)) if sizes else (),
        dispatch_overhead_s=roofline.dispatch_overhead_s(rows), sync_latency_s=roofline.sync_latency_s(rows))
    layers = tuple(layer_rows(base))
    base = replace(base, layers=layers, models=tuple(model_rows(base, layers)))
    try:
        spec, how = spec_for_record(record, spec_path or (record.get("options") or {}).get("spec"))
        return replace(base, spec=spec, spec_how=how, validation=tuple(validate(base, spec)))
    except Exception as exc:  # a broken sheet must not hide the measurements: every reader says it instead
        return replace(base, spec_error=exc)
