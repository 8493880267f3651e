import pytest
import torch

from platforms import PlatformError, jetson, resolve
from platforms.base import summarise_samples
from platforms.cpu import parse_size, read_cpuinfo, read_sysfs_caches
from platforms.cuda import decode_throttle_reasons


def test_unknown_platform_lists_the_valid_ones():
    with pytest.raises(PlatformError, match="auto, cpu, cuda, cuda:N"):
        resolve("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_asked_for_but_absent_is_an_error_not_a_fallback():
    for name in ("cuda", "cuda:1"):
        with pytest.raises(PlatformError, match="CUDA was asked for but is not available"):
            resolve(name)


def test_cpu_platform_reads_the_machine():
    cpu = resolve("cpu")
    info = cpu.info()
    assert info["logical_cores"] >= 1 and info["torch_threads"] >= 1 and "BLAS" in info["blas"]
    sample = cpu.read_telemetry()
    assert "cpu_util_pct" in sample


def _fake_cache(root, index, level, kind, size, shared):
    d = root / f"index{index}"
    d.mkdir(parents=True)
    (d / "level").write_text(f"{level}\n")
    (d / "type").write_text(f"{kind}\n")
    (d / "size").write_text(f"{size}\n")
    (d / "shared_cpu_list").write_text(f"{shared}\n")


def test_sysfs_caches_from_a_fake_tree(tmp_path):
    _fake_cache(tmp_path, 0, 1, "Data", "48K", "0")
    _fake_cache(tmp_path, 1, 1, "Instruction", "32K", "0")
    _fake_cache(tmp_path, 2, 2, "Unified", "2048K", "0-1")
    _fake_cache(tmp_path, 3, 3, "Unified", "36864K", "0-7")
    levels = read_sysfs_caches(tmp_path, n_cpus=8)
    assert [(c.name, c.size_bytes, c.instances, c.shared) for c in levels] == [
        ("L1", 48 << 10, 8, False), ("L2", 2 << 20, 4, False), ("L3", 36 << 20, 1, True)]


def test_parse_size():
    assert parse_size("32K") == 32768 and parse_size("1 MiB") == 1 << 20 and parse_size("512") == 512
    with pytest.raises(ValueError):
        parse_size("lots")


def test_cpuinfo_flags(tmp_path):
    f = tmp_path / "cpuinfo"
    f.write_text("processor\t: 0\nmodel name\t: Example CPU\nflags\t\t: fpu sse4_2 avx2 fma avx512f\n")
    info = read_cpuinfo(str(f))
    assert info["name"] == "Example CPU" and info["flags"] == ["sse4_2", "avx2", "fma", "avx512f"]


def test_throttle_reasons():
    assert decode_throttle_reasons(0) == ["none"]
    assert decode_throttle_reasons(0x4 | 0x40) == ["sw_power_cap", "hw_thermal_slowdown"]


def test_telemetry_summary():
    s = summarise_samples([{"mhz": 1000.0, "t": 50}, {"mhz": 2000.0}, {"mhz": 1500.0, "t": 60}])
    assert s["mhz"] == {"min": 1000.0, "median": 1500.0, "max": 2000.0, "n": 3} and s["t"]["n"] == 2


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_jetson_telemetry_from_a_fake_sysfs(tmp_path):
    _write(tmp_path / "etc/nv_tegra_release", "# R36 (release), REVISION: 3.0\n")
    gpu = tmp_path / "sys/class/devfreq/17000000.ga10b"
    _write(gpu / "cur_freq", "918000000\n")
    _write(gpu / "min_freq", "918000000\n")
    _write(gpu / "max_freq", "918000000\n")
    _write(tmp_path / "sys/class/thermal/thermal_zone0/type", "gpu-thermal\n")
    _write(tmp_path / "sys/class/thermal/thermal_zone0/temp", "48500\n")
    hw = tmp_path / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    _write(hw / "in1_label", "VDD_GPU_SOC\n")
    _write(hw / "curr1_input", "1500\n")
    _write(hw / "in1_input", "5000\n")
    _write(hw / "in2_label", "VDD_CPU_CV\n")
    _write(hw / "curr2_input", "400\n")
    _write(hw / "in2_input", "5000\n")
    root = str(tmp_path)
    assert jetson.is_tegra(root)
    clock = jetson.read_gpu_clock(root)
    assert clock["gpu_clock_mhz"] == 918.0 and jetson.clocks_locked(clock) is True
    assert jetson.read_thermal(root) == {"temp_gpu_thermal_c": 48.5}
    power = jetson.read_power_rails(root)
    assert power["power_vdd_gpu_soc_w"] == pytest.approx(7.5) and power["power_w"] == pytest.approx(9.5)
    assert jetson.parse_nvpmodel("NV Power Mode: MAXN\n0\n") == {"power_mode": "MAXN", "power_mode_id": 0}


def test_not_tegra_on_an_empty_tree(tmp_path):
    assert not jetson.is_tegra(str(tmp_path)) and jetson.read_power_rails(str(tmp_path)) == {}


def test_jetson_module_id_from_the_device_tree(tmp_path):
    from platforms import jetson

    tree = tmp_path / "proc/device-tree"
    tree.mkdir(parents=True)
    (tree / "compatible").write_bytes(b"nvidia,p3737-0000+p3701-0000\x00nvidia,p3701-0000\x00nvidia,tegra234\x00")
    assert jetson.read_module_id(str(tmp_path)) == "p3701-0000"  # the original AGX Orin developer kit's module
    (tree / "compatible").write_bytes(b"nvidia,p3768-0000+p3767-0005\x00nvidia,tegra234\x00")
    assert jetson.read_module_id(str(tmp_path)) == "p3767-0005"  # only a carrier+module entry
    (tree / "compatible").write_bytes(b"nvidia,tegra234\x00")
    assert jetson.read_module_id(str(tmp_path)) is None
    assert jetson.read_module_id(str(tmp_path / "absent")) is None
