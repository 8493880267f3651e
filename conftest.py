"""Thin pytest wiring for the suite: the options and what they are checked against (the platform). Everything a run
does with them, its hooks and fixtures, is bench/plugin.py (loaded below); a run's state is one
``bench.session.Run`` in pytest's stash; opening and finishing the record is bench/session.py's (shared with the
torchrun job).

`pytest bench/ --platform cpu|cuda|cuda:N|auto [--quick] [--dtypes fp32,bf16] [--results-dir DIR]`
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

#: the run's hooks and fixtures (pytest's own plugin mechanism, so this file stays the options)
pytest_plugins = ("bench.plugin",)

ROOT = Path(__file__).resolve().parent
DEFAULT_RESULTS = ROOT / "results" / "runs"


def pytest_addoption(parser):
    group = parser.getgroup("roofline", "measured roofline suite")
    group.addoption("--platform", default="auto", help="auto (CUDA if present, else CPU), cpu, cuda or cuda:N")
    group.addoption("--quick", action="store_true", help="short sweeps (about a minute on a laptop CPU)")
    group.addoption("--results-dir", default=os.fspath(DEFAULT_RESULTS), help="folder for run records and plots")
    group.addoption("--dtypes", default=None,
                    help="comma-separated GEMM dtypes (fp64,fp32,tf32,fp16,bf16,int8,fp8); default: all")
    group.addoption("--model", default=None,
                    help="time the layers of your own model: a torchvision name or package.module:factory")
    group.addoption("--input", default=None, help="input shape for --model, e.g. 8,3,224,224")
    group.addoption("--budget", default=None, metavar="SECONDS",
                    help="the run's time budget (default: 80 s quick / 600 s full on a CPU, 180 / 900 s on a GPU); "
                         "every group gets its share, and no group starts a point once its share is spent")
    group.addoption("--variants", default=None, metavar="MODEL",
                    help="also measure MODEL's variants (precisions, quantisation, runtimes; bench/test_variants.py): "
                         "a torchvision name, package.module:factory or timm:NAME")
    group.addoption("--variant-input", default=None, help="input shape for --variants (default: 1,3,224,224 or a "
                                                          "timm model's own); its first dimension is the batch")
    group.addoption("--variant-batches", default=None, help="batch sizes for --variants (default 1,8)")
    group.addoption("--precisions", default=None,
                    help="--variants precisions: fp32,bf16,fp16,int8-dyn,int8-wo,fp8-wo,int4-wo (default: the "
                         "platform's matrix)")
    group.addoption("--runtimes", default=None,
                    help="--variants runtimes: eager,compile,onnxruntime,openvino,tensorrt (default: the platform's "
                         "matrix)")
    group.addoption("--variants-record", default=None, metavar="R.json",
                    help="a record of this machine whose probes price the variants (default: this run's own)")
    group.addoption("--variant-data", default=None, metavar="FILE.pt",
                    help="your own inputs for the variants' quality check (a tensor, samples first)")
    group.addoption("--spec", default=None,
                    help="a vendor spec sheet (YAML, see platforms/specs/) to validate against; default: the "
                         "bundled sheet matching the device")


def pytest_configure(config):
    from bench import options, signals
    from bench.session import RUN_KEY, Run
    from platforms import PlatformError, resolve

    run = config.stash[RUN_KEY] = Run()
    try:  # options that need no torch first: a typo is answered at once, not after torch has loaded
        run.dtypes = options.dtypes(config.getoption("--dtypes"))
        run.budget_s = options.budget(config.getoption("--budget"))
        options.spec(config.getoption("--spec"))
        try:
            run.platform = resolve(config.getoption("--platform"))
        except PlatformError as exc:
            raise options.OptionError(str(exc)) from None
        signals.install(config)  # Ctrl-C, SIGTERM and SIGHUP: see bench/signals.py
        options.model(config.getoption("--model"), config.getoption("--input"))
        from bench.variant_plan import PLAN_KEY, make_plan

        config.stash[PLAN_KEY] = make_plan(config)
    except options.OptionError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_unconfigure(config):
    from bench import signals

    signals.uninstall(config)
