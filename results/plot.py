"""The log-log roofline PNG: one horizontal roof per dtype, one slanted roof per memory level, ridge points
marked against DRAM. Uses matplotlib (through seaborn's styling) with the Agg backend: no screen needed."""
from __future__ import annotations

import os

from results.record import atomic_savefig
from results.summary import silicon_kind
from results.units import si

#: a compute roof below this fraction of the highest is listed in the legend but not drawn (an emulated dtype, e.g.
#: fp8 on a CPU at 70 MFLOP/s, would stretch the intensity axis over ten more octaves and squash the rest)
UNDRAWN_FRACTION = 1e-3


def roofline_png(result, path: str | os.PathLike) -> str:
    """Draw the measured roofline of the analysis ``result`` to ``path`` (layer points: results.layer_plots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    record = result.record
    compute, memory = result.compute, result.memory
    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=(10, 6.5), dpi=120)
    if not compute and not memory:
        ax.text(0.5, 0.5, "no verified ceilings in this record", ha="center", va="center", transform=ax.transAxes)
    peaks = sorted(compute.values(), key=lambda c: c.value)
    top = max((c.value for c in peaks), default=None)
    undrawn = [c for c in peaks if top and c.value < UNDRAWN_FRACTION * top]
    peaks = [c for c in peaks if c not in undrawn]
    lo_i, hi_i = 1 / 64, 4096.0
    if peaks and memory:
        hi_i = max(hi_i, 4 * top / min(m.value for m in memory.values()))
        lo_i = min(lo_i, peaks[0].value / max(m.value for m in memory.values()) / 64)
    xs = [lo_i * (hi_i / lo_i) ** (i / 200) for i in range(201)]
    mem_colors = sns.color_palette("dark", 10)[::-1]
    dram_name = result.dram_level
    for (name, ceiling), color in zip(memory.items(), mem_colors):
        ys = [ceiling.value * x if top is None else min(top, ceiling.value * x) for x in xs]
        ax.plot(xs, ys, color=color, lw=2.2 if name == dram_name else 1.4, ls="-" if name == dram_name else "--",
                label=f"{name}: {si(ceiling.value, 'B/s')} ({ceiling.kernel})")
    dram = memory.get(dram_name) if dram_name else None
    for ceiling, color in zip(peaks, sns.color_palette("bright", max(len(peaks), 1))):
        start = ceiling.value / dram.value if dram else lo_i
        shape = "x".join(str(v) for v in (ceiling.shape or [])[1:])
        ax.plot([start, hi_i], [ceiling.value, ceiling.value], color=color, lw=2.2,
                label=f"{ceiling.name}: {si(ceiling.value, ceiling.unit)} (GEMM {shape}"
                      + (f", {ceiling.impl})" if ceiling.impl not in ("", "torch") else ")"))
        if dram:
            ridge = ceiling.value / dram.value
            ax.plot([ridge], [ceiling.value], "o", color=color, ms=6)
            ax.annotate(f"{ridge:.1f}", (ridge, ceiling.value), textcoords="offset points", xytext=(5, -12),
                        fontsize=8, color=color)
    # the roofs above torch's (issue: silicon vs BLAS, hardware vs torch): dashed, labelled, drawn where they exist
    hw_dram = result.memory_hw.get("DRAM")
    silicon = result.silicon
    roof_top = max([top or 0] + [c.value for c in silicon.values()]) or None
    if hw_dram:
        ys = [min(roof_top or 1e30, hw_dram.value * x) for x in xs]
        ax.plot(xs, ys, color="0.35", lw=1.4, ls=(0, (5, 3)),
                label=f"DRAM, hardware: {si(hw_dram.value, 'B/s')} (native {hw_dram.kernel})")
    gemm_colors = {c.name: col for c, col in zip(peaks, sns.color_palette("bright", max(len(peaks), 1)))}
    spare = iter(sns.color_palette("dark", 8))
    for dtype, c in silicon.items():
        start = c.value / (hw_dram or dram).value if (hw_dram or dram) else lo_i
        ax.plot([start, hi_i], [c.value, c.value], color=gemm_colors.get(dtype) or next(spare), lw=1.4,
                ls=(0, (5, 3)), label=f"{dtype} silicon: {si(c.value, c.unit)} ({silicon_kind(c)})")
    for c in undrawn:
        ax.plot([], [], " ", label=f"{c.name}: {si(c.value, c.unit)} (GEMM): below 1/{1 / UNDRAWN_FRACTION:.0f} of the "
                                    "top roof, not drawn")
    if silicon or hw_dram:
        highest_roof = max([c.value for c in silicon.values()] + [top or 0])
        top = max(top or 0, highest_roof) or top
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlim(lo_i, hi_i)
    highest = top or max([m.value * hi_i for m in memory.values()] or [1e12])
    bottom = min([m.value * lo_i for m in memory.values()] + [highest / 1e4])
    ax.set_ylim(bottom, highest * 2)
    if compute or memory:
        ax.legend(loc="lower right", fontsize=8, title="measured ceilings (dots: ridge points vs "
                  f"{dram_name or '?'}, FLOP/B)", title_fontsize=8, framealpha=0.9)
    ax.set_xlabel("arithmetic intensity I [FLOP/byte] (log2)")
    ax.set_ylabel("attainable performance [FLOP/s; OP/s for int8] (log10)")
    info = record["platform"]
    flags = " (quick run)" if record.get("options", {}).get("quick") else ""
    ax.set_title(f"Measured roofline: {info.get('name')} [{info.get('device')}]{flags}\n"
                 f"peaks = best GEMM per dtype; bandwidth = best torch stream kernel per level (STREAM bytes); "
                 f"{record['created'][:10]}"
                 + ("\ndashed: the hardware's roofs (native C: register-only FMA and engine chains, cached/non-temporal stores)"
                    if result.silicon or result.memory_hw else ""), fontsize=10)
    fig.tight_layout()
    path = os.fspath(path)
    atomic_savefig(fig, path)
    plt.close(fig)
    return path

