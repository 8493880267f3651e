"""The CUDA path on a CPU-only machine: platforms.cuda driven by fakes of torch.cuda and pynvml (tests/fake_gpu.py),
and a synthetic H200-shaped record pushed through results/. Each test names the defect it guards against
(issue 9); they test our code, the fakes only stand in for the driver."""
import math
import time

import fake_gpu
import pytest
import torch

from kernels import gemm, stream, transfer
from kernels.base import Prepared, Unsupported, Verdict
from platforms import throttle
from results.analysis import analyse


@pytest.fixture
def gpu(monkeypatch):
    log = fake_gpu.install(monkeypatch)
    from platforms.cuda import CudaPlatform

    platform = CudaPlatform(0)
    platform.log = log
    return platform


@pytest.fixture
def record(gpu):
    return fake_gpu.h200_record(gpu)


# ---- the platform ---------------------------------------------------------------------------------------------
def test_throttle_table_is_nvml_s():
    import pynvml

    for bit, (name, _label) in throttle.REASONS.items():
        const = "nvmlClocksEventReason" + "".join(part.capitalize() for part in name.split("_"))
        assert getattr(pynvml, const) == bit, name


def test_info_has_the_caches_results_needs(gpu):  # defect 1
    info = gpu.info()
    caches = {c["name"]: c for c in info["caches"]}
    assert set(caches) == {"L1", "L2"}
    assert caches["L2"]["size_bytes"] == 60 << 20 and caches["L2"]["shared"]
    assert caches["L1"]["size_bytes"] == 228 << 10 and caches["L1"]["instances"] == 1  # counted once, see docstring
    assert math.isclose(info["memory_bandwidth_nominal_bytes_per_s"], 2 * 3.201e9 * 6144 / 8)
    assert (info["pcie_gen_current"], info["pcie_width_current"], info["pcie_gen_max"]) == (5, 16, 5)
    assert info["power_limit_w"] == 700 and info["sm_clock_max_mhz"] == 1980


def test_throttle_reasons_are_ored_over_samples(gpu):  # defect 10
    from platforms.base import summarise_samples

    samples = [gpu.read_telemetry() for _ in range(4)]  # masks 0x4, 0x40, idle|0x4, 0
    summary = summarise_samples(samples)["throttle_mask"]
    assert summary["or"] == 0x44 and summary["max"] == 0x40  # the max alone would lose the power cap
    assert throttle.describe(summary["or"]) == ["software power cap", "hardware thermal slowdown"]
    assert gpu.static_telemetry()["throttle_reasons_at_start"] == ["sw_power_cap"]  # the 5th sample


def test_one_read_repeat_call_lasts_a_millisecond(gpu):  # defect 2
    target, rule = gpu.stream_call_bytes()
    nominal = gpu.info()["memory_bandwidth_nominal_bytes_per_s"]
    for size in (16 << 10, 1 << 20, 16 << 20, 1 << 30):
        point = stream.point_size("read_repeat", size, 4, target)
        assert point["bytes"] / (3 * nominal) >= 0.99e-3, size  # even at 3x HBM speed (an L2 hit)
    assert "ms" in rule and "nominal" in rule
    cpu_bytes, _ = type(gpu).__mro__[1].stream_call_bytes(gpu)  # the CPU's default is unchanged
    assert cpu_bytes == stream.REPEAT_TARGET_BYTES


def test_single_call_waits_for_the_flush_and_is_wall_time(gpu):  # defect 5
    gpu.device = "cpu"  # the fakes run the flush on CPU tensors
    gpu.flush_caches()
    gpu.log.clear()
    x = torch.ones(1000)
    wall = gpu.time_call(lambda: x.mul_(1.0))
    assert gpu.log[0] == "sync" and gpu.log.index("sync") < gpu.log.index("event.record")
    assert gpu.log[-1] == "sync"  # ends when the device is done: host wall time, as on a CPU
    assert wall > 0 and gpu.last_device_s is not None and gpu.last_device_s <= wall
    assert "wall" in gpu.single_call_method


def test_flush_reads_and_never_writes(gpu):  # defect 6
    gpu.device = "cpu"
    gpu.flush_caches()
    buf = gpu._flush_buf
    version = buf._version
    gpu.flush_caches()
    assert buf._version == version  # an in-place write (zero_) would bump it
    assert buf.numel() * 4 >= max(2 * (50 << 20), gpu.FLUSH_MIN_BYTES)


