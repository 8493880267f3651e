"""Real model layers as timeable kernels: extract the distinct layers of a model with their theoretical counts.

A "layer" is a module that runs aten ops itself and calls no other module during its forward (a leaf in what
actually ran: nn.MultiheadAttention counts, although it owns an out_proj child, because it never calls it). Layers
with the same type, configuration, input shapes and dtype are one distinct layer with a multiplicity. Ops that run
in non-leaf modules (a residual add in a ResNet block) are not timed on their own: the whole-model time covers them.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map

from kernels.base import Prepared, Verdict
from kernels.count import Counts, count_model

LAYER_CONVENTION = ("FLOPs = 2 x MACs + other FLOPs of the layer's aten ops; bytes = each tensor once per op "
                    "(kernels.formulas); time = median of warm-cache repetitions")
#: relative tolerance of a layer's output against the same layer run in float64
LAYER_TOLERANCE = {torch.float64: 1e-9, torch.float32: 2e-3, torch.bfloat16: 5e-2, torch.float16: 1e-2}


@dataclass
class LayerCase:
    model: str
    path: str
    paths: list[str]
    type: str
    module: nn.Module = field(repr=False)
    args: tuple = field(repr=False)
    kwargs: dict = field(repr=False)
    input_shapes: list
    dtype: str
    multiplicity: int
    macs: int
    other_flops: int
    bytes_read: int
    bytes_written: int
    n_ops: int
    implicit_gemm: dict | None

    @property
    def flops(self) -> int:
        return 2 * self.macs + self.other_flops

    @property
    def bytes(self) -> int:
        return self.bytes_read + self.bytes_written

    @property
    def label(self) -> str:
        shapes = " ".join("x".join(map(str, s)) for s in self.input_shapes)
        return f"{self.path} ({self.type} {shapes})"


def implicit_gemm(module: nn.Module, input_shapes: list, output_shapes: list) -> dict | None:
    """The GEMM a layer is equivalent to: conv as im2col (M = N*Hout*Wout, N = Cout/groups, K = Cin/groups*kh*kw,
    batched over groups); linear as (tokens, out, in). None for layers that are not one GEMM."""
    if isinstance(module, nn.modules.conv._ConvNd) and not module.transposed and output_shapes:
        out = output_shapes[0]
        groups = module.groups
        m = out[0] * math.prod(out[2:])
        n = module.out_channels // groups
        k = module.in_channels // groups * math.prod(module.kernel_size)
        return {"m": m, "n": n, "k": k, "batch": groups}
    if isinstance(module, nn.Linear) and input_shapes:
        shape = input_shapes[0]
        return {"m": math.prod(shape[:-1]), "n": module.out_features, "k": module.in_features, "batch": 1}
    return None


def _signature(module: nn.Module, shapes: list, dtype: str) -> tuple:
    return (type(module).__name__, repr(module), tuple(tuple(s) for s in shapes), dtype)


def extract_layers(model: nn.Module, inputs: tuple, name: str, *, only_largest: int | None = None) -> tuple[list[LayerCase], Counts]:
    """Run ``model(*inputs)`` once (eval, no_grad) on the inputs' device, counting every op and capturing each
    timeable layer's first call (module, args, kwargs). ``only_largest`` keeps the N distinct layers with the most
    FLOPs x multiplicity (quick runs)."""
    captured: dict[int, tuple[tuple, dict]] = {}
    handles = []

    def capture(module, args, kwargs):
        if id(module) not in captured:
            captured[id(module)] = (tree_map(_detach, args), tree_map(_detach, kwargs))

    for module in model.modules():
        handles.append(module.register_forward_pre_hook(capture, with_kwargs=True))
    try:
        counts = count_model(model, inputs)
    finally:
        for handle in handles:
            handle.remove()
    per_module: dict[str, dict[str, Any]] = {}
    for op in counts.ops:
        entry = per_module.setdefault(op.module, {"macs": 0, "other": 0, "read": 0, "written": 0, "ops": 0,
                                                 "dtype": op.dtype})
        entry["macs"] += op.macs
        entry["other"] += op.other_flops
        entry["read"] += op.bytes_read
        entry["written"] += op.bytes_written
        entry["ops"] += 1
    groups: dict[tuple, LayerCase] = {}
    for path, entry in per_module.items():
        module = counts.module_objects.get(path)
        if module is None or path in counts.parents or id(module) not in captured:
            continue
        calls = max(1, counts.calls.get(path, 1))
        inputs_shapes, outputs_shapes = counts.module_shapes.get(path, ([], []))
        key = _signature(module, inputs_shapes, entry["dtype"])
        if key in groups:
            case = groups[key]
            case.multiplicity += calls
            case.paths.append(path)
            continue
        args, kwargs = captured[id(module)]
        groups[key] = LayerCase(
            model=name, path=path, paths=[path], type=type(module).__name__, module=module, args=args, kwargs=kwargs,
            input_shapes=inputs_shapes, dtype=entry["dtype"], multiplicity=calls, macs=entry["macs"] // calls,
            other_flops=entry["other"] // calls, bytes_read=entry["read"] // calls,
            bytes_written=entry["written"] // calls, n_ops=max(1, entry["ops"] // calls),
            implicit_gemm=implicit_gemm(module, inputs_shapes, outputs_shapes))
    cases = list(groups.values())
    if only_largest:
        cases = sorted(cases, key=lambda c: -c.flops * c.multiplicity)[:only_largest]
    return cases, counts


def _detach(x):
    return x.detach() if isinstance(x, torch.Tensor) else x


def _first_tensor(out):
    return next((t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)), None)


def prepare_layer(case: LayerCase) -> Prepared:
    """The layer as a kernel: ``fn`` runs its forward under no_grad; ``verify`` compares the last output with
    the same layer run in float64 on the same inputs."""
    module, args, kwargs = case.module, case.args, case.kwargs
    state: dict[str, Any] = {}

    def fn():
        with torch.no_grad():
            state["out"] = module(*args, **kwargs)

    def verify() -> Verdict:
        got = _first_tensor(state.get("out"))
        if got is None:
            return Verdict(False, "the layer returned no tensor")
        if not torch.isfinite(got.float()).all():
            return Verdict(False, "non-finite values in the output")
        try:
            reference = copy.deepcopy(module).double()
            to64 = (lambda x: x.double() if isinstance(x, torch.Tensor) and x.is_floating_point() else x)
            with torch.no_grad():
                want = _first_tensor(reference(*tree_map(to64, args), **tree_map(to64, kwargs)))
        except Exception as exc:  # some fused paths have no float64 kernel on some devices
            return Verdict(True, f"output finite; no float64 reference ({type(exc).__name__})")
        scale = want.abs().max().clamp_min(1e-30)
        err = float((got.double() - want).abs().max() / scale)
        tol = LAYER_TOLERANCE.get(got.dtype, 5e-2)
        if err > tol:
            return Verdict(False, f"max error {err:.3g} of the output's scale > {tol:g} (float64 reference)")
        return Verdict(True, f"max error {err:.3g} <= {tol:g} of the output's scale (float64 reference)")

    return Prepared(group="layer", kernel=f"{case.model}:{case.path}", dtype=case.dtype, impl=case.type, fn=fn,
                    verify=verify, flops=case.flops, bytes=case.bytes, convention=LAYER_CONVENTION,
                    shape=case.input_shapes[0] if case.input_shapes else None, size_bytes=case.bytes,
                    extra={"model": case.model, "layer": case.path, "paths": case.paths[:20], "type": case.type,
                           "multiplicity": case.multiplicity, "macs": case.macs, "other_flops": case.other_flops,
                           "bytes_read": case.bytes_read, "bytes_written": case.bytes_written, "n_ops": case.n_ops,
                           "input_shapes": case.input_shapes, "implicit_gemm": case.implicit_gemm},
                    state=state)


def prepare_model(model: nn.Module, inputs: tuple, name: str, counts: Counts) -> Prepared:
    """The whole model forward (eval, no_grad) as one kernel; checked for finite output only (say so)."""
    state: dict[str, Any] = {}

    def fn():
        with torch.no_grad():
            state["out"] = model(*inputs)

    def verify() -> Verdict:
        got = _first_tensor(state.get("out"))
        ok = got is not None and bool(torch.isfinite(got.float()).all())
        return Verdict(ok, "output finite (whole models are not compared with float64)" if ok else "non-finite output")

    dtype = next((op.dtype for op in counts.ops if op.dtype), "")
    return Prepared(group="model", kernel=name, dtype=dtype, impl=type(model).__name__, fn=fn, verify=verify,
                    flops=counts.flops + counts.other_flops, bytes=counts.bytes_read + counts.bytes_written,
                    convention=LAYER_CONVENTION, shape=list(inputs[0].shape) if inputs else None,
                    size_bytes=counts.bytes_read + counts.bytes_written,
                    extra={"params": counts.total_params, "macs": counts.macs, "other_flops": counts.other_flops,
                           "n_ops": len(counts.ops)}, state=state)


# ---- what the layer benchmarks run ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    """One model at one dtype and batch (or token count) for the layer benchmarks."""

    name: str  # record name, e.g. "decoder-prefill"
    source: str  # torchvision name, package.module:factory, or a built-in key
    input_shape: tuple
    dtype: str
    batch_tag: str = ""  # what varies in a batch sweep ("tokens=16", "batch=8")
    largest: int | None = None  # time only the N largest distinct layers
    note: str = ""
    missing: str = ""  # why this model cannot run here (a package absent): listed as missing, never dropped

    @property
    def key(self) -> str:
        return f"{self.name}-{self.dtype}"


def _builtin(source: str) -> nn.Module | None:
    from kernels.models import DecoderBlock, block_config

    if source == "decoder-block":
        return DecoderBlock(block_config())
    if source == "resnet50-layer1-conv3x3":
        return nn.Conv2d(64, 64, 3, padding=1, bias=False)  # ResNet-50 layer1 3x3 conv at 56x56
    if source == "mobilenet_v2-dw3x3":
        return nn.Conv2d(144, 144, 3, padding=1, groups=144, bias=False)  # MobileNetV2 depthwise, 56x56
    return None


def check_model_name(source: str) -> None:
    from kernels.count import CountError
    from kernels.zoo import build_model

    if _builtin(source) is None:
        model = build_model(source, device="meta")
        if not isinstance(model, nn.Module):
            raise CountError(f"{source!r} did not return an nn.Module")


def build_spec(spec: ModelSpec, device: str) -> tuple[nn.Module, tuple]:
    from kernels.base import torch_dtype
    from kernels.zoo import build_model

    model = _builtin(spec.source)
    if model is None:
        model = build_model(spec.source, device="cpu")
    dtype = torch_dtype(spec.dtype)
    model = model.to(device=device, dtype=dtype).eval()
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(spec.input_shape, generator=gen, device=device, dtype=dtype)
    return model, (x,)


def layer_specs(kind: str, quick: bool, user_model: str | None = None, user_input: str | None = None,
                have_torchvision: bool = True) -> list[ModelSpec]:
    """The models the layer benchmarks time on this platform (see README: which layers a quick run samples)."""
    from kernels.zoo import parse_shape

    dtype = "fp32" if kind == "cpu" else "bf16"
    if user_model:
        shape = parse_shape(user_input or "1,3,224,224")
        return [ModelSpec(user_model.replace(":", "."), user_model, shape, dtype)]
    hidden = 2048
    tokens = [1, 128] if quick else [1, 16, 128, 512]
    specs = [ModelSpec("decoder-decode" if t == 1 else f"decoder-tokens{t}", "decoder-block", (1, t, hidden), dtype,
                       batch_tag=f"tokens={t}", note="one decoder block; tokens=1 is a decode step without KV cache")
             for t in tokens]
    specs += [ModelSpec("resnet50-layer1-conv3x3", "resnet50-layer1-conv3x3", (1, 64, 56, 56), dtype),
              ModelSpec("mobilenet_v2-dw3x3", "mobilenet_v2-dw3x3", (1, 144, 56, 56), dtype)]
    missing = "" if have_torchvision else "torchvision is not installed (pip install torchvision): not timed"
    if not quick:
        specs += [ModelSpec(name, name, (1, 3, 224, 224), dtype, batch_tag="batch=1", missing=missing)
                  for name in ("resnet50", "mobilenet_v2", "vit_b_16")]
        specs.append(ModelSpec("resnet50-b8", "resnet50", (8, 3, 224, 224), dtype, batch_tag="batch=8", largest=12,
                               missing=missing))
    else:
        specs.append(ModelSpec("resnet50", "resnet50", (1, 3, 224, 224), dtype, batch_tag="batch=1", largest=4,
                               note="quick: the 4 distinct layers with the most FLOPs only", missing=missing))
    if not quick:
        other = "bf16" if dtype == "fp32" else "fp32"
        specs += [ModelSpec(s.name, s.source, s.input_shape, other, s.batch_tag, s.largest, s.note)
                  for s in specs if s.source == "decoder-block"]
    return specs
