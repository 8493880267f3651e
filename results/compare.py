"""Side by side: records from different machines, one table and one PNG. No torch, no GPU needed."""
from __future__ import annotations

from results.distributed import curves, dp_model, fits, link_rate, ok_rows
from results.units import si


def _label(record: dict) -> str:
    info = record["platform"]
    made = " (HAND-MADE)" if "HAND-MADE" in str(record.get("note", "")) else ""
    world = record.get("distributed")
    job = f" {world['world_size']} ranks {world['backend']}" if world else ""
    return f"{info.get('name')} [{info.get('device')}]{job} {record['created'][:10]}{made}"


def unique_labels(records: list[dict]) -> list[str]:
    """One column label per record; two records of one machine and day (a before/after pair, the same record
    twice) get their run time and then their position added, so no two columns share a label."""
    base = [_label(r) for r in records]
    labels = [f"{label} {str(r.get('created', ''))[11:19]}".rstrip() if base.count(label) > 1 else label
              for label, r in zip(base, records)]
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(f"{label} #{seen[label]}" if labels.count(label) > 1 else label)
    return out


def _power_w(record: dict, ceiling) -> float | None:
    for m in record["measurements"]:
        if m.get("kernel") == ceiling.kernel and m.get("dtype") == ceiling.dtype and m.get("shape") == ceiling.shape:
            tel = m.get("telemetry") or {}
            if "power_w" in tel:
                return tel["power_w"]["median"]
    return None


def compare_table(analyses: list):
    """Rows: ceilings, ridge points, measured/spec, performance per watt, layer/model times; one column per record
    (``analyses``: results.analysis.Analysis, one per record)."""
    import pandas as pd

    records = [a.record for a in analyses]
    labels = unique_labels(records)
    rows: dict[tuple[str, str], dict[str, str]] = {}

    def put(section, name, label, text):
        rows.setdefault((section, name), {})[label] = text

    for result, label in zip(analyses, labels):
        record = result.record
        if record.get("distributed"):
            _distributed_rows(record, label, put)
            continue
        for dtype, c in result.compute.items():
            put("peak compute (best)", dtype, label, si(c.value, c.unit))
            power = _power_w(record, c)
            if power:
                put("per watt (measured power)", dtype, label, si(c.value / power, c.unit + "/W") + f" @ {power:.0f} W")
        for level, c in list(result.memory.items()) + list(result.transfer.items()):
            put("bandwidth (best)", level, label, si(c.value, "B/s"))
        for dtype, ridge in result.ridge_flop_per_byte.items():
            put(f"ridge vs {result.dram_level}", dtype, label, f"{ridge:.1f} FLOP/B")
        if result.spec_error is None:
            put("measured / spec", "sheet", label, result.spec.name if result.spec else result.spec_how.split(":")[0][:40])
        else:  # a bad sheet must not hide the comparison
            put("measured / spec", "error", label, str(result.spec_error)[:60])
        for check in result.validation:
            put("measured / spec", check["ceiling"], label, f"{100 * check['ratio']:.0f}%" + (" !" if check["flags"] else ""))
        for m in record["measurements"]:
            if m.get("group") in ("layer", "model") and m.get("status") == "ok" and m.get("median_s") \
                    and not m.get("superseded"):
                put(f"{m['group']} time (median)", f"{m['kernel']} {m['dtype']}", label, f"{m['median_s'] * 1e3:.3g} ms")
    sections = list(dict.fromkeys(section for section, _ in rows))
    ordered = sorted(rows, key=lambda key: sections.index(key[0]))  # stable: keeps the order within a section
    table = pd.DataFrame.from_dict({key: rows[key] for key in ordered}, orient="index", columns=labels)
    table.index = pd.MultiIndex.from_tuples(table.index, names=["what", "name"])
    table = table.fillna("-")
    if len(records) >= 2:  # speedups of timed layers/models against the first record
        base = labels[0]
        for key in [k for k in table.index if k[0].endswith("time (median)")]:
            for label in labels[1:]:
                a, b = table.loc[key, base], table.loc[key, label]
                if a != "-" and b != "-":
                    table.loc[key, label] = f"{b} ({float(a.split()[0]) / float(b.split()[0]):.2f}x)"
    return table


def _distributed_rows(record: dict, label: str, put) -> None:
    """A distributed record's column: the job, best bus bandwidth, fitted latency and bandwidth per collective, the
    p2p fits, barrier and the data-parallel crossover."""
    world = record["distributed"]
    put("job", "ranks x nodes", label, f"{world['world_size']} x {world['nodes']}")
    put("job", "backend", label, f"{world['backend']} {world['backend_version']}"[:40])
    rate, _ = link_rate(record)
    put("job", "link rate (sheet/NVML)", label, si(rate, "B/s") if rate else "-")
    fitted = fits(record)
    for kind, rows in curves(record).items():
        best = max(rows, key=lambda m: m["extra"].get("busbw_bytes_per_s") or 0)
        put("busbw (best)", kind, label, si(best["extra"].get("busbw_bytes_per_s"), "B/s"))
        f = fitted.get(kind) or {}
        if f.get("alpha_s") is not None:
            put("latency alpha (fit)", kind, label, f"{f['alpha_s'] * 1e6:.3g} us")
    for kind, f in fitted.items():
        if kind.startswith("send_recv") and f.get("beta_bytes_per_s"):
            put("busbw (best)", kind, label, si(f["beta_bytes_per_s"], "B/s") + " (fit)")
            put("latency alpha (fit)", kind, label, f"{f['alpha_s'] * 1e6:.3g} us")
    for m in ok_rows(record, "barrier"):
        put("latency alpha (fit)", "barrier (best)", label, f"{m['best_s'] * 1e6:.3g} us")
    dp = dp_model(record)
    if dp and not dp.get("error"):
        put("data-parallel step", f"{dp['name']} all_reduce", label, f"{dp['comm_s'] * 1e3:.3g} ms")
        put("data-parallel step", "compute = comm at batch/rank", label, f"{dp['crossover_batch_per_rank']:.3g}")
