"""Roofs at the hardware's limit (issue 11): the native kernels (correctness, injected wrong results, byte
conventions, missing compiler), ISA/core detection from fake /proc/cpuinfo, BLAS-config capture, and the two roofs
in the analysis, summary and plot. Speeds are never asserted."""
import shutil

import pytest

from kernels import native
from kernels.base import Unsupported
from platforms.cores import core_model
from platforms.cpu import read_cpuinfo
from results.analysis import analyse
from results.speccheck import cpu_theoretical

needs_cc = pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None, reason="no C compiler")


@needs_cc
@pytest.mark.parametrize("dtype", ["fp32", "fp64"])
def test_fma_kernel_verifies_and_counts(dtype):
    p = native.prepare_fma(dtype, threads=2, iterations=4096)
    p.fn()
    assert p.verify().ok
    threads, acc, lanes, iterations = p.shape
    assert p.flops == 2 * lanes * acc * iterations * threads and p.bytes == 0
    assert lanes * (4 if dtype == "fp32" else 8) == native.library().build_info["vector_bytes"]


@needs_cc
def test_fma_kernel_catches_a_wrong_result():
    p = native.prepare_fma("fp32", threads=1, iterations=4096)
    p.fn()
    p.state["out"][3] = 0.7  # an injected wrong lane
    verdict = p.verify()
    assert not verdict.ok and "fixed point" in verdict.detail, verdict.detail


@needs_cc
@pytest.mark.parametrize("name", list(native.STREAM))
def test_native_stream_kernels_verify(name):
    p = native.prepare_stream(name, 3 << 20, threads=2)
    p.fn()
    assert p.verify().ok, name


@needs_cc
def test_native_stream_catches_a_wrong_result():
    p = native.prepare_stream("triad_nt", 1 << 20, threads=2)
    p.fn()
    p.state["a"][12345] = 0.0
    assert not p.verify().ok


@needs_cc
@pytest.mark.parametrize("n", [1, 31, 64, 1000, 4099])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_native_read_sums_every_element_once(n, threads):
    # the read kernel runs 8 vector sums per thread over unaligned chunks plus a scalar tail: distinct integers
    # (exact in float64) catch an element counted twice or skipped
    import ctypes

    import numpy as np

    lib = native.library()
    a = native.aligned(n + 1, 0.0)[1:]  # an odd start: not on a vector boundary
    a[:] = np.arange(1, n + 1)
    got = lib.rn_read(a.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), n, 3, threads)
    assert got == 3 * n * (n + 1) / 2


def test_both_byte_counts():
    n = 1000
    assert native.byte_counts("copy", n) == (16 * n, 24 * n, "cached stores: + one write-allocate read per element written")
    assert native.byte_counts("copy_nt", n)[:2] == (16 * n, 16 * n)
    assert native.byte_counts("read", n) == (8 * n, 8 * n, "no stores: the bytes read are the traffic")
    assert native.byte_counts("triad", n)[:2] == (24 * n, 32 * n)
    assert native.byte_counts("triad_nt", n)[:2] == (24 * n, 24 * n)
    assert native.byte_counts("read", n)[:2] == (8 * n, 8 * n)
    assert native.byte_counts("fill_nt", n)[:2] == (8 * n, 8 * n)
    assert native.byte_counts("memcpy", n)[1] is None


def test_missing_compiler_is_missing_with_reason(monkeypatch):
    monkeypatch.setattr(native, "_compiler", lambda: None)
    monkeypatch.setattr(native, "_LIB", {})
    with pytest.raises(Unsupported, match="no C compiler"):
        native.prepare_fma("fp32")


def test_a_failing_build_is_missing_with_the_compiler_message(monkeypatch, tmp_path):
    broken = tmp_path / "broken.c"
    broken.write_text("this is not C")
    monkeypatch.setattr(native, "SOURCE", broken)
    monkeypatch.setattr(native, "_LIB", {})
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if native._compiler() is None:
        pytest.skip("no C compiler")
    with pytest.raises(Unsupported, match="could not build the native kernels"):
        native.prepare_stream("copy", 1 << 20)


CPUINFO = """processor\t: 0
vendor_id\t: {vendor}
cpu family\t: {family}
model\t\t: {model}
model name\t: {name}
flags\t\t: fpu sse sse4_2 avx {flags} hypervisor
"""


