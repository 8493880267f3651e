"""The platform matrix: for every fingerprint in tests/data/cpu_fingerprints.py (one recorded, the rest written from
vendors' documentation), what the suite makes of the machine: core model and FLOP per cycle, the theoretical peak
and its clock, the silicon kernels it chooses, the sweep sizes and the memory it asks for. And the native kernels
cross-compiled for aarch64 and run under qemu-user where the toolchain is installed. Nothing here times anything."""
import shutil
import subprocess
from pathlib import Path

import pytest

from kernels import native, stream
from kernels.native import engines
from platforms.cores import core_model, engine_rates
from platforms.cpu import read_cpuinfo, read_sysfs_caches
from results.speccheck import cpu_theoretical
from tests.data.cpu_fingerprints import FINGERPRINTS

DATA = Path(__file__).resolve().parent / "data"


def machine(tmp_path, name):
    """(platform info as the record keeps it, cache dicts, available bytes) from a fingerprint, through the parsers
    the suite uses on a live machine."""
    fp = FINGERPRINTS[name]
    if fp.get("recorded"):
        folder = DATA / fp["recorded"]
        cpuinfo_text, cache_text = (folder / "cpuinfo.txt").read_text(), (folder / "sysfs-caches.txt").read_text()
    else:
        cpuinfo_text, cache_text = fp["cpuinfo"], fp["caches"]
    (tmp_path / "cpuinfo").write_text(cpuinfo_text)
    cpu = read_cpuinfo(str(tmp_path / "cpuinfo"))
    root = tmp_path / "cache"
    for line in cache_text.strip().splitlines():
        index, *fields = line.split()
        folder = root / index
        folder.mkdir(parents=True)
        for key, value in (f.split("=", 1) for f in fields):
            (folder / {"shared_cpu_list": "shared_cpu_list"}.get(key, key)).write_text(value + "\n")
    levels = [vars(c) for c in read_sysfs_caches(root, n_cpus=2)]
    info = {"kind": "cpu", "name": cpu["name"], "vendor": cpu.get("vendor"), "cpu_family": cpu.get("family"),
            "cpu_model": cpu.get("model"), "simd_flags": cpu["flags"], "hypervisor": cpu.get("hypervisor", False),
            "arch": fp.get("arch", "x86_64"), "physical_cores": 2, "torch_threads": 2, "freq_mhz_current": 2000,
            "caches": levels}
    return info, levels, fp["available"]


def llc(levels):
    last = levels[-1]
    return last["size_bytes"] * (1 if last["shared"] else last["instances"])


@pytest.mark.parametrize("name", list(FINGERPRINTS))
def test_core_model_peak_and_silicon_kernels(tmp_path, name):
    fp = FINGERPRINTS[name]
    info, _levels, _available = machine(tmp_path, name)
    core = core_model(info)
    assert core["core"] == fp["core"], core
    assert core["flop_per_cycle"] == {"fp32": fp["fp32"], "fp64": fp["fp64"]}
    assert engines.engines_for(info["simd_flags"]) == fp["engines"]
    assert {d: e["op_per_cycle"] for d, e in engine_rates(info).items() if e["op_per_cycle"]} == fp["engine_rates"]
    theory = cpu_theoretical(info)
    mhz = fp.get("documented_mhz", 2000)  # a documented turbo where the table knows the part, else the OS clock
    assert theory["freq_mhz"] == mhz and theory["clock_is_documented"] == ("documented_mhz" in fp)
    assert theory["fp32_flop_per_s"] == 2 * fp["fp32"] * mhz * 1e6
    for dtype, per_cycle in fp["engine_rates"].items():
        assert theory[f"{dtype}_flop_per_s"] == 2 * per_cycle * mhz * 1e6
    for kernel, dtype in fp["engines"]:
        assert engines.missing_reason(kernel, dtype, info["simd_flags"]) is None
    if not fp["engines"]:
        assert "lacks" in engines.missing_reason("amx", "bf16", info["simd_flags"])


