"""What a device is, how to time it and how to watch it.

One interface (:class:`platforms.base.Platform`), one backend module per kind (``cpu``, ``cuda``, ``jetson``),
one factory (:func:`resolve`) that maps the ``--platform`` option to a backend. Knows nothing of kernels.
"""
from __future__ import annotations

import re

from platforms.base import Platform, PlatformError

PLATFORM_CHOICES = ("auto", "cpu", "cuda", "cuda:N")


def _cuda_unavailable_reason() -> str:
    import torch

    if torch.version.cuda is None:
        return (f"this torch ({torch.__version__}) is a CPU-only build; install a CUDA build of torch "
                "(or NVIDIA's wheel on a Jetson)")
    return (f"torch {torch.__version__} is built for CUDA {torch.version.cuda} but torch.cuda.is_available() "
            "is False: no GPU is visible (check nvidia-smi, the driver, and CUDA_VISIBLE_DEVICES)")


def choose_kind(name: str | None, devices: int = 1) -> str:
    """What "auto" means, in one place (pytest runs and torchrun jobs): CUDA where torch sees at least ``devices``
    GPUs (one per local rank for a job), else the CPU; any other name is returned as given."""
    spec = (name or "auto").strip().lower()
    if spec != "auto":
        return spec
    import torch

    return "cuda" if torch.cuda.is_available() and torch.cuda.device_count() >= devices else "cpu"


def resolve(name: str) -> Platform:
    """Build the platform named by ``--platform``; never falls back silently from CUDA to CPU."""
    if name is not None and not name.strip():
        raise PlatformError("--platform is empty: choose one of " + ", ".join(PLATFORM_CHOICES)
                            + " (leave the option out for auto)")
    spec = (name or "auto").strip().lower()
    if spec not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:\d+", spec):
        raise PlatformError(f"unknown platform {name!r}: choose one of {', '.join(PLATFORM_CHOICES)} "
                            "(N is a CUDA device index, e.g. cuda:1)")
    import torch

    spec = choose_kind(spec)
    if spec == "cpu":
        from platforms.cpu import CpuPlatform

        return CpuPlatform()
    if not torch.cuda.is_available():
        raise PlatformError(f"--platform {name}: CUDA was asked for but is not available: "
                            f"{_cuda_unavailable_reason()}. Use --platform cpu to measure the CPU.")
    index = int(spec.split(":")[1]) if ":" in spec else 0
    count = torch.cuda.device_count()
    if index >= count:
        raise PlatformError(f"--platform {name}: there are {count} CUDA device(s), indices 0..{count - 1}")
    from platforms.jetson import is_tegra

    if is_tegra():
        from platforms.jetson import JetsonPlatform

        return JetsonPlatform(index)
    from platforms.cuda import CudaPlatform

    return CudaPlatform(index)


__all__ = ["Platform", "PlatformError", "PLATFORM_CHOICES", "choose_kind", "resolve"]
