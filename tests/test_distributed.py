"""The communication roof: bus-bandwidth arithmetic, fits, the data-parallel model, topology from a fake NVML,
launch errors, verification of the collectives (in-process, world size 1), and real gloo jobs of 2 and 3 ranks
on localhost through torchrun (the record, the timeout path)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from kernels import collectives as coll
from platforms import distributed as world
from platforms.base import PlatformError
from results import distributed as rd
from results.analysis import analyse

ROOT = Path(__file__).resolve().parent.parent


# ---- conventions ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,n,factor", [
    ("all_reduce", 2, 1.0), ("all_reduce", 4, 1.5), ("all_reduce", 8, 1.75), ("all_reduce", 1, 0.0),
    ("all_gather", 8, 0.875), ("reduce_scatter", 4, 0.75), ("all_to_all", 2, 0.5), ("broadcast", 8, 1.0),
    ("send_recv", 2, 1.0)])
def test_bus_factor_hand_values(kind, n, factor):
    assert coll.bus_factor(kind, n) == pytest.approx(factor)


def test_bus_factor_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown collective"):
        coll.bus_factor("allreduce", 2)
    with pytest.raises(ValueError, match="world size"):
        coll.bus_factor("all_reduce", 0)


def test_bandwidths_arithmetic():
    # 1 GiB all_reduce in 10 ms on 8 ranks: algbw 107.374 GB/s, busbw x 1.75
    alg, bus = coll.bandwidths("all_reduce", 1 << 30, 0.01, 8)
    assert alg == pytest.approx(107.3741824e9)
    assert bus == pytest.approx(alg * 1.75)


def test_sizes_and_rounding():
    assert coll.message_sizes(1024, 4, 4) == [4, 16, 64, 256, 1024]
    assert coll.message_sizes(1000, 4, 16) == [4, 64, 1000]
    assert coll.round_elements(4, 3) == 3  # at least one element per rank
    assert coll.round_elements(4096, 3) == 1023  # a multiple of the world size
    with pytest.raises(ValueError):
        coll.message_sizes(2, 4)


# ---- fits ----------------------------------------------------------------------------------------------------
def test_alpha_beta_fit_recovers_synthetic_curve():
    sizes = [4 ** i for i in range(1, 15)]
    times = [20e-6 + n / 10e9 for n in sizes]
    fit = rd.fit_alpha_beta(sizes, times)
    assert fit["alpha_s"] == pytest.approx(20e-6, rel=1e-6)
    assert fit["beta_bytes_per_s"] == pytest.approx(10e9, rel=1e-6)
    assert fit["half_bandwidth_bytes"] == pytest.approx(200e3, rel=1e-6)
    noisy = [t * (1 + 0.01 * (-1) ** i) for i, t in enumerate(times)]
    fit = rd.fit_alpha_beta(sizes, noisy)
    assert fit["alpha_s"] == pytest.approx(20e-6, rel=0.05)
    assert fit["beta_bytes_per_s"] == pytest.approx(10e9, rel=0.05)


def test_alpha_beta_fit_edge_cases():
    assert rd.fit_alpha_beta([1024], [1e-3]) is None
    # pure bandwidth points with a tiny dip: alpha would be negative -> clamped, slope through the origin
    fit = rd.fit_alpha_beta([1e6, 2e6, 4e6], [0.99e-4, 2e-4, 4e-4])
    assert fit["alpha_s"] == 0.0 and "clamped" in fit["note"]
    assert fit["beta_bytes_per_s"] == pytest.approx(1e10, rel=0.01)


def test_half_bandwidth_size_interpolates_on_log_size():
    # best 8; half = 4 lies between 2 (at 1 KiB) and 8 (at 4 KiB): a third of the way in bandwidth
    size = rd.half_bandwidth_size([256, 1024, 4096], [1.0, 2.0, 8.0])
    assert size == pytest.approx(math.exp(math.log(1024) + (2 / 6) * math.log(4)))


def _row(group, kind, size, best, n=2, **extra):
    factor = 1.0 if group in ("p2p", "dp_compute") else coll.bus_factor(kind, n)
    return {"group": group, "kernel": kind, "status": "ok", "size_bytes": size, "best_s": best, "median_s": best,
            "times_s": [best], "dtype": "fp32", "shape": [1, 512, 512, 512] if group == "dp_compute" else None,
            "flop_per_s": extra.pop("flop_per_s", None),
            "extra": {"bus_factor": factor, "algbw_bytes_per_s": size / best if best else None,
                      "busbw_bytes_per_s": size / best * factor if best else None, "scope": "intra-node", **extra}}


def _record(rows, n=2):
    return {"run_id": "synthetic", "status": "complete", "created": "2026-12-01T00:00:00+00:00",
            "platform": {"kind": "cpu", "name": "test cpu", "device": "cpu"},
            "distributed": {"world_size": n, "nodes": 1, "ranks_per_node": {"h": n}, "hosts": {"h": list(range(n))},
                            "backend": "gloo", "backend_version": "test", "environment": {},
                            "ranks": [{"rank": i, "host": "h", "torch_threads": 1} for i in range(n)],
                            "dp_model": {"name": "m", "input": "3,8,8", "dtype": "fp32 gradients", "params": 15 << 20,
                                         "grad_bytes": 60 << 20, "forward_flops_per_sample": 1e9}},
            "measurements": rows}


def test_time_at_and_bucketed_allreduce():
    mib = 1 << 20
    rows = [_row("collective", "all_reduce", s, t) for s, t in ((mib, 1e-3), (16 * mib, 4e-3), (64 * mib, 16e-3))]
    record = _record(rows + [_row("dp_compute", "gemm", 0, 1e-3, flop_per_s=1e11)])
    t, how = rd.time_at(rows, 4 * mib, None)
    assert t == pytest.approx(2e-3) and "interpolated" in how  # half way on log size -> geometric mean of times
    # 60 MiB of gradients in 25 MiB buckets: 2 x t(25 MiB) + t(10 MiB)
    t25 = rd.time_at(rows, 25 * mib, None)[0]
    t10 = rd.time_at(rows, 10 * mib, None)[0]
    total, how = rd.allreduce_seconds(record, 60 * mib)
    assert total == pytest.approx(2 * t25 + t10)
    assert how.startswith("2 bucket(s)")


def test_dp_model_crossover_hand_values():
    mib = 1 << 20
    rows = [_row("collective", "all_reduce", s, t) for s, t in ((mib, 1e-3), (16 * mib, 4e-3), (64 * mib, 16e-3))]
    record = _record(rows + [_row("dp_compute", "gemm", 0, 1e-3, flop_per_s=1e11)])
    dp = rd.dp_model(record)
    comm = rd.allreduce_seconds(record, 60 * mib)[0]
    assert dp["comm_s"] == pytest.approx(comm)
    # compute per sample = 3 x 1 GFLOP / 100 GFLOP/s = 30 ms; crossover at comm / 30 ms samples
    assert dp["rows"][0]["compute_s"] == pytest.approx(0.03)
    assert dp["crossover_batch_per_rank"] == pytest.approx(comm / 0.03)
    assert {r["bound"] for r in dp["rows"] if r["batch_per_rank"] < dp["crossover_batch_per_rank"]} <= {"communication"}
    text = rd.summary_text(record)
    assert "compute = communication at" in text and "all_reduce" in text


def test_link_rate_from_sheet_and_nvml(monkeypatch):
    from platforms.cuda import CudaPlatform
    from tests.fake_gpu import install

    install(monkeypatch)
    record = _record([])
    assert rd.link_rate(record)[0] is None  # CPU: no rated link
    # an idle link trained down to gen1 before the run: the link's maximum is the rate, not the idle state
    record["platform"] = {**CudaPlatform(0).info(), "pcie_gen_current": 1, "pcie_width_current": 16,
                          "pcie_gen_max": 4, "pcie_width_max": 16}
    rate, what = rd.link_rate(record)
    assert rate == pytest.approx(1.969 * 16e9) and "gen4 x16" in what and "maximum" in what
    record["distributed"]["topology"] = {"matrix": [["X", "NV18"], ["NV18", "X"]]}
    rate, what = rd.link_rate(record)
    assert rate == pytest.approx(450e9) and "NVLink" in what


# ---- topology, launch --------------------------------------------------------------------------------------------
def test_nvml_topology_from_fake_nvml():
    nv = types.ModuleType("pynvml")
    buses = ["0000:01:00.0", "0000:02:00.0", "0000:03:00.0"]
    nv.NVML_NVLINK_MAX_LINKS = 4
    nv.nvmlInit = lambda: None
    nv.nvmlDeviceGetCount = lambda: 3
    nv.nvmlDeviceGetHandleByIndex = lambda i: i
    nv.nvmlDeviceGetPciInfo = lambda h: types.SimpleNamespace(busId=buses[h].encode())
    nv.nvmlDeviceGetName = lambda h: b"Fake GPU"
    # GPUs 0 and 1: all 4 links to each other; GPU 2: no NVLink
    nv.nvmlDeviceGetNvLinkState = lambda h, link: 1 if h in (0, 1) else 0
    nv.nvmlDeviceGetNvLinkRemotePciInfo = lambda h, link: types.SimpleNamespace(busId=buses[1 - h].encode())
    nv.nvmlDeviceGetTopologyCommonAncestor = lambda a, b: 30
    for name in ("CurrPcieLinkGeneration", "MaxPcieLinkGeneration"):
        setattr(nv, f"nvmlDeviceGet{name}", lambda h: 5)
    for name in ("CurrPcieLinkWidth", "MaxPcieLinkWidth"):
        setattr(nv, f"nvmlDeviceGet{name}", lambda h: 16)
    topo = world.nvml_topology(nv)
    assert topo["matrix"] == [["X", "NV4", "PHB"], ["NV4", "X", "PHB"], ["PHB", "PHB", "X"]]
    assert [g["nvlinks_active"] for g in topo["gpus"]] == [4, 4, 0]
    assert topo["gpus"][2]["pcie_gen_current"] == 5
    broken = types.ModuleType("pynvml")
    broken.nvmlInit = lambda: (_ for _ in ()).throw(RuntimeError("NVML_ERROR_LIBRARY_NOT_FOUND"))
    assert "NVML unavailable" in world.nvml_topology(broken)["error"]


def test_launch_env_errors_name_the_fix():
    with pytest.raises(PlatformError, match="torchrun --nproc-per-node"):
        world.launch_env({})
    with pytest.raises(PlatformError, match="outside WORLD_SIZE"):
        world.launch_env({"RANK": "3", "WORLD_SIZE": "2", "LOCAL_RANK": "0"})
    env = world.launch_env({"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
                            "GROUP_RANK": "0"})
    assert env == {"rank": 1, "world_size": 4, "local_rank": 1, "local_world_size": 2, "node_rank": 0}


def test_choose_backend_errors():
    assert world.choose_backend("cpu", 4) == "gloo"
    with pytest.raises(PlatformError, match="no NCCL"):
        world.choose_backend("cuda", 1, cuda_count=1, nccl_available=False)
    with pytest.raises(PlatformError, match="sees none"):
        world.choose_backend("cuda", 1, cuda_count=0, nccl_available=True)
    with pytest.raises(PlatformError, match="--nproc-per-node 2"):
        world.choose_backend("cuda", 4, cuda_count=2, nccl_available=True)
    assert world.choose_backend("cuda", 2, cuda_count=2, nccl_available=True) == "nccl"


def test_steering_environment_is_recorded_not_changed():
    env = {"NCCL_ALGO": "Ring", "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1", "HOME": "/root"}
    assert world.steering_environment(env) == {"GLOO_SOCKET_IFNAME": "lo", "NCCL_ALGO": "Ring", "OMP_NUM_THREADS": "1"}


# ---- verification (one process, world size 1) -------------------------------------------------------------------
@pytest.fixture
def one_rank():
    import torch.distributed as dist

    store = dist.HashStore()
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize("kind", coll.COLLECTIVES)
def test_collectives_verify_on_one_rank(one_rank, kind):
    c = coll.prepare(kind, 4096, "cpu", timeout_s=10)
    c.fn()
    verdict = c.verify()
    assert verdict.ok, verdict.detail
    assert c.size_bytes == 4096


def test_verification_catches_a_wrong_result(one_rank, monkeypatch):
    import torch.distributed as dist

    real = dist.all_reduce

    def wrong(tensor, *args, **kwargs):
        work = real(tensor, *args, **kwargs)
        tensor[3] += 1  # one element off
        return work

    monkeypatch.setattr(dist, "all_reduce", wrong)
    verdict = coll.prepare("all_reduce", 64, "cpu", timeout_s=10).verify()
    assert not verdict.ok and "1 of 16 elements wrong, first at [3]" in verdict.detail


# ---- real jobs -------------------------------------------------------------------------------------------------
def _torchrun(tmp_path, nproc: int, *args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "PYTHONPATH": os.fspath(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "bench.distributed", "--platform", "cpu", "--quick", "--results-dir", os.fspath(tmp_path), *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return proc, time.perf_counter() - start


def _only_record(tmp_path) -> dict:
    records = list(tmp_path.glob("*.json"))
    assert len(records) == 1, records  # rank 0 writes the one record; the other ranks write nothing
    return json.loads(records[0].read_text())


def test_two_rank_quick_job_gives_a_valid_record(tmp_path):
    # a small model from tests/data: torchvision's import (3 s per rank) is not what this test is about
    proc, seconds = _torchrun(tmp_path, 2, "--max-bytes", "1MiB", "--model", "tests.data.tiny_cnn:build")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    record = _only_record(tmp_path)
    assert record["status"] == "complete"
    world_block = record["distributed"]
    assert world_block["world_size"] == 2 and world_block["backend"] == "gloo"
    assert len(world_block["ranks"]) == 2
    rows = record["measurements"]
    kinds = {m["kernel"] for m in rows if m["group"] == "collective"}
    assert kinds == set(coll.COLLECTIVES)
    for m in rows:
        assert m["status"] == "ok", m
        if m["group"] == "collective":
            assert m["verified"] is True
            assert m["extra"]["busbw_bytes_per_s"] == pytest.approx(
                m["size_bytes"] / m["best_s"] * coll.bus_factor(m["kernel"], 2))
    pairs = {(m["extra"]["src"], m["extra"]["dst"]) for m in rows if m["group"] == "p2p"}
    assert pairs == {(0, 1), (1, 0)}
    assert any(m["group"] == "reference" for m in rows) and any(m["group"] == "barrier" for m in rows)
    assert world_block["dp_model"]["name"] == "tests.data.tiny_cnn:build"
    assert "Communication roof: 2 ranks" in proc.stdout and "compute = communication at" in proc.stdout
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list(tmp_path.glob("*.png"))) == 2
    shown = subprocess.run([sys.executable, "-m", "results", "show", os.fspath(next(tmp_path.glob("*.json")))],
                           cwd=ROOT, capture_output=True, text=True)
    assert shown.returncode == 0 and "Point-to-point bandwidth matrix" in shown.stdout


@pytest.mark.slow  # ~16 s: test_two_rank_quick_job_gives_a_valid_record keeps torchrun in the default run
def test_three_rank_job_and_compare(tmp_path):
    proc, _ = _torchrun(tmp_path, 3, "--max-bytes", "64KiB", "--model", "none")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    record = _only_record(tmp_path)
    assert record["distributed"]["world_size"] == 3
    pairs = {(m["extra"]["src"], m["extra"]["dst"]) for m in record["measurements"] if m["group"] == "p2p"}
    assert len(pairs) == 6
    ag = [m for m in record["measurements"] if m["kernel"] == "all_gather"]
    assert all(m["size_bytes"] % 12 == 0 for m in ag)  # 3 equal fp32 chunks
    from results.compare import compare_table

    table = compare_table([analyse(record), analyse(_record([_row("collective", "all_reduce", 1024, 1e-4)]))])
    assert ("busbw (best)", "all_reduce") in table.index


@pytest.mark.slow  # ~16 s: test_two_rank_quick_job_gives_a_valid_record keeps torchrun in the default run
def test_two_nodes_on_one_host_split_intra_and_inter_node(tmp_path):
    """Two torchrun agents with --nnodes 2 (static rendezvous on localhost) are two nodes to the job: collectives
    are labelled inter-node, all_reduce is measured again inside each node, p2p pairs are split."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.fspath(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node",
                               "2", "--node-rank", str(k), "--master-addr", "127.0.0.1", "--master-port", str(port),
                               "-m", "bench.distributed", "--platform", "cpu", "--quick", "--max-bytes", "1KiB",
                               "--collectives", "all_reduce,broadcast", "--model", "none",
                               "--results-dir", os.fspath(tmp_path)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for k in (0, 1)]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs[0][-2000:] + outs[1][-2000:]
    record = _only_record(tmp_path)
    assert record["distributed"]["nodes"] == 2 and record["distributed"]["world_size"] == 4
    rows = record["measurements"]
    world_rows = [m for m in rows if m["group"] == "collective" and m["extra"]["scope"] == "inter-node"]
    local_rows = [m for m in rows if m["group"] == "collective" and m["extra"]["scope"] == "intra-node"]
    assert world_rows and all(m["extra"]["group_size"] == 4 for m in world_rows)
    assert local_rows and all(m["kernel"] == "all_reduce" and m["extra"]["group_size"] == 2 for m in local_rows)
    assert all(m["extra"]["busbw_bytes_per_s"] == pytest.approx(m["extra"]["algbw_bytes_per_s"] * 1.0)
               for m in local_rows)  # 2(n-1)/n = 1 for the 2 ranks of a node
    scopes = {m["extra"]["scope"] for m in rows if m["group"] == "p2p"}
    assert scopes == {"intra-node", "inter-node"}
    assert "all_reduce (intra-node)" in rd.curves(record) and "send_recv (inter-node)" in rd.fits(record)