# ---- kernels on the CUDA path ---------------------------------------------------------------------------------
def test_int8_b_is_column_major():  # defect 3
    p = gemm.prepare(gemm.GemmShape(64, 48, 32), "int8", "cpu")
    b = p.state["b"]
    assert b.stride() == (1, 32) and p.extra["mode"].startswith("B column-major")
    p.fn()
    assert p.verify().ok


def test_cuda_shape_rules_make_odd_shapes_missing(monkeypatch):  # defect 8
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    odd = gemm.GemmShape(8191, 8191, 8191, tag="odd")
    with pytest.raises(Unsupported, match="multiples of 8"):
        gemm.prepare(odd, "int8", "cuda")
    with pytest.raises(Unsupported, match="multiples of 16"):
        gemm.prepare(odd, "fp8", "cuda")
    assert gemm.shape_support(gemm.GemmShape(8192, 8192, 8192), "fp8", "cuda") is None
    assert gemm.shape_support(gemm.GemmShape(16, 64, 64), "int8", "cuda").endswith("(M=16)")
    assert gemm.shape_support(odd, "int8", "cpu") is None  # the CPU path takes any shape


def test_fp8_accumulation_modes_are_labelled():  # defect 4
    with pytest.raises(Unsupported, match="CUDA"):
        gemm.prepare(gemm.GemmShape(64, 64, 64), "fp8", "cpu", impl=gemm.FP8_FAST_ACCUM)
    assert gemm._mode("fp8", gemm.FP8_FAST_ACCUM, "cuda")["mode"] == "use_fast_accum=True"
    assert "default" in gemm._mode("fp8", "torch", "cuda")["mode"]


def test_gpu_sweep_times_both_fp8_modes(gpu, pytestconfig):
    import bench.test_gemm as bench_gemm

    class Meta:
        fixturenames = ["gemm_point"]

        def __init__(self):
            from bench.session import RUN_KEY, Run

            self.config = type("C", (), {"stash": {RUN_KEY: Run(platform=gpu, dtypes=["fp8"])},
                                         "getoption": staticmethod(lambda name: True)})()

        def parametrize(self, name, points):
            self.points = points

    meta = Meta()
    bench_gemm.pytest_generate_tests(meta)
    impls = {p.values[0][2] for p in meta.points}
    assert impls == {"torch", gemm.FP8_FAST_ACCUM}


def test_transfer_pattern_is_built_in_uint8(monkeypatch):  # defect 9
    calls = []
    real = torch.arange

    def arange(*args, **kwargs):
        calls.append((args, kwargs.get("dtype")))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "arange", arange)
    p = transfer.pattern(10 ** 6)
    assert p.dtype == torch.uint8 and p.numel() == 10 ** 6 and p[251].item() == 0 and p[250].item() == 250
    assert all(args[-1] <= transfer.PERIOD and dtype == torch.uint8 for args, dtype in calls)


def test_a_slow_first_call_never_cuts_larger_shapes(tmp_path):  # defect 7
    from bench.harness import Suite
    from bench.timing import Budget
    from platforms.cpu import CpuPlatform
    from results.record import RunRecord

    class Bench:
        disabled = True
        extra_info: dict = {}

    suite = Suite(platform=CpuPlatform(), record=RunRecord(tmp_path, {"name": "t", "device": "cpu"}, {}),
                  budget=Budget(0.01, 0.2, 0.001, 3, 5))
    calls = {"n": 0}

    def make():
        def fn():
            calls["n"] += 1
            if calls["n"] == 1:
                time.sleep(0.3)  # a lazy module load: over the cap, under 4x the cap

        return Prepared(group="gemm", kernel="gemm", dtype="fp32", impl="torch", fn=fn,
                        verify=lambda: Verdict(True, "ok"), flops=10 ** 9, bytes=1, convention="", shape=[1, 1, 1, 1])

    row = suite.run(Bench(), make)
    assert row["status"] == "ok" and row["extra"]["cold_call_s"] >= 0.3
    assert suite.best_rate["fp32"] > 10 ** 9 / 0.3  # from warm calls only
    assert suite.estimate_cut("fp32", 2 * 10 ** 9) is None


