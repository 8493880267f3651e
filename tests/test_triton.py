"""The Triton kernels on the CPU, under Triton's interpreter (TRITON_INTERPRET=1 must be set before Triton
compiles anything, so the checks run in a subprocess): correctness, masked tails, byte and FLOP counts, and a
wrong result caught. The missing-Triton path runs in-process."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CHECK = r'''
from kernels import triton_kernels as tk
assert tk.available() is None, tk.available()
for name, (arrays, reads, writes, _f) in tk.STREAM.items():
    p = tk.prepare_stream(name, 3 * 4 * 1500, "cpu")   # not a multiple of BLOCK: the masked tail runs too
    p.fn()
    assert p.verify().ok, name
    n = p.shape[0]
    assert p.bytes == (reads + writes) * 4 * n and p.size_bytes == arrays * 4 * n, name
p = tk.prepare_stream("triad", 1 << 16, "cpu")
p.fn()
p.state["a"][7] = 0.0
assert not p.verify().ok                                # an injected wrong result is caught
for dtype in ("fp32", "fp64"):
    p = tk.prepare_fma(dtype, "cpu", programs=2, iterations=40)
    p.fn()
    assert p.verify().ok, (dtype, p.verify())
    assert p.flops == 2 * tk.CHAINS * tk.BLOCK * 2 * 40
    p.state["out"][3] = 9.0
    assert not p.verify().ok
print("TRITON-OK")
'''


def test_triton_kernels_under_the_interpreter():
    pytest.importorskip("triton")
    out = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={"TRITON_INTERPRET": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert "TRITON-OK" in out.stdout, out.stderr[-3000:]


def test_missing_triton_is_missing_with_the_reason(monkeypatch):
    from kernels import triton_kernels as tk
    from kernels.base import Unsupported

    monkeypatch.setattr(tk, "_IMPORT_ERROR", "ModuleNotFoundError: No module named 'triton'")
    with pytest.raises(Unsupported, match="Triton is not importable"):
        tk.prepare_stream("copy", 1 << 20, "cpu")
    with pytest.raises(Unsupported, match="Triton is not importable"):
        tk.prepare_fma("fp32", "cpu")
