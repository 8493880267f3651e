"""The platform interface every backend implements, and the telemetry sampler they share."""
from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from platforms.throttle import combine


class PlatformError(RuntimeError):
    """A platform was asked for that cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class CacheLevel:
    """One level of the memory hierarchy as read from the machine.

    ``size_bytes`` is the capacity one core (CPU private caches) or the whole device (shared caches, GPU L2)
    sees; ``instances`` how many copies exist; ``shared`` whether all compute units share one instance.
    """

    name: str
    size_bytes: int
    instances: int = 1
    shared: bool = False
    source: str = ""


class Platform:
    """A device the suite can measure.

    Backends fill in: ``kind`` ("cpu", "cuda", "jetson"), ``device`` (a torch device string), ``info()``,
    ``sync()``, ``cache_levels()``, ``memory_bytes()`` and ``read_telemetry()``.
    """

    kind: str = "abstract"
    device: str = "cpu"
    #: how ceilings are timed on this device; written into every record
    timing_method: str = ""

    def info(self) -> dict[str, Any]:
        raise NotImplementedError

    def sync(self) -> None:
        """Wait until all queued work on the device has finished."""

    def clock(self) -> float:
        """Seconds, after waiting for the device: the timer handed to pytest-benchmark.

        Recipe (a) of the style notes: sync, then perf_counter. The sync cost is amortised by timing
        blocks of many calls (pytest-benchmark's ``iterations``)."""
        self.sync()
        return time.perf_counter()

    #: how a single cold-cache call is timed; written into layer records
    single_call_method: str = "perf_counter around one call (after sync)"

    #: device-only seconds of the last ``time_call`` where the device can time itself (CUDA events), else None
    last_device_s: float | None = None

    def time_call(self, fn) -> float:
        """Host wall seconds for ONE call of ``fn``, from issuing it until its results are ready (used after a cache
        flush, where blocks of calls would warm the cache). Includes the call's dispatch, as a user's call does."""
        start = self.clock()
        fn()
        return self.clock() - start

    def sync_latency_s(self, repeats: int = 50) -> float:
        """Median seconds of one ``sync()`` with nothing queued: part of every single-call wall time."""
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            self.sync()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    def stream_call_bytes(self) -> tuple[int, str]:
        """(bytes one read_repeat call should move, the rule that chose it): one call must last far longer than
        the dispatch cost of one op, or cache-resident working sets are hidden behind it."""
        return 32 << 20, "one call reads >= 32 MiB (a CPU op costs ~1-4 us to dispatch; 32 MiB takes >= 100 us)"

    def cache_levels(self) -> list[CacheLevel]:
        raise NotImplementedError

    def memory_bytes(self) -> int:
        """Memory the sweeps may use (free memory of the device)."""
        raise NotImplementedError

    def llc_bytes(self, unknown: int = 64 << 20) -> int:
        """Capacity of the last (largest) cache level for a kernel spread over all cores (private levels add up
        over their instances); ``unknown`` where no cache size could be read."""
        levels = self.cache_levels()
        if not levels:
            return unknown
        last = levels[-1]
        return last.size_bytes * (1 if last.shared else last.instances)

    def read_telemetry(self) -> dict[str, float]:
        """One sample of clocks / temperature / power; keys carry units. Missing sensors are left out."""
        return {}

    def static_telemetry(self) -> dict[str, Any]:
        """Things that do not change during a run but explain figures (throttle reasons, power mode)."""
        return {}

    def other_device_processes(self) -> list[dict[str, Any]]:
        """Other processes using this device (GPUs: from NVML); [] where none or unknown."""
        return []

    def flush_caches(self) -> None:
        """Evict the caches (used before cold-cache timings)."""

    def sampler(self, interval_s: float = 0.05) -> "TelemetrySampler":
        return TelemetrySampler(self.read_telemetry, interval_s)

    def describe(self) -> str:
        info = self.info()
        return f"{self.kind}: {info.get('name', '?')}"


@dataclass
class TelemetrySampler:
    """Samples ``read()`` on a background thread while a benchmark runs; ``summary()`` gives min/median/max."""

    read: Callable[[], dict[str, float]]
    interval_s: float = 0.05
    samples: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    def _take(self):
        try:
            sample = self.read()
        except Exception as exc:  # a flaky sensor must not stop a measurement
            if len(self.errors) < 3:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            return
        if sample:
            self.samples.append(sample)

    def _loop(self):
        while not self._stop.wait(self.interval_s):
            self._take()

    def __enter__(self):
        self._take()
        self._thread = threading.Thread(target=self._loop, name="telemetry", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._take()
        return False

    def summary(self) -> dict[str, dict[str, float]]:
        return summarise_samples(self.samples)


def summarise_samples(samples: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per key: min, median, max and the number of samples; bit masks (keys ending in ``_mask``) also get ``or``,
    the bitwise OR of every sample, so reasons seen at different moments are all kept."""
    keys: dict[str, list[float]] = {}
    for sample in samples:
        for key, value in sample.items():
            if isinstance(value, (int, float)):
                keys.setdefault(key, []).append(float(value))
    out = {key: {"min": min(v), "median": statistics.median(v), "max": max(v), "n": len(v)}
           for key, v in keys.items()}
    for key, v in keys.items():
        if key.endswith("_mask"):
            out[key]["or"] = combine(v)
    return out


def effective_capacities(caches: list[dict]) -> list[tuple[str, int]]:
    """Capacity each level offers a kernel spread over all cores: private caches add up over instances."""
    out = []
    for cache in sorted(caches, key=lambda c: c["size_bytes"]):
        instances = 1 if cache.get("shared") else max(1, int(cache.get("instances", 1)))
        out.append((cache["name"], int(cache["size_bytes"]) * instances))
    return out
