"""CPU fingerprints for the platform matrix (tests/test_platform_matrix.py): /proc/cpuinfo lines, sysfs cache lines
(the format of ../shared/machines/*/sysfs-caches.txt) and free memory, as a 2-vCPU cloud guest of each part shows
them, with what the suite must make of each.

``recorded``: copied from a machine the suite met (tests/data/machines/). Every other entry is written from the
vendors' documentation of the part (family/model numbers, flags, per-core L1d/L2 and the L3 a guest sees), not
recorded on one: where a hypervisor would show it differently the suite reads what it shows."""

GIB = 1 << 30


def cpuinfo(vendor, family, model, name, flags, arm=False):
    if arm:  # Arm's /proc/cpuinfo: implementer / architecture / part, and "Features"
        return (f"processor\t: 0\nCPU implementer\t: {vendor}\nCPU architecture: {family}\nCPU part\t: {hex(model)}\n"
                f"model name\t: {name}\nFeatures\t: fp {flags}\n")
    return (f"processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: {model}\nmodel name\t: {name}\n"
            f"flags\t\t: fpu sse sse2 sse4_2 avx {flags} hypervisor\n")


def caches(l1d, l2, l3=None, cpus=2):
    lines = [f"index0 level=1 type=Data size={l1d} shared_cpu_list=0",
             "index1 level=1 type=Instruction size=32K shared_cpu_list=0",
             f"index2 level=2 type=Unified size={l2} shared_cpu_list=0"]
    if l3:
        lines.append(f"index3 level=3 type=Unified size={l3} shared_cpu_list=0-{cpus - 1}")
    return "\n".join(lines)


AVX2 = "avx2 fma"
AVX512 = "avx2 fma avx512f avx512bw avx512vl"
#: name -> fingerprint and expectations: core, FLOP/cycle per core (fp32, fp64), engine kernels the suite runs
#: ((kernel, dtype) in order), engine FLOP (OP) per cycle from the core-model table where documented
FINGERPRINTS = {
    "zen-kvm-generic-epyc": dict(
        cpuinfo=cpuinfo("AuthenticAMD", 23, 1, "AMD EPYC Processor", AVX2),
        caches=caches("32K", "512K", "8192K"), available=22 * GIB,
        core="Zen / Zen+", fp32=16, fp64=8, engines=[], engine_rates={}),
    "zen3-epyc-7763": dict(
        cpuinfo=cpuinfo("AuthenticAMD", 25, 1, "AMD EPYC 7763 64-Core Processor", AVX2),
        caches=caches("32K", "512K", "32768K"), available=14 * GIB, documented_mhz=3500,
        core="Zen 3", fp32=32, fp64=16, engines=[], engine_rates={}),
    "zen4-epyc-9654": dict(
        cpuinfo=cpuinfo("AuthenticAMD", 25, 0x11, "AMD EPYC 9654 96-Core Processor",
                        AVX512 + " avx512_bf16 avx512_vnni"),
        caches=caches("32K", "1024K", "32768K"), available=14 * GIB, documented_mhz=3700,
        core="Zen 4", fp32=32, fp64=16, engines=[("dot", "bf16"), ("vnni", "int8")], engine_rates={}),
    "zen5-epyc-9755": dict(
        cpuinfo=cpuinfo("AuthenticAMD", 26, 2, "AMD EPYC 9755 128-Core Processor",
                        AVX512 + " avx512_bf16 avx512_vnni"),
        caches=caches("48K", "1024K", "32768K"), available=14 * GIB, documented_mhz=4100,
        core="Zen 5", fp32=64, fp64=32, engines=[("dot", "bf16"), ("vnni", "int8")], engine_rates={}),
    "skylake-sp": dict(
        cpuinfo=cpuinfo("GenuineIntel", 6, 0x55, "Intel(R) Xeon(R) Platinum 8175M CPU @ 2.50GHz", AVX512),
        caches=caches("32K", "1024K", "33792K"), available=7 * GIB,
        core="Intel with AVX-512", fp32=64, fp64=32, engines=[], engine_rates={}),
    "ice-lake-sp": dict(
        cpuinfo=cpuinfo("GenuineIntel", 6, 0x6A, "Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz",
                        AVX512 + " avx512_vnni"),
        caches=caches("48K", "1280K", "55296K"), available=14 * GIB, documented_mhz=3400,
        core="Intel with AVX-512", fp32=64, fp64=32, engines=[("vnni", "int8")], engine_rates={}),
    "sapphire-rapids": dict(
        cpuinfo=cpuinfo("GenuineIntel", 6, 0x8F, "Intel(R) Xeon(R) Platinum 8480+",
                        AVX512 + " avx512_bf16 avx512_vnni avx512_fp16 amx_tile amx_bf16 amx_int8"),
        caches=caches("48K", "2048K", "107520K"), available=14 * GIB, documented_mhz=3800,
        core="Intel with AVX-512", fp32=64, fp64=32,
        engines=[("amx", "bf16"), ("amx", "int8"), ("dot", "bf16"), ("vnni", "int8")],
        engine_rates={"bf16": 1024, "int8": 2048}),
    "emerald-rapids-kvm-recorded": dict(
        recorded="machines/intel-xeon-emr-kvm-2core", available=23335813120,
        core="Intel with AVX-512", fp32=64, fp64=32,
        engines=[("amx", "bf16"), ("amx", "int8"), ("dot", "bf16"), ("vnni", "int8")],
        engine_rates={"bf16": 1024, "int8": 2048}),
    "granite-rapids": dict(
        cpuinfo=cpuinfo("GenuineIntel", 6, 0xAD, "Intel(R) Xeon(R) 6980P",
                        AVX512 + " avx512_bf16 avx512_vnni avx512_fp16 amx_tile amx_bf16 amx_int8 amx_fp16"),
        caches=caches("48K", "2048K", "516096K"), available=28 * GIB,
        core="Intel with AVX-512", fp32=64, fp64=32,
        engines=[("amx", "bf16"), ("amx", "int8"), ("dot", "bf16"), ("vnni", "int8")],
        engine_rates={"bf16": 1024, "int8": 2048, "fp16": 1024}),
    "graviton3-neoverse-v1": dict(
        cpuinfo=cpuinfo("0x41", 8, 0xD40, "", "asimd sve bf16 i8mm", arm=True),
        caches=caches("64K", "1024K", "32768K"), available=7 * GIB, arch="aarch64",
        core="Neoverse V1", fp32=32, fp64=16, engines=[], engine_rates={}),
    "jetson-orin-cortex-a78ae": dict(
        cpuinfo=cpuinfo("0x41", 8, 0xD42, "", "asimd", arm=True),
        caches=caches("64K", "256K", "2048K"), available=5 * GIB, arch="aarch64",
        core="Cortex-A78AE", fp32=16, fp64=8, engines=[], engine_rates={}),
    "one-gib-l3-genoa-x": dict(  # EPYC 9684X: 1152 MiB of L3 (3D V-Cache); a guest that sees 1 GiB of it, 16 GiB RAM
        cpuinfo=cpuinfo("AuthenticAMD", 25, 0x11, "AMD EPYC 9684X 96-Core Processor",
                        AVX512 + " avx512_bf16 avx512_vnni"),
        caches=caches("32K", "1024K", "1048576K"), available=14 * GIB,
        core="Zen 4", fp32=32, fp64=16, engines=[("dot", "bf16"), ("vnni", "int8")], engine_rates={}),
}
