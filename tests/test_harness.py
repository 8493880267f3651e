"""The benchmark harness without pytest-benchmark: statuses, reasons, and what lands in the record."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.harness import Suite, TimeBudget
from bench.timing import Budget
from kernels import gemm, stream
from platforms.cpu import CpuPlatform
from results.record import RunRecord, read_record

ROOT = Path(__file__).resolve().parent.parent


class FakeBenchmark:
    """Stands in for pytest-benchmark's fixture when benchmarking is disabled."""

    disabled = True

    def __init__(self):
        self.extra_info = {}


@pytest.fixture
def suite(tmp_path):
    record = RunRecord(tmp_path, {"name": "test", "device": "cpu"}, {})
    return Suite(platform=CpuPlatform(), record=record, budget=Budget(0.01, 1.0, 0.001, 3, 5))


def test_a_measured_point_is_recorded_with_its_statistics(suite):
    row = suite.run(FakeBenchmark(), lambda: stream.prepare("triad", 1 << 20, "cpu"))
    assert row["status"] == "ok" and row["verified"] and row["bytes_per_s"] > 0 and row["n"] >= 3
    assert read_record(suite.record.path)["measurements"][0]["kernel"] == "triad"


def test_unsupported_point_is_missing_with_reason(suite):
    with pytest.raises(pytest.skip.Exception):
        suite.run(FakeBenchmark(), lambda: gemm.prepare(gemm.GemmShape(8, 8, 8), "tf32", "cpu"),
                  group="gemm", kernel="gemm", dtype="tf32")
    row = suite.record.measurements[-1]
    assert row["status"] == "missing" and "TF32" in row["reason"] and row["flop_per_s"] is None


def test_out_of_memory_skips_the_point_and_says_so(suite):
    def make():
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 10 GB")

    with pytest.raises(pytest.skip.Exception):
        suite.run(FakeBenchmark(), make, group="gemm", kernel="gemm", dtype="fp32")
    assert suite.record.measurements[-1]["status"] == "skipped"
    assert "out of memory" in suite.record.measurements[-1]["reason"]


def test_failed_verification_is_recorded_without_a_figure(suite):
    def make():
        p = stream.prepare("copy", 1 << 16, "cpu")
        copy = p.fn

        def wrong():
            copy()
            p.state["target"][0] = 42.0

        p.fn = wrong
        return p

    with pytest.raises(pytest.fail.Exception):
        suite.run(FakeBenchmark(), make)
    row = suite.record.measurements[-1]
    assert row["status"] == "failed" and row["verified"] is False and row["bytes_per_s"] is None
    assert row["times_s"]  # the raw times stay, for diagnosis


def test_a_slow_dtype_is_cut_by_time_not_count(suite):
    suite.best_rate["fp16"] = 2e9
    reason = suite.estimate_cut("fp16", 2 * 4096 ** 3)
    assert reason and "cut short" in reason
    assert suite.estimate_cut("fp16", 2 * 64 ** 3) is None


def test_quick_runs_cut_a_dtype_with_no_fast_path_after_one_shape(suite):
    import dataclasses

    suite.best_rate.update({"fp32": 70e9, "fp64": 35e9, "bf16": 1.9e9, "int8": 3.8e9})
    assert suite.slow_path_cut("bf16") is None  # a full run measures every shape
    suite.budget = dataclasses.replace(suite.budget, quick=True)
    reason = suite.slow_path_cut("bf16")
    assert reason and "0.027x the fp32 GEMM's 70 GFLOP/s" in reason and "1.9 GFLOP/s" in reason
    assert "3.8 GOP/s" in suite.slow_path_cut("int8")
    assert suite.slow_path_cut("fp64") is None  # half of fp32 is a real path, not an emulation
    assert suite.slow_path_cut("fp32") is None and suite.slow_path_cut("fp16") is None  # fp16 not measured yet
    del suite.best_rate["fp32"]
    assert suite.slow_path_cut("bf16") is None  # nothing to compare with: measure


@pytest.mark.slow  # the default run's interrupt tests (tests/test_interrupts.py) check the same and more
def test_ctrl_c_keeps_what_finished(tmp_path):
    # A shell runs background jobs with SIGINT ignored, and Python then installs no KeyboardInterrupt handler:
    # give the child the default disposition so Ctrl-C means what it means at a terminal.
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "bench/test_stream.py", "--platform", "cpu", "--quick",
                             "--results-dir", str(tmp_path), "-q"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    records = []
    while time.time() < deadline:
        records = list(tmp_path.glob("2*.json"))
        if records and len(read_record(records[0])["measurements"]) >= 5:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert records, out[-3000:]
    record = read_record(records[0])
    statuses = [(m["kernel"], m["status"], m["reason"]) for m in record["measurements"]]
    assert record["status"] == "interrupted", (record["status"], statuses, out[-3000:])
    assert len(record["measurements"]) >= 5
    assert all(s in ("ok", "missing", "skipped", "cut") for _, s, _ in statuses), statuses
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_a_kernel_that_raises_is_skipped_with_its_reason(suite):
    def make():
        p = stream.prepare("copy", 1 << 16, "cpu")

        def broken():
            raise RuntimeError("CUBLAS_STATUS_NOT_SUPPORTED for this shape")

        p.fn = broken
        return p

    with pytest.raises(pytest.skip.Exception):
        suite.run(FakeBenchmark(), make)
    row = suite.record.measurements[-1]
    assert row["status"] == "skipped" and "CUBLAS_STATUS_NOT_SUPPORTED" in row["reason"]


def test_a_sentinel_that_cannot_run_is_kept_as_missing_with_its_reason(suite, monkeypatch):
    """The DRAM sentinel never stops a run, but its failure is a row (it once failed silently on every run)."""
    def broken(*_args, **_kwargs):
        raise RuntimeError("no memory for the copy")

    monkeypatch.setattr(stream, "prepare", broken)
    assert "error" in suite.sentinel("start of test")
    rows = [m for m in read_record(suite.record.path)["measurements"] if m["group"] == "sentinel"]
    assert len(rows) == 1 and rows[0]["status"] == "missing"
    assert "could not run: RuntimeError: no memory for the copy" in rows[0]["reason"]


def test_a_sentinel_past_the_runs_budget_is_cut(suite):
    suite.clock = TimeBudget(run_s=1.0)
    suite.clock.started -= 2
    assert suite.sentinel("end of test") is None
    rows = [m for m in read_record(suite.record.path)["measurements"] if m["group"] == "sentinel"]
    assert rows[0]["status"] == "missing" and "budget (1 s) is spent" in rows[0]["reason"]
