"""Spec sheets: parsing, errors, matching, the flag logic, and compare on two records."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from results.compare import compare_table
from results.record import read_record
from results.specs import SpecError, cpu_theoretical, flags_for, load_all, load_spec, match, validate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "results/examples/2026-11-29_cpu_amd-epyc-2core-vm.json"
JETSON = ROOT / "tests/data/handmade_jetson_orin_nano_super.json"
REQUIRED_DEVICES = ["H100 SXM5", "H100 PCIe", "H200", "A100 SXM4 80GB", "A100 SXM4 40GB", "A100 PCIe 80GB",
                    "A100 PCIe 40GB", "L40S", "NVIDIA L4", "NVIDIA A10", "NVIDIA T4", "V100", "RTX 4090", "RTX 3090",
                    "AGX Orin 64GB", "AGX Orin 32GB", "Orin NX 16GB", "Orin NX 8GB", "Orin Nano 8GB",
                    "Orin Nano 4GB", "Super mode", "AGX Xavier"]


def test_bundled_sheets_load_and_cover_the_devices():
    specs = load_all()
    names = " | ".join(s.name for s in specs)
    for device in REQUIRED_DEVICES:
        assert device in names, device
    for spec in specs:
        assert spec.data["source"]["document"] and spec.data["source"].get("url")
        for entry in spec.data["compute_tflops"].values():
            assert {"dense", "sparse"} & set(entry)


def _sheet(tmp_path, text):
    path = tmp_path / "sheet.yaml"
    path.write_text(text)
    return path


GOOD = """schema: roofline-spec/1
name: Test GPU
match: {name_regex: "Test"}
source: {document: "made up"}
memory: {bandwidth_gb_per_s: 100}
compute_tflops:
  fp32: {dense: 10}
"""


@pytest.mark.parametrize("text,message", [
    ("name: [unclosed", "not valid YAML at line 1"),
    (GOOD.replace("schema: roofline-spec/1\n", ""), "field 'schema'"),
    (GOOD.replace('source: {document: "made up"}', "source: {}"), "field 'source.document' is missing"),
    (GOOD.replace("dense: 10", "dense: -3"), "compute_tflops.fp32.dense' must be a positive number"),
    (GOOD.replace("{dense: 10}", "{fast: 10}"), "compute_tflops.fp32' needs 'dense' and/or 'sparse'"),
    (GOOD.replace('"Test"', '"("'), "match.name_regex' is not a regular expression"),
    (GOOD.replace("bandwidth_gb_per_s: 100", "bandwidth_gb_per_s: lots"), "memory.bandwidth_gb_per_s"),
])
def test_malformed_sheets_name_file_field_and_reason(tmp_path, text, message):
    path = _sheet(tmp_path, text)
    with pytest.raises(SpecError, match=message) as info:
        load_spec(path)
    assert str(path) in str(info.value)


def test_matching_by_name_and_memory_and_ambiguity():
    specs = load_all()
    sxm, _, _ = match({"name": "NVIDIA H100 80GB HBM3", "memory_bytes_total": 85e9}, specs)
    pcie, _, _ = match({"name": "NVIDIA H100 PCIe", "memory_bytes_total": 85e9}, specs)
    a100, _, _ = match({"name": "NVIDIA A100-SXM4-40GB", "memory_bytes_total": 42.4e9}, specs)
    assert sxm.name == "NVIDIA H100 SXM5 80GB" and pcie.name == "NVIDIA H100 PCIe 80GB"
    assert a100.name == "NVIDIA A100 SXM4 40GB"
    none, candidates, how = match({"name": "Orin", "memory_bytes_total": 7.6 * 2 ** 30}, specs)
    assert none is None and len(candidates) >= 2 and "ambiguous" in how and "Orin NX 8GB" in how
    nano, _, _ = match({"name": "Orin", "memory_bytes_total": 7.6 * 2 ** 30, "board_model": "Jetson Orin Nano",
                        "power_mode": "15W"}, specs)
    assert nano.name == "NVIDIA Jetson Orin Nano 8GB"
    assert match({"name": "Some Other GPU"}, specs)[0] is None


@pytest.mark.parametrize("ratio,sparse_only,expect", [
    (1.08, False, ["ABOVE SPEC"]), (0.85, False, []), (0.5, True, ["WITH SPARSITY"]), (0.931, False, ["GB vs GiB"]),
    (0.6, False, ["BELOW 70%"]), (0.5, False, ["BELOW 70%"]),
])
def test_flag_logic(ratio, sparse_only, expect):
    flags = flags_for(ratio, sparse_only, bytes_figure=True)
    assert len(flags) == len(expect) and all(e in f for e, f in zip(expect, flags))


def test_low_ratio_cites_the_telemetry(tmp_path):
    record = read_record(JETSON)
    record["platform"].update({"name": "Test", "sm_clock_max_mhz": 1980, "power_limit_w": 700, "kind": "cuda"})
    for m in record["measurements"]:
        m["telemetry"] = {"sm_clock_mhz": {"min": 900, "median": 1100, "max": 1200, "n": 9},
                          "power_w": {"min": 300, "median": 690, "max": 700, "n": 9},
                          "throttle_mask": {"min": 4, "median": 4, "max": 4, "n": 9}}
    rows = validate(record, load_spec(_sheet(tmp_path, GOOD.replace("dense: 10", "dense: 20"))))
    fp32 = next(r for r in rows if r["ceiling"] == "fp32")
    text = " ".join(fp32["flags"])
    assert "BELOW 70%" in text and "SM clock median 1100 of max 1980" in text and "software power cap" in text


def test_cpu_theoretical_peak_by_hand():
    info = {"name": "Intel Xeon", "simd_flags": ["avx2", "fma", "avx512f"], "physical_cores": 4, "freq_mhz_max": 3000}
    theory = cpu_theoretical(info)
    assert theory["fp32_flop_per_s"] == 4 * 2 * 16 * 2 * 3000e6 and theory["freq_kind"] == "OS maximum"
    zen = cpu_theoretical({"name": "AMD EPYC", "simd_flags": ["avx512f"], "physical_cores": 2, "freq_mhz_current": 2596})
    assert zen["fp64_flop_per_s"] == 2 * 2 * 4 * 2 * 2596e6 and "current" in zen["freq_kind"]


def test_compare_two_records_table_and_png(tmp_path):
    table = compare_table([read_record(EXAMPLE), read_record(JETSON)])
    assert table.shape[1] == 2 and ("bandwidth (best)", "DRAM") in table.index
    assert "GFLOP/s/W" in table.loc[("per watt (measured power)", "fp32")].iloc[1]
    start = time.time()
    out = subprocess.run([sys.executable, "-m", "results", "compare", str(EXAMPLE), str(JETSON), "-o",
                          str(tmp_path / "c.png")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and time.time() - start < 10
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG" and "HAND-MADE" in out.stdout


def test_malformed_spec_is_a_usage_error_before_measuring(tmp_path):
    sheet = _sheet(tmp_path, "name: [unclosed")
    out = subprocess.run([sys.executable, "-m", "pytest", "bench/", "--platform", "cpu", "--spec", str(sheet),
                          "--results-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 4 and "not valid YAML" in out.stderr and not list(tmp_path.glob("*.json"))


def test_handmade_record_is_labelled_as_such():
    assert "HAND-MADE" in json.loads(JETSON.read_text())["note"]
