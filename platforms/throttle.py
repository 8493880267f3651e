"""NVML's clocks-event ("throttle") reasons: ONE table, used by the CUDA platform for live masks and by
``results/`` for masks in records. Pure Python (no torch, no pynvml), so a record can be read anywhere.

Bits as in nvml.h (``nvmlClocksEventReason*``; tests/test_fake_cuda.py checks them against pynvml). A run's
telemetry keeps the bitwise OR of every sampled mask (``platforms.base.summarise_samples``): a power cap seen in one
sample and a thermal slowdown in another both stay visible, which the max of the masks would not do.
"""
from __future__ import annotations

from typing import Iterable

#: bit -> (name as in nvml.h, what it means to a reader)
REASONS: dict[int, tuple[str, str]] = {
    0x1: ("gpu_idle", "GPU idle"),
    0x2: ("applications_clocks_setting", "applications clocks set below maximum"),
    0x4: ("sw_power_cap", "software power cap"),
    0x8: ("hw_slowdown", "hardware slowdown (power brake or thermal)"),
    0x10: ("sync_boost", "sync boost"),
    0x20: ("sw_thermal_slowdown", "software thermal slowdown"),
    0x40: ("hw_thermal_slowdown", "hardware thermal slowdown"),
    0x80: ("hw_power_brake_slowdown", "hardware power brake"),
    0x100: ("display_clock_setting", "display clock setting"),
}
IDLE = 0x1


def decode(mask: int) -> list[str]:
    """Mask -> nvml.h names; ['none'] for 0; unknown bits kept as hex."""
    return _names(mask, 0) or ["none"]


def describe(mask: int) -> list[str]:
    """Mask -> readable labels; [] for 0; unknown bits kept as hex."""
    return _names(mask, 1)


def _names(mask: int, which: int) -> list[str]:
    mask = int(mask)
    names = [entry[which] for bit, entry in REASONS.items() if mask & bit]
    rest = mask & ~sum(REASONS)
    if rest:
        names.append(hex(rest))
    return names


def combine(masks: Iterable[float | int]) -> int:
    """Bitwise OR of masks (samples are stored as numbers)."""
    out = 0
    for mask in masks:
        out |= int(mask)
    return out


def mask_of(summary: dict) -> int | None:
    """The run's mask from a telemetry summary entry: the OR when present; records made before the OR was kept
    only have min/median/max, and their max is the best that is left (a lower bound of the OR)."""
    if not isinstance(summary, dict):
        return None
    value = summary.get("or", summary.get("max"))
    return None if value is None else int(value)