@pytest.mark.parametrize("vendor, family, model, name, flags, core, fp32, fp64", [
    ("AuthenticAMD", 23, 1, "AMD EPYC 7601", "avx2 fma", "Zen / Zen+", 16, 8),
    ("AuthenticAMD", 23, 0x31, "AMD EPYC 7742", "avx2 fma", "Zen 2", 32, 16),
    ("AuthenticAMD", 25, 0x01, "AMD EPYC 7763", "avx2 fma", "Zen 3", 32, 16),
    ("AuthenticAMD", 25, 0x11, "AMD EPYC 9654", "avx2 fma avx512f avx512_bf16", "Zen 4", 32, 16),
    ("AuthenticAMD", 26, 0x02, "AMD EPYC 9755", "avx2 fma avx512f avx512_bf16", "Zen 5", 64, 32),
    ("GenuineIntel", 6, 0x8F, "Intel(R) Xeon(R) Platinum 8480+", "avx2 fma avx512f amx_tile", "Intel with AVX-512", 64, 32),
    ("GenuineIntel", 6, 0x9A, "12th Gen Intel(R) Core(TM) i7-1260P", "avx2 fma", "Intel with AVX2/FMA", 32, 16),
])
def test_core_model_from_fake_cpuinfo(tmp_path, vendor, family, model, name, flags, core, fp32, fp64):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO.format(vendor=vendor, family=family, model=model, name=name, flags=flags))
    cpu = read_cpuinfo(str(path))
    info = {"name": cpu["name"], "vendor": cpu["vendor"], "cpu_family": cpu["family"], "cpu_model": cpu["model"],
            "simd_flags": cpu["flags"], "hypervisor": cpu["hypervisor"]}
    model_ = core_model(info)
    assert model_["core"] == core and model_["flop_per_cycle"] == {"fp32": fp32, "fp64": fp64}
    assert "VM" in model_["assumption"]  # the fake sets the hypervisor flag: said as a caveat


def test_effective_clock_is_information_and_the_peak_uses_a_clock_not_derived_from_it():
    info = {"vendor": "AuthenticAMD", "cpu_family": 26, "cpu_model": 2, "simd_flags": ["avx512f"],
            "physical_cores": 2, "torch_threads": 2, "freq_mhz_current": 2596}
    # 2 cores x 32 fp64 FLOP/cycle x 4.1 GHz = 262.4 GFLOP/s measured -> 4100 MHz effective, shown beside the peak
    theory = cpu_theoretical(info, {"fp64": 262.4e9})
    assert theory["effective_mhz"] == pytest.approx(4100) and theory["effective_from"] == "fp64"
    assert theory["freq_mhz"] == 2596 and "OS current" in theory["freq_kind"]
    assert theory["fp32_flop_per_s"] == pytest.approx(2 * 64 * 2.596e9)
    absurd = cpu_theoretical(info, {"fp64": 5e12})
    assert "implausible" in absurd["warning"]


def test_effective_clock_is_the_highest_clean_one_and_a_spread_is_flagged():
    # the EMR case: fp64 chains disturbed (88 GFLOP/s -> 1375 MHz), fp32 331 GFLOP/s -> 2586 MHz
    info = {"vendor": "GenuineIntel", "cpu_family": 6, "cpu_model": 207, "name": "Intel(R) Xeon(R) Processor",
            "simd_flags": ["avx2", "fma", "avx512f"], "physical_cores": 2, "torch_threads": 2,
            "freq_mhz_current": 2100}
    theory = cpu_theoretical(info, {"fp32": 331e9, "fp64": 88e9})
    assert theory["effective_from"] == "fp32" and theory["effective_mhz"] == pytest.approx(331e9 / 128 / 1e6)
    assert "fp64" in theory["clock_spread_flag"] and "apart" in theory["clock_spread_flag"]
    calm = cpu_theoretical(info, {"fp32": 331e9, "fp64": 160e9})
    assert "clock_spread_flag" not in calm


def test_a_documented_clock_sets_the_peak_and_above_it_is_flagged():
    info = {"vendor": "AuthenticAMD", "cpu_family": 25, "cpu_model": 0x11, "name": "AMD EPYC 9654 96-Core Processor",
            "simd_flags": ["avx2", "fma", "avx512f"], "physical_cores": 2, "torch_threads": 2,
            "freq_mhz_current": 2400}
    theory = cpu_theoretical(info, {"fp32": 100e9})
    assert theory["freq_mhz"] == 3700 and theory["clock_is_documented"] and "9654" in theory["freq_source"]
    assert theory["fp32_flop_per_s"] == 2 * 32 * 3700e6


