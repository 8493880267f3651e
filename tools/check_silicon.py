"""Judge the suite's silicon figures against an independent register-only FMA reference (tools/fma_ref.c, built here
with gcc -O3 -march=native -fopenmp) and against torch's own GEMMs, interleaved ROUNDS times in one process so the
machine's drift hits both alike; best of each. A benchmark: run it alone on a quiet machine.

    python tools/check_silicon.py [--rounds 5]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def best_rate(prepared, calls: int = 8) -> float:
    prepared.fn()
    best = min(_time(prepared.fn) for _ in range(calls))
    return prepared.flops / best


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import torch

    from kernels import gemm, native
    from kernels.native import engines
    from platforms.cpu import read_cpuinfo

    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "fma_ref"
        subprocess.run(["gcc", "-O3", "-march=native", "-fopenmp", str(ROOT / "tools" / "fma_ref.c"), "-o", str(exe)],
                       check=True)
        flags = read_cpuinfo()["flags"]
        best: dict[str, float] = {}

        def keep(name, value):
            best[name] = max(best.get(name, 0.0), value)

        for _ in range(args.rounds):
            out = subprocess.run([str(exe), str(1 << 21), "4"], capture_output=True, text=True, check=True,
                                 env=dict(os.environ, OMP_NUM_THREADS=str(threads))).stdout
            for dtype, value in re.findall(r"^(fp\d+) ([\d.]+) GFLOP/s", out, re.M):
                keep(f"reference {dtype}", float(value) * 1e9)
            for dtype in ("fp32", "fp64"):
                p = native.prepare_fma(dtype)
                keep(f"suite {dtype}", best_rate(p))
                assert p.verify().ok
                g = gemm.prepare(gemm.GemmShape(2048, 2048, 2048), dtype, "cpu")
                keep(f"torch GEMM {dtype}", best_rate(g, 3))
            for kernel, dtype in engines.engines_for(flags):
                if kernel != "amx":
                    continue
                p = engines.prepare_engine(kernel, dtype, flags)
                keep(f"suite amx {dtype}", best_rate(p, 4))
                assert p.verify().ok
                g = gemm.prepare(gemm.GemmShape(4096, 4096, 4096), dtype, "cpu")
                keep(f"torch GEMM {dtype}", best_rate(g, 3))
    print(f"{read_cpuinfo()['name']}, {threads} threads, best of {args.rounds} interleaved rounds:")
    for name, value in best.items():
        print(f"  {name:<18} {value / 1e9:9.1f} G/s")
    for dtype in ("fp32", "fp64"):
        print(f"  suite / reference {dtype}: {best[f'suite {dtype}'] / best[f'reference {dtype}']:.3f}; "
              f"suite / torch GEMM: {best[f'suite {dtype}'] / best[f'torch GEMM {dtype}']:.3f}")
    for dtype in ("bf16", "int8"):
        if f"suite amx {dtype}" in best:
            print(f"  suite amx / torch GEMM {dtype}: {best[f'suite amx {dtype}'] / best[f'torch GEMM {dtype}']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
