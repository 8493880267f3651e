"""The communication roof from a distributed record: alpha-beta fits, half-bandwidth sizes, the data-parallel
compute-vs-communication model, the summary and the plots. Pure Python (numpy, pandas, matplotlib): no torch.

Fit: t(n) = alpha + n / beta by least squares on relative error (each point weighted by 1 / t, so the microsecond
points and the second-long points count alike), n = the collective's named size (nccl-tests' convention), t = the
slowest rank's best time. beta is then the asymptotic *algorithm* bandwidth; its bus bandwidth is beta x the bus
factor, comparable to the link's rate.
"""
from __future__ import annotations

import json
import math
from typing import Any

from platforms.distributed import oversubscription
from results.speccheck import PCIE_LANE_GB_PER_S
from results.specs import spec_for_record
from results.units import binary_size, si, us

#: DDP's default gradient bucket (torch.nn.parallel.DistributedDataParallel bucket_cap_mb=25): the all_reduce
#: messages a data-parallel step sends are this size, plus one remainder
DDP_BUCKET_BYTES = 25 * 1024 * 1024
#: one training step's FLOPs = this x forward FLOPs (backward computes input and weight gradients, each about one
#: forward): the usual 3x assumption, said wherever it is used
TRAIN_FLOP_FACTOR = 3.0


def ok_rows(record: dict, group: str, kind: str | None = None) -> list[dict]:
    return [m for m in record.get("measurements", []) if m.get("group") == group and m.get("status") == "ok"
            and (kind is None or m.get("kernel") == kind) and not m.get("superseded")]


def fit_alpha_beta(sizes: list[float], times: list[float]) -> dict[str, Any] | None:
    """Least-squares t = alpha + n / beta, relative error. None with fewer than 2 sizes. A negative alpha (latency
    below what the points resolve) is clamped to 0 and the slope refitted through the origin."""
    import numpy as np

    pts = [(float(n), float(t)) for n, t in zip(sizes, times) if n and t and t > 0]
    if len({n for n, _ in pts}) < 2:
        return None
    n = np.array([p[0] for p in pts])
    t = np.array([p[1] for p in pts])
    w = 1.0 / t
    design = np.stack([np.ones_like(n), n], axis=1) * w[:, None]
    (alpha, inv_beta), *_ = np.linalg.lstsq(design, t * w, rcond=None)
    clamped = alpha < 0
    if clamped:
        alpha, inv_beta = 0.0, float(np.sum(w * w * n * t) / np.sum(w * w * n * n))
    if inv_beta <= 0:
        return {"alpha_s": float(max(alpha, 0.0)), "beta_bytes_per_s": None, "half_bandwidth_bytes": None,
                "max_rel_error": None, "points": len(pts),
                "note": "time does not grow with size over these points: no bandwidth term"}
    beta = 1.0 / inv_beta
    model = alpha + n / beta
    return {"alpha_s": float(alpha), "beta_bytes_per_s": float(beta), "half_bandwidth_bytes": float(alpha * beta),
            "max_rel_error": float(np.max(np.abs(model - t) / t)), "points": len(pts),
            "note": "alpha below resolution: clamped to 0" if clamped else ""}


def half_bandwidth_size(sizes: list[float], busbw: list[float]) -> float | None:
    """The measured size (log-interpolated) at which the bus bandwidth first reaches half of its best."""
    pts = sorted((s, b) for s, b in zip(sizes, busbw) if s and b)
    if not pts:
        return None
    half = max(b for _, b in pts) / 2
    prev = None
    for s, b in pts:
        if b >= half:
            if prev is None or prev[1] >= half:
                return float(s)
            (s0, b0) = prev
            f = (half - b0) / (b - b0)
            return float(math.exp(math.log(s0) + f * (math.log(s) - math.log(s0))))
        prev = (s, b)
    return None