def test_cpu_validation_holds_no_ratio_by_construction():
    from results.record import measurement
    from results.speccheck import validate

    info = {"kind": "cpu", "vendor": "AuthenticAMD", "cpu_family": 26, "cpu_model": 2, "simd_flags": ["avx512f"],
            "physical_cores": 2, "torch_threads": 2, "freq_mhz_current": 2596, "caches": []}

    def row(group, dtype, flops):
        return measurement(group=group, kernel="fma" if group == "peak" else "gemm", dtype=dtype, status="ok",
                           verified=True, flops=int(flops), times_s=[1.0], impl="native" if group == "peak" else "torch",
                           shape=[2, 24, 16, 1] if group == "peak" else [1, 8, 8, 8])

    record = {"platform": info, "measurements": [row("peak", "fp32", 524e9), row("peak", "fp64", 263e9),
                                                  row("gemm", "fp32", 248e9)]}
    rows = {r["ceiling"]: r for r in validate(analyse(record))}
    peak32 = 2 * 64 * 2596e6
    assert rows["fp32 GEMM"]["ratio"] == pytest.approx(248e9 / peak32)
    assert rows["fp32 FMA"]["ratio"] == pytest.approx(524e9 / peak32)  # not 100% by construction
    assert rows["fp64 FMA"]["ratio"] != pytest.approx(1.0)
    # above the OS's clock: said as turbo the OS does not show, not as a wrong sheet
    assert not any(f.startswith("ABOVE SPEC") for r in rows.values() for f in r["flags"])
    assert any("faster than the OS reports" in f for f in rows["fp32 FMA"]["flags"])


def test_a_silicon_figure_below_its_gemm_is_not_a_roof():
    from results.analysis import analyse
    from results.record import measurement
    from results.summary import summary_text

    info = {"kind": "cpu", "name": "Intel(R) Xeon(R) Processor", "vendor": "GenuineIntel", "cpu_family": 6,
            "simd_flags": ["avx512f"], "physical_cores": 2, "torch_threads": 2, "freq_mhz_current": 2100,
            "caches": []}
    rows = [measurement(group="peak", kernel="fma", dtype="fp64", status="ok", verified=True, flops=int(88e9),
                        times_s=[1.0], impl="native", shape=[2, 24, 8, 1]),
            measurement(group="gemm", kernel="gemm", dtype="fp64", status="ok", verified=True, flops=int(132e9),
                        times_s=[1.0], impl="torch", shape=[1, 8, 8, 8])]
    record = {"platform": info, "measurements": rows, "run_id": "x", "status": "complete", "options": {}}
    result = analyse(record)
    assert "fp64" not in result.silicon and "not a roof" in result.silicon_below_gemm["fp64"]["reason"]
    text = summary_text(analyse(record))
    assert "no silicon roof" in text


