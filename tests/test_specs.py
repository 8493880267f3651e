"""Spec sheets: parsing, errors, matching, the flag logic, and compare on two records."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from results.analysis import analyse
from results.compare import compare_table
from results.record import read_record
from results.speccheck import cpu_theoretical, flags_for, validate
from results.specs import FIGURE_KEYS, SpecError, load_all, load_spec, match, mode_clock

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
            assert set(FIGURE_KEYS) & set(entry)
        assert not spec.warnings, (spec.name, spec.warnings)  # the bundled sheets agree with their own arithmetic
        assert "l2_mb" not in (spec.data.get("caches") or {})


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
                        "power_mode": "15W", "gpu_clock_max_mhz": 625}, specs)
    assert nano.name == "NVIDIA Jetson Orin Nano 8GB"
    assert match({"name": "Some Other GPU"}, specs)[0] is None


@pytest.mark.parametrize("ratio,sparse_only,expect", [
    (1.08, False, ["ABOVE SPEC"]), (0.85, False, []), (0.5, True, ["WITH SPARSITY"]),
    # 93% of an HBM sheet is an honest result, not a unit slip; above the sheet by 2^30/1e9 is evidence of one
    (0.931, False, []), (0.926, False, []), (0.936, False, []), (1.0737, False, ["in GiB/s"]),
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
    rows = validate(analyse(record), load_spec(_sheet(tmp_path, GOOD.replace("dense: 10", "dense: 20"))))
    fp32 = next(r for r in rows if r["ceiling"] == "fp32")
    text = " ".join(fp32["flags"])
    assert "BELOW 70%" in text and "SM clock median 1100 of max 1980" in text and "software power cap" in text


def test_cpu_theoretical_peak_by_hand():
    info = {"name": "Intel Xeon", "simd_flags": ["avx2", "fma", "avx512f"], "physical_cores": 4, "freq_mhz_max": 3000}
    theory = cpu_theoretical(info)
    assert theory["fp32_flop_per_s"] == 4 * 2 * 16 * 2 * 3000e6 and theory["freq_kind"] == "OS cpufreq maximum"
    zen = cpu_theoretical({"name": "AMD EPYC", "simd_flags": ["avx512f"], "physical_cores": 2, "freq_mhz_current": 2596})
    assert zen["fp64_flop_per_s"] == 2 * 2 * 4 * 2 * 2596e6 and "current" in zen["freq_kind"]
    amx = cpu_theoretical({"name": "Intel(R) Xeon(R) Processor", "vendor": "GenuineIntel",
                           "simd_flags": ["avx512f", "amx_tile", "amx_bf16", "amx_int8", "avx512_bf16"],
                           "physical_cores": 2, "freq_mhz_current": 2100})
    # Intel: 1024 BF16 / 2048 INT8 operations per cycle per core on the AMX tiles
    assert amx["bf16_flop_per_s"] == 2 * 1024 * 2100e6 and amx["int8_flop_per_s"] == 2 * 2048 * 2100e6
    assert amx["engines"]["bf16"]["kernel"] == "amx" and "Intel" in amx["engines"]["bf16"]["source"]


def test_compare_two_records_table_and_png(tmp_path):
    table = compare_table([analyse(read_record(EXAMPLE)), analyse(read_record(JETSON))])
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


GiB = 2 ** 30


@pytest.mark.parametrize("info,expect", [
    # H200 NVL: the NVML name says NVL, the SM clock tops out near 1785 MHz, the card is limited to 600 W
    ({"name": "NVIDIA H200 NVL", "memory_bytes_total": 140 * GiB, "sm_clock_max_mhz": 1785,
      "power_limit_default_w": 600}, "NVIDIA H200 NVL 141GB"),
    ({"name": "NVIDIA H200", "memory_bytes_total": 140 * GiB, "sm_clock_max_mhz": 1980, "power_limit_w": 700},
     "NVIDIA H200 SXM 141GB"),
    # an SXM board an administrator capped at 500 W is still an SXM board (the default limit decides)
    ({"name": "NVIDIA H200", "memory_bytes_total": 140 * GiB, "sm_clock_max_mhz": 1980, "power_limit_w": 500,
      "power_limit_default_w": 700}, "NVIDIA H200 SXM 141GB"),
    ({"name": "NVIDIA H100 NVL", "memory_bytes_total": 94 * GiB, "sm_clock_max_mhz": 1785}, "NVIDIA H100 NVL 94GB"),
    ({"name": "NVIDIA H100 PCIe", "memory_bytes_total": 80 * GiB, "sm_clock_max_mhz": 1755,
      "power_limit_default_w": 350}, "NVIDIA H100 PCIe 80GB"),
    ({"name": "NVIDIA H100 80GB HBM3", "memory_bytes_total": 80 * GiB, "sm_clock_max_mhz": 1980,
      "power_limit_default_w": 700}, "NVIDIA H100 SXM5 80GB"),
    ({"name": "NVIDIA A100-SXM4-80GB", "memory_bytes_total": 80 * GiB, "power_limit_default_w": 400},
     "NVIDIA A100 SXM4 80GB"),
    ({"name": "NVIDIA A100 80GB PCIe", "memory_bytes_total": 80 * GiB, "power_limit_default_w": 300},
     "NVIDIA A100 PCIe 80GB"),
    ({"name": "Tesla V100-SXM2-16GB", "memory_bytes_total": 15.8 * GiB}, "NVIDIA V100 SXM2 16GB"),
    ({"name": "Tesla V100-SXM2-32GB", "memory_bytes_total": 31.7 * GiB}, "NVIDIA V100 SXM2 32GB"),
    # the original AGX Orin developer kit: its 32 GB module has the 64GB module's GPU
    ({"name": "Orin", "memory_bytes_total": 30.6 * GiB, "board_model": "Jetson AGX Orin Developer Kit",
      "module_id": "p3701-0000", "power_mode": "MAXN"}, "NVIDIA Jetson AGX Orin Developer Kit (32GB module P3701-0000)"),
    ({"name": "Orin", "memory_bytes_total": 30.6 * GiB, "board_model": "Jetson AGX Orin", "module_id": "p3701-0004",
      "power_mode": "MODE_40W"}, "NVIDIA Jetson AGX Orin 32GB"),
    # a module in a third-party carrier: the board model names the carrier, the part number the module
    ({"name": "Orin", "memory_bytes_total": 7.4 * GiB, "board_model": "reComputer J4011", "module_id": "p3767-0001",
      "power_mode": "MAXN"}, "NVIDIA Jetson Orin NX 8GB"),
    ({"name": "Orin", "memory_bytes_total": 7.4 * GiB, "board_model": "Seeed J3011", "module_id": "p3767-0003",
      "power_mode": "7W"}, "NVIDIA Jetson Orin Nano 8GB"),
    ({"name": "Orin", "memory_bytes_total": 3.6 * GiB, "board_model": "Custom carrier", "module_id": "p3767-0004",
      "power_mode": "7W_AI"}, "NVIDIA Jetson Orin Nano 4GB"),
    # Orin Nano 8GB on Super firmware in its default 25W mode (a mode only the Super firmware has)
    ({"name": "Orin", "memory_bytes_total": 7.4 * GiB, "board_model": "Jetson Orin Nano Developer Kit",
      "power_mode": "25W", "gpu_clock_max_mhz": 918}, "NVIDIA Jetson Orin Nano 8GB (Super mode)"),
    ({"name": "Orin", "memory_bytes_total": 7.4 * GiB, "board_model": "Jetson Orin Nano Developer Kit",
      "power_mode": "MAXN SUPER"}, "NVIDIA Jetson Orin Nano 8GB (Super mode)"),
    ({"name": "Orin", "memory_bytes_total": 3.6 * GiB, "board_model": "Jetson Orin Nano", "power_mode": "MAXN_SUPER"},
     "NVIDIA Jetson Orin Nano 4GB (Super mode)"),
    ({"name": "Orin", "memory_bytes_total": 15.3 * GiB, "board_model": "Jetson Orin NX", "power_mode": "MAXN_SUPER"},
     "NVIDIA Jetson Orin NX 16GB (Super mode)"),
    ({"name": "Orin", "memory_bytes_total": 15.3 * GiB, "board_model": "Jetson Orin NX", "power_mode": "MAXN"},
     "NVIDIA Jetson Orin NX 16GB"),
    ({"name": "Orin", "memory_bytes_total": 7.4 * GiB, "board_model": "Jetson Orin NX", "power_mode": "40W"},
     "NVIDIA Jetson Orin NX 8GB (Super mode)"),
])
def test_every_variant_resolves_to_its_own_sheet(info, expect):
    spec, _candidates, how = match(info, load_all())
    assert spec is not None and spec.name == expect, how


@pytest.mark.parametrize("info,missing", [
    ({"name": "NVIDIA H200", "memory_bytes_total": 140 * GiB}, "max SM clock"),  # no NVML: SXM or NVL?
    ({"name": "Orin", "memory_bytes_total": 30.6 * GiB, "board_model": "Jetson AGX Orin", "power_mode": "MAXN"},
     "module part number"),  # no module id: developer kit or production?
])
def test_a_missing_fact_gives_an_ambiguous_line_naming_it(info, missing):
    spec, candidates, how = match(info, load_all())
    assert spec is None and len(candidates) == 2 and how.startswith("ambiguous") and missing in how
    assert all(c.name in how for c in candidates)


def test_jetson_validation_uses_the_power_modes_clock_and_gpu_only_figures():
    specs = {s.name: s for s in load_all()}
    nano = specs["NVIDIA Jetson Orin Nano 8GB (Super mode)"]
    factor, note = mode_clock(nano, {"power_mode": "25W"})
    assert factor == pytest.approx(918 / 1020) and "power mode 25W" in note
    factor, note = mode_clock(nano, {"power_mode": "25W", "gpu_clock_max_mhz": 900})  # the recorded cap comes first
    assert factor == pytest.approx(900 / 1020) and "devfreq" in note
    record = read_record(JETSON)
    record["platform"]["power_mode"], record["platform"]["gpu_clock_max_mhz"] = "25W", 918
    rows = {r["ceiling"]: r for r in validate(analyse(record), nano)}
    assert rows["fp32"]["spec"] == pytest.approx(2.09e12 * 918 / 1020)
    assert rows["DRAM"]["spec_field"] == "power_modes.25W.bandwidth_gb_per_s"
    if "int8" in rows:  # the GPU-only dense figure, not the module's sparse headline
        assert rows["int8"]["spec_field"].startswith("compute_tflops.int8.gpu_dense")
    agx = specs["NVIDIA Jetson AGX Orin 64GB"]
    assert agx.compute("int8")["gpu_dense"] == 85 and agx.compute("int8")["sparse"] == 275
    assert agx.compute("bf16")["gpu_dense"] and "Orin Nano has no DLA" not in agx.compute("int8")["conditions"]
    assert "no DLA" in specs["NVIDIA Jetson Orin Nano 8GB"].compute("int8")["conditions"]


@pytest.mark.parametrize("replace,field", [
    # a sparse figure given as dense: twice CUDA cores x 2 FLOP x clock
    ("fp32: {dense: 10}", "compute_tflops.fp32.dense 20"),
    # sparse not 2 x dense
    ("fp32: {dense: 10}\n  bf16: {dense: 100, sparse: 150}", "compute_tflops.bf16: sparse 150"),
    # a wrong clock in a derived figure
    ("fp32: {dense: 10}\n  bf16: {dense: 100, derived: {units: 10, flop_per_clock: 4096, clock_mhz: 1980}}",
     "compute_tflops.bf16.dense 100"),
])
def test_a_users_sheet_with_inconsistent_arithmetic_warns_naming_the_field(tmp_path, replace, field):
    text = GOOD.replace("compute_tflops:\n  fp32: {dense: 10}", "gpu: {cuda_cores: 2500}\nclocks: {boost_mhz: 2000}\n"
                        "compute_tflops:\n  " + replace.replace("{dense: 10}", "{dense: 20}" if "20" in field else "{dense: 10}"))
    spec = load_spec(_sheet(tmp_path, text))
    assert any(w.startswith(field) for w in spec.warnings), spec.warnings
    record = read_record(JETSON)
    from results.summary import validation_text

    assert field in validation_text(analyse(record, str(_sheet(tmp_path, text))))


def test_a_consistent_users_sheet_has_no_warnings(tmp_path):
    text = GOOD.replace("compute_tflops:", "gpu: {cuda_cores: 2500}\nclocks: {boost_mhz: 2000}\ncompute_tflops:")
    assert load_spec(_sheet(tmp_path, text)).warnings == []


#: the mode names each module's nvpmodel configuration defines (NVIDIA's nvpmodel_<module>[_super].conf files), and
#: the SMs (2 x TPCs not power-gated) and GPU clock cap of each
NVPMODEL_MODES = {
    "NVIDIA Jetson AGX Orin 32GB": {"MAXN": (14, 930), "MODE_15W": (6, 408), "MODE_30W": (8, 612),
                                    "MODE_40W": (14, 816)},
    "NVIDIA Jetson AGX Orin Developer Kit (32GB module P3701-0000)": {
        "MAXN": (16, 1300), "MODE_15W": (6, 408), "MODE_30W": (8, 612), "MODE_50W": (16, 816)},
    "NVIDIA Jetson Orin NX 16GB": {"MAXN": (8, 918), "10W": (4, 612), "15W": (4, 612), "25W": (8, 408)},
    "NVIDIA Jetson Orin NX 16GB (Super mode)": {"MAXN_SUPER": (8, 1173), "10W": (4, 612), "15W": (4, 612),
                                                "25W": (8, 408), "40W": (8, 1173)},
    "NVIDIA Jetson Orin NX 8GB": {"MAXN": (8, 765), "10W": (4, 612), "15W": (4, 612), "20W": (8, 408)},
    "NVIDIA Jetson Orin NX 8GB (Super mode)": {"MAXN_SUPER": (8, 1173), "10W": (4, 612), "15W": (4, 612),
                                               "20W": (8, 408), "40W": (8, 1173)},
    "NVIDIA Jetson Orin Nano 8GB": {"15W": (8, 625), "7W": (4, 408)},
    "NVIDIA Jetson Orin Nano 8GB (Super mode)": {"15W": (8, 612), "25W": (8, 918), "MAXN_SUPER": (8, 1020)},
    "NVIDIA Jetson Orin Nano 4GB": {"10W": (4, 625), "7W_AI": (4, 408), "7W_CPU": (4, 306)},
    "NVIDIA Jetson Orin Nano 4GB (Super mode)": {"10W": (4, 612), "25W": (4, 1020), "MAXN_SUPER": (4, 1020)},
}


@pytest.mark.parametrize("sheet", sorted(NVPMODEL_MODES))
def test_each_nvpmodel_mode_name_finds_its_entry(sheet):
    from results.specs import mode_entry

    spec = {s.name: s for s in load_all()}[sheet]
    assert set(spec.data["power_modes"]) == set(NVPMODEL_MODES[sheet])  # no mode the firmware lacks (Nano 4GB Super: no 7W)
    for mode, (sms, mhz) in NVPMODEL_MODES[sheet].items():
        entry = mode_entry(spec, mode)
        assert entry and (entry["sms"], entry["gpu_max_mhz"]) == (sms, mhz), (mode, entry)
    assert mode_entry(spec, "NOT_A_MODE") is None


def test_power_mode_scales_compute_by_sms_and_clock_and_caps_the_memory():
    from results.specs import mode_bandwidth

    specs = {s.name: s for s in load_all()}
    nx = specs["NVIDIA Jetson Orin NX 8GB"]
    factor, note = mode_clock(nx, {"power_mode": "15W"})  # 4 of 8 SMs at 612 of 765 MHz
    assert factor == pytest.approx(4 / 8 * 612 / 765) and "4/8 SMs" in note
    assert mode_clock(nx, {"power_mode": "MAXN"})[0] == pytest.approx(1.0)
    bandwidth, field = mode_bandwidth(nx, {"power_mode": "10W"})  # EMC capped at 2133 of 3200 MHz
    assert bandwidth == pytest.approx(68.3e9) and field == "power_modes.10W.bandwidth_gb_per_s"
    agx = specs["NVIDIA Jetson AGX Orin 32GB"]
    assert mode_clock(agx, {"power_mode": "MODE_40W"})[0] == pytest.approx(816 / 930)  # not 930: all 14 SMs
    record = read_record(JETSON)
    record["platform"].update(power_mode="15W", gpu_clock_max_mhz=612)
    rows = {r["ceiling"]: r for r in validate(analyse(record), nx)}
    assert rows["fp32"]["spec"] == pytest.approx(1.57e12 * 4 / 8 * 612 / 765) and "TPC power gating" in rows["fp32"]["spec_field"]


@pytest.mark.parametrize("info,expect", [
    ({"name": "NVIDIA GH200 480GB", "memory_bytes_total": 95 * GiB}, "NVIDIA GH200 96GB HBM3"),
    ({"name": "NVIDIA GH200 144G HBM3e", "memory_bytes_total": 143 * GiB}, "NVIDIA GH200 144GB HBM3e"),
    ({"name": "NVIDIA GeForce RTX 4090 D", "memory_bytes_total": 24 * GiB}, "NVIDIA GeForce RTX 4090 D"),
    ({"name": "NVIDIA GeForce RTX 4090", "memory_bytes_total": 24 * GiB}, "NVIDIA GeForce RTX 4090"),
    ({"name": "NVIDIA A100-SXM4-80GB", "memory_bytes_total": 80 * GiB, "power_limit_default_w": 500},
     "NVIDIA A100 SXM4 80GB"),
])
def test_devices_that_share_a_name_with_another_sheet_find_their_own(info, expect):
    spec, _candidates, how = match(info, load_all())
    assert spec is not None and spec.name == expect, how


@pytest.mark.parametrize("sheet,l2_mib", [("NVIDIA H200 SXM 141GB", 60), ("NVIDIA H200 NVL 141GB", 60),
                                          ("NVIDIA H100 NVL 94GB", 60), ("NVIDIA H100 SXM5 80GB", 50),
                                          ("NVIDIA H100 PCIe 80GB", 50)])
def test_hopper_l2_sizes(sheet, l2_mib):
    spec = {s.name: s for s in load_all()}[sheet]
    assert spec.data["caches"]["l2_mib"] == l2_mib