@pytest.mark.parametrize("name", list(FINGERPRINTS))
def test_sweep_sizes_and_memory_asked_for(tmp_path, name):
    _info, levels, available = machine(tmp_path, name)
    last = llc(levels)
    quarter = available // 4
    for quick in (True, False):
        torch_sizes = stream.cpu_sweep(levels, last, available, quick)
        native_sizes = native.stream_levels(levels, last, available, quick)
        assert max(torch_sizes + native_sizes) <= quarter  # never more than a quarter of the free memory
        dram = [s for s in torch_sizes if s >= 4 * last]
        if stream.dram_fits(last, available) is None:
            # a quick run: one costly DRAM size (above the cheap octaves), whatever the caches
            assert dram and (not quick or len([s for s in dram if s > stream.QUICK_OCTAVES_UP_TO]) <= 1)
            assert [s for s in native_sizes if s >= 4 * last]
        else:
            assert not dram and "does not fit" in stream.dram_fits(last, available)
        if quick:  # a quick sweep stays small whatever the caches: octaves to 32 MiB, one size per larger level
            assert len(torch_sizes) <= 16 and len(native_sizes) <= len(levels) + 1
    # the compiled reference's three arrays and the sentinel's two stay within the same quarter
    assert 3 * (min(4 * last, available // 12) // 8) * 8 <= quarter
    assert min(max(4 * last, 0), quarter) <= quarter


def test_a_one_gib_l3_part_asks_for_no_13_gib_of_arrays(tmp_path):
    _info, levels, available = machine(tmp_path, "one-gib-l3-genoa-x")
    last = llc(levels)
    assert last == 1 << 30
    asked = max(stream.cpu_sweep(levels, last, available, False) + native.stream_levels(levels, last, available, False))
    assert asked <= available // 4 < 13 << 30
    assert "does not fit a quarter of the free memory" in stream.dram_fits(last, available)


CROSS = shutil.which("aarch64-linux-gnu-gcc")
QEMU = shutil.which("qemu-aarch64")


@pytest.mark.skipif(CROSS is None, reason="no aarch64 cross-compiler (Debian: apt-get install gcc-aarch64-linux-gnu)")
@pytest.mark.parametrize("cpu", ["cortex-a78ae", "neoverse-v1"])
def test_native_kernels_build_for_aarch64_with_in_place_fma(tmp_path, cpu):
    lib = tmp_path / "lib.so"
    for source in (native.SOURCE, native.ENGINES_SOURCE):
        built = subprocess.run([CROSS, "-O3", f"-mcpu={cpu}", "-ffp-contract=fast", "-fopenmp", "-shared", "-fPIC",
                                str(source), "-o", str(lib)], capture_output=True, text=True)
        assert built.returncode == 0, built.stderr
    built = subprocess.run([CROSS, "-O3", f"-mcpu={cpu}", "-ffp-contract=fast", "-fopenmp", "-shared", "-fPIC",
                            str(native.SOURCE), "-o", str(lib)], capture_output=True, text=True)
    dump = subprocess.run([shutil.which("aarch64-linux-gnu-objdump") or "objdump", "-d", str(lib)],
                          capture_output=True, text=True).stdout
    body = dump.split("<rn_fma_f32._omp_fn.0>:")[1].split("\n\n")[0]
    loop = [line for line in body.splitlines() if "\tfml" in line]
    # FMLA/FMLS in place (d += d*h): no register moves between them, 2 x 24 chains per iteration
    assert len(loop) == 2 * 24 and all(line.split("\t")[-1].split(",")[0].strip().split()[-1] ==
                                       line.split("\t")[-1].split(",")[1].strip() for line in loop), loop[:3]


@pytest.mark.skipif(CROSS is None or QEMU is None, reason="no aarch64 cross-compiler or qemu-user (Debian: apt-get "
                                                          "install gcc-aarch64-linux-gnu qemu-user)")
def test_native_kernels_run_and_verify_on_aarch64_under_qemu(tmp_path):
    import numpy as np

    exe = tmp_path / "driver"
    built = subprocess.run([CROSS, "-O3", "-mcpu=cortex-a78ae", "-ffp-contract=fast", "-fopenmp", str(native.SOURCE),
                            str(DATA / "native_driver.c"), "-o", str(exe)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    steps = 1000
    ran = subprocess.run([QEMU, "-L", "/usr/aarch64-linux-gnu", str(exe), str(steps)], capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 0, ran.stderr
    facts = dict(line.split(" ", 1) for line in ran.stdout.strip().splitlines())
    assert facts["isa"].startswith("aarch64 NEON") and facts["form"] == "1" and facts["nt"] == "0"
    acc = int(facts["accumulators"])
    h = 2.0 ** -11
    for key, dtype in (("f32", np.float32), ("f64", np.float64)):
        x, hh = np.array([native.FMA_X0 + 0.001 * c for c in range(acc)], dtype=dtype), dtype(h)
        for _ in range(steps):  # the replay rounds as FMLA/FMLS do: x*h is exact
            x = x + x * hh
            x = x - x * hh
        got = np.array([float(v) for v in facts[key].split()], dtype=dtype)
        assert np.array_equal(got, x), (key, got[:3], x[:3])
    assert facts["stream_bad"] == "0"
    assert float(facts["read"]) == 2 * sum(range(4099))  # two passes over 0..4098, three threads


@pytest.mark.parametrize("name", ["emerald-rapids-kvm-recorded", "zen-kvm-generic-epyc", "jetson-orin-cortex-a78ae"])
def test_a_budget_cut_loses_resolution_never_a_level(tmp_path, name):
    _info, levels, available = machine(tmp_path, name)
    last = llc(levels)
    sizes = stream.cpu_sweep(levels, last, available, False)
    first = stream.level_points(levels, last, sizes)
    from platforms.base import effective_capacities

    windows, previous = 0, 0  # levels whose window (above 2x the level below, at most half this one) holds a size
    for _name, capacity in effective_capacities(levels):
        windows += any(2 * previous < s <= capacity // 2 for s in sizes)
        previous = capacity
    assert len(first) == windows + 1 and first[-1] >= 4 * last  # one per cache level, and DRAM
    order = stream.budget_order(list(stream.KERNELS), sizes, first, stream.cpu_sweep(levels, last, available, True))
    head = order[:len(stream.KERNELS) * len(first)]
    assert {(k, s) for k in stream.KERNELS for s in first} == set(head)  # every kernel at every level comes first
    assert sorted(order) == sorted((k, s) for k in stream.KERNELS for s in sizes)  # and nothing is lost or doubled
