"""Bandwidth per memory level: stream kernels over working-set sizes, each result checked."""
import pytest

from bench.session import run_of
from kernels import stream
from kernels.base import Prepared, Verdict


def _sizes(config, quick=None):
    platform = run_of(config).platform
    llc = platform.llc_bytes()
    quick = config.getoption("--quick") if quick is None else quick
    if platform.kind == "cpu":
        return stream.cpu_sweep([vars(c) for c in platform.cache_levels()], llc, platform.memory_bytes(), quick)
    return stream.sweep_sizes(llc, quick, max_bytes=platform.memory_bytes() // 4, min_end=1 << 30)


def pytest_generate_tests(metafunc):
    if "stream_point" not in metafunc.fixturenames:
        return
    config = metafunc.config
    platform, sizes = run_of(config).platform, _sizes(config)
    levels = stream.level_points([vars(c) for c in platform.cache_levels()], platform.llc_bytes(), sizes) \
        if platform.kind == "cpu" else []
    order = stream.budget_order(stream.KERNELS, sizes, levels, _sizes(config, quick=True))
    points = [pytest.param((name, size), id=f"{name}-{size // 1024}KiB") for name, size in order]
    metafunc.parametrize("stream_point", points)


def test_dispatch_overhead(suite, benchmark):
    """The cost of one tiny op issued back to back (host dispatch, and on a GPU the launch): points faster than 10x
    this are not used as ceilings, and the layers' "overhead" gap part is their op count times this. The latency of
    one idle sync is kept beside it: a single timed call on a GPU ends with one (on a CPU sync does nothing)."""
    import torch

    device = suite.platform.device
    sync_s = suite.platform.sync_latency_s()

    def make():
        x = torch.ones(1, device=device)
        y = torch.zeros(1, device=device)

        def verify():
            ok = bool((y == 2).all())
            return Verdict(ok, "y == x + 1" if ok else "wrong sum")

        return Prepared(group="overhead", kernel="dispatch", dtype="fp32", impl="torch.add(out=) on 1 element",
                        fn=lambda: torch.add(x, 1, out=y), verify=verify, flops=0, bytes=0,
                        convention="seconds per op call", shape=[1], size_bytes=8,
                        extra={"sync_latency_s": sync_s,
                               "meaning": "host seconds per tiny op in a block of back-to-back calls"})

    suite.run(benchmark, make, group="overhead", kernel="dispatch", dtype="fp32")


def test_dram_fits(suite):
    """Where 4x the last-level cache does not fit a quarter of the free memory, DRAM is missing, said once."""
    reason = stream.dram_fits(suite.platform.llc_bytes(), suite.platform.memory_bytes())
    if reason:
        suite.not_measured("missing", reason, group="stream", kernel="DRAM", dtype="fp32")


def test_stream(suite, benchmark, stream_point):
    name, size = stream_point
    device = suite.platform.device
    repeat_bytes, rule = suite.platform.stream_call_bytes()
    suite.run(benchmark, lambda: stream.prepare(name, size, device, repeat_bytes=repeat_bytes, repeat_rule=rule),
              group="stream", kernel=name, dtype="fp32", size_bytes=size, convention=stream.STREAM_CONVENTION)


def test_stream_reference(suite, tmp_path_factory):
    """A compiled OpenMP kernel (tools/stream_ref.c, gcc -O3 -march=native) run in the same session, right after
    the sweep, so the DRAM ceiling can be judged against it. Recorded as a reference, never as a ceiling."""
    import os
    import re
    import shutil
    import subprocess
    from pathlib import Path

    from results.record import measurement

    fields = dict(group="reference", kernel="stream_ref", dtype="fp64", impl="gcc -O3 -march=native -fopenmp",
                  convention=stream.STREAM_CONVENTION)
    if suite.platform.kind != "cpu":
        suite.not_measured("missing", "the compiled reference is a CPU kernel", **fields)
    if suite.budget.quick:  # first-touching 3 arrays of 4x the LLC cost 5.5 s of a 65 s quick run on a 300 MiB L3
        suite.not_measured("cut", "--quick: the compiled reference runs in full runs (here the native kernels measure "
                           "the hardware's DRAM roof)", **fields)
    gcc = shutil.which("gcc")
    if gcc is None:
        suite.not_measured("missing", "gcc not found: no compiled reference", **fields)
    source = Path(__file__).resolve().parent.parent / "tools" / "stream_ref.c"
    binary = tmp_path_factory.mktemp("stream_ref") / "stream_ref"
    built = subprocess.run([gcc, "-O3", "-march=native", "-fopenmp", os.fspath(source), "-o", os.fspath(binary)],
                           capture_output=True, text=True)
    if built.returncode:
        suite.not_measured("missing", f"gcc failed: {built.stderr.strip()[:200]}", **fields)
    levels = suite.platform.cache_levels()
    llc = levels[-1].size_bytes if levels else 32 << 20
    # each array >= 4x the last-level cache (STREAM's own rule), the three within a quarter of the free memory
    elements = min(4 * llc, suite.platform.memory_bytes() // 12) // 8
    if elements * 8 < 4 * llc:
        suite.not_measured("missing", f"three arrays of 4 x the last-level cache ({3 * 4 * llc / 2**30:.1f} GiB) do not "
                           "fit a quarter of the free memory: no compiled reference", **fields)
    ntimes = 20
    env = dict(os.environ, OMP_NUM_THREADS=str(suite.platform.info()["torch_threads"]))
    ran = subprocess.run([os.fspath(binary), str(elements), str(ntimes)], capture_output=True, text=True, env=env,
                         timeout=300)
    rates = {m.group(1): float(m.group(2)) * 1e6 for m in re.finditer(r"^(\w+)\s+([\d.]+) MB/s", ran.stdout, re.M)}
    if ran.returncode or not rates:
        suite.not_measured("failed", f"reference did not verify or run: {ran.stdout[-200:]} {ran.stderr[-200:]}", **fields)
    kernel, rate = max(rates.items(), key=lambda kv: kv[1])
    row = measurement(status="ok", verified=True, size_bytes=3 * elements * 8, shape=[elements],
                      bytes=int(rate), times_s=[1.0], extra={"rates_bytes_per_s": rates, "best_kernel": kernel,
                                                            "statistic": f"best of {ntimes - 1} (after one warm-up)"}, **fields)
    suite.add(row)
    suite.say(f"  reference stream_ref (compiled): best {kernel} {rate / 1e9:.1f} GB/s")


def test_stream_curve_sanity(suite):
    """After the sweep: a stream point far below both neighbours of its own curve, inside one memory level, is
    measured again (twice at most); if it stays an outlier it is flagged with the evidence. Ceilings are the best
    point of a level, so an outlier never set one; this keeps the curve and the plateaus honest."""
    from results.roofline import curve_outliers

    caches = suite.record.data["platform"].get("caches") or []
    repeat_bytes, rule = suite.platform.stream_call_bytes()
    device = suite.platform.device
    for row in curve_outliers(suite.record.measurements, caches):
        current = row
        for _ in range(2):
            new = suite.remeasure(current, lambda: stream.prepare(row["kernel"], row["size_bytes"], device,
                                                                   repeat_bytes=repeat_bytes, repeat_rule=rule))
            if new is None:
                break
            current = new
            if current not in curve_outliers(suite.record.measurements, caches):
                break
        if current in curve_outliers(suite.record.measurements, caches):
            current["sanity"] = {"flag": "outlier: far below both neighbours in its memory level after re-measuring "
                                         "twice (likely disturbed)"}
            current["disturbed"] = True
            suite.record.save()
            suite.say(f"  stream {current['kernel']} {current['size_bytes'] >> 10} KiB: still an outlier, flagged")
