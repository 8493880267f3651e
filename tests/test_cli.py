"""The suite's command lines, in subprocesses: option errors, the results CLI, and a small --quick run."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def run(*args, timeout=240):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_unknown_platform_is_a_usage_error(tmp_path):
    out = run("-m", "pytest", "bench/", "--platform", "tpu", "--results-dir", str(tmp_path))
    assert out.returncode == 4
    assert "unknown platform 'tpu'" in out.stderr and "cuda:N" in out.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_fails_clearly(tmp_path):
    out = run("-m", "pytest", "bench/", "--platform", "cuda", "--results-dir", str(tmp_path))
    assert out.returncode == 4 and "CUDA was asked for but is not available" in out.stderr
    assert not list(tmp_path.glob("*.json"))  # nothing measured, nothing written


def test_unknown_dtype_is_a_usage_error(tmp_path):
    out = run("-m", "pytest", "bench/", "--platform", "cpu", "--dtypes", "fp32,fp4", "--results-dir", str(tmp_path))
    assert out.returncode == 4 and "unknown fp4" in out.stderr


def test_unwritable_results_dir_fails_before_measuring(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = run("-m", "pytest", "bench/test_gemm.py", "--platform", "cpu", "--quick", "--results-dir",
              str(blocker / "runs"))  # the check runs for any benchmark file, before anything is measured
    assert out.returncode == 4 and "cannot be written" in out.stderr
    assert "passed" not in out.stdout


def test_results_cli_rejects_a_corrupt_record(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = run("-m", "results", "show", str(bad))
    assert out.returncode == 2 and "corrupt or truncated" in out.stderr


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quick")
    # a small real run: the GEMM and stream files under a 12 s budget (stream sweeps put one size per level, DRAM
    # included, first; the other files' real runs are in test_faults, test_harness and test_budget)
    # bench/test_variants.py too: without --variants it has no items (deselected, nothing in the record)
    out = run("-m", "pytest", "bench/test_gemm.py", "bench/test_stream.py", "bench/test_variants.py", "--platform",
              "cpu", "--quick", "--dtypes",
              "fp32,bf16,tf32", "--budget", "12",
              "--results-dir", str(folder), "-q", "--benchmark-json", str(folder / "bench.json"), timeout=300)
    return folder, out


def test_quick_cpu_run_yields_a_valid_record_and_png(quick_run):
    folder, out = quick_run
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    records = list(folder.glob("2*.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["schema_version"] == 1 and record["status"] == "complete"
    rows = record["measurements"]
    assert any(r["group"] == "gemm" and r["dtype"] == "fp32" and r["verified"] for r in rows)
    assert any(r["dtype"] == "tf32" and r["status"] == "missing" and "TF32" in r["reason"] for r in rows)
    assert all(r["times_s"] for r in rows if r["status"] == "ok")
    # the DRAM sentinel at the start and after each file, verified (it once failed silently on every run); one past
    # the run's budget is a cut row
    sentinels = [r for r in rows if r["group"] == "sentinel"]
    assert len(sentinels) >= 2 and sentinels[0]["status"] == "ok" and sentinels[0]["verified"]
    assert all(r["status"] == "ok" and r["verified"] or r["reason"].startswith("cut:") for r in sentinels)
    assert "DRAM sentinel" in out.stdout
    assert not any(r["group"] == "variant" for r in rows) and "deselected" in out.stdout  # no --variants: none
    png = records[0].with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert "Peak compute" in out.stdout and "DRAM" in out.stdout and "Record:" in out.stdout
    page = records[0].with_suffix(".html")  # the report, written beside the record at the end of every run
    assert "Report:" in out.stdout and page.read_text().startswith("<!DOCTYPE html>")
    assert record["progress_view"]["mode"] == "quiet" and record["progress_view"]["seconds_spent"] < 1.0
    bench_json = json.loads((folder / "bench.json").read_text())  # --benchmark-json still works
    assert bench_json["benchmarks"] and "fp32" in bench_json["roofline"]["compute_flop_per_s"]


def test_results_show_reprints_the_summary(quick_run):
    folder, _ = quick_run
    record = next(folder.glob("2*.json"))
    text = run("-m", "results", "show", str(record))
    assert text.returncode == 0 and "Peak compute" in text.stdout
    as_json = json.loads(run("-m", "results", "show", str(record), "--json").stdout)
    assert as_json["compute_flop_per_s"]["fp32"]["value"] > 0
    assert as_json["memory_bytes_per_s"]["DRAM"]["value"] > 0
    assert as_json["ridge_flop_per_byte"]["fp32"] > 0


def test_gpu_only_files_on_a_cpu_measure_nothing_and_say_so(tmp_path):
    """The defect: these files exited 0 on a CPU ("got empty parameter set", "2 skipped") with no record."""
    # with tf32, which a CPU has no path for: nothing at all is measured, and the run says so
    out = subprocess.run([sys.executable, "-m", "pytest", "bench/test_triton.py", "bench/test_transfer.py",
                          "bench/test_gemm.py", "--dtypes", "tf32", "--platform", "cpu", "--quick",
                          "--results-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stdout[-2000:]
    record = json.loads(next(tmp_path.glob("2*.json")).read_text())
    assert record["status"].startswith("nothing measured") and "ok: " not in record["status"]
    missing = {m["group"] for m in record["measurements"] if m["status"] == "missing" and "CUDA" in m["reason"]}
    assert missing == {"stream", "peak", "transfer"}
    assert any(m["group"] == "gemm" and "TF32" in m["reason"] for m in record["measurements"])