# ---- a synthetic H200 record through results/ -------------------------------------------------------------------
def test_synthetic_record_gets_l2_and_dram_ceilings(record):  # defects 1, 2
    from results.analysis import analyse

    result = analyse(record)
    assert {"L1", "L2", "DRAM"} <= set(result.memory) and "largest" not in result.memory
    assert result.dram_level == "DRAM"
    assert math.isclose(result.memory["L2"].value, fake_gpu.RATES["L2"], rel_tol=1e-6)
    assert math.isclose(result.memory["DRAM"].value, fake_gpu.RATES["DRAM"], rel_tol=1e-6)
    bf16 = result.compute["bf16"].value
    assert math.isclose(result.ridge_flop_per_byte["bf16"], bf16 / fake_gpu.RATES["DRAM"])


def test_old_call_size_would_hide_l2(gpu):
    """Why defect 2 mattered: with 32 MiB per call, every L2 point is under 10x a 5 us launch."""
    from results.roofline import OVERHEAD_FACTOR

    point = stream.point_size("read_repeat", 8 << 20, 4, 32 << 20)
    assert point["bytes"] / fake_gpu.RATES["L2"] < OVERHEAD_FACTOR * fake_gpu.DISPATCH_S


def test_fp8_peak_names_its_accumulation_mode(record):  # defect 4
    from results.analysis import analyse

    fp8 = analyse(record).compute["fp8"]
    assert fp8.impl == gemm.FP8_FAST_ACCUM and "use_fast_accum=True" in fp8.note
    plain = [m for m in record["measurements"] if m["dtype"] == "fp8" and m["impl"] == "torch" and m["status"] == "ok"]
    assert plain, "the default-accumulation points stay in the record"


def test_summary_of_the_synthetic_record(record):  # defects 1, 10, 11
    from results.summary import summary_text

    text = summary_text(analyse(record))
    int8 = next(line for line in text.splitlines() if line.strip().startswith("int8") and "/s" in line)
    assert "OP/s" in int8 and "FLOP/s" not in int8
    assert "ridge vs DRAM" in text
    lines = [line.strip() for line in text.splitlines()]
    assert any(line.startswith("L2 ") for line in lines) and any(line.startswith("DRAM ") for line in lines)
    assert "software power cap, hardware thermal slowdown" in text  # OR over the run's samples
    assert "one idle device sync: 9.00 us" in text and "host wall time of one call" in text


def test_validation_compares_hbm_with_the_sheet(record):  # defects 1, 10, 11
    from results.speccheck import validate
    from results.specs import spec_for_record

    spec, how = spec_for_record(record)
    assert spec is not None and "H200" in spec.name, how
    rows = {r["ceiling"]: r for r in validate(analyse(record), spec)}
    assert rows["DRAM"]["spec"] == 4.8e12 and math.isclose(rows["DRAM"]["ratio"], fake_gpu.RATES["DRAM"] / 4.8e12)
    assert rows["int8"]["unit"] == "OP/s" and rows["bf16"]["unit"] == "FLOP/s"
    below = [f for f in rows["bf16"]["flags"] if f.startswith("telemetry")]
    assert below and "software power cap" in below[0] and "hardware thermal slowdown" in below[0]


# ---- issue 22: the link during the point, the power reading's kind, the device-time label -------------------
def test_pinned_copies_are_validated_per_direction_with_the_link_they_ran_on(record):
    from results.speccheck import validate
    from results.specs import spec_for_record

    spec, _how = spec_for_record(record)
    rows = {r["ceiling"]: r for r in validate(analyse(record), spec)}
    for label, rate in (("h2d pinned", 52e9), ("d2h pinned", 50e9)):
        row = rows[label]
        assert row["unit"] == "B/s" and row["spec"] == 64e9 and math.isclose(row["ratio"], rate / 64e9)
        # the samples read gen1 (idle) then gen5: the point ran on gen5, beside the link's maximum
        assert "during the point gen5 x16" in row["spec_field"] and "maximum gen5 x16" in row["spec_field"]
        assert not row["flags"], row["flags"]
    from results.summary import validation_text

    assert "h2d pinned: measured" in validation_text(analyse(record))


def test_a_link_that_did_not_train_up_is_flagged(record):
    from results.speccheck import validate
    from results.specs import spec_for_record

    for m in record["measurements"]:
        if m["group"] == "transfer":
            m["telemetry"] = {"pcie_gen": {"min": 3, "median": 3, "max": 3, "n": 3},
                              "pcie_width": {"min": 16, "median": 16, "max": 16, "n": 3}}
    spec, _how = spec_for_record(record)
    row = {r["ceiling"]: r for r in validate(analyse(record), spec)}["h2d pinned"]
    assert any("ran at gen3 x16 during the point, below the sheet's gen5" in f for f in row["flags"]), row["flags"]
    record["platform"]["pcie_gen_max"] = 4  # a gen4 host: the sheet's gen5 figure cannot be reached
    row = {r["ceiling"]: r for r in validate(analyse(record), spec)}["h2d pinned"]
    assert any("tops out at gen4" in f for f in row["flags"]), row["flags"]