def test_blas_capture_and_the_explanation():
    from platforms.cpu import blas_libraries, steering_environment
    from results.summary import blas_lines

    libs = blas_libraries()
    assert any(lib.get("user_api") == "blas" for lib in libs)  # numpy's BLAS, whatever it is
    assert steering_environment({"OPENBLAS_CORETYPE": "Haswell", "PATH": "/bin"}) == {"OPENBLAS_CORETYPE": "Haswell"}
    info = {"simd_flags": ["avx2", "avx512f"], "environment": {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576"},
            "blas_libraries": [{"user_api": "blas", "internal_api": "openblas", "architecture": "Haswell",
                                "prefix": "libopenblas", "version": "0.3.31", "num_threads": 2}]}
    text = "\n".join(blas_lines(info))
    assert "runs its Haswell kernel because OPENBLAS_CORETYPE=Haswell is set" in text and "AVX-512" in text
    assert "OPENBLAS_L2_SIZE=1048576" in text
    # a value OpenBLAS does not know is ignored: it is not the reason for the kernel it chose
    info["environment"]["OPENBLAS_CORETYPE"] = "Bogus"
    info["blas_libraries"][0]["architecture"] = "SkylakeX"
    text = "\n".join(blas_lines(info))
    assert "OPENBLAS_CORETYPE=Bogus is set, but numpy's OpenBLAS runs its SkylakeX kernel, its own choice" in text
    assert "because OPENBLAS_CORETYPE" not in text


def test_two_roofs_in_analysis_summary_and_plot(tmp_path):
    from results.analysis import analyse
    from results.plot import roofline_png
    from results.record import measurement
    from results.summary import summary_text

    caches = [{"name": "L1", "size_bytes": 32 << 10, "instances": 1}, {"name": "L2", "size_bytes": 1 << 20}]

    def stream_row(impl, kernel, size, rate, actual=None):
        return measurement(group="stream", kernel=kernel, dtype="fp64", impl=impl, status="ok", verified=True,
                           size_bytes=size, bytes=int(rate), times_s=[1.0],
                           extra={"bytes_actual": actual, "bytes_actual_how": "test"})

    rows = [measurement(group="peak", kernel="fma", dtype="fp32", impl="native", status="ok", verified=True,
                        flops=int(500e9), times_s=[1.0], shape=[2, 24, 16, 1]),
            measurement(group="gemm", kernel="gemm", dtype="fp32", impl="torch", status="ok", verified=True,
                        flops=int(250e9), times_s=[1.0], shape=[1, 4096, 4096, 4096]),
            stream_row("torch", "copy", 64 << 20, 40e9), stream_row("native", "copy_nt", 64 << 20, 50e9, 50e9)]
    record = {"run_id": "r", "created": "2026-12-01T00:00:00", "platform": {"name": "cpu", "device": "cpu",
                                                                           "kind": "cpu", "caches": caches},
              "measurements": rows}
    result = analyse(record)
    assert result.memory["DRAM"].value == 40e9 and result.memory_hw["DRAM"].value == 50e9  # torch's stays torch's
    assert result.silicon["fp32"].value == 500e9 and result.compute["fp32"].value == 250e9
    text = summary_text(analyse(record))
    assert "= 0.50 of it" in text and "torch's 40 GB/s (copy) = 0.80 of it" in text
    path = roofline_png(analyse(record), tmp_path / "roof.png")
    with open(path, "rb") as handle:
        assert handle.read(4) == b"\x89PNG"


# ---- the build cache is verified, never trusted because the file exists (issue 23) --------------------------
def test_a_damaged_cached_library_is_rebuilt_and_says_so(tmp_path, monkeypatch):
    import warnings

    from kernels import native

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    try:
        path, info = native.build()
    except native.Unsupported as exc:
        pytest.skip(str(exc))
    assert native.cached_damage(path) is None and native.build()[1]["built"] == "cached"
    good = path.read_bytes()
    for damage, text in ((good[: len(good) // 2], "truncated"),            # what a full disk or a kill leaves
                         (b"garbage, not a library", "no ELF header"),    # a foreign file
                         (good[:-1] + bytes([good[-1] ^ 1]), "sha256")):  # same size, other bytes
        path.write_bytes(damage)
        assert text in native.cached_damage(path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            again, info = native.build()
        assert again == path and info["built"].startswith("rebuilt: the cached") and text in info["built"]
        assert any("rebuilt" in str(w.message) for w in caught)
        assert native.cached_damage(path) is None and path.read_bytes()[:4] == b"\x7fELF"
    native._checksum_path(path).unlink()  # a cache from before checksums: rebuilt once, then trusted
    assert "no valid checksum" in native.build()[1]["built"] and native.build()[1]["built"] == "cached"


def test_a_truncated_cache_no_longer_kills_the_next_process(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    """The defect: ctypes.CDLL on a truncated library died with 'Fatal Python error: Bus error' (exit 135)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    code = "from kernels import native; print(native.library().build_info['built'])"
    first = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    if first.returncode:
        pytest.skip(first.stderr[-300:])
    so = next(tmp_path.rglob("libroofline_native.so"))
    so.write_bytes(so.read_bytes()[:4096])
    second = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and second.stdout.startswith("rebuilt: the cached"), second.stderr[-2000:]


def test_an_unwritable_build_cache_names_xdg_cache_home(tmp_path, monkeypatch):
    import os

    from kernels import native

    if os.geteuid() == 0:  # root writes through permissions: point the cache below a file instead
        blocker = tmp_path / "a-file"
        blocker.write_text("x")
        monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    else:
        tmp_path.chmod(0o500)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if native._compiler() is None:
        pytest.skip("no C compiler")
    with pytest.raises(native.Unsupported, match="set XDG_CACHE_HOME to a writable folder"):
        native.build(force=True)
