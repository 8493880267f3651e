"""Compile the suite's Triton launches ahead of time for a GPU this machine does not have, and read their types.

``triton.compile(ASTSource(...), target=GPUTarget("cuda", 90, 32))`` runs Triton's whole pipeline (TTIR, TTGIR,
LLVM IR, PTX, and a cubin through the ptxas Triton ships) on a CPU. The signature is built the way Triton's JIT
builds it at launch time (its binder and ``_pack_args``), from the very arguments a :class:`Launch` holds, so a
Python float that a launch would pass is typed as the JIT types it (fp32), not as the test author meant it.

Those binder functions are Triton internals: where the installed Triton lacks them, the signature falls back to
``mangle_type`` per argument, and where that is missing too :func:`unsupported` says why.

    python -m kernels.triton_aot [--arch 90 87]      # every launch, its argument and accumulator types
"""
from __future__ import annotations

import argparse
import re
import sys

#: Triton's IR element type per suite dtype, and the PTX suffix of its FMA
IR_TYPES = {"fp32": "f32", "fp64": "f64"}
ARCHES = (90, 87)  # H100/H200 (sm_90), Jetson Orin (sm_87)


def unsupported() -> str | None:
    """None if this Triton can compile for a named target on this machine, else why not."""
    try:
        import triton  # noqa: F401
        from triton.backends.compiler import GPUTarget  # noqa: F401
        from triton.compiler import ASTSource  # noqa: F401
    except Exception as exc:  # noqa: BLE001 (ImportError or a broken install: the reason to skip)
        return f"Triton cannot compile ahead of time here ({type(exc).__name__}: {exc})"
    return None


def _specialise(launch, target):
    """(signature, constexprs, attrs, options) as Triton's JIT makes them for these arguments on ``target``."""
    from triton.compiler import make_backend
    from triton.runtime import jit

    fn = launch.kernel
    backend = make_backend(target)
    kwargs = dict(launch.kwargs)
    try:
        binder = jit.create_function_from_signature(fn.signature, fn.params, backend)
        bound, specialization, options = binder(*launch.args, **kwargs)
        options, signature, constexprs, attrs = fn._pack_args(backend, kwargs, bound, specialization, options)
        return signature, constexprs, attrs, options.__dict__
    except (AttributeError, TypeError):  # an older/newer Triton without these internals: types only
        names = [p.name for p in fn.params]
        values = dict(zip(names, launch.args), **kwargs)
        signature, constexprs = {}, {}
        for p in fn.params:
            if p.is_constexpr:
                signature[p.name] = "constexpr"
                constexprs[(p.num,)] = values[p.name]
            else:
                signature[p.name] = jit.mangle_type(values[p.name])
        options = {k: v for k, v in kwargs.items() if k in ("num_warps", "num_stages")}
        return signature, constexprs, {}, options


def compile_launch(launch, arch: int = 90, warp_size: int = 32) -> dict[str, str]:
    """The launch compiled for CUDA ``sm_<arch>``: {'signature': ..., 'ttir': ..., 'ptx': ..., ...}."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    target = GPUTarget("cuda", arch, warp_size)
    signature, constexprs, attrs, options = _specialise(launch, target)
    src = ASTSource(fn=launch.kernel, signature=signature, constexprs=constexprs, attrs=attrs)
    compiled = triton.compile(src, target=target, options=options)
    out = {k: v for k, v in compiled.asm.items() if isinstance(v, str)}
    out["signature"] = ", ".join(f"{k}: {v}" for k, v in signature.items())
    return out


def type_problems(name: str, dtype: str, asm: dict[str, str]) -> list[str]:
    """What is wrong with a compiled launch's types for ``dtype``: every float argument and every float operation
    in the TTIR of the dtype's width, no conversion to or from another float width; the FMA chains fused (PTX
    ``fma.rn.<type>``) and, for the stream kernels, 128-bit vector loads (what reaches the HBM roof)."""
    want = IR_TYPES[dtype]
    other = [t for t in ("f16", "bf16", "f32", "f64") if t != want]
    problems = []
    ttir = asm.get("ttir", "")
    head = ttir[ttir.find("tt.func"):].split(" attributes ", 1)[0].split("\n", 1)[0]  # the function's own line
    for arg, kind in re.findall(r"%(\w+): (!tt\.ptr<\w+>|f16|bf16|f32|f64)", head):
        if kind.removeprefix("!tt.ptr<").rstrip(">") in other:
            problems.append(f"{name}: argument {arg} is {kind}, not {want}")
    for line in ttir.splitlines():
        if re.search(r"arith\.(mulf|addf|subf|divf)|tt\.fma|math\.fma", line):
            found = [t for t in other if re.search(rf"\b{t}\b", line)]
            if found:
                problems.append(f"{name}: {line.strip()[:120]} computes in {found[0]}, not {want}")
        if re.search(r"arith\.(extf|truncf)", line):
            problems.append(f"{name}: {line.strip()[:120]} converts between float widths")
    ptx = asm.get("ptx", "")
    if name == "fma":
        if f"fma.rn.{want}" not in ptx:
            problems.append(f"{name}: no fma.rn.{want} in the PTX (the chains are not fused multiply-adds)")
        if re.search(rf"fma\.rn\.({'|'.join(o for o in other if o != 'bf16')})\b", ptx):
            problems.append(f"{name}: the PTX runs FMAs of another width than {want}")
    elif name != "write" and "ld.global.v4" not in ptx:
        problems.append(f"{name}: no 128-bit vector loads (ld.global.v4) in the PTX: the loads are scalar")
    return problems


def suite_launches(device: str = "cpu"):
    """(name, dtype, Launch) for every Triton launch the suite makes, built small on ``device`` (never run here)."""
    from kernels import triton_kernels as tk

    for name in tk.STREAM:
        prepared = tk.prepare_stream(name, 1 << 22, device)
        yield name, "fp32", prepared.state["launch"]
    for dtype in ("fp32", "fp64"):
        prepared = tk.prepare_fma(dtype, device, programs=2, iterations=tk.FMA_ITERATIONS)
        yield "fma", dtype, prepared.state["launch"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernels.triton_aot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", type=int, nargs="+", default=list(ARCHES), help="CUDA compute capabilities (90 87)")
    args = parser.parse_args(argv)
    reason = unsupported()
    if reason:
        print(f"triton_aot: {reason}", file=sys.stderr)
        return 2
    bad = 0
    for arch in args.arch:
        for name, dtype, launch in suite_launches():
            try:
                asm = compile_launch(launch, arch)
            except Exception as exc:  # noqa: BLE001 (a kernel this Triton cannot compile for this arch: say it)
                print(f"sm_{arch} {name} {dtype}: does not compile: {type(exc).__name__}: {str(exc)[:200]}")
                bad += 1
                continue
            problems = type_problems(name, dtype, asm)
            bad += bool(problems)
            print(f"sm_{arch} {name} {dtype}: ({asm['signature']}) "
                  + ("ok" if not problems else "; ".join(problems)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
