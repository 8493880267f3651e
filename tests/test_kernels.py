import pytest
import torch

from kernels import gemm, stream
from kernels.base import Unsupported


def test_gemm_flops_and_bytes_by_hand():
    shape = gemm.GemmShape(4, 5, 6)
    assert shape.flops == 2 * 4 * 5 * 6
    assert gemm.gemm_bytes(shape, "fp32") == (4 * 6 + 6 * 5 + 4 * 5) * 4
    assert gemm.gemm_bytes(shape, "bf16") == (4 * 6 + 6 * 5 + 4 * 5) * 2
    assert gemm.gemm_bytes(shape, "int8") == (4 * 6 + 6 * 5) * 1 + 4 * 5 * 4  # int32 output
    batched = gemm.GemmShape(4, 5, 6, batch=3)
    assert batched.flops == 3 * 240 and batched.id() == "3x4x5x6"


@pytest.mark.parametrize("dtype", ["fp64", "fp32", "bf16", "fp16", "int8"])
def test_gemm_verifies_correct_results(dtype):
    p = gemm.prepare(gemm.GemmShape(96, 80, 64), dtype, "cpu")
    p.fn()
    verdict = p.verify()
    assert verdict.ok, verdict.detail


@pytest.mark.parametrize("dtype,where", [("fp32", (3, 3)), ("fp64", (90, 1)), ("int8", (50, 70))])
def test_gemm_verification_catches_an_injected_wrong_result(dtype, where):
    p = gemm.prepare(gemm.GemmShape(96, 80, 64), dtype, "cpu")
    p.fn()
    p.state["c"][where] += 1  # one wrong element, in a row the sample may not include
    verdict = p.verify()
    assert not verdict.ok and ("error" in verdict.detail or "differs" in verdict.detail)


def test_gemm_unsupported_paths_are_reasons_not_numbers():
    with pytest.raises(Unsupported, match="TF32"):
        gemm.prepare(gemm.GemmShape(8, 8, 8), "tf32", "cpu")
    with pytest.raises(Unsupported, match="batched"):
        gemm.prepare(gemm.GemmShape(8, 8, 8, batch=2), "int8", "cpu")
    with pytest.raises(Unsupported, match="free"):
        gemm.prepare(gemm.GemmShape(1024, 1024, 1024), "fp32", "cpu", free_bytes=1000)


def test_gemm_sweep_is_ordered_by_work():
    shapes = gemm.sweep("cpu", quick=False)
    assert [s.flops for s in shapes] == sorted(s.flops for s in shapes)
    assert {s.tag for s in shapes} >= {"square", "odd", "tall-skinny", "batched"}


def test_stream_bytes_follow_stream_convention():
    table = stream.KERNELS
    assert stream.bytes_per_element(table["copy"], 8) == 16  # STREAM: copy = 2 x 8 bytes per element
    assert stream.bytes_per_element(table["triad"], 8) == 24
    assert stream.bytes_per_element(table["read"], 4) == 4 and stream.bytes_per_element(table["write"], 4) == 4
    p = stream.prepare("add", 3 * 4 * 1000, "cpu")
    assert p.shape == [1000] and p.bytes == 12 * 1000 and p.flops == 1000


@pytest.mark.parametrize("name", list(stream.KERNELS))
def test_stream_kernels_verify(name):
    p = stream.prepare(name, 64 << 10, "cpu")
    p.fn()
    assert p.verify().ok


@pytest.mark.parametrize("name", ["copy", "triad", "write", "read"])
def test_stream_verification_catches_corruption(name):
    p = stream.prepare(name, 64 << 10, "cpu")
    p.fn()
    if name == "read":
        p.state["out"]["s"] = p.state["out"]["s"] + 1000
    else:
        p.state["target"][7] = -1
    assert not p.verify().ok


def test_read_repeat_amortises_dispatch():
    p = stream.prepare("read_repeat", 16 << 10, "cpu")
    assert p.extra["repeats"] > 100 and p.bytes == p.extra["repeats"] * p.extra["elements"] * 4


def test_sweep_reaches_four_times_the_last_level_cache():
    llc = 32 << 20
    for quick in (True, False):
        sizes = stream.sweep_sizes(llc, quick, max_bytes=1 << 40)
        assert sizes[0] == 16 << 10 and max(sizes) >= 4 * llc
        assert sizes == sorted(sizes)


def test_out_of_memory_is_recognised():
    from kernels.base import is_out_of_memory

    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    _ = torch
