"""A model's variants: the same model in another precision or quantisation scheme, or under another runtime, built
ready to call, with what it really stores (the width of each weight, its scales) and how far its outputs move from
fp32 eager. Building one is kernels/runtimes.py's; timing it is the harness's (bench/test_variants.py); comparing,
choosing and explaining are results/variants.py's.

A variant is (runtime, precision):
* precisions: fp32, bf16, fp16 (weights and activations in that dtype); int8-dyn (int8 weights, activations
  quantised to int8 at each call), int8-wo (int8 weights, fp32 activations), fp8-wo and int4-wo (GPU: weights in
  float8 e4m3 / int4 groups of 128, bf16 activations). The int8, fp8 and int4 schemes in eager and compile are
  torchao's configs (which quantise ``nn.Linear`` layers only); ONNX Runtime's int8-dyn is its own
  ``quantize_dynamic`` (convolutions and matrix products).
* runtimes: eager, compile (torch.compile, inductor), onnxruntime (its CPU or CUDA execution provider), openvino
  (its CPU plugin, from the same ONNX export), tensorrt (torch_tensorrt, NVIDIA GPUs).

A pair that cannot run here is given by ``why_missing`` with its reason (package absent, no such pair in that
runtime, no fast path on this device), never left out. Optional runtimes are imported where used.
"""
from __future__ import annotations

import importlib.util
import math
import shutil
from dataclasses import dataclass
from typing import Any

PRECISIONS = {
    "fp32": "fp32 weights and activations",
    "bf16": "bf16 weights and activations",
    "fp16": "fp16 weights and activations",
    "int8-dyn": "int8 weights, activations quantised to int8 at each call (dynamic)",
    "int8-wo": "int8 weights, activations in fp32 (weight-only)",
    "fp8-wo": "float8 e4m3 weights, bf16 activations (weight-only, GPU)",
    "int4-wo": "int4 weights in groups of 128, bf16 activations (weight-only, GPU)",
}
RUNTIMES = {
    "eager": "PyTorch eager",
    "compile": "torch.compile (inductor)",
    "onnxruntime": "ONNX Runtime",
    "openvino": "OpenVINO",
    "tensorrt": "TensorRT (torch_tensorrt)",
}
#: the dtype activations are computed in
COMPUTE_DTYPE = {"fp32": "fp32", "bf16": "bf16", "fp16": "fp16", "int8-dyn": "fp32", "int8-wo": "fp32",
                 "fp8-wo": "bf16", "int4-wo": "bf16"}
#: the precisions each runtime offers at all (a pair outside these is missing: "no such pair")
OFFERS = {
    "eager": set(PRECISIONS),
    "compile": set(PRECISIONS),
    "onnxruntime": {"fp32", "fp16", "int8-dyn"},
    "openvino": {"fp32", "bf16", "fp16"},
    "tensorrt": {"fp32", "fp16", "bf16"},
}
#: the matrix a run measures when no --precisions/--runtimes are given, per platform kind: every precision in eager,
#: and each runtime in the precisions it is built for on that device. On a CPU torch.compile costs about a minute
#: per batch size on 2 cores, so only its fp32 is in the default (ResNet-50's whole matrix must fit 5 minutes);
#: --runtimes compile --precisions bf16 asks for more.
DEFAULT_MATRIX = {
    "cpu": [("eager", p) for p in PRECISIONS] + [("compile", "fp32"), ("onnxruntime", "fp32"),
                                                   ("onnxruntime", "int8-dyn"), ("openvino", "fp32"),
                                                   ("openvino", "bf16"), ("tensorrt", "fp16")],
    "cuda": [("eager", p) for p in PRECISIONS] + [("compile", "fp32"), ("compile", "bf16"), ("onnxruntime", "fp32"),
                                                   ("onnxruntime", "fp16"), ("openvino", "fp32"),
                                                   ("tensorrt", "fp16")],
}
#: torchao's config class for each of its precisions
TORCHAO_CONFIGS = {"int8-dyn": "Int8DynamicActivationInt8WeightConfig", "int8-wo": "Int8WeightOnlyConfig",
                   "fp8-wo": "Float8WeightOnlyConfig", "int4-wo": "Int4WeightOnlyConfig"}
#: the quality budget: a variant below either is marked "outside the quality budget"
QUALITY_BUDGET = {"top1_agreement": 0.99, "cosine": 0.999}
QUALITY_NOTE = ("quality is a proxy: outputs against fp32 eager on a fixed seeded input set (random inputs; the model's "
                "own weights, which are random unless the factory loads trained ones), not accuracy on a dataset")