def test_pcie_link_is_read_during_every_point(monkeypatch):
    log = fake_gpu.install(monkeypatch, nvml=fake_gpu.fake_pynvml(pcie_gens=(1, 5)))
    from platforms.cuda import CudaPlatform

    platform = CudaPlatform(0)
    assert platform.info()["pcie_gen_current"] == 1  # idle before the run
    sample = platform.read_telemetry()
    assert (sample["pcie_gen"], sample["pcie_width"]) == (5, 16) and log is not None


def test_power_reading_is_instant_where_the_driver_offers_it(monkeypatch):
    fake_gpu.install(monkeypatch, nvml=fake_gpu.fake_pynvml(instant_power_mw=498_000))
    from platforms.cuda import CudaPlatform

    platform = CudaPlatform(0)
    assert platform.read_telemetry()["power_w"] == 498.0
    assert "POWER_INSTANT" in platform.static_telemetry()["power_source"]


def test_power_reading_says_it_is_a_one_second_average_otherwise(gpu):
    assert gpu.read_telemetry()["power_w"] == 512.0
    assert "1 s average" in gpu.static_telemetry()["power_source"]


def test_device_times_are_labelled_as_starting_before_the_dispatch(gpu):
    assert "before the host has dispatched" in gpu.DEVICE_TIMES_NOTE
    assert "DEVICE_TIMES_NOTE" in gpu.single_call_method


def test_layers_on_the_gpu_roofline(record):  # defect 5: the overhead part includes the sync
    from results.layers import PARTS, fit_level

    rows = {r["layer"]: r for r in analyse(record).layers}
    up, norm = rows["mlp.up"], rows["norm"]
    for r in (up, norm):
        assert math.isclose(sum(r[f"gap_{p}_s"] for p in PARTS), r["time_s"])
    # 44 MB and 4 MB fit the 50 MiB L2 (without the platform's caches every layer "fit DRAM")
    assert up["fits"] == "L2" and norm["fits"] == "L2"
    assert fit_level(200 * 10 ** 6, record["platform"]["caches"]) == "DRAM"
    assert fit_level(100 * 10 ** 3, record["platform"]["caches"]) == "L1"
    assert math.isclose(norm["gap_overhead_s"], min(norm["time_s"] - norm["gap_roof_s"],
                                                    6 * fake_gpu.DISPATCH_S + fake_gpu.SYNC_S))