def curves(record: dict) -> dict[str, list[dict]]:
    """Per collective, the ok points sorted by size. A job over several nodes also measures all_reduce inside each
    node: that curve is "all_reduce (intra-node)", beside the job-wide "all_reduce"."""
    out: dict[str, list[dict]] = {}
    main = "inter-node" if (record.get("distributed") or {}).get("nodes", 1) > 1 else "intra-node"
    for m in ok_rows(record, "collective"):
        scope = (m.get("extra") or {}).get("scope", main)
        out.setdefault(m["kernel"] if scope == main else f"{m['kernel']} ({scope})", []).append(m)
    for rows in out.values():
        rows.sort(key=lambda m: m["size_bytes"])
    return out


def fits(record: dict) -> dict[str, dict]:
    """alpha/beta and the half-bandwidth size per collective, and per p2p class (intra-node, inter-node)."""
    out = {}
    for kind, rows in curves(record).items():
        fit = fit_alpha_beta([m["size_bytes"] for m in rows], [m["best_s"] for m in rows])
        if fit is None:
            continue
        factor = rows[0]["extra"].get("bus_factor", 1.0)
        fit["bus_beta_bytes_per_s"] = fit["beta_bytes_per_s"] * factor if fit["beta_bytes_per_s"] else None
        fit["half_busbw_measured_bytes"] = half_bandwidth_size([m["size_bytes"] for m in rows],
                                                               [m["extra"].get("busbw_bytes_per_s") for m in rows])
        fit["scope"] = rows[0]["extra"].get("scope", "")
        out[kind] = fit
    for scope in ("intra-node", "inter-node"):
        rows = [m for m in ok_rows(record, "p2p") if m["extra"].get("scope") == scope]
        fit = fit_alpha_beta([m["size_bytes"] for m in rows], [m["best_s"] for m in rows])
        if fit:
            fit["bus_beta_bytes_per_s"] = fit["beta_bytes_per_s"]
            fit["scope"] = scope
            out[f"send_recv ({scope})"] = fit
    return out


def time_at(rows: list[dict], size: float, fit: dict | None) -> tuple[float | None, str]:
    """The slowest rank's time for one message of ``size`` bytes: log-log interpolation between measured sizes,
    the alpha-beta fit outside them. (seconds or None, how it was obtained)."""
    pts = sorted((m["size_bytes"], m["best_s"]) for m in rows if m.get("best_s"))
    if not pts:
        return None, "no measured point"
    for (s0, t0), (s1, t1) in zip(pts, pts[1:]):
        if s0 <= size <= s1:
            f = (math.log(size) - math.log(s0)) / (math.log(s1) - math.log(s0)) if s1 > s0 else 0.0
            return math.exp(math.log(t0) + f * (math.log(t1) - math.log(t0))), "interpolated between measured sizes"
    if size == pts[0][0] or (size < pts[0][0] and not fit):
        return pts[0][1], "the smallest measured size"
    if fit and fit.get("beta_bytes_per_s"):
        return fit["alpha_s"] + size / fit["beta_bytes_per_s"], "extrapolated by the alpha-beta fit"
    return None, f"{size:.0f} B is outside the measured sizes and there is no fit"


def allreduce_seconds(record: dict, grad_bytes: int, bucket_bytes: int = DDP_BUCKET_BYTES) -> tuple[float | None, str]:
    """A data-parallel step's gradient all_reduce: full DDP buckets plus the remainder, one after another."""
    rows = curves(record).get("all_reduce", [])
    fit = fits(record).get("all_reduce")
    full, rest = divmod(int(grad_bytes), bucket_bytes)
    total, how = 0.0, set()
    for size, count in ((bucket_bytes, full), (rest, 1 if rest else 0)):
        if not count:
            continue
        t, why = time_at(rows, size, fit)
        if t is None:
            return None, why
        total += count * t
        how.add(why)
    return total, f"{full} bucket(s) of {bucket_bytes / 2**20:.0f} MiB + {rest / 2**20:.1f} MiB; " + "; ".join(sorted(how))


