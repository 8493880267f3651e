"""Every Triton launch the suite makes, compiled ahead of time for sm_90 (H100/H200) and sm_87 (Jetson Orin) on
this CPU (kernels/triton_aot.py), with its argument and accumulator types read from the IR: the interpreter the
other Triton tests use keeps Python floats as Python floats and cannot see a constant the GPU would run in fp32."""
import pytest

from kernels import triton_aot

pytestmark = pytest.mark.skipif(triton_aot.unsupported() is not None, reason=str(triton_aot.unsupported()))

LAUNCHES = list(triton_aot.suite_launches()) if triton_aot.unsupported() is None else []


@pytest.mark.parametrize("arch", triton_aot.ARCHES)
@pytest.mark.parametrize("name,dtype,launch", LAUNCHES, ids=[f"{n}-{d}" for n, d, _l in LAUNCHES])
def test_launch_compiles_with_its_dtype(arch, name, dtype, launch):
    try:
        asm = triton_aot.compile_launch(launch, arch)
    except Exception as exc:  # noqa: BLE001
        if "sm_" in str(exc) and "support" in str(exc).lower():
            pytest.skip(f"this Triton cannot target sm_{arch}: {exc}")
        raise
    assert "cubin" in asm or "ptx" in asm
    assert triton_aot.type_problems(name, dtype, asm) == []


try:
    import triton
    import triton.language as tl

    @triton.jit
    def _scaled(out_ptr, m, BLOCK: tl.constexpr):  # the old FMA kernel's mistake: a Python float for fp64 data
        offs = tl.arange(0, BLOCK)
        tl.store(out_ptr + offs, tl.load(out_ptr + offs) * m + 1.0)
except Exception:  # noqa: BLE001 (no Triton: the whole file is skipped above)
    _scaled = None


def test_a_python_float_for_fp64_data_is_caught():
    import torch

    from kernels.triton_kernels import Launch

    launch = Launch(_scaled, (1,), (torch.zeros(64, dtype=torch.float64), 0.9999), {"BLOCK": 64})
    asm = triton_aot.compile_launch(launch, 90)
    assert "m: fp32" in asm["signature"]  # typed as Triton's JIT types it at launch time
    problems = triton_aot.type_problems("scaled", "fp64", asm)
    assert any("argument m is f32" in p for p in problems), problems
    assert any("converts between float widths" in p for p in problems), problems


def test_the_command_line_says_ok_for_every_launch(capsys):
    assert triton_aot.main(["--arch", "90"]) == 0
    out = capsys.readouterr().out
    assert out.count(": (") == len(LAUNCHES) and "fma fp64: (out_ptr: *fp64, p_ptr: *fp64" in out
