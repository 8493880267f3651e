"""The communication roof, measured through torch.distributed under torchrun (one node or several):

    torchrun --standalone --nproc-per-node N -m bench.distributed [--platform cpu|cuda] [--quick]
    torchrun --nnodes M --nproc-per-node N --rdzv-backend c10d --rdzv-endpoint HOST:PORT -m bench.distributed

Why a module under torchrun and not a pytest file: torchrun starts N copies of whatever it runs, and every rank must
make the same collective calls in the same order; N pytest sessions collecting, capturing and reporting in parallel
add nothing but ways to diverge. Rank 0 owns the record (one for the whole job) and prints the summary; the other
ranks write nothing and report their own failures on stderr.

Per point (every rank, the same calls): two warm-up calls, one timed call whose slowest-rank time sizes the rounds
(so every rank runs the same number of calls), then rounds of back-to-back calls, each round started by a barrier;
per round the slowest rank's time is kept (nccl-tests' convention) and the fastest's beside it; then one verified
call on rank-tagged data, the verdicts of all ranks gathered. Each collective call waits at most --timeout-s.

long: every rank must make the same calls in the same order; the sweeps, the rows they make and the failure path are
kept in one file so that order can be read in one place (opening and finishing the record are bench/session.py's,
the point budget and round rule bench/timing.py's).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
from typing import Any, Callable

from bench import session
from bench.timing import Budget, block
from kernels import collectives as coll
from platforms import choose_kind
from platforms import distributed as world
from platforms.base import PlatformError
from results.units import binary_size, si

DEFAULT_MAX = {"cpu": 256 << 20, "cuda": 1 << 30}
QUICK_MAX = {"cpu": 64 << 20, "cuda": 1 << 30}


def parse_bytes(text: str) -> int:
    from platforms.cpu import parse_size

    try:
        value = parse_size(text)
    except ValueError:
        raise SystemExit(f"error: --max-bytes {text!r}: give a size such as 256MiB or 1G") from None
    if value < 4:
        raise SystemExit(f"error: --max-bytes {text!r}: at least 4 bytes")
    return value


def parse_args(argv):
    p = argparse.ArgumentParser(prog="torchrun ... -m bench.distributed",
                                description="Collectives, point-to-point and barrier over torch.distributed.")
    p.add_argument("--platform", default="auto", choices=("auto", "cpu", "cuda"),
                   help="cpu: gloo; cuda: NCCL, one GPU per local rank; auto: cuda if every local rank has a GPU")
    p.add_argument("--quick", action="store_true", help="fewer sizes (x16 apart) and shorter points")
    p.add_argument("--max-bytes", type=parse_bytes, default=None,
                   help="largest message (default 256MiB on CPUs, 1GiB on GPUs; --quick: 64MiB on CPUs)")
    p.add_argument("--collectives", default=",".join(coll.COLLECTIVES),
                   help=f"comma-separated subset of {','.join(coll.COLLECTIVES)}")
    p.add_argument("--no-p2p", action="store_true", help="skip the point-to-point matrix")
    p.add_argument("--timeout-s", type=float, default=120.0,
                   help="longest wait for one collective (a rank that hangs or died ends the job after this)")
    p.add_argument("--results-dir", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__))), "results", "runs"))
    p.add_argument("--model", default="resnet50", help="model of the data-parallel estimate ('none' to skip)")
    p.add_argument("--input", default="3,224,224", help="one sample's shape for --model")
    p.add_argument("--fault-sleep", default=None, metavar="RANK:SECONDS",
                   help="testing: this rank sleeps before its third point (exercises the timeout path)")
    p.add_argument("--fault-exit", type=int, default=None, metavar="RANK",
                   help="testing: this rank exits in the middle of its third point (a rank that dies)")
    args = p.parse_args(argv)
    args.collectives = [c.strip() for c in args.collectives.split(",") if c.strip()]
    unknown = [c for c in args.collectives if c not in coll.COLLECTIVES]
    if unknown or not args.collectives:
        p.error(f"--collectives: unknown or empty ({', '.join(unknown)}); choose from {', '.join(coll.COLLECTIVES)}")
    if args.timeout_s <= 0:
        p.error("--timeout-s must be positive")
    if args.fault_sleep:
        try:
            r, s = args.fault_sleep.split(":")
            args.fault_sleep = (int(r), float(s))
        except ValueError:
            p.error("--fault-sleep takes RANK:SECONDS, e.g. 1:30")
    return args


class Job:
    """One rank's view of the job; rank 0 also owns the record."""

    def __init__(self, args, layout: dict, backend: str, device):
        import torch
        import torch.distributed as dist

        self.args, self.layout, self.backend, self.device = args, layout, backend, device
        self.torch, self.dist = torch, dist
        self.rank, self.n = layout["rank"], layout["world_size"]
        self.kind = "cuda" if backend == "nccl" else "cpu"
        self.budget = Budget.for_collectives(self.kind, args.quick)
        self.record = None
        self.points = 0
        self.current: dict = {}
        self.started = time.perf_counter()
        self.ranks: list[dict] = []

    # -- primitives -------------------------------------------------------------------------------------------
    def sync(self) -> None:
        if self.kind == "cuda":
            self.torch.cuda.synchronize(self.device)

    def reduce(self, values: list[float], op) -> list[float]:
        t = self.torch.tensor(values, dtype=self.torch.float64, device=self.device)
        self.dist.all_reduce(t, op=op)
        return t.tolist()

    def barrier(self) -> None:
        """gloo's monitored barrier names the rank that did not arrive; NCCL's barrier is a collective."""
        if self.backend == "gloo" and self.n > 1:
            import datetime as dt

            self.dist.monitored_barrier(timeout=dt.timedelta(seconds=self.args.timeout_s))
        else:
            self.dist.barrier()

    def clock(self) -> float:
        self.sync()
        return time.perf_counter()

    def timed(self, call: Callable[[], Any], iterations: int) -> float:
        return block(self.clock, call, iterations)

    def plan(self, first_s: float) -> tuple[int, int]:
        """Calls per round and rounds, from the slowest rank's first timed call (the same on every rank, so every
        rank makes the same number of calls): the harness's rule (bench.timing)."""
        return self.budget.plan(first_s)

    # -- one point --------------------------------------------------------------------------------------------
    def measure(self, call: Callable[[], Any], verify: Callable[[], Any], **label) -> dict:
        """Every rank runs this with the same call sequence. Returns slowest/fastest per-call times per round,
        calls per round, and the verdict (the ranks whose check failed). ``label`` (group, kernel, size_bytes)
        names the point in the record if it fails."""
        self.points += 1
        self.current = label
        if self.args.fault_sleep and self.points == 3 and self.args.fault_sleep[0] == self.rank:
            time.sleep(self.args.fault_sleep[1])
        self.barrier()
        if self.args.fault_exit == self.rank and self.points == 3:
            os._exit(3)
        call()
        call()
        first = self.reduce([self.timed(call, 1)], self.dist.ReduceOp.MAX)[0]
        iterations, rounds = self.plan(first)
        local = []
        for _ in range(rounds):
            self.barrier()
            local.append(self.timed(call, iterations) / iterations)
        slowest = self.reduce(local, self.dist.ReduceOp.MAX)
        fastest = self.reduce(local, self.dist.ReduceOp.MIN)
        verdict = verify()
        flags = [0.0] * self.n
        flags[self.rank] = 0.0 if verdict.ok else 1.0
        failed = [i for i, f in enumerate(self.reduce(flags, self.dist.ReduceOp.SUM)) if f]
        return {"slowest": slowest, "fastest": fastest, "iterations": iterations, "first_s": first,
                "verdict": verdict, "failed_ranks": failed}

    def add(self, row: dict) -> None:
        if self.record is not None:
            self.record.add(row)

    def say(self, text: str) -> None:
        if self.rank == 0:
            print(f"[{time.perf_counter() - self.started:6.1f} s] {text}", flush=True)

    def row(self, group: str, kind: str, size_bytes: int, m: dict, extra: dict) -> dict:
        from results.record import measurement

        ok = not m["failed_ranks"]
        reason = "" if ok else (f"verification failed on rank(s) {m['failed_ranks']}"
                                + (f": {m['verdict'].detail}" if not m["verdict"].ok else ""))
        row = measurement(group=group, kernel=kind, dtype="fp32", impl=f"torch.distributed/{self.backend}",
                          shape=[size_bytes // 4], size_bytes=size_bytes, bytes=size_bytes, times_s=m["slowest"],
                          number_per_run=m["iterations"], verified=ok, status="ok" if ok else "failed",
                          reason=reason, convention=coll.CONVENTION, statistic="best",
                          extra={**extra, "fastest_rank_times_s": m["fastest"], "first_call_s": m["first_s"],
                                 "verification": m["verdict"].detail if self.rank == 0 else ""})
        if ok:
            if group == "p2p":  # one message, one link: bus = algorithm bandwidth
                alg = bus = size_bytes / row["best_s"]
            else:
                alg, bus = coll.bandwidths(kind, size_bytes, row["best_s"], extra.get("group_size", self.n))
            row["extra"].update(algbw_bytes_per_s=alg, busbw_bytes_per_s=bus)
        return row

    # -- the sweeps -------------------------------------------------------------------------------------------
    def sizes(self) -> list[int]:
        top = self.args.max_bytes or (QUICK_MAX if self.args.quick else DEFAULT_MAX)[self.kind]
        return coll.message_sizes(top, 4, 16 if self.args.quick else 4)

    def scope(self) -> str:
        return "inter-node" if len(world.nodes(self.ranks)) > 1 else "intra-node"

    def collectives(self) -> None:
        """Every collective over the whole job; where the job spans nodes, all_reduce again inside each node
        (all nodes at once, each on its own group): the intra-node curve beside the inter-node one."""
        sizes = self.sizes()
        for kind in self.args.collectives:
            self._sweep(kind, sizes, None, self.n, self.scope())
        by_node = list(world.nodes(self.ranks).values())
        if len(by_node) > 1 and "all_reduce" in self.args.collectives:
            local, size = None, 0
            for members in by_node:  # every rank creates every group, in the same order (torch.distributed's rule)
                group = self.dist.new_group(members)
                if self.rank in members:
                    local, size = group, len(members)
            if size > 1 and len({len(m) for m in by_node}) == 1:
                self._sweep("all_reduce", sizes, local, size, "intra-node")
            else:
                self.say("intra-node all_reduce: skipped (nodes hold different numbers of ranks, or one each)")

    def _sweep(self, kind: str, sizes: list[int], group, n: int, scope: str) -> None:
        for size in sizes:
            c = coll.prepare(kind, size, self.device, group=group, timeout_s=self._wait_s())
            try:
                m = self.measure(c.fn, c.verify, group="collective", kernel=kind, size_bytes=c.size_bytes)
            finally:
                c.state.clear()
            row = self.row("collective", kind, c.size_bytes, m, {
                "bus_factor": coll.bus_factor(kind, n), "world_size": self.n, "group_size": n, "scope": scope,
                "requested_bytes": size})
            self.add(row)
            self._progress(row, f" ({scope}, {n} ranks)" if group is not None else "")
            self._check(row)

    def reference(self) -> None:
        """The harness's all_reduce call and a plain ``dist.all_reduce`` loop on the same buffer at the largest size,
        in alternating rounds (the machine drifts), each timed the same way (slowest rank, best round): their ratio
        is the harness's own overhead."""
        if "all_reduce" not in self.args.collectives or self.n < 2:
            return
        from results.record import measurement

        c = coll.prepare("all_reduce", self.sizes()[-1], self.device, timeout_s=self._wait_s())
        buf = c.state["buf"]
        self.current = {"group": "reference", "kernel": "all_reduce", "size_bytes": c.size_bytes}

        def plain():
            self.dist.all_reduce(buf)

        c.fn()
        plain()
        first = self.reduce([self.timed(plain, 1)], self.dist.ReduceOp.MAX)[0]
        iterations, rounds = self.plan(first)
        suite_local, plain_local = [], []
        for _ in range(rounds):
            for fn, out in ((c.fn, suite_local), (plain, plain_local)):
                self.barrier()
                out.append(self.timed(fn, iterations) / iterations)
        suite_s = self.reduce(suite_local, self.dist.ReduceOp.MAX)
        plain_s = self.reduce(plain_local, self.dist.ReduceOp.MAX)
        verdict = c.verify()
        c.state.clear()
        row = measurement(group="reference", kernel="all_reduce", dtype="fp32", impl="plain dist.all_reduce loop",
                          shape=[c.elements], size_bytes=c.size_bytes, bytes=c.size_bytes, times_s=plain_s,
                          number_per_run=iterations, verified=verdict.ok, status="ok" if verdict.ok else "failed",
                          reason="" if verdict.ok else verdict.detail, convention=coll.CONVENTION,
                          extra={"bus_factor": coll.bus_factor("all_reduce", self.n), "suite_times_s": suite_s,
                                 "what": "alternating rounds: the suite's call, then the plain loop"})
        if row["best_s"]:
            _, plain_bus = coll.bandwidths("all_reduce", c.size_bytes, row["best_s"], self.n)
            _, suite_bus = coll.bandwidths("all_reduce", c.size_bytes, min(suite_s), self.n)
            row["extra"].update(busbw_bytes_per_s=plain_bus, suite_busbw_bytes_per_s=suite_bus,
                                suite_over_plain=suite_bus / plain_bus)
            self.say(f"harness check, all_reduce {binary_size(c.size_bytes)} in alternating rounds: suite busbw "
                     f"{suite_bus / 1e9:.3g} GB/s, plain dist.all_reduce loop {plain_bus / 1e9:.3g} GB/s "
                     f"(suite / plain = {suite_bus / plain_bus:.3f})")
        self.add(row)

    def p2p(self) -> None:
        if self.args.no_p2p or self.n < 2:
            return
        top = self.sizes()[-1]
        sizes = sorted({4, min(64 << 10, top), max(4, top // 4)})
        for src in range(self.n):
            for dst in range(self.n):
                if src == dst:
                    continue
                for size in sizes:
                    c = coll.prepare_send_recv(src, dst, size, self.device, timeout_s=self._wait_s())
                    try:
                        m = self.measure(c.fn, c.verify, group="p2p", kernel="send_recv", size_bytes=c.size_bytes,
                                         extra={"src": src, "dst": dst})
                    finally:
                        c.state.clear()
                    scope = "intra-node" if world.same_node(self.ranks, src, dst) else "inter-node"
                    row = self.row("p2p", "send_recv", c.size_bytes, m, {"src": src, "dst": dst, "scope": scope,
                                                                         "bus_factor": 1.0})
                    self.add(row)
                    self._progress(row, f" {src}->{dst}")
                    self._check(row)

    def barrier_latency(self) -> None:
        from kernels.base import Verdict

        m = self.measure(self.dist.barrier, lambda: Verdict(True, "barrier returned on every rank"),
                         group="barrier", kernel="barrier")
        from results.record import measurement

        self.add(measurement(group="barrier", kernel="barrier", dtype="-", impl=f"torch.distributed/{self.backend}",
                             times_s=m["slowest"], number_per_run=m["iterations"], verified=True, status="ok",
                             statistic="best", extra={"fastest_rank_times_s": m["fastest"]}))
        self.say(f"barrier: {min(m['slowest']) * 1e6:.3g} us (slowest rank, best round)")

    def dp_compute(self) -> None:
        """The GEMM rate every rank reaches while all compute at once (what data-parallel ranks do)."""
        from kernels.gemm import GemmShape, prepare
        from results.record import measurement

        dtype = "bf16" if self.kind == "cuda" else "fp32"
        sizes = (4096, 8192) if self.kind == "cuda" else ((512,) if self.args.quick else (512, 1024))
        for n in sizes:
            try:
                p = prepare(GemmShape(n, n, n), dtype, str(self.device))
            except Exception as exc:
                self.add(measurement(group="dp_compute", kernel="gemm", dtype=dtype, status="missing",
                                     reason=f"{type(exc).__name__}: {exc}", shape=[1, n, n, n]))
                continue
            m = self.measure(p.fn, p.verify, group="dp_compute", kernel="gemm", shape=p.shape)
            ok = not m["failed_ranks"]
            self.add(measurement(group="dp_compute", kernel="gemm", dtype=dtype, impl=p.impl, shape=p.shape,
                                 flops=p.flops, bytes=p.bytes, times_s=m["slowest"], number_per_run=m["iterations"],
                                 verified=ok, status="ok" if ok else "failed", convention=p.convention,
                                 reason="" if ok else f"verification failed on rank(s) {m['failed_ranks']}",
                                 extra={"what": "every rank runs it at the same time; slowest rank per round"}))
            p.state.clear()
            self.say(f"dp compute: {dtype} GEMM {n}^3 on all ranks at once: "
                     f"{p.flops / min(m['slowest']) / 1e9:.3g} GFLOP/s per rank (slowest rank)")

    # -- helpers ----------------------------------------------------------------------------------------------
    def _wait_s(self) -> float | None:
        # NCCL: blocking waits with a timeout would turn every call into a host-side poll; its process-group
        # timeout (the watchdog) bounds a hang instead. gloo: each call waits at most --timeout-s.
        return self.args.timeout_s if self.backend == "gloo" else None

    def _progress(self, row: dict, where: str = "") -> None:
        if row["status"] != "ok":
            self.say(f"{row['kernel']}{where} {row['size_bytes']} B: {row['status']}: {row['reason']}")
            return
        e = row["extra"]
        self.say(f"{row['group']} {row['kernel']}{where} {binary_size(row['size_bytes'])}: busbw "
                 f"{si(e['busbw_bytes_per_s'], 'B/s')} (algbw {si(e['algbw_bytes_per_s'], 'B/s')}), slowest rank "
                 f"{row['best_s'] * 1e6:.4g} us best of {row['n']}, verified")

    def _check(self, row: dict) -> None:
        if row["status"] != "ok":
            raise coll.CollectiveError(f"{row['kernel']} at {row['size_bytes']} B: {row['reason']}")


def count_model(name: str, shape_text: str) -> dict:
    """Parameters and forward FLOPs per sample (kernels.count on the meta device)."""
    if name.lower() == "none":
        return {"error": "skipped (--model none)"}
    from kernels.count import CountError
    from kernels.zoo import count_named, parse_shape

    try:
        shape = parse_shape(shape_text)
        counts = count_named(name, (1, *shape))
    except (CountError, Exception) as exc:
        return {"error": f"could not count {name!r}: {type(exc).__name__}: {exc}"}
    return {"name": name, "input": shape_text, "dtype": "fp32 gradients", "params": counts.total_params,
            "grad_bytes": 4 * counts.total_params, "forward_flops_per_sample": counts.flops,
            "flop_convention": "FLOPs = 2 x MACs of matmul/conv (element-wise FLOPs not included)"}


def _interrupted(exc: BaseException) -> str:
    """The status of a job a signal stopped: which signal (a bare KeyboardInterrupt is Ctrl-C)."""
    return (f"interrupted ({str(exc) or 'Ctrl-C (SIGINT)'}): torchrun passes a signal to every rank, so the job stops "
            "as a whole; the points finished before it are kept")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        layout = world.launch_env()
        kind = choose_kind(args.platform, devices=int(layout["local_world_size"]))
        backend = world.choose_backend(kind, layout["local_world_size"])
        device = world.init(backend, args.timeout_s, layout["local_rank"])
    except PlatformError as exc:
        print(f"error (rank {os.environ.get('RANK', '?')}): {exc}", file=sys.stderr)
        return 2
    import torch.distributed as dist

    job = Job(args, layout, backend, device)
    gathered: list = [None] * job.n
    dist.all_gather_object(gathered, world.rank_facts(device, layout))
    job.ranks = gathered
    if job.rank == 0:
        crowded = world.oversubscription(gathered)
        if crowded:
            print(f"warning: {crowded}", file=sys.stderr, flush=True)
        signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            job.record = _new_record(job, args, layout, backend)
        except Exception as exc:
            print(f"error: {exc}", file=sys.stderr)
            os._exit(2)
        job.say(f"distributed: {job.n} ranks, backend {backend}; record {job.record.path}")
    status, code = "complete", 0
    try:
        try:
            job.collectives()
            job.reference()
            job.p2p()
            job.barrier_latency()
            job.dp_compute()
        except KeyboardInterrupt as exc:
            status, code = _interrupted(exc), 130
        except Exception as exc:  # a timeout, a rank gone, a failed verification
            if job.rank == 0:  # measuring is over: torchrun's SIGTERM must not cut the write-down short
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            what = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}"
            status, code = f"failed at point {job.points}: {what}", 1
            if job.record is not None and job.current:
                from results.record import measurement

                label = dict(job.current)
                job.add(measurement(group=label.pop("group"), kernel=label.pop("kernel"), dtype="fp32",
                                    status="failed", reason=what, impl=f"torch.distributed/{backend}", **label))
            if job.rank != 0:
                print(f"error (rank {job.rank}): {what}", file=sys.stderr, flush=True)
            status += _gone(job)
        if job.rank == 0:  # from here on the record is only written down: a late SIGTERM must not lose it
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except (KeyboardInterrupt, Exception) as exc:
        # an interrupt (Ctrl-C, or a SIGTERM in the instant before the handler above ignores it) or an error while
        # a failure was being written down: keep the failure's status, and say what cut its write-down short
        if not code:
            status, code = _interrupted(exc), 130
        elif not isinstance(exc, KeyboardInterrupt):
            status += f" (then, writing it down: {type(exc).__name__}: {str(exc)[:200]})"
    if job.rank == 0:
        _finish(job, args, status)
    if code:
        sys.stdout.flush()
        os._exit(code)  # the process group may be broken: do not wait in its teardown
    dist.barrier()
    dist.destroy_process_group()
    return 0


def _gone(job: Job) -> str:
    """The ranks on this host whose process has exited (gloo's error names only a peer's address)."""
    try:
        import psutil
    except ImportError:
        return ""
    here = socket.gethostname()
    gone = []
    for facts in job.ranks:
        if facts["host"] != here or facts["rank"] == job.rank:
            continue
        try:
            alive = psutil.Process(facts["pid"]).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            alive = False
        if not alive:
            gone.append(f"rank {facts['rank']} (pid {facts['pid']})")
    return f"; {', '.join(gone)} on {here} exited" if gone else ""


def _on_sigterm(signum, frame):
    # once: torchrun sends SIGTERM to every rank when one fails, and a second one must not interrupt the
    # handler that writes the first failure down
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt("SIGTERM")


def _new_record(job: Job, args, layout: dict, backend: str):
    from platforms import resolve

    platform = resolve(f"cuda:{layout['local_rank']}" if job.kind == "cuda" else "cpu")
    options = {"platform": job.kind, "quick": args.quick, "results_dir": args.results_dir,
               "collectives": args.collectives, "max_bytes": args.max_bytes, "timeout_s": args.timeout_s,
               "model": args.model, "input": args.input, "entry": "bench.distributed"}
    distributed = world.world_info(job.ranks, layout, backend)
    distributed["topology"] = world.nvml_topology() if job.kind == "cuda" else {"note": "CPU ranks: no GPU links"}
    if job.n == 1:
        distributed["note"] = ("world size 1: nothing crosses a link; all_reduce/all_gather/reduce_scatter/all_to_all "
                               "bus factors are 0, algorithm bandwidth is shown")
    record = session.open_record(
        platform, options, args.results_dir, load_check=False, run_suffix=f"-dist{job.n}", distributed=distributed,
        convention=coll.CONVENTION,
        load_monitor="not used: the job's own ranks share the cores, so 'other processes' are ours",
        timing_method="host perf_counter around blocks of calls, device synchronized before and after; slowest rank "
                      "per round")
    return record


def _finish(job: Job, args, status: str) -> None:
    """Save the record with its status (bench.session: the plots and the report page too), print the summary."""
    # what is left is bounded (no collective): finish it even though torchrun is stopping the job (it sends
    # SIGKILL 30 s after SIGTERM); Ctrl-C still interrupts
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    record = job.record
    if status == "complete" or status.startswith("failed"):
        record.data["distributed"]["dp_model"] = count_model(args.model, args.input)
    done = session.finish(record, status)
    if done.save_error:
        print(f"RECORD NOT SAVED: {done.save_error}", file=sys.stderr, flush=True)
    print(done.summary(), flush=True)
    for line in done.output_lines():
        print(line, flush=True)
    if done.skipped:
        print("plots/report not written: the job was stopped (the record above is complete); "
              + "; ".join(done.skipped), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
