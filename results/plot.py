"""The PNGs of a record: the measured roofline, each model's layers on it, where their time goes, the batch sweeps,
the comparison of several records and the collectives. Each is a description from results/figures.py drawn by
results/mplplot.py (the page draws the same descriptions as SVG)."""
from __future__ import annotations

import os
from pathlib import Path

from results import figures
from results.compare import unique_labels
from results.mplplot import png


def roofline_png(result, path: str | os.PathLike) -> str:
    """The measured roofline of the analysis ``result``, to ``path``."""
    return png(figures.roofline(result), path)


def write_layer_plots(result, stem: str | os.PathLike) -> list[str]:
    """Every layer picture of the analysis ``result``, named after ``stem``: per model and dtype its layers on the
    roofline and (two or more layers) where the time goes; the batch sweeps. Returns their paths."""
    record, rows = result.record, result.layers
    stem = Path(stem)
    paths = []
    for (model, dtype), mine in figures.model_groups(rows).items():
        title = f"{model} [{dtype}] on the measured roofline of {record['platform'].get('name')}"
        name = f"{figures.slug(model)}-{dtype}"
        paths.append(png(figures.layers(result, mine, title), f"{stem}.layers-{name}.png"))
        if len(mine) >= 2:
            paths.append(png(figures.gaps(mine, f"{model} [{dtype}]"), f"{stem}.gap-{name}.png"))
    for (source, dtype), chosen in figures.sweep_groups(rows).items():
        paths.append(png(figures.sweep(result, chosen, f"{source} [{dtype}]"),
                         f"{stem}.sweep-{figures.slug(source)}-{dtype}.png"))
    return paths


def write_variant_plots(result, stem: str | os.PathLike) -> list[str]:
    """Per model and batch, its variants on the measured roofline (results/variants.py's rows), named after
    ``stem``. Returns their paths (none where no variant was measured)."""
    from results.variants import groups, variant_rows

    paths = []
    for (model, batch), mine in groups(variant_rows(result)).items():
        fig = figures.variants(result, mine, variants_title(result, model, batch))
        if fig is not None:
            paths.append(png(fig, f"{Path(stem)}.variants-{figures.slug(str(model))}-b{batch}.png"))
    return paths


def variants_title(result, model, batch) -> str:
    return f"{model} at batch {batch}: its variants on the measured roofline of {result.info.get('name')}"


def compare_png(analyses: list, path: str | os.PathLike) -> str:
    """Overlaid measured rooflines of several analysed records, one colour per record."""
    return png(figures.compare(analyses, unique_labels([a.record for a in analyses])), path)


def busbw_png(records: list[dict], path: str | os.PathLike, labels: list[str] | None = None) -> str:
    """Bus bandwidth vs message size of distributed records (one colour per collective, one dash per record)."""
    return png(figures.busbw(records, labels or [r.get("run_id", "") for r in records]), path)


def write_distributed_plots(record: dict, stem: str | os.PathLike) -> list[str]:
    """A torchrun job's pictures: bus bandwidth, and the data-parallel estimate where a model was counted."""
    out = [busbw_png([record], f"{stem}.busbw.png")]
    dp = figures.dp(record)
    return out + ([png(dp, f"{stem}.dp.png")] if dp else [])
