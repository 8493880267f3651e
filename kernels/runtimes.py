"""Building a model's variants (kernels/variants.py says which exist and what they store): eager and torch.compile
copies in the variant's dtype, quantised through torchao's configs; the fp32 model exported to ONNX once per model and
batch, run by ONNX Runtime (its own int8 dynamic quantisation included) or compiled by OpenVINO's CPU plugin;
TensorRT through torch_tensorrt. Each optional runtime is imported here, where it is used. ONNX Runtime's per-layer
times come from its own profiler, mapped back to modules by the exporter's name scopes.
"""
from __future__ import annotations

import copy
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from kernels.variants import (
    TORCHAO_CONFIGS,
    Variant,
    VariantError,
    ort_int8_storage,
    weight_storage,
    weighted_layers,
)


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


def torch_out(raw):
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

        return Built(v, call, lambda x: x.to(device=device, dtype=dtype), torch_out, time.perf_counter() - start,
                     storage, dynamic, notes, facts, keep=[m])
    if v.runtime in ("onnxruntime", "openvino"):
        exports = exports or Exports()
        source, sample = model, example
        if v.runtime == "onnxruntime" and v.precision == "fp16":  # its CUDA provider runs an fp16 graph: export one
            # (OpenVINO takes the fp32 graph and its precision hint)
            source, sample = copy.deepcopy(model).to(dtype=dtype).eval(), example.to(dtype)
        path, export_s, how = exports.onnx(source, sample, (id(model), tuple(example.shape), v.compute_dtype))
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

        return Built(v, call, lambda x: x.to(device=device, dtype=dtype), torch_out, time.perf_counter() - start,
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

    built = Built(v, lambda fed: session.run(None, fed), feed, torch_out, time.perf_counter() - start, storage,
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

    return Built(v, run, lambda x: {0: x.detach().cpu().numpy()}, torch_out, time.perf_counter() - start,
                 notes=notes + [f"OpenVINO CPU plugin, INFERENCE_PRECISION_HINT={hint}, LATENCY hint, "
                                f"{_threads()} threads, static input shape"],
                 facts={"onnx_nodes": onnx_node_count(path)}, keep=[compiled, request])


def ort_layer_times(path: str, fed: dict, providers: list[str], threads: int, runs: int = 3
                    ) -> tuple[dict[str, float], str]:
    """Per-module seconds of one call from ONNX Runtime's own profiler (a second session with profiling on, one
    warm-up and ``runs`` profiled calls, the median per node), each node mapped back to the module that made it:
    ONNX Runtime names an optimised node after the tensor it writes (``relu_1_nchwc``: a convolution fused with its
    ReLU), and the exporter's name scopes say which module wrote that tensor. A node that cannot be mapped is
    listed by its op type."""
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
    kinds: dict[str, str] = {}
    for e in events:
        name = e.get("name", "")
        if e.get("cat") == "Node" and name.endswith("_kernel_time"):
            node = name[: -len("_kernel_time")]
            per_node.setdefault(node, []).append(e.get("dur", 0) * 1e-6)
            kinds[node] = (e.get("args") or {}).get("op_name", "?")
    per_module: dict[str, float] = {}
    mapped = 0
    for node, times in per_node.items():
        calls = times[-runs:] if len(times) > runs else times  # the warm-up call's events come first
        module = next((scopes[c] for c in [node] + [node.rsplit("_", k)[0] for k in (1, 2, 3)] if c in scopes), None)
        mapped += module is not None
        key = module if module is not None else f"(unmapped {kinds[node]})"
        per_module[key] = per_module.get(key, 0.0) + statistics.median(calls)
    how = (f"ONNX Runtime's profiler: median of {runs} calls per node, {mapped} of {len(per_node)} nodes mapped to "
           "modules through the tensors they write (a fused node goes to the module of its last op)")
    return per_module, how


def onnx_node_modules(path: str) -> dict[str, str]:
    """Node names and the tensors nodes write -> the innermost module path that made them (the dynamo exporter's
    name scopes: module paths, then the FX node's own name), where known."""
    import ast

    import onnx

    out = {}
    for node in onnx.load(path, load_external_data=False).graph.node:
        for prop in node.metadata_props:
            if prop.key == "pkg.torch.onnx.name_scopes":
                try:
                    scopes = list(ast.literal_eval(prop.value))
                except (ValueError, SyntaxError):
                    continue
                if len(scopes) >= 2:
                    module = scopes[-2] or "(top level)"
                    for key in [node.name, scopes[-1], *node.output]:
                        out.setdefault(key, module)
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
