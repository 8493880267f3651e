"""A model's variants: the same model in another precision or quantisation scheme, or under another runtime, built
ready to call, with what it really stores (the width of each weight, its scales) and how far its outputs move from
fp32 eager. Timing a variant is the harness's (bench/test_variants.py); comparing, choosing and explaining are
results/variants.py's.

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

import copy
import importlib.util
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable

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
    """What decides whether a variant can run: the platform kind, the GPU's compute capability, the CPU's
    instruction sets (platforms.cpu's flags) and ONNX Runtime's providers."""

    kind: str
    capability: tuple[int, int] | None = None
    cpu_flags: frozenset = frozenset()
    vendor: str = ""


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
    out = {"n": int(ref.shape[0]), "finite": finite, "max_rel_error": float(rel.max()),
           "mean_rel_error": float(mean_rel.mean()), "cosine": float(cos.min()),
           "cosine_mean": float(cos.mean())}
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
    if q["cosine"] < budget["cosine"]:
        misses.append(f"cosine {q['cosine']:.5f} < {budget['cosine']}")
    if "top1_agreement" in q and q["top1_agreement"] < budget["top1_agreement"]:
        misses.append(f"top-1 agreement {100 * q['top1_agreement']:.1f}% < {100 * budget['top1_agreement']:.0f}%")
    return not misses, "; ".join(misses)


# ---- building ---------------------------------------------------------------------------------------------------
@dataclass
class Built:
    """A variant ready to time: ``feed(x)`` turns an fp32 input into what the runtime takes (done once, outside the
    timed call), ``run(fed)`` is one forward, ``output(raw)`` the result as a float torch tensor on the CPU."""

    variant: Variant
    run: Callable[[Any], Any]
    feed: Callable[[Any], Any]
    output: Callable[[Any], Any]
    build_s: float
    #: module path -> (stored bytes, storage dtype) of the weights the variant changed the width of
    storage: dict = field(default_factory=dict)
    #: module paths whose activations are quantised at each call (int8-dyn)
    dynamic: set = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    #: what the runtime built: inductor's generated kernels, an ONNX node count, ...
    facts: dict = field(default_factory=dict)
    #: kept alive while the variant is timed (sessions, temporary folders)
    keep: list = field(default_factory=list, repr=False)
    #: per-layer times where the runtime can say: ``layers(fed) -> ({module path: seconds}, how)``; None where it
    #: cannot (the harness times eager's layers with module hooks)
    layers: Callable | None = field(default=None, repr=False)


class Exports:
    """The fp32 model exported to ONNX once per model and batch (ONNX Runtime and OpenVINO read the same file), in a
    temporary folder removed by ``close``."""

    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="roofline-onnx-")
        self.files: dict[tuple, tuple[str, float, str]] = {}

    def onnx(self, model, example, key: tuple) -> tuple[str, float, str]:
        """(path, seconds the export took, how it was exported) for ``model`` on ``example``."""
        if key in self.files:
            return self.files[key]
        import torch

        path = os.path.join(self.folder, f"m{len(self.files)}.onnx")
        start = time.perf_counter()
        try:
            with torch.no_grad():
                torch.onnx.export(model, (example,), path, dynamo=True, verbose=False, optimize=True)
            how = "torch.onnx.export (dynamo, optimised)"
        except Exception as exc:  # the TorchScript exporter covers models torch.export cannot trace
            first = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
            with torch.no_grad():
                torch.onnx.export(model, (example,), path, dynamo=False, input_names=["input"])
            how = f"torch.onnx.export (TorchScript; the dynamo exporter failed: {first})"
        self.files[key] = (path, time.perf_counter() - start, how)
        return self.files[key]

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _torch_out(raw):
    import torch

    if isinstance(raw, (list, tuple)):
        raw = raw[0]
    if isinstance(raw, dict):
        raw = next(iter(raw.values()))
    if hasattr(raw, "logits"):  # a transformers-style output
        raw = raw.logits
    if not isinstance(raw, torch.Tensor):
        import numpy as np

        # a copy: a runtime's output buffer (OpenVINO's request tensor) is overwritten by its next call
        raw = torch.from_numpy(np.array(raw, copy=True))
    return raw.detach().float().cpu()


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _quantize_torchao(model, precision: str, device: str) -> tuple[Any, set[str], list[str]]:
    """torchao's config for ``precision`` applied in place; returns the model, the module paths it quantised and
    notes."""
    import torch
    import torchao.quantization as q

    config = getattr(q, TORCHAO_CONFIGS[precision])
    if precision == "int4-wo":
        config = config(group_size=128)
    else:
        config = config()
    before = {n: type(m.weight) for n, m in model.named_modules() if isinstance(getattr(m, "weight", None), torch.Tensor)}
    q.quantize_(model, config)
    quantized = {n for n, m in model.named_modules() if n in before and type(getattr(m, "weight", None)) is not before[n]}
    weighted = weighted_layers(model)
    total = sum(numel for numel, _ in weighted.values()) or 1
    share = sum(weighted[n][0] for n in quantized if n in weighted) / total
    notes = [f"torchao {TORCHAO_CONFIGS[precision]}: {len(quantized)} of {len(weighted)} weighted layers quantised "
             f"({100 * share:.0f}% of their weights; torchao quantises nn.Linear only)"]
    if not quantized:
        raise RuntimeError(f"torchao {TORCHAO_CONFIGS[precision]} quantised no layer of this model (it has no "
                           "nn.Linear): the variant would be fp32 eager again")
    return model, quantized, notes


def build(v: Variant, model, example, device: str, exports: Exports | None = None) -> Built:
    """Build ``v`` from ``model`` (the fp32 eager model, left untouched) for inputs like ``example`` (an fp32
    tensor on ``device``). Raises where the runtime refuses the model (the caller records it as missing with the
    exception's first line)."""
    import torch

    start = time.perf_counter()
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[v.compute_dtype]
    if v.runtime in ("eager", "compile"):
        m = copy.deepcopy(model).to(device=device, dtype=dtype).eval()
        storage, dynamic, notes = {}, set(), []
        if v.precision in TORCHAO_CONFIGS:
            m, quantized, notes = _quantize_torchao(m, v.precision, device)
            storage = weight_storage(m, quantized)
            dynamic = quantized if v.precision == "int8-dyn" else set()
        facts: dict[str, Any] = {}
        run = m
        if v.runtime == "compile":
            torch._dynamo.reset()  # each variant compiles from scratch: no graph of another variant is reused
            from torch._inductor import metrics

            metrics.reset()
            compiled = torch.compile(m, dynamic=False)
            facts["metrics"] = metrics
            run = compiled
            notes.append("torch.compile(dynamic=False), inductor: the first call compiles (its cost is the first-call "
                         "time); one graph per batch size")

        def call(x, fn=run):
            with torch.no_grad():
                return fn(x)

        return Built(v, call, lambda x: x.to(device=device, dtype=dtype), _torch_out, time.perf_counter() - start,
                     storage, dynamic, notes, facts, keep=[m])
    if v.runtime in ("onnxruntime", "openvino"):
        exports = exports or Exports()
        path, export_s, how = exports.onnx(model, example, (id(model), tuple(example.shape)))
        notes = [f"exported once per model and batch by {how} in {export_s:.1f} s (not in the build time)"]
        start = time.perf_counter()
        if v.runtime == "onnxruntime":
            return _build_ort(v, model, path, notes, start, device)
        return _build_openvino(v, path, example, notes, start)
    if v.runtime == "tensorrt":
        import torch_tensorrt

        m = copy.deepcopy(model).to(device=device, dtype=dtype).eval()
        trt = torch_tensorrt.compile(m, inputs=[example.to(dtype)], enabled_precisions={dtype})

        def call(x):
            with torch.no_grad():
                return trt(x)

        return Built(v, call, lambda x: x.to(device=device, dtype=dtype), _torch_out, time.perf_counter() - start,
                     notes=["torch_tensorrt.compile, the engine built for this input shape"], keep=[trt])
    raise VariantError(f"unknown runtime {v.runtime!r}")


def _build_ort(v: Variant, model, path: str, notes: list[str], start: float, device: str) -> Built:
    import numpy as np
    import onnxruntime as ort

    storage, dynamic = {}, set()
    if v.precision == "int8-dyn":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized_path = path.replace(".onnx", ".int8.onnx")
        if not os.path.exists(quantized_path):
            quantize_dynamic(path, quantized_path, weight_type=QuantType.QInt8)
        path = quantized_path
        weighted = weighted_layers(model)
        storage = ort_int8_storage(weighted)
        dynamic = set(weighted)
        notes.append("onnxruntime.quantization.quantize_dynamic (QInt8 weights per tensor, activations quantised at "
                     "each call: ConvInteger / MatMulInteger)")
        init = onnx_initializer_bytes(path)
        notes.append(f"the quantised file's initializers: {init / 1e6:.1f} MB")
    options = ort.SessionOptions()
    options.intra_op_num_threads = _threads()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = ["CUDAExecutionProvider"] if device.startswith("cuda") else ["CPUExecutionProvider"]
    session = ort.InferenceSession(path, options, providers=providers)
    name = session.get_inputs()[0].name
    half = v.precision == "fp16"

    def feed(x):
        a = x.detach().cpu().numpy()
        return {name: a.astype(np.float16) if half else a}

    built = Built(v, lambda fed: session.run(None, fed), feed, _torch_out, time.perf_counter() - start, storage,
                  dynamic, notes + [f"{providers[0]}, {options.intra_op_num_threads} intra-op threads, all graph "
                                    "optimisations"],
                  {"onnx_nodes": onnx_node_count(path)}, keep=[session])
    built.layers = lambda fed, runs=3: ort_layer_times(path, fed, providers, options.intra_op_num_threads, runs)
    return built


def _build_openvino(v: Variant, path: str, example, notes: list[str], start: float) -> Built:
    import openvino as ov

    core = ov.Core()
    om = core.read_model(path)
    om.reshape({om.inputs[0]: list(example.shape)})  # static shape: the plugin specialises for it
    hint = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}[v.precision]
    compiled = core.compile_model(om, "CPU", {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY",
                                              "INFERENCE_NUM_THREADS": _threads()})
    request = compiled.create_infer_request()

    def run(fed):
        request.infer(fed)
        return request.get_output_tensor(0).data

    return Built(v, run, lambda x: {0: x.detach().cpu().numpy()}, _torch_out, time.perf_counter() - start,
                 notes=notes + [f"OpenVINO CPU plugin, INFERENCE_PRECISION_HINT={hint}, LATENCY hint, "
                                f"{_threads()} threads, static input shape"],
                 facts={"onnx_nodes": onnx_node_count(path)}, keep=[compiled, request])


def ort_layer_times(path: str, fed: dict, providers: list[str], threads: int, runs: int = 3
                    ) -> tuple[dict[str, float], str]:
    """Per-module seconds of one call from ONNX Runtime's own profiler (a second session with profiling on, one
    warm-up and ``runs`` profiled calls, the median per node), each node mapped back to the module that made it
    through the exporter's name scopes (``pkg.torch.onnx.name_scopes``); nodes the runtime fused or made itself go
    under "(runtime: unmapped nodes)"."""
    import json
    import statistics

    import onnxruntime as ort

    scopes = onnx_node_modules(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(os.path.dirname(path), "ort-profile")
    session = ort.InferenceSession(path, options, providers=providers)
    for _ in range(1 + runs):
        session.run(None, fed)
    profile = session.end_profiling()
    try:
        with open(profile) as handle:
            events = json.load(handle)
    finally:
        os.unlink(profile)
    per_node: dict[str, list[float]] = {}
    for e in events:
        name = e.get("name", "")
        if e.get("cat") == "Node" and name.endswith("_kernel_time"):
            per_node.setdefault(name[: -len("_kernel_time")], []).append(e.get("dur", 0) * 1e-6)
    per_module: dict[str, float] = {}
    mapped = 0
    for node, times in per_node.items():
        calls = times[-runs:] if len(times) > runs else times  # the warm-up call's events come first
        module = scopes.get(node)
        mapped += module is not None
        key = module or "(runtime: unmapped nodes)"
        per_module[key] = per_module.get(key, 0.0) + statistics.median(calls)
    how = (f"ONNX Runtime's profiler: median of {runs} calls per node, {mapped} of {len(per_node)} nodes mapped to "
           "modules by the exporter's name scopes")
    return per_module, how


def onnx_node_modules(path: str) -> dict[str, str]:
    """ONNX node name -> the innermost module path that made it (the dynamo exporter's name scopes), where known."""
    import ast

    import onnx

    out = {}
    for node in onnx.load(path, load_external_data=False).graph.node:
        for prop in node.metadata_props:
            if prop.key == "pkg.torch.onnx.name_scopes":
                try:
                    scopes = [s for s in ast.literal_eval(prop.value) if s]
                except (ValueError, SyntaxError):
                    scopes = []
                if scopes:
                    out[node.name] = scopes[-1]
    return out


def onnx_initializer_bytes(path: str) -> int:
    """Bytes of every weight (initializer) of an ONNX file, by its element type's width."""
    import onnx
    from onnx import helper

    m = onnx.load(path, load_external_data=False)
    total = 0
    for t in m.graph.initializer:
        width = helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
        total += math.prod(t.dims) * width
    return total


def onnx_node_count(path: str) -> int:
    import onnx

    return len(onnx.load(path, load_external_data=False).graph.node)


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
