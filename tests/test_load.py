"""Machine load: the interference arithmetic, and detection of a deliberate, time-bounded busy process.
These tests assert what the record and summary SAY, never a speed."""
import subprocess
import sys

import pytest

from platforms.load import MIN_OTHER_S, Snapshot, interference, machine_load
from results.analysis import analyse

BUSY = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"


def test_interference_arithmetic():
    before = Snapshot(wall=0.0, busy_s=10.0, steal_s=1.0, own_s=5.0)
    # 1 s wall on 2 cores: the system was busy 1.8 cpu-s, we used 1.0 of them -> others 0.8 cores
    after = Snapshot(wall=1.0, busy_s=11.8, steal_s=1.0, own_s=6.0)
    load = interference(before, after, cores=2)
    assert load["other_cpu_s"] == pytest.approx(0.8) and load["other_cores"] == pytest.approx(0.8)
    assert load["disturbed"] and "0.80 of 2 cores" in load["evidence"]
    quiet = interference(before, Snapshot(1.0, 11.02, 1.0, 6.0), cores=2)  # 0.02 cpu-s: tick noise
    assert not quiet["disturbed"] and quiet["evidence"] == ""
    stolen = interference(before, Snapshot(1.0, 11.0, 1.3, 6.0), cores=2)
    assert stolen["disturbed"] and "steal 15%" in stolen["evidence"]
    short = interference(before, Snapshot(0.01, 10.0 + MIN_OTHER_S / 2 + 0.01, 1.0, 5.01), cores=2)
    assert not short["disturbed"]  # a rate above the limit, but fewer than 3 ticks of evidence
    waited = interference(Snapshot(0.0, 0.0, 0.0, 0.0, wait_s=1.0), Snapshot(0.01, 0.0, 0.0, 0.0, wait_s=1.006))
    assert waited["disturbed"] and waited["wait_threads"] == pytest.approx(0.6)  # ns-resolution evidence
    assert "waited for a CPU 0.60" in waited["evidence"]


@pytest.fixture
def busy():
    proc = subprocess.Popen([sys.executable, "-c", BUSY.format(seconds=20)])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_busy_process_is_detected_named_and_flagged(busy, tmp_path):
    from bench.harness import Suite
    from bench.timing import Budget
    from kernels import stream
    from platforms.cpu import CpuPlatform
    from results.record import RunRecord
    from results.summary import summary_text

    start = machine_load(window_s=0.5)
    assert start["busy"] and f"pid {busy.pid}" in start["sentence"]

    class Bench:
        disabled = True
        extra_info: dict = {}

    record = RunRecord(tmp_path, {"name": "t", "device": "cpu", "kind": "cpu"}, {})
    record.data["load_at_start"] = start
    suite = Suite(platform=CpuPlatform(), record=record,
                  budget=Budget(0.3, 2.0, 0.002, 3, 20, retries=1, retry_pause_s=0.0))
    row = suite.run(Bench(), lambda: stream.prepare("triad", 1 << 20, "cpu"))
    assert row["disturbed"] and row["interference"]["attempts"] == 2
    assert f"pid {busy.pid}" in row["interference"]["evidence"]
    text = summary_text(analyse(record.data))
    assert "machine busy" in text and "1 of 1 points stayed disturbed" in text
    assert "DISTURBED" in text  # the L-level ceiling made from it says so


def test_clean_points_win_over_disturbed_ones():
    from results.record import measurement
    from results.roofline import compute_ceilings

    def gemm(rate, disturbed):
        row = measurement(group="gemm", kernel="gemm", dtype="fp32", status="ok", verified=True, flops=rate,
                          times_s=[1.0], shape=[1, 8, 8, 8])
        row["disturbed"] = disturbed
        return row

    ceiling = compute_ceilings([gemm(100, False), gemm(120, True)])["fp32"]
    assert ceiling.value == 100 and not ceiling.disturbed  # a disturbed point is never preferred to a clean one
    only = compute_ceilings([gemm(120, True)])["fp32"]
    assert only.disturbed and "DISTURBED" in only.note


def _stream(kernel, size, rate):
    from results.record import measurement

    return measurement(group="stream", kernel=kernel, dtype="fp32", status="ok", verified=True, size_bytes=size,
                       bytes=int(rate), times_s=[1.0])


