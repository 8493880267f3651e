"""The job as torchrun launched it: world, ranks per node, hosts, backend, the environment that steers it, and
the GPUs' link topology (NVML, where present). torchrun does the rendezvous; nothing here launches a process.

Every fact is read, never assumed: the rank layout from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE, GROUP_RANK), the hosts from an all_gather of each rank's hostname.
"""
from __future__ import annotations

import datetime as _dt
import os
import socket
from typing import Any

from platforms.base import PlatformError

#: environment variables that steer the collectives (recorded; never changed)
STEERING_PREFIXES = ("NCCL_", "GLOO_", "TORCH_NCCL_", "TORCH_DISTRIBUTED_", "TORCH_GLOO_", "UCX_", "FI_")
STEERING_NAMES = ("OMP_NUM_THREADS", "MASTER_ADDR", "MASTER_PORT", "TP_SOCKET_IFNAME", "CUDA_VISIBLE_DEVICES",
                  "CUDA_DEVICE_MAX_CONNECTIONS")
LAUNCH = "torchrun --nproc-per-node N -m bench.distributed [--platform cpu|cuda] [--quick]"


def launch_env(environ=None) -> dict[str, int]:
    """The rank layout torchrun exported; a clear error (with the command to use) when it is missing."""
    env = os.environ if environ is None else environ
    missing = [k for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK") if k not in env]
    if missing:
        raise PlatformError(f"not launched by torchrun ({', '.join(missing)} unset): run `{LAUNCH}` (across nodes "
                            "add --nnodes M --rdzv-backend c10d --rdzv-endpoint HOST:PORT on every node)")
    try:
        out = {k.lower(): int(env[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
        out["local_world_size"] = int(env.get("LOCAL_WORLD_SIZE", out["world_size"]))
        out["node_rank"] = int(env.get("GROUP_RANK", env.get("NODE_RANK", 0)))
    except ValueError as exc:
        raise PlatformError(f"torchrun's rank variables are not integers ({exc}); launch with `{LAUNCH}`") from None
    if not 0 <= out["rank"] < out["world_size"]:
        raise PlatformError(f"RANK={out['rank']} is outside WORLD_SIZE={out['world_size']}: the launch is "
                            f"inconsistent; use `{LAUNCH}` on every node with the same --nnodes")
    return out


def steering_environment(environ=None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    return {k: env[k] for k in sorted(env) if k.startswith(STEERING_PREFIXES) or k in STEERING_NAMES}


def choose_backend(kind: str, local_world_size: int, cuda_count: int | None = None,
                   nccl_available: bool | None = None) -> str:
    """gloo on CPUs, NCCL on NVIDIA GPUs (one GPU per local rank); a clear message where that cannot work."""
    if kind == "cpu":
        return "gloo"
    if kind != "cuda":
        raise PlatformError(f"--platform {kind}: distributed runs support cpu (gloo) and cuda (NCCL)")
    if nccl_available is None:
        import torch.distributed as dist

        nccl_available = dist.is_nccl_available()
    if not nccl_available:
        raise PlatformError("this torch build has no NCCL (a CPU-only or Jetson wheel?): use --platform cpu for "
                            "gloo, or install a CUDA build of torch with NCCL")
    if cuda_count is None:
        import torch

        cuda_count = torch.cuda.device_count()
    if cuda_count < local_world_size:
        raise PlatformError(f"NCCL needs one GPU per rank: this node sees {cuda_count} GPU(s) for "
                            f"{local_world_size} local ranks; launch with --nproc-per-node {cuda_count} "
                            "or use --platform cpu (gloo)" if cuda_count else
                            "NCCL needs GPUs and this node sees none: use --platform cpu (gloo)")
    return "nccl"


def init(backend: str, timeout_s: float, local_rank: int) -> Any:
    """Join the job (torchrun's env:// rendezvous); returns this rank's device. ``timeout_s`` bounds every
    collective, so a rank that dies or hangs ends the job with an error instead of a silent wait."""
    import torch
    import torch.distributed as dist

    if backend == "nccl":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
        dist.init_process_group(backend, timeout=_dt.timedelta(seconds=timeout_s), device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group(backend, timeout=_dt.timedelta(seconds=timeout_s))
    return device


def backend_version(backend: str) -> str:
    import torch

    if backend == "nccl":
        try:
            version = torch.cuda.nccl.version()
            return ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
        except Exception as exc:
            return f"unknown ({type(exc).__name__})"
    return f"bundled with torch {torch.__version__}"


def _cpus() -> int:
    """CPUs this process may run on (affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def oversubscription(ranks: list[dict]) -> str | None:
    """A warning where the CPU ranks of a node ask for more threads than the node has CPUs: 3 gloo ranks on 2 cores
    wait for each other's time slices, and latency and bandwidth then measure the scheduler, not the link."""
    by_host: dict[str, list[dict]] = {}
    for r in ranks:
        if not str(r.get("device", "cpu")).startswith("cuda"):
            by_host.setdefault(str(r.get("host")), []).append(r)
    for host, rs in by_host.items():
        threads = sum(int(r.get("torch_threads") or 1) for r in rs)
        cpus = min(int(r.get("cpus") or 0) for r in rs) or None
        if cpus and threads > cpus:
            return (f"OVERSUBSCRIBED: {len(rs)} ranks x {rs[0].get('torch_threads')} torch threads on {host}'s {cpus} "
                    f"CPUs: ranks wait for each other's time slices, so latencies and bandwidths measure the scheduler "
                    f"as much as the link; use at most {cpus} ranks (or fewer threads per rank)")
    return None


def rank_facts(device, layout: dict) -> dict[str, Any]:
    """What this rank knows of itself (gathered on rank 0)."""
    import torch

    facts = {"rank": layout["rank"], "local_rank": layout["local_rank"], "node_rank": layout["node_rank"],
             "host": socket.gethostname(), "pid": os.getpid(), "device": str(device),
             "torch_threads": torch.get_num_threads(), "cpus": _cpus()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        facts.update(gpu=props.name, gpu_uuid=str(getattr(props, "uuid", "")) or None)
    return facts


def node_key(facts: dict) -> str:
    """A rank's node: torchrun's node rank (GROUP_RANK) and the host name. Two torchrun agents on one host with
    --nnodes 2 are two nodes to the rendezvous, and are counted so; on a cluster the two coincide."""
    return f"node {facts.get('node_rank', 0)} ({facts['host']})"


def nodes(ranks: list[dict]) -> dict[str, list[int]]:
    """node -> its global ranks, in node order."""
    out: dict[str, list[int]] = {}
    for facts in sorted(ranks, key=lambda f: (f.get("node_rank", 0), f["rank"])):
        out.setdefault(node_key(facts), []).append(facts["rank"])
    return out


def world_info(ranks: list[dict], layout: dict, backend: str) -> dict[str, Any]:
    """The job's block in the record, from every rank's facts."""
    by_node = nodes(ranks)
    hosts: dict[str, list[int]] = {}
    for facts in ranks:
        hosts.setdefault(facts["host"], []).append(facts["rank"])
    return {"world_size": layout["world_size"], "nodes": len(by_node),
            "ranks_per_node": {n: len(r) for n, r in by_node.items()}, "node_ranks": by_node, "hosts": hosts,
            "backend": backend, "backend_version": backend_version(backend), "environment": steering_environment(),
            "ranks": ranks}


def same_node(ranks: list[dict], a: int, b: int) -> bool:
    by_rank = {r["rank"]: node_key(r) for r in ranks}
    return by_rank.get(a) == by_rank.get(b)


# ---- link topology (NVML) ------------------------------------------------------------------------------------
_ANCESTOR = {0: "X", 10: "PIX", 20: "PXB", 30: "PHB", 40: "NODE", 50: "SYS"}  # NVML_TOPOLOGY_* levels


def nvml_topology(nv=None) -> dict[str, Any]:
    """nvidia-smi-topo-style matrix of this host's GPUs: "NV<k>" (k NVLinks between the pair), else the PCIe
    relation (PIX one switch, PXB several, PHB host bridge, NODE within a NUMA node, SYS across sockets); plus each
    GPU's PCIe generation/width (current and max) and active NVLink count. ``{"error": ...}`` where NVML is absent
    (Jetson, CPU hosts)."""
    try:
        if nv is None:
            import pynvml as nv
        nv.nvmlInit()
        count = nv.nvmlDeviceGetCount()
        handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    except Exception as exc:
        return {"error": f"NVML unavailable: {type(exc).__name__}: {exc}"}

    def get(fn, *args):
        try:
            return getattr(nv, fn)(*args)
        except Exception:
            return None

    def text(value):
        return value.decode() if isinstance(value, bytes) else value

    buses = [text(getattr(get("nvmlDeviceGetPciInfo", h), "busId", None)) for h in handles]
    links: list[dict[int, int]] = []  # per GPU: peer index -> active NVLinks to it
    gpus = []
    for i, h in enumerate(handles):
        peers: dict[int, int] = {}
        active = 0
        for link in range(getattr(nv, "NVML_NVLINK_MAX_LINKS", 18)):
            state = get("nvmlDeviceGetNvLinkState", h, link)
            if state is None:
                break
            if not state:
                continue
            active += 1
            remote = text(getattr(get("nvmlDeviceGetNvLinkRemotePciInfo", h, link), "busId", None))
            if remote in buses:
                peers[buses.index(remote)] = peers.get(buses.index(remote), 0) + 1
        links.append(peers)
        gpus.append({"index": i, "name": text(get("nvmlDeviceGetName", h)), "bus_id": buses[i],
                     "nvlinks_active": active,
                     "pcie_gen_current": get("nvmlDeviceGetCurrPcieLinkGeneration", h),
                     "pcie_gen_max": get("nvmlDeviceGetMaxPcieLinkGeneration", h),
                     "pcie_width_current": get("nvmlDeviceGetCurrPcieLinkWidth", h),
                     "pcie_width_max": get("nvmlDeviceGetMaxPcieLinkWidth", h)})
    matrix = []
    for i, h in enumerate(handles):
        row = []
        for j, other in enumerate(handles):
            if i == j:
                row.append("X")
            elif links[i].get(j):
                row.append(f"NV{links[i][j]}")
            else:
                level = get("nvmlDeviceGetTopologyCommonAncestor", h, other)
                row.append(_ANCESTOR.get(level, "?") if level is not None else "?")
        matrix.append(row)
    return {"gpus": gpus, "matrix": matrix, "legend": "X self; NV<k> k NVLinks; PIX one PCIe switch; PXB several "
            "switches; PHB a PCIe host bridge; NODE within a NUMA node; SYS across NUMA nodes (nvidia-smi topo -m)"}