VARIANTS_EXTRA = "pip install -e '.[variants]'"


class VariantError(ValueError):
    """A variant option or model that cannot be used; the message says what to give instead."""


@dataclass(frozen=True)
class Variant:
    runtime: str
    precision: str

    @property
    def name(self) -> str:
        return f"{self.runtime}/{self.precision}"

    @property
    def compute_dtype(self) -> str:
        return COMPUTE_DTYPE[self.precision]


def parse_list(text: str | None, known: dict, option: str) -> list[str] | None:
    """'fp32,int8-wo' -> ['fp32', 'int8-wo'] (None: the default matrix); an unknown name is a one-line error."""
    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise VariantError(f"{option} {text!r}: {'unknown ' + ', '.join(bad) if bad else 'empty'}; choose from "
                           f"{', '.join(known)} (comma-separated)")
    return names


def matrix(kind: str, precisions: list[str] | None = None, runtimes: list[str] | None = None) -> list[Variant]:
    """The variants to try: the default matrix of the platform kind, or every pair of the runtimes and precisions
    asked (one of the two given: the other is all of them), eager fp32 first (every other variant is compared with
    it)."""
    base = "cpu" if kind == "cpu" else "cuda"
    if precisions is None and runtimes is None:
        pairs = DEFAULT_MATRIX[base]
    elif precisions is None or runtimes is None:  # one axis given: the other is what each runtime offers
        pairs = [(r, p) for r in (runtimes or list(RUNTIMES)) for p in (precisions or list(PRECISIONS))
                 if p in OFFERS[r]]
    else:  # both given: every pair, those no runtime offers listed as missing with the reason
        pairs = [(r, p) for r in runtimes for p in precisions]
    out = [Variant("eager", "fp32")] + [Variant(r, p) for r, p in pairs if (r, p) != ("eager", "fp32")]
    return list(dict.fromkeys(out))


def _have(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True)
class DeviceFacts:
    """What decides whether a variant can run, beside the packages present: the platform kind and the GPU's compute
    capability (OpenVINO's CPU capabilities and ONNX Runtime's providers are asked where needed)."""

    kind: str
    capability: tuple[int, int] | None = None


def why_missing(v: Variant, facts: DeviceFacts) -> str | None:
    """None when the variant can be tried here, else why not (in words a user can act on)."""
    gpu = facts.kind != "cpu"
    if v.precision not in OFFERS[v.runtime]:
        return (f"{RUNTIMES[v.runtime]} has no {v.precision} variant in this suite "
                f"(it offers {', '.join(p for p in PRECISIONS if p in OFFERS[v.runtime])})")
    if v.precision in ("fp8-wo", "int4-wo"):
        if not gpu:
            return (f"{v.precision} is a GPU variant: torchao's {TORCHAO_CONFIGS[v.precision]} kernels are CUDA "
                    "kernels, and this CPU has no fast path for them")
        if v.precision == "fp8-wo" and (facts.capability or (0, 0)) < (8, 9):
            return f"fp8 needs an NVIDIA GPU of compute capability 8.9 or newer (this is {facts.capability})"
    if v.runtime in ("eager", "compile") and v.precision in TORCHAO_CONFIGS and not _have("torchao"):
        return f"torchao is not installed ({VARIANTS_EXTRA})"
    if v.runtime == "compile" and not gpu and not (shutil.which("g++") or shutil.which("c++") or shutil.which("cc")):
        return "torch.compile's inductor needs a C++ compiler on a CPU, and none is on PATH"
    if v.runtime in ("onnxruntime", "openvino") and not (_have("onnx") and _have("onnxscript")):
        return f"the ONNX export needs onnx and onnxscript, not installed ({VARIANTS_EXTRA})"
    if v.runtime == "onnxruntime":
        if not _have("onnxruntime"):
            return f"onnxruntime is not installed ({VARIANTS_EXTRA})"
        if v.precision == "fp16" and not gpu:
            return ("ONNX Runtime's CPU execution provider has no fp16 kernels for most ops (it would convert back "
                    "and forth): fp16 is its CUDA provider's")
        if gpu and "CUDAExecutionProvider" not in ort_providers():
            return "this onnxruntime is a CPU-only build: install onnxruntime-gpu for its CUDA execution provider"
    if v.runtime == "openvino":
        if gpu:
            return "OpenVINO runs on Intel CPUs and GPUs; this run is on an NVIDIA GPU"
        if not _have("openvino"):
            return f"openvino is not installed ({VARIANTS_EXTRA})"
        caps = openvino_capabilities()
        want = {"bf16": "BF16", "fp16": "FP16"}.get(v.precision)
        if want and want not in caps:
            return (f"OpenVINO's CPU plugin lists no {want} here (its capabilities: {', '.join(sorted(caps)) or '?'}; "
                    f"{v.precision} needs AVX512_BF16/AMX for bf16, AVX512_FP16/AMX-FP16 for fp16)")
    if v.runtime == "tensorrt":
        if not gpu:
            return "TensorRT runs on NVIDIA GPUs; this run is on a CPU"
        if not _have("torch_tensorrt"):
            return "torch_tensorrt is not installed (pip install torch-tensorrt, matching this torch)"
    return None