def dp_model(record: dict, batches: list[int] | None = None) -> dict[str, Any] | None:
    """Compute vs communication of one data-parallel training step of the record's counted model, per rank batch.
    compute = 3 x forward FLOPs x batch / the best GEMM rate measured on all ranks at once (an upper bound on speed:
    real layers run below the GEMM roof); communication = the gradient all_reduce, not overlapped (DDP overlaps
    part of it with backward: the truth lies between max() and sum())."""
    model = record.get("distributed", {}).get("dp_model")
    gemm = ok_rows(record, "dp_compute")
    if not model or model.get("error") or not gemm:
        return None
    rate_row = max(gemm, key=lambda m: m["flop_per_s"] or 0)
    rate = rate_row["flop_per_s"]
    if not rate:
        return None
    comm, how = allreduce_seconds(record, model["grad_bytes"])
    if comm is None:
        return {**model, "error": f"no all_reduce time for {model['grad_bytes']} B: {how}"}
    step_flops = TRAIN_FLOP_FACTOR * model["forward_flops_per_sample"]
    batches = batches or [2 ** i for i in range(0, 13)]
    rows = [{"batch_per_rank": b, "compute_s": step_flops * b / rate, "comm_s": comm,
             "bound": "communication" if comm > step_flops * b / rate else "compute"} for b in batches]
    cross = comm * rate / step_flops
    return {**model, "rate_flop_per_s": rate, "rate_from": f"{rate_row['dtype']} GEMM {rate_row.get('shape')}, best, "
            "all ranks at once", "comm_s": comm, "comm_how": how, "step_flops_per_sample": step_flops,
            "crossover_batch_per_rank": cross, "rows": rows}


def link_rate(record: dict) -> tuple[float | None, str]:
    """The datasheet link rate (per direction, bytes/s) to draw beside bus bandwidth, and what it is: the matched
    sheet's NVLink rate where the ranks share a node with NVLink, else its (or NVML's) PCIe rate; None on CPUs."""
    info = record.get("platform", {})
    world = record.get("distributed", {})
    topo = world.get("topology") or {}
    if info.get("kind") != "cuda":
        return None, "no link rate: gloo on one host moves data through shared memory/loopback, not a rated link"
    links, spec = {}, None
    try:
        spec, _ = spec_for_record(record)
        links = (spec.data.get("links") or {}) if spec else {}
    except Exception:  # a broken sheet must not hide the measurements
        spec = None
    nvlinked = any(str(c).startswith("NV") for row in topo.get("matrix", []) for c in row)
    if nvlinked and links.get("nvlink", {}).get("gb_per_s_per_direction"):
        return links["nvlink"]["gb_per_s_per_direction"] * 1e9, f"NVLink per direction ({spec.name} sheet)"
    # the link's maximum, not its state before the run: an idle link trains down (gen1 at rest is common)
    gen, width = info.get("pcie_gen_max") or info.get("pcie_gen_current"), \
        info.get("pcie_width_max") or info.get("pcie_width_current")
    if gen in PCIE_LANE_GB_PER_S and width:
        which = "maximum" if info.get("pcie_gen_max") else "current"
        return PCIE_LANE_GB_PER_S[gen] * width * 1e9, f"PCIe gen{gen} x{width} per direction (NVML, the link's {which})"
    pcie = links.get("pcie") or {}
    if pcie.get("gb_per_s_bidirectional"):
        return pcie["gb_per_s_bidirectional"] / 2 * 1e9, f"PCIe per direction ({spec.name} sheet)"
    return None, "no link rate known (no sheet with links, NVML gave no PCIe link)"


