"""What a variants run measures, read once from its options (``--variants MODEL`` and the rest) and checked before
anything is measured: the model, its input shape, the batch sizes, the variants, the user's own inputs for the
quality check, and the record the predictor prices the variants from. Kept in pytest's stash (``plan_of``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from bench.options import OptionError

PLAN_KEY = pytest.StashKey["Plan | None"]()
#: the batch sizes a variants run times when --variant-batches is not given
DEFAULT_BATCHES = (1, 8)
#: the variants' time budget (seconds): what `python -m bench.variants` gives a run, and what a full `pytest bench/
#: --variants MODEL` adds to its own budget (the issue's bound: ResNet-50's default matrix on a 2-core CPU in 5 min)
VARIANTS_BUDGET_S = {"cpu": 300.0, "gpu": 300.0}


@dataclass
class Plan:
    source: str
    shape: tuple[int, ...]
    batches: list[int]
    variants: list
    target: str
    data: Any = None
    data_path: str | None = None
    record_path: str | None = None
    _device: Any = field(default=None, repr=False)
    _device_why: str | None = None

    @property
    def name(self) -> str:
        return self.source

    def device_model(self, own_record: dict):
        """The predictor's device model: --variants-record's, else this run's own record (its probes, when it has
        them by the time the variants run); (model, None) or (None, why not)."""
        if self._device is not None or self._device_why is not None:
            return self._device, self._device_why
        from results.predict import DeviceModel

        if self.record_path:
            from results.record import read_record

            record, name = read_record(self.record_path), self.record_path.rsplit("/", 1)[-1]
        else:
            record, name = own_record, "this run's record"
        device = DeviceModel(record, name)
        if not device.dtypes():
            self._device_why = (f"{name} has no GEMM and operator probes (give --variants-record R.json, a record of "
                                "pytest bench/test_gemm.py bench/test_stream.py bench/test_opsweep.py on this machine)")
        else:
            self._device = device
        return self._device, self._device_why

    def price(self, v, counts, eager, storage: dict, dynamic: set, own_record: dict) -> dict:
        from kernels.predict import price_variant

        device, why = self.device_model(own_record)
        if device is None:
            return {"unavailable": why}
        try:
            return price_variant(device, self.source, v, counts, eager, storage, dynamic, self.target)
        except Exception as exc:  # a variant the predictor cannot price does not stop its measurement
            return {"unavailable": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}


def parse_batches(text: str | None) -> list[int]:
    if text is None:
        return list(DEFAULT_BATCHES)
    try:
        batches = list(dict.fromkeys(int(v) for v in text.split(",") if v.strip()))
    except ValueError:
        batches = []
    if not batches or any(b <= 0 for b in batches):
        raise OptionError(f"--variant-batches {text!r}: give positive integers separated by commas, e.g. 1,8")
    return sorted(batches)


def make_plan(config) -> Plan | None:
    """The plan from the options (None without --variants); a wrong option is an OptionError naming it."""
    source = config.getoption("--variants", None)
    if not source:
        for option in ("--variant-input", "--variant-batches", "--precisions", "--runtimes", "--variants-record",
                       "--variant-data"):
            if config.getoption(option, None):
                raise OptionError(f"{option} needs --variants MODEL (the model whose variants to measure)")
        return None
    from bench.session import run_of
    from kernels.count import CountError
    from kernels.predict import input_config, load_model
    from kernels.variants import PRECISIONS, RUNTIMES, VariantError, matrix, parse_list

    platform = run_of(config).platform
    try:
        precisions = parse_list(config.getoption("--precisions"), PRECISIONS, "--precisions")
        runtimes = parse_list(config.getoption("--runtimes"), RUNTIMES, "--runtimes")
        text = config.getoption("--variant-input")
        inputs = input_config(load_model(source, "meta"), [text] if text else None)
    except (VariantError, CountError) as exc:
        raise OptionError(f"--variants {source}: {exc}") from None
    if len(inputs) != 1 or inputs[0][1] is not None:
        raise OptionError("--variant-input: variants take one floating-point input (e.g. 1,3,224,224); models with "
                          "token ids or several inputs are not supported yet")
    shape = inputs[0][0]
    record_path = config.getoption("--variants-record")
    if record_path:
        from results.record import RecordError, read_record

        try:
            read_record(record_path)
        except (RecordError, OSError) as exc:
            raise OptionError(f"--variants-record: {exc}") from None
    data, data_path = None, config.getoption("--variant-data")
    if data_path:
        data = load_data(data_path, shape)
    kind = platform.kind if platform is not None else "cpu"
    batches = parse_batches(config.getoption("--variant-batches"))
    if data is not None and len(data) < max(batches):
        raise OptionError(f"--variant-data {data_path}: {len(data)} samples, fewer than the largest batch "
                          f"({max(batches)}): give at least that many, or smaller --variant-batches")
    return Plan(source=source, shape=shape, batches=batches,
                variants=matrix(kind, precisions, runtimes), target="cpu" if kind == "cpu" else "cuda", data=data,
                data_path=data_path, record_path=record_path)


def load_data(path: str, shape: tuple[int, ...]):
    """``--variant-data FILE.pt``: a float tensor of samples (first dimension) shaped like the model's input."""
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise OptionError(f"--variant-data {path}: no such file") from None
    except Exception as exc:
        raise OptionError(f"--variant-data {path}: not a tensor file torch.load can read ({type(exc).__name__})") \
            from None
    if isinstance(data, dict):
        data = next((v for v in data.values() if isinstance(v, torch.Tensor)), None)
    if not isinstance(data, torch.Tensor) or not data.is_floating_point():
        raise OptionError(f"--variant-data {path}: give one floating-point tensor of samples (first dimension)")
    if tuple(data.shape[1:]) != tuple(shape[1:]):
        raise OptionError(f"--variant-data {path}: samples are {list(data.shape[1:])}, the model's input is "
                          f"{list(shape[1:])} (--variant-input)")
    return data.float()


def plan_of(config) -> Plan | None:
    try:
        return config.stash[PLAN_KEY]
    except KeyError:
        plan = config.stash[PLAN_KEY] = make_plan(config)
        return plan
