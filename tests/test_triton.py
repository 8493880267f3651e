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
for name, k in tk.STREAM.items():
    arrays, reads, writes, persistent = k.arrays, k.reads, k.writes, name.endswith("_persistent")
    # not a multiple of the tile (the masked tail runs too); persistent: 3 programs loop over 7 tiles each
    n = 7 * 3 * tk.PERSISTENT_BLOCK - 5 if persistent else 1500
    p = tk.prepare_stream(name, 0, "cpu", elements=n, programs=3)
    p.fn()
    assert p.verify().ok, (name, p.verify())
    assert p.bytes == (reads + writes) * 4 * n and p.size_bytes == arrays * 4 * n, name
    assert p.flops == k.flops_per_element * n, name  # the table's FLOPs, as the torch and native kernels count them
    assert p.extra["programs"] == (3 if persistent else -(-n // tk.BLOCK)), name
    # the suite's sizes are whole tiles: Triton specialises the length as divisible by 16 (vector loads)
    assert tk.prepare_stream(name, 3 << 20, "cpu").shape[0] % 16 == 0, name
for name in ("triad", "triad_persistent", "read", "read_persistent"):
    p = tk.prepare_stream(name, 1 << 16, "cpu", programs=2)
    p.fn()
    p.state["a"][7] = 0.0 if name.startswith("triad") else 2.0
    if name.startswith("read"):
        p.fn()  # the reduction re-reads the changed input
    assert not p.verify().ok, name                       # an injected wrong result is caught
for dtype in ("fp32", "fp64"):
    p = tk.prepare_fma(dtype, "cpu", programs=2, iterations=40)
    p.fn()
    assert p.verify().ok, (dtype, p.verify())
    assert p.flops == 2 * tk.CHAINS * tk.BLOCK * 2 * 40
    assert p.state["params"].dtype == p.state["out"].dtype  # the constants travel in the kernel's own dtype
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