# ---- text ----------------------------------------------------------------------------------------------------
def summary_text(record: dict, record_path: str | None = None, plot_paths: list[str] | None = None) -> str:
    import pandas as pd

    world = record["distributed"]
    lines = [f"Communication roof: {world['world_size']} ranks on {world['nodes']} node(s) "
             f"({', '.join(f'{h}: {n}' for h, n in world['ranks_per_node'].items())}), backend {world['backend']} "
             f"{world['backend_version']}, run {record['run_id']} [{record.get('status')}]"]
    if record.get("options", {}).get("quick"):
        lines.append("  --quick run: fewer sizes and shorter points")
    env = world.get("environment") or {}
    lines.append("  steering environment: " + (", ".join(f"{k}={v}" for k, v in env.items()) or "none set"))
    threads = sorted({r.get("torch_threads") for r in world.get("ranks", [])})
    lines.append(f"  torch threads per rank: {', '.join(map(str, threads))}")
    crowded = oversubscription(world.get("ranks", []))
    if crowded:
        lines.append(f"  ! {crowded}")
    lines.append(f"  convention: {record.get('convention', '')}")
    rate, what = link_rate(record)
    lines.append(f"  link: {si(rate, 'B/s') + ' ' + what if rate else what}")
    fit = fits(record)
    table = []
    for kind, rows in curves(record).items():
        best = max(rows, key=lambda m: m["extra"]["busbw_bytes_per_s"] or 0)
        f = fit.get(kind, {})
        table.append({"collective": kind, "scope": rows[0]["extra"].get("scope", ""),
                      "sizes": f"{binary_size(rows[0]['size_bytes'])}..{binary_size(rows[-1]['size_bytes'])}",
                      "best busbw": si(best["extra"]["busbw_bytes_per_s"], "B/s"), "at": binary_size(best["size_bytes"]),
                      "algbw": si(best["extra"]["algbw_bytes_per_s"], "B/s"),
                      "smallest (latency)": us(rows[0]["best_s"]), "alpha": us(f.get("alpha_s")),
                      "beta (bus)": si(f.get("bus_beta_bytes_per_s"), "B/s"),
                      "half bw at": binary_size(f.get("half_busbw_measured_bytes")),
                      "fit err": f"{100 * f['max_rel_error']:.0f}%" if f.get("max_rel_error") is not None else "-",
                      "vs link": f"{best['extra']['busbw_bytes_per_s'] / rate:.2f}" if rate else "-"})
    if table:
        lines += ["", "Collectives (time = slowest rank, best round; busbw by nccl-tests' factors):",
                  pd.DataFrame(table).to_string(index=False)]
    for kind, f in fit.items():
        if kind.startswith("send_recv"):
            lines.append(f"  {kind}: alpha {us(f['alpha_s'])}, beta {si(f['beta_bytes_per_s'], 'B/s')}"
                         f" ({f['points']} points)")
    barrier = ok_rows(record, "barrier")
    if barrier:
        lines.append(f"  barrier: {us(barrier[0]['best_s'])} best, {us(barrier[0]['median_s'])} median "
                     "(slowest rank)")
    lines += p2p_lines(record)
    for ref in ok_rows(record, "reference"):
        e = ref["extra"]
        if e.get("suite_over_plain"):
            lines.append(f"  harness check, {ref['kernel']} at {binary_size(ref['size_bytes'])} in alternating rounds: suite "
                         f"busbw {si(e['suite_busbw_bytes_per_s'], 'B/s')} / plain dist.{ref['kernel']} loop "
                         f"{si(e['busbw_bytes_per_s'], 'B/s')} = {e['suite_over_plain']:.3f}")
    lines += dp_lines(record)
    bad = [m for m in record["measurements"] if m.get("status") != "ok"]
    if bad:
        lines += ["", f"Failed / missing ({len(bad)}): no figure is given for these"]
        lines += [f"  - {m['group']} {m['kernel']} {binary_size(m.get('size_bytes'))}: {m['status']}: {m.get('reason')}"
                  for m in bad[:20]]
    disturbed = [m for m in record["measurements"] if m.get("disturbed")]
    if disturbed:
        lines.append(f"  DISTURBED: {len(disturbed)} point(s) ran while other processes were busy")
    if record_path:
        lines.append(f"Record: {record_path}")
    for path in plot_paths or []:
        lines.append(f"Plot:   {path}")
    return "\n".join(lines)


