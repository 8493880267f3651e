"""`python -m bench.variants`: a model's variants (precisions, quantisation, runtimes) measured, counted, placed on
the roofline and the choice explained. It runs bench/test_variants.py through pytest, so the variants go through
the same run session and harness as every benchmark: one record (results/runs/), the progress view, the summary,
the report page with its variants section, and a PNG.

    python -m bench.variants resnet50 --input 1,3,224,224 [--batch 1,8] [--precisions fp32,bf16,int8-dyn]
        [--runtimes eager,compile,onnxruntime] [--record R.json] [--budget 300] [--json OUT.json] [--data X.pt]

``--record``: a record of this machine with GEMM and operator probes (pytest bench/test_gemm.py
bench/test_stream.py bench/test_opsweep.py); its roofs place the variants and its probes price them. Without it the
run's own record has no roofs: the times, bytes and quality are measured all the same.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class _Catch:
    """Keeps what the pytest run finished with (bench.session's Finished) for the command's own outputs."""

    finished = None

    def pytest_unconfigure(self, config):
        from bench.session import run_of

        self.finished = run_of(config).finished


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.variants", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a torchvision name, package.module:factory or timm:NAME")
    p.add_argument("--input", help="input shape, e.g. 1,3,224,224 (default: that, or a timm model's own); "
                                   "the first dimension is replaced by each --batch")
    p.add_argument("--batch", default="1,8", help="batch sizes (default 1,8)")
    p.add_argument("--precisions", help="fp32,bf16,fp16,int8-dyn,int8-wo,fp8-wo,int4-wo (default: the platform's "
                                        "matrix)")
    p.add_argument("--runtimes", help="eager,compile,onnxruntime,openvino,tensorrt (default: the platform's matrix)")
    p.add_argument("--record", help="a record of this machine whose roofs place and whose probes price the variants")
    p.add_argument("--data", help="your own inputs for the quality check: a .pt tensor, samples first")
    p.add_argument("--budget", default="300", help="seconds for the whole matrix (default 300)")
    p.add_argument("--platform", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--results-dir", default=None, help="folder for the record (default results/runs)")
    p.add_argument("--json", dest="json_out", help="also write the variants (rows, choices, ordering) to this file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress view, only the summary")
    return p


def pytest_args(args) -> list[str]:
    argv = [os.fspath(ROOT / "bench" / "test_variants.py"), "-p", "no:cacheprovider", "--rootdir", os.fspath(ROOT),
            "-c", os.fspath(ROOT / "pyproject.toml"), "--platform", args.platform, "--variants", args.model,
            "--variant-batches", args.batch, "--budget", args.budget, "-o", "addopts="]
    for option, value in (("--variant-input", args.input), ("--precisions", args.precisions),
                          ("--runtimes", args.runtimes), ("--variants-record", args.record),
                          ("--variant-data", args.data), ("--results-dir", args.results_dir)):
        if value:
            argv += [option, value]
    return argv + (["-q"] if args.quiet else [])


def main(argv: list[str] | None = None) -> int:
    import pytest

    args = parser().parse_args(argv)
    if args.json_out:
        from results.record import RecordError, check_writable

        try:
            check_writable(Path(args.json_out).resolve().parent)
        except RecordError as exc:
            print(f"error: --json {args.json_out}: {exc}", file=sys.stderr)
            return 2
    catch = _Catch()
    code = pytest.main(pytest_args(args), plugins=[catch])
    if code == pytest.ExitCode.USAGE_ERROR:
        return 2
    finished = catch.finished
    if finished is None or finished.path is None:
        print("error: the run wrote no record (see above)", file=sys.stderr)
        return 1 if code else 2
    if args.json_out:
        from results.record import atomic_write
        from results.variants import summary

        data = {"record": os.fspath(finished.path), **summary(finished.analysis_now())}
        atomic_write(Path(args.json_out), json.dumps(data, indent=1, default=str))
        print(f"Variants JSON: {args.json_out}")
    return 0 if code in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) else int(code)


if __name__ == "__main__":
    from results.cli import run

    run(main, "python -m bench.variants", "the record holds every variant measured so far")
