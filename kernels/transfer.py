"""Host<->device and device<->device copies (CUDA only).

Bytes: the size of the buffer, once, for host->device and device->host (what crosses the link); 2 x size for
device->device (read + write, STREAM convention). Verified by comparing the destination with the source pattern.
"""
from __future__ import annotations

from kernels.base import Prepared, Unsupported, Verdict

DIRECTIONS = ("h2d_pageable", "h2d_pinned", "d2h_pageable", "d2h_pinned", "d2d")
TRANSFER_CONVENTION = "h2d/d2h: buffer size once (bytes over the link); d2d: 2 x size (read + write)"


def sweep_sizes(quick: bool) -> list[int]:
    exps = [22, 26, 28] if quick else list(range(16, 31, 2))
    return [1 << e for e in exps]


#: the byte pattern the buffers hold: 0, 1, ..., 250, 0, 1, ... (251 is prime, so no power-of-two period hides a
#: misplaced block)
PERIOD = 251


def pattern(size_bytes: int, device: str = "cpu"):
    """``size_bytes`` bytes of the pattern, built in uint8 (about 1 byte of memory per byte: one period repeated,
    never an int64 index of the whole buffer)."""
    import torch

    period = torch.arange(PERIOD, dtype=torch.uint8, device=device)
    return period.repeat(-(-size_bytes // PERIOD))[:size_bytes]


def prepare(direction: str, size_bytes: int, device: str) -> Prepared:
    import torch

    if not device.startswith("cuda"):
        raise Unsupported("host<->device copies need a CUDA device")
    if direction not in DIRECTIONS:
        raise Unsupported(f"unknown direction {direction!r}; known: {', '.join(DIRECTIONS)}")
    pinned = direction.endswith("pinned")
    if direction.startswith("h2d"):
        src = pattern(size_bytes).pin_memory() if pinned else pattern(size_bytes)
        dst = torch.empty(size_bytes, dtype=torch.uint8, device=device)
    elif direction.startswith("d2h"):
        src = pattern(size_bytes, device)
        dst = torch.empty(size_bytes, dtype=torch.uint8, pin_memory=pinned)
    else:
        src = pattern(size_bytes, device)
        dst = torch.empty(size_bytes, dtype=torch.uint8, device=device)
    non_blocking = pinned

    def fn():
        dst.copy_(src, non_blocking=non_blocking)

    def verify() -> Verdict:
        torch.cuda.synchronize()
        same = torch.equal(dst, pattern(size_bytes, dst.device))  # compared where the destination lives
        return Verdict(same, "destination equals the source pattern" if same else "destination differs from source")

    return Prepared(
        group="transfer", kernel=direction, dtype="uint8", impl="torch.Tensor.copy_", fn=fn, verify=verify, flops=0,
        bytes=size_bytes * (2 if direction == "d2d" else 1), convention=TRANSFER_CONVENTION, shape=[size_bytes],
        size_bytes=size_bytes, extra={"pinned": pinned, "non_blocking": non_blocking},
        state={"src": src, "dst": dst})