def ort_providers() -> list[str]:
    try:
        import onnxruntime

        return list(onnxruntime.get_available_providers())
    except ImportError:
        return []


def openvino_capabilities() -> set[str]:
    try:
        import openvino

        return set(openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except Exception:  # not installed, or the plugin cannot load: the caller reports missing
        return set()


# ---- what a variant stores --------------------------------------------------------------------------------------
def stored_bytes(tensor) -> int:
    """Bytes a weight really occupies: a plain tensor's elements x width; a torchao tensor subclass's inner tensors
    (int8 values and their scales, packed int4 and its scales and zero points) summed."""
    flatten = getattr(tensor, "__tensor_flatten__", None)
    if flatten is not None and type(tensor).__name__ not in ("Parameter", "Tensor"):
        names, _ = flatten()
        return sum(stored_bytes(getattr(tensor, n)) for n in names if getattr(tensor, n, None) is not None)
    return tensor.numel() * tensor.element_size()


def storage_dtype(tensor) -> str:
    flatten = getattr(tensor, "__tensor_flatten__", None)
    if flatten is not None and type(tensor).__name__ not in ("Parameter", "Tensor"):
        names, _ = flatten()
        return str(getattr(tensor, names[0]).dtype).replace("torch.", "")
    return str(tensor.dtype).replace("torch.", "")


def weight_storage(model, quantized: set[str]) -> dict[str, tuple[int, str]]:
    """module path -> (bytes its weight is stored in, the storage dtype), for the modules in ``quantized``."""
    out = {}
    for name, module in model.named_modules():
        if name in quantized and getattr(module, "weight", None) is not None:
            out[name] = (stored_bytes(module.weight), storage_dtype(module.weight))
    return out


def ort_int8_storage(weighted: dict[str, tuple[int, str]]) -> dict[str, tuple[int, str]]:
    """ONNX Runtime's ``quantize_dynamic`` (per tensor, QInt8): each quantised weight becomes int8 values plus one
    fp32 scale and one int8 zero point. ``weighted``: module path -> (weight elements, module kind) of the
    convolutions and linear layers it quantises."""
    return {name: (numel * 1 + 4 + 1, "int8") for name, (numel, _kind) in weighted.items()}


def weighted_layers(model) -> dict[str, tuple[int, str]]:
    """module path -> (weight elements, "conv" | "linear") for the model's convolutions and linear layers."""
    import torch

    out = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            out[name] = (module.weight.numel(), "linear")
        elif isinstance(module, torch.nn.modules.conv._ConvNd):
            out[name] = (module.weight.numel(), "conv")
    return out


# ---- quality ---------------------------------------------------------------------------------------------------
def settle_random_model(model, samples, batch_norm: bool = True) -> list[str]:
    """Make a randomly initialised model's outputs carry signal, so that comparing a variant's outputs with fp32
    eager means something (values only: shapes, FLOPs, bytes and times are the same). Weights that are all zero
    (zero-initialised heads and class tokens, as torchvision's ViT) are drawn from a seeded N(0, 0.02); with
    ``batch_norm``, BatchNorm running statistics are set from ``samples`` (forward passes in train mode, a cumulative
    average), as a trained model's are from its data: a random MobileNetV2 otherwise ends at 1e-9, where fp16
    underflows to zero and int8 scales collapse. Returns what was changed, in words."""
    import torch

    notes = []
    gen = torch.Generator(device="cpu").manual_seed(4321)
    zeroed = [n for n, p in model.named_parameters() if p.dim() >= 2 and not bool(p.detach().any())]
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in zeroed:
                p.copy_(torch.randn(p.shape, generator=gen).mul_(0.02).to(p.device, p.dtype))
    if zeroed:
        notes.append(f"{len(zeroed)} all-zero weight(s) redrawn from N(0, 0.02) ({', '.join(zeroed[:4])})")
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if batch_norm and norms:
        saved = [(m, m.momentum) for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        with torch.no_grad():
            for i in range(0, len(samples), 8):
                model(samples[i:i + 8])
        model.eval()
        for m, momentum in saved:
            m.momentum = momentum
        notes.append(f"{len(norms)} BatchNorm layers' running statistics set from the {len(samples)} seeded inputs "
                     "(random weights: otherwise activations vanish or explode)")
    return notes


def quality(reference, output) -> dict[str, Any]:
    """The outputs of a variant against fp32 eager on the same inputs (first dimension: samples): max and mean
    relative error (|a - b| / max |reference|, per sample, then the max and the mean over samples), cosine similarity
    (the lowest sample's) and, where the output is a score per class (2-D, more than one column), top-1 agreement."""
    import torch

    ref = reference.detach().float().reshape(reference.shape[0], -1).cpu()
    got = output.detach().float().reshape(output.shape[0], -1).cpu()
    if ref.shape != got.shape:
        return {"n": int(ref.shape[0]), "error": f"output shape {list(output.shape)} is not the reference's "
                                                 f"{list(reference.shape)}"}
    finite = bool(torch.isfinite(got).all())
    if not bool(ref.abs().amax(dim=1).gt(0).all()):
        return {"n": int(ref.shape[0]), "finite": finite,
                "error": "fp32 eager's outputs are all zero for some inputs: quality cannot be judged on them"}
    scale = ref.abs().amax(dim=1).clamp_min(1e-30)
    rel = (got - ref).abs().amax(dim=1) / scale
    mean_rel = (got - ref).abs().mean(dim=1) / scale
    cos = torch.nn.functional.cosine_similarity(got, ref, dim=1)
    def num(t) -> float | None:  # a record holds finite numbers only: NaN (non-finite outputs) is None
        value = float(t)
        return value if math.isfinite(value) else None

    out = {"n": int(ref.shape[0]), "finite": finite, "max_rel_error": num(rel.max()),
           "mean_rel_error": num(mean_rel.mean()), "cosine": num(cos.min()) if finite else None,
           "cosine_mean": num(cos.mean()) if finite else None}
    if reference.dim() == 2 and reference.shape[1] > 1:
        out["top1_agreement"] = float((got.argmax(dim=1) == ref.argmax(dim=1)).float().mean())
        out["top1_agree_n"] = int((got.argmax(dim=1) == ref.argmax(dim=1)).sum())
    return out


def within_budget(q: dict, budget: dict | None = None) -> tuple[bool, str]:
    """(inside the quality budget, why not): finite outputs, cosine >= the budget, top-1 agreement >= the budget."""
    budget = budget or QUALITY_BUDGET
    if not q or q.get("error"):
        return False, (q or {}).get("error", "no quality measured")
    if not q.get("finite", True):
        return False, "non-finite outputs"
    misses = []
    if q.get("cosine") is None or q["cosine"] < budget["cosine"]:
        misses.append(f"cosine {q['cosine']:.5f} < {budget['cosine']}" if q.get("cosine") is not None
                      else "no cosine")
    if "top1_agreement" in q and q["top1_agreement"] < budget["top1_agreement"]:
        misses.append(f"top-1 agreement {100 * q['top1_agreement']:.1f}% < {100 * budget['top1_agreement']:.0f}%")
    return not misses, "; ".join(misses)


# ---- what a variant moves -----------------------------------------------------------------------------------------
def counted(counts, built_storage: dict, dynamic: set) -> dict[str, Any]:
    """FLOPs, bytes and intensity of a variant: the counter's bytes in the compute dtype, with each changed weight at
    its stored size (kernels.count: ``Counts.with_weights``) and, for dynamic quantisation, the activation's int8 copy
    written and read once more per quantised layer."""
    repriced = counts.with_weights(built_storage, dynamic)
    moved = repriced.bytes_read + repriced.bytes_written
    stored = sum(b for b, _ in built_storage.values())
    return {"flops": repriced.flops + repriced.other_flops, "macs": repriced.macs, "bytes": moved,
            "intensity": (repriced.flops + repriced.other_flops) / moved if moved else None,
            "weights_changed": len(built_storage), "weight_bytes_stored": stored,
            "n_ops": len(repriced.ops)}