@pytest.mark.slow  # ~10 s; a rank that dies (below) keeps the failure path covered in the default run
def test_a_rank_that_hangs_ends_the_job_with_the_rank_named(tmp_path):
    proc, seconds = _torchrun(tmp_path, 2, "--max-bytes", "64B", "--model", "none", "--no-p2p",
                              "--timeout-s", "2", "--fault-sleep", "1:60")
    assert proc.returncode != 0
    assert seconds < 45  # the timeout, not the 60 s sleep, ends it
    record = _only_record(tmp_path)
    assert record["status"].startswith("failed at point 3") and "Rank 1" in record["status"]
    failed = [m for m in record["measurements"] if m["status"] == "failed"]
    # sizes 4 B and 64 B per collective: point 3 is the first all_gather
    assert len(failed) == 1 and failed[0]["kernel"] == "all_gather" and "Rank 1" in failed[0]["reason"]
    assert sum(m["status"] == "ok" for m in record["measurements"]) == 2  # what finished is kept


def test_a_rank_that_dies_is_named_and_the_record_kept(tmp_path):
    proc, seconds = _torchrun(tmp_path, 2, "--max-bytes", "64B", "--model", "none", "--no-p2p", "--fault-exit", "1")
    assert proc.returncode != 0 and seconds < 60
    record = _only_record(tmp_path)
    assert record["status"].startswith("failed at point 3") and "rank 1 (pid" in record["status"], (
        record["status"], proc.stdout[-3000:], proc.stderr[-3000:])
    assert sum(m["status"] == "ok" for m in record["measurements"]) == 2
    assert "Communication roof" in proc.stdout and "Report:" in proc.stdout  # summary and page despite SIGTERM


def test_not_under_torchrun_is_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    proc = subprocess.run([sys.executable, "-m", "bench.distributed", "--platform", "cpu"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "torchrun --nproc-per-node" in proc.stderr


def test_more_cpu_ranks_than_cores_is_called_oversubscribed():
    from platforms.distributed import oversubscription

    ranks = [{"host": "h", "device": "cpu", "torch_threads": 1, "cpus": 2} for _ in range(3)]
    warning = oversubscription(ranks)
    assert warning and "3 ranks x 1 torch threads on h's 2 CPUs" in warning
    assert oversubscription(ranks[:2]) is None
    assert oversubscription([{**r, "device": "cuda:0"} for r in ranks]) is None  # GPU ranks do not share cores


def test_a_bare_ctrl_c_names_itself():
    from bench.distributed import _interrupted

    assert _interrupted(KeyboardInterrupt()).startswith("interrupted (Ctrl-C (SIGINT))")
    assert _interrupted(KeyboardInterrupt("SIGTERM")).startswith("interrupted (SIGTERM)")