def test_plots_and_compare_of_synthetic_records(gpu, record, tmp_path):
    from results.compare import compare_table
    from results.plot import compare_png, roofline_png, write_layer_plots

    for path in [roofline_png(analyse(record), tmp_path / "roof.png"), *write_layer_plots(analyse(record), tmp_path / "r"),
                 compare_png([analyse(record), analyse(fake_gpu.h200_record(gpu, run_id="b"))], tmp_path / "cmp.png")]:
        with open(path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n", path
    # the same machine and day twice (a before/after pair): distinct columns, no crash
    later = fake_gpu.h200_record(gpu, run_id="c", created="2026-12-01T01:00:00+00:00")
    table = compare_table([analyse(record), analyse(later)])
    assert len(set(table.columns)) == 2
    assert len(set(compare_table([analyse(record), analyse(record)]).columns)) == 2


def test_record_round_trip_and_json(record, tmp_path):
    import json

    from results.record import read_record
    from results.summary import ceilings_json

    path = tmp_path / "r.json"
    path.write_text(json.dumps(record))
    back = read_record(path)
    out = ceilings_json(analyse(back))
    assert set(out["memory_bytes_per_s"]) >= {"L2", "DRAM"} and out["ridge_against"] == "DRAM"


def test_export_names_the_example_by_date_and_device(record, tmp_path):
    import json

    from results.__main__ import main

    runs = tmp_path / "runs"
    runs.mkdir()
    path = runs / "20261201T000000Z-host-cuda-0.json"
    path.write_text(json.dumps(record))
    (runs / "20261201T000000Z-host-cuda-0.png").write_bytes(b"\x89PNG")
    (runs / "20261201T000000Z-host-cuda-0.layers-x.png").write_bytes(b"\x89PNG")
    (runs / "20261201T000000Z-host-cuda-0-2.png").write_bytes(b"\x89PNG")  # another run's plot: not copied
    examples = tmp_path / "examples"
    assert main(["export", str(path), "--dir", str(examples)]) == 0
    assert sorted(p.name for p in examples.iterdir()) == [
        "2026-12-01_cuda_nvidia-h200.json", "2026-12-01_cuda_nvidia-h200.layers-x.png", "2026-12-01_cuda_nvidia-h200.png"]
    assert main(["export", str(path), "--dir", str(examples)]) == 0  # a second export never overwrites
    assert (examples / "2026-12-01_cuda_nvidia-h200-2.json").exists()


def test_gpu_check_script_is_valid_bash_and_refuses_a_cpu_machine(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "tools" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    if not torch.cuda.is_available():
        out = subprocess.run(["bash", str(script), str(tmp_path / "gc")], capture_output=True, text=True,
                             timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})
        assert out.returncode == 2 and "no CUDA device" in out.stdout + out.stderr
        assert (tmp_path / "gc" / "gpu_check.tgz").exists()  # even a refusal leaves its log in the archive


#: a stand-in for the GPU machine's python: answers the device checks, passes the tests, writes a (synthetic)
#: record and then HANGS in the benchmark step, ignoring SIGINT as a wedged driver call would; the results
#: commands run for real on that record
STAND_IN = r"""#!/bin/bash
case "$1" in
  -) cat >/dev/null; echo "gpu_check: NVIDIA H200 (stand-in), 132 SMs"; exit 0 ;;
  -c) case "$2" in *device_count*) echo 1 ;; *) echo 90 ;; esac; exit 0 ;;
esac
case "$2 $3" in
  "kernels.triton_aot "*) echo "sm_90 fma fp64: ok"; exit 0 ;;
  "pytest tests/"*) echo "tests/test_cuda.py::test_x PASSED"; exit 0 ;;
  "pytest bench/"*)
    dir="${@: -1}"; cp "$FAKE_RECORD" "$dir/20261201T000000Z-synthetic-cuda-0.json"
    echo "bench/test_gemm.py::test_gemm[bf16-4096] PASSED"
    trap '' INT; exec sleep 600 ;;
  "torch.distributed.run "*) echo "distributed: stand-in, no record"; exit 1 ;;
esac
exec "$REAL_PYTHON" "$@"
"""


def test_gpu_check_brings_back_what_finished_when_a_step_hangs(record, tmp_path):
    import json
    import subprocess
    import sys
    import tarfile
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "tools" / "gpu_check.sh"
    fake = tmp_path / "python"
    fake.write_text(STAND_IN)
    fake.chmod(0o755)
    (tmp_path / "record.json").write_text(json.dumps(record))
    out_dir = tmp_path / "gc"
    env = {"PATH": "/usr/bin:/bin", "PYTHON": str(fake), "REAL_PYTHON": sys.executable, "HOME": str(tmp_path),
           "FAKE_RECORD": str(tmp_path / "record.json"), "BENCH_TIMEOUT_S": "2", "KILL_AFTER_S": "1",
           "MPLBACKEND": "Agg"}
    start = time.monotonic()
    run = subprocess.run(["bash", str(script), str(out_dir)], capture_output=True, text=True, timeout=240, env=env)
    assert time.monotonic() - start < 200
    steps = (out_dir / "steps.txt").read_text()
    assert "bench: exit 137" in steps and "TIMED OUT" in steps, steps  # SIGINT ignored: killed after -k
    assert "validate: exit 0" in steps and "export: exit 0" in steps, steps + run.stderr[-2000:]
    with tarfile.open(out_dir / "gpu_check.tgz") as tar:
        names = {Path(n).name for n in tar.getnames()}
    assert {"bench.log", "tests.log", "steps.txt", "summary.txt", "validate.log",
            "20261201T000000Z-synthetic-cuda-0.json"} <= names, names
    assert any(n.endswith(".json") and n.startswith("2026-12-01_cuda_nvidia-h200") for n in names), names
    assert "test_gemm[bf16-4096] PASSED" in (out_dir / "bench.log").read_text()  # one line per point
    assert run.returncode != 0  # a hung suite is not a passed check