def test_curve_outliers_only_inside_one_level():
    from results.roofline import curve_outliers

    caches = [{"name": "L1", "size_bytes": 32 << 10}, {"name": "L2", "size_bytes": 1 << 20},
              {"name": "L3", "size_bytes": 32 << 20, "shared": True}]
    rows = [_stream("copy", s << 10, r) for s, r in ((128, 100), (192, 30), (256, 100), (384, 90),
                                                     (16 << 10, 60), (24 << 10, 20), (192 << 10, 10))]
    flagged = curve_outliers(rows, caches)
    assert [r["size_bytes"] for r in flagged] == [192 << 10]  # 30 inside L2 between 100 and 100
    # the 20 at 24 MiB has its right neighbour in DRAM (192 MiB): a level's edge, never called an outlier


def test_remeasure_supersedes_and_analysis_skips_the_old_row(tmp_path):
    from bench.harness import Suite
    from bench.timing import Budget
    from kernels import stream
    from platforms.cpu import CpuPlatform
    from results.record import RunRecord
    from results.roofline import best_curve

    suite = Suite(platform=CpuPlatform(), record=RunRecord(tmp_path, {"name": "t", "device": "cpu"}, {}),
                  budget=Budget(0.02, 1.0, 0.001, 3, 5))
    old = _stream("copy", 1 << 20, 1.0)  # an implausibly slow point
    suite.record.add(old)
    new = suite.remeasure(old, lambda: stream.prepare("copy", 1 << 20, "cpu"))
    assert old["superseded"] and new["remeasure_of"] == 0
    sizes, values = best_curve(suite.record.measurements)
    assert values == [new["bytes_per_s"]]  # the superseded point no longer counts


def test_a_slow_implicit_gemm_is_cut_not_timed_for_minutes(tmp_path):
    import time

    from bench.harness import Suite
    from bench.timing import Budget
    from kernels.base import Prepared, Verdict
    from platforms.cpu import CpuPlatform
    from results.record import RunRecord

    suite = Suite(platform=CpuPlatform(), record=RunRecord(tmp_path, {"name": "t", "device": "cpu"}, {}),
                  budget=Budget(0.02, 0.05, 0.001, 3, 5))

    def make():
        return Prepared(group="gemm", kernel="gemm", dtype="bf16", impl="torch", fn=lambda: time.sleep(0.06),
                        verify=lambda: Verdict(True, ""), flops=1, bytes=1, convention="", shape=[1, 8, 8, 8])

    start = time.perf_counter()
    out = suite._gemm_for_gap(make)
    assert out["status"] == "cut" and "over the 0.05 s cap" in out["reason"]
    assert time.perf_counter() - start < 0.5  # two calls, not min_rounds of cold calls


def test_a_warm_time_above_the_cold_one_is_timed_again(tmp_path):
    """A point whose figures cannot be (a layer's warm median above its cold-cache one: a VM's neighbours slowed it,
    no counter shows it) is measured again like a disturbed one; the row says which attempt was clean, or that it
    stayed implausible on all of them."""
    from bench.harness import Suite, _load_note
    from bench.timing import Budget
    from platforms.cpu import CpuPlatform
    from results.record import RunRecord

    suite = Suite(platform=CpuPlatform(), record=RunRecord(tmp_path, {"name": "t", "device": "cpu"}, {}),
                  budget=Budget(0.3, 2.0, 0.002, 3, 20, retries=1, retry_pause_s=0.0))
    result, load = suite._attempts(lambda attempt: attempt, lambda r: "warm above cold" if r == 0 else "")
    if load["disturbed"]:  # this machine was busy meanwhile: the load monitor's retry decides, not the test's
        pytest.skip("the machine was busy during the test")
    assert result == 1 and load["attempts"] == 2 and not load["implausible"]
    assert "the first's warm time sat above its cold one" in _load_note({"interference": load})
    result, load = suite._attempts(lambda attempt: attempt, lambda r: "warm above cold")
    assert load["attempts"] == 2 and load["implausible"] == "warm above cold"
    assert "warm above cold on all 2 attempts" in _load_note({"interference": load})
