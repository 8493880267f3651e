"""Machine load and interference: who else uses the CPUs (and the GPU) before and while the suite measures.

A benchmark on a shared machine can be wrong by orders of magnitude without any error: on 2 cores, one busy
process makes torch's OpenMP threads wait a scheduler slice on every parallel op. The process list shows only
this OS's processes; a VM's neighbours show up as *steal* time. So:

* ``machine_load()`` looks once, before measuring, over a short window: other processes' CPU (psutil, per
  process, the top ones named), runnable tasks vs cores (/proc/stat ``procs_running``), steal time, and on NVIDIA
  GPUs the other processes holding the device (NVML).
* ``LoadMonitor`` brackets each measurement with two cheap snapshots: /proc/stat and this process's own CPU time
  (the CPU time spent by everything else during the point, and the steal, in cores), and the kernel's schedstat of
  our own threads (how long they were runnable but waited for a CPU). Above the thresholds the point is
  *disturbed*; the harness re-measures it a bounded number of times and flags it if it stays so.

Resolution: /proc/stat counts in ticks (10 ms), so on short points it asks for at least ``MIN_OTHER_S`` of other
CPU time as well as a rate; the run-queue wait is counted in nanoseconds and catches a competitor on short points.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import psutil

#: other processes' CPU use, in cores averaged over a point, above which the point is disturbed
OTHER_CORES_LIMIT = 0.25
#: ... and at least this much other CPU time in all (3 ticks), so tick rounding alone never flags a point
MIN_OTHER_S = 0.03
#: steal time (the hypervisor ran someone else on our cores), as a fraction of all our cores' time
STEAL_LIMIT = 0.05
#: our threads waiting for a CPU, in threads averaged over a point (quiet here: <= 0.12 on 1 ms points, ~0.01 on
#: longer ones; beside one busy process: 0.5-1.0), and at least this many seconds of waiting in all
WAIT_LIMIT = 0.2
MIN_WAIT_S = 1e-3


@dataclass(frozen=True)
class Snapshot:
    wall: float
    busy_s: float  # all CPUs: user + nice + system + irq + softirq (guest time is already inside user on Linux)
    steal_s: float
    own_s: float  # this process, all threads, and its waited-for children
    wait_s: float = 0.0  # this process's threads: time runnable but waiting for a CPU (/proc/*/schedstat, ns)


def _own_cpu_s() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system + getattr(t, "children_user", 0.0) + getattr(t, "children_system", 0.0)


def _own_wait_s() -> float:
    """Seconds this process's threads have spent runnable but not running (waiting on a run queue), summed over
    threads: the kernel's schedstat counts it in nanoseconds, so even a 10 ms point shows a competitor. psutil has
    no reading of it, hence this file read. 0 where the kernel does not provide it."""
    total = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 0.0
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/schedstat") as handle:
                total += int(handle.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def snapshot() -> Snapshot:
    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
    return Snapshot(time.perf_counter(), busy, getattr(t, "steal", 0.0), _own_cpu_s(), _own_wait_s())


def interference(before: Snapshot, after: Snapshot, cores: int | None = None) -> dict[str, Any]:
    """What others did between two snapshots: other CPU seconds and cores, steal fraction, disturbed or not."""
    cores = cores or psutil.cpu_count() or 1
    wall = max(after.wall - before.wall, 1e-9)
    other = max(0.0, (after.busy_s - before.busy_s) - (after.own_s - before.own_s))
    steal = max(0.0, after.steal_s - before.steal_s)
    other_cores, steal_frac = other / wall, steal / (wall * cores)
    wait = max(0.0, after.wait_s - before.wait_s)
    wait_threads = wait / wall
    reasons = []
    if wait_threads > WAIT_LIMIT and wait >= MIN_WAIT_S:
        reasons.append(f"our threads waited for a CPU {wait_threads:.2f} threads' worth of the time")
    if other_cores > OTHER_CORES_LIMIT and other >= MIN_OTHER_S - 1e-9:  # /proc/stat sums are floats of ticks
        reasons.append(f"other processes used {other_cores:.2f} of {cores} cores")
    if steal_frac > STEAL_LIMIT and steal >= MIN_OTHER_S:
        reasons.append(f"steal {100 * steal_frac:.0f}% (the hypervisor gave our cores to another VM)")
    return {"wall_s": wall, "other_cpu_s": other, "other_cores": other_cores, "steal_frac": steal_frac,
            "wait_s": wait, "wait_threads": wait_threads, "disturbed": bool(reasons), "evidence": "; ".join(reasons)}


class LoadMonitor:
    """Brackets a measurement: ``start()`` then ``stop()`` -> :func:`interference`."""

    def __init__(self, cores: int | None = None):
        self.cores = cores or psutil.cpu_count() or 1
        self._before: Snapshot | None = None

    def start(self) -> None:
        self._before = snapshot()

    def stop(self) -> dict[str, Any]:
        return interference(self._before or snapshot(), snapshot(), self.cores)


def top_processes(window_s: float = 0.3, limit: int = 3, min_pct: float = 5.0) -> list[dict[str, Any]]:
    """Other processes by CPU over ``window_s`` (psutil), busiest first: pid, name, cpu percent (100 = 1 core)."""
    own = {os.getpid()}  # children count as others: while they run, they compete like anyone else
    procs = []
    for proc in psutil.process_iter(["pid", "name"]):
        if proc.pid in own:
            continue
        try:
            proc.cpu_percent(None)
            procs.append(proc)
        except psutil.Error:
            continue
    time.sleep(window_s)
    out = []
    for proc in procs:
        try:
            pct = proc.cpu_percent(None)
            if pct >= min_pct:
                cmd = " ".join(proc.cmdline()[:3])[:60]
                out.append({"pid": proc.pid, "name": proc.info.get("name") or "?", "cpu_pct": pct, "cmd": cmd})
        except psutil.Error:
            continue
    return sorted(out, key=lambda p: -p["cpu_pct"])[:limit]


def procs_running() -> int | None:
    """Runnable tasks right now (/proc/stat), this one included."""
    try:
        with open("/proc/stat") as handle:
            for line in handle:
                if line.startswith("procs_running"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def describe_processes(procs: list[dict[str, Any]]) -> str:
    return ", ".join(f"{p['name']} (pid {p['pid']}, {p['cpu_pct']:.0f}% of a core)" for p in procs)


def machine_load(window_s: float = 0.5, gpu_processes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The machine's state before measuring, with one sentence saying what is busy and what it will do."""
    cores = psutil.cpu_count() or 1
    before = snapshot()
    top = top_processes(window_s)
    load = interference(before, snapshot(), cores)
    running = procs_running()
    out: dict[str, Any] = {"cores": cores, "window_s": round(load["wall_s"], 3), "other_cores": load["other_cores"],
                           "steal_frac": load["steal_frac"], "procs_running": running, "top_processes": top,
                           "gpu_processes": gpu_processes or []}
    busy = []
    if load["disturbed"] or top:
        busy.append(f"other processes use {load['other_cores']:.2f} of {cores} cores"
                    + (f": {describe_processes(top)}" if top else ""))
    if load["steal_frac"] > STEAL_LIMIT:
        busy.append(f"steal {100 * load['steal_frac']:.0f}%: another VM shares these cores")
    if running is not None and running - 1 >= cores:  # instantaneous and noisy: only clear oversubscription
        busy.append(f"{running - 1} other runnable tasks for {cores} cores")
    if gpu_processes:
        busy.append("other processes on the GPU: " + ", ".join(
            f"pid {p['pid']}" + (f" ({p['memory_bytes'] / 2**30:.1f} GiB)" if p.get("memory_bytes") else "")
            for p in gpu_processes))
    out["busy"] = bool(busy)
    out["sentence"] = ("machine busy: " + "; ".join(busy) + ". Expect slow, noisy points: each disturbed point is "
                       "re-measured and, if it stays disturbed, flagged; stop the other work for clean figures"
                       if busy else f"machine quiet: other processes used {load['other_cores']:.2f} of {cores} cores "
                                    f"over {load['wall_s']:.1f} s, no steal")
    return out
