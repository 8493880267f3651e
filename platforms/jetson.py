"""NVIDIA Jetson (Tegra) boards: a CUDA platform with unified memory and no NVML.

Telemetry comes from sysfs: GPU clock from devfreq, temperatures from thermal zones, power from the INA3221
rail monitors; the power mode from ``nvpmodel -q``. Every reader takes a ``root`` so tests can point it at a fake
sysfs tree (tests/test_jetson.py). Not verified on a real board in this project yet (see README).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from platforms.cuda import CudaPlatform


def is_tegra(root: str = "/") -> bool:
    base = Path(root)
    if (base / "etc/nv_tegra_release").exists():
        return True
    try:
        return b"nvidia,tegra" in (base / "proc/device-tree/compatible").read_bytes()
    except OSError:
        return False


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _num(path: Path) -> float | None:
    text = _read(path)
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def gpu_devfreq(root: str = "/") -> Path | None:
    """The devfreq node of the integrated GPU (names differ per generation: ga10b on Orin, gv11b on Xavier)."""
    for node in sorted(Path(root, "sys/class/devfreq").glob("*")):
        name = (_read(node / "name") or "") + " " + node.name + " " + (_read(node / "device/of_node/name") or "")
        if re.search(r"gpu|ga10b|gv11b|gp10b", name):
            return node
    return None


def read_gpu_clock(root: str = "/") -> dict[str, float]:
    node = gpu_devfreq(root)
    if node is None:
        return {}
    out = {}
    for key, file in (("gpu_clock_mhz", "cur_freq"), ("gpu_clock_min_mhz", "min_freq"), ("gpu_clock_max_mhz", "max_freq")):
        value = _num(node / file)
        if value is not None:
            out[key] = value / 1e6  # devfreq reports Hz
    return out


def read_thermal(root: str = "/") -> dict[str, float]:
    out = {}
    for zone in sorted(Path(root, "sys/class/thermal").glob("thermal_zone*")):
        kind, temp = _read(zone / "type"), _num(zone / "temp")
        if kind and temp is not None:
            label = re.sub(r"[^a-z0-9]+", "_", kind.lower()).strip("_")
            out[f"temp_{label}_c"] = temp / 1000.0  # millidegrees
    return out


def read_power_rails(root: str = "/") -> dict[str, float]:
    """INA3221 rails: ``in{N}_label`` with ``curr{N}_input`` (mA) x ``in{N}_input`` (mV), or ``power{N}_input`` (uW)."""
    out = {}
    pattern = "sys/bus/i2c/drivers/ina3221*/*/hwmon/hwmon*"
    for hwmon in sorted(Path(root).glob(pattern)):
        for label_file in sorted(hwmon.glob("in*_label")):
            n = re.match(r"in(\d+)_label", label_file.name).group(1)
            label = re.sub(r"[^a-z0-9]+", "_", (_read(label_file) or f"rail{n}").lower()).strip("_")
            power_uw = _num(hwmon / f"power{n}_input")
            if power_uw is not None:
                out[f"power_{label}_w"] = power_uw / 1e6
                continue
            current_ma, voltage_mv = _num(hwmon / f"curr{n}_input"), _num(hwmon / f"in{n}_input")
            if current_ma is not None and voltage_mv is not None:
                out[f"power_{label}_w"] = current_ma * voltage_mv / 1e6
    rails = [v for k, v in out.items() if k.startswith("power_") and "sum" not in k and "total" not in k]
    if rails:
        out["power_w"] = sum(rails)
    return out


def parse_nvpmodel(text: str) -> dict[str, Any]:
    """``nvpmodel -q`` prints 'NV Power Mode: MAXN' and then the mode number."""
    out: dict[str, Any] = {}
    match = re.search(r"NV Power Mode:\s*(\S+)", text)
    if match:
        out["power_mode"] = match.group(1)
    numbers = re.findall(r"^\s*(\d+)\s*$", text, re.MULTILINE)
    if numbers:
        out["power_mode_id"] = int(numbers[-1])
    return out


def read_nvpmodel() -> dict[str, Any]:
    if not shutil.which("nvpmodel"):
        return {"power_mode": None, "power_mode_note": "nvpmodel not found"}
    try:
        text = subprocess.run(["nvpmodel", "-q"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return {"power_mode": None, "power_mode_note": str(exc)}
    return parse_nvpmodel(text)


def clocks_locked(clock: dict[str, float]) -> bool | None:
    """jetson_clocks pins the GPU's devfreq minimum to its maximum."""
    if "gpu_clock_min_mhz" in clock and "gpu_clock_max_mhz" in clock:
        return clock["gpu_clock_min_mhz"] >= clock["gpu_clock_max_mhz"]
    return None


def read_board_model(root: str = "/") -> str | None:
    """e.g. 'NVIDIA Jetson AGX Orin Developer Kit': tells an Orin NX 8GB from an Orin Nano 8GB."""
    text = _read(Path(root, "proc/device-tree/model"))
    return text.rstrip("\x00") if text else None


def read_module_id(root: str = "/") -> str | None:
    """The module's part number from the device tree's compatible list, e.g. 'p3701-0000' (the AGX Orin developer
    kit's 32 GB module, 2048 CUDA cores at 1.3 GHz) vs 'p3701-0004' (the production AGX Orin 32GB, 1792 cores at
    930 MHz): the model string names both "Jetson AGX Orin". The list reads 'nvidia,<carrier>+<module>',
    'nvidia,<module>', 'nvidia,tegra234'; the module is the entry without a '+'."""
    try:
        raw = Path(root, "proc/device-tree/compatible").read_bytes()
    except OSError:
        return None
    entries = [e.decode("ascii", "replace") for e in raw.split(b"\x00") if e]
    for entry in entries:
        found = re.fullmatch(r"nvidia,(p\d{4}-\d{4})", entry)
        if found:
            return found.group(1)
    for entry in entries:  # only a carrier+module entry: the part after '+'
        found = re.search(r"\+(p\d{4}-\d{4})", entry)
        if found:
            return found.group(1)
    return None


def read_tegra_release(root: str = "/") -> str | None:
    return _read(Path(root, "etc/nv_tegra_release"))


class JetsonPlatform(CudaPlatform):
    kind = "jetson"
    root = "/"

    def info(self) -> dict[str, Any]:
        if self._info is None:
            info = super().info()
            info["kind"] = self.kind
            info["unified_memory"] = True
            info["unified_memory_note"] = ("CPU and GPU share one DRAM: host<->device copies are memory-to-memory "
                                          "copies, not PCIe transfers")
            info["l4t"] = read_tegra_release(self.root)
            info["board_model"] = read_board_model(self.root)
            info["module_id"] = read_module_id(self.root)
            clock = read_gpu_clock(self.root)
            info.update(clock)
            info["jetson_clocks_locked"] = clocks_locked(clock)
            info.update(read_nvpmodel())
        return self._info

    def read_telemetry(self) -> dict[str, float]:
        sample = {}
        sample.update({k: v for k, v in read_gpu_clock(self.root).items() if k == "gpu_clock_mhz"})
        sample.update(read_thermal(self.root))
        sample.update(read_power_rails(self.root))
        return sample

    def static_telemetry(self) -> dict[str, Any]:
        return {"telemetry_source": "sysfs (devfreq, thermal zones, INA3221 rails)", **read_nvpmodel()}