def p2p_lines(record: dict) -> list[str]:
    rows = ok_rows(record, "p2p")
    if not rows:
        return []
    size = max(m["size_bytes"] for m in rows)
    big = {(m["extra"]["src"], m["extra"]["dst"]): m for m in rows if m["size_bytes"] == size}
    n = record["distributed"]["world_size"]
    top = max(m["extra"]["algbw_bytes_per_s"] for m in big.values())
    unit, scale = ("GB/s", 1e9) if top >= 1e9 else ("MB/s", 1e6)
    lines = ["", f"Point-to-point bandwidth matrix at {binary_size(size)} ({unit}, one direction, row sends to column; "
                 "slowest of the pair, best round):"]
    lines.append("       " + "".join(f"{j:>9}" for j in range(n)))
    for i in range(n):
        cells = [("-" if i == j else f"{big[(i, j)]['extra']['algbw_bytes_per_s'] / scale:.3g}" if (i, j) in big
                  else "?") for j in range(n)]
        lines.append(f"  {i:>4} " + "".join(f"{c:>9}" for c in cells))
    return lines


def dp_lines(record: dict) -> list[str]:
    model = record.get("distributed", {}).get("dp_model")
    if not model:
        return []
    if model.get("error"):
        return ["", f"Data-parallel model: not available ({model['error']})"]
    dp = dp_model(record)
    if not dp:
        return ["", "Data-parallel model: not available (no GEMM rate or no all_reduce measured)"]
    if dp.get("error"):
        return ["", f"Data-parallel model: not available ({dp['error']})"]
    lines = ["", f"Data-parallel training step of {dp['name']} (input {dp['input']}, {dp['dtype']}): "
                 f"{dp['params'] / 1e6:.1f} M parameters -> {binary_size(dp['grad_bytes'])} of gradients; "
                 f"{dp['forward_flops_per_sample'] / 1e9:.2f} GFLOP forward per sample, x{TRAIN_FLOP_FACTOR:g} for a "
                 "training step (assumption: backward = 2 x forward)",
             f"  compute at {si(dp['rate_flop_per_s'], 'FLOP/s')} ({dp['rate_from']}; real layers run below this "
             "roof, so compute times are lower bounds)",
             f"  gradient all_reduce: {dp['comm_s'] * 1e3:.3g} ms per step ({dp['comm_how']}; not overlapped)",
             f"  compute = communication at {dp['crossover_batch_per_rank']:.3g} samples per rank: below it the step "
             "is communication-bound, above it compute-bound"]
    for row in dp["rows"]:
        if row["batch_per_rank"] in (1, 8, 32, 128, 512):
            lines.append(f"    batch {row['batch_per_rank']:>4} per rank: compute {row['compute_s'] * 1e3:9.3g} ms, "
                         f"communication {row['comm_s'] * 1e3:9.3g} ms -> {row['bound']}-bound")
    return lines


def dumps(record: dict) -> str:
    """The fits, the best bus bandwidth per collective and the data-parallel model as JSON, for scripts."""
    best = {kind: {"busbw_bytes_per_s": max(m["extra"]["busbw_bytes_per_s"] for m in rows),
                   "sizes_bytes": [m["size_bytes"] for m in rows]} for kind, rows in curves(record).items()}
    dp = dp_model(record)
    return json.dumps({"run_id": record["run_id"], "status": record.get("status"),
                       "world_size": record["distributed"]["world_size"], "backend": record["distributed"]["backend"],
                       "convention": record.get("convention"), "collectives": best, "fits": fits(record),
                       "link_rate_bytes_per_s": link_rate(record)[0],
                       "data_parallel": {k: v for k, v in (dp or {}).items() if k != "rows"} or None}, indent=1)
