"""Theoretical counts for any model: parameters, MACs, FLOPs, bytes read/written, arithmetic intensity.

Counting happens at the aten level, under a TorchDispatchMode, so functional calls, fused fast paths
(``_native_multi_head_attention``, ``_transformer_encoder_layer_fwd``), every SDPA backend and einsum are all seen.
Each op is attributed to the module that called it through GLOBAL forward hooks (not by wrapping modules); a module
shared by two parents is named after the parent that called it, and counted once per call.

Runs on the meta device by default: no weights are allocated, so a 70B-parameter model from a config can be
counted on a laptop. Formulas live in :mod:`kernels.formulas` (one registry keyed by aten op).

    python -m kernels.count resnet50 --input 1,3,224,224 --dtype bf16
    python -m kernels.count mypkg.models:build --input 8,3,224,224 --csv layers.csv
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import json
import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from kernels.formulas import BYTE_FORMULAS, FLOP_FORMULAS, FREE_OPS, T

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "fp64": torch.float64}
BYTES_CONVENTION = ("bytes: each input tensor read once and each output written once per op (minimum traffic, no "
                    "cache model); views are free; embedding/index_select read only the gathered rows")
FLOPS_CONVENTION = "FLOPs = 2 x MACs (matmul, convolution, attention); other FLOPs (element-wise, norms, ...) apart"


class CountError(RuntimeError):
    """A model could not be counted; the message names the layer and the shapes."""


@dataclass
class OpRecord:
    module: str
    module_type: str
    op: str
    input_shapes: list
    output_shapes: list
    dtype: str
    macs: int
    other_flops: int
    bytes_read: int
    bytes_written: int
    counted: bool
    phase: str = "forward"


@dataclass
class Counts:
    """The result: per-op records, per-module call counts and shapes, parameter counts."""

    ops: list[OpRecord] = field(default_factory=list)
    calls: Counter = field(default_factory=Counter)
    module_types: dict[str, str] = field(default_factory=dict)
    module_shapes: dict[str, tuple[list, list]] = field(default_factory=dict)
    module_params: dict[str, int] = field(default_factory=dict)
    total_params: int = 0
    #: module path -> the module object (for timing it as a layer later)
    module_objects: dict[str, Any] = field(default_factory=dict, repr=False)
    #: paths of modules that called another module during their forward (not timeable on their own)
    parents: set = field(default_factory=set)
    #: how attention was counted on the meta device (FusedAttentionMode); empty where none ran there
    attention: str = ""

    # -- totals -----------------------------------------------------------------------------------------------
    @property
    def macs(self) -> int:
        return sum(o.macs for o in self.ops)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def other_flops(self) -> int:
        return sum(o.other_flops for o in self.ops)

    @property
    def bytes_read(self) -> int:
        return sum(o.bytes_read for o in self.ops)

    @property
    def bytes_written(self) -> int:
        return sum(o.bytes_written for o in self.ops)

    @property
    def intensity(self) -> float:
        moved = self.bytes_read + self.bytes_written
        return (self.flops + self.other_flops) / moved if moved else float("nan")

    def uncounted(self) -> Counter:
        return Counter(o.op for o in self.ops if not o.counted)

    def macs_of(self, *prefixes: str) -> int:
        """MACs of ops whose name starts with any prefix (e.g. 'aten.convolution', 'aten.mm')."""
        return sum(o.macs for o in self.ops if o.op.startswith(prefixes))

    # -- tables -----------------------------------------------------------------------------------------------
    def op_table(self):
        import pandas as pd

        frame = pd.DataFrame([asdict(o) for o in self.ops])
        if not frame.empty:
            frame["flops"] = 2 * frame["macs"]
        return frame

    def layer_table(self, totals: bool = True):
        """One row per module that ran ops (the innermost module of each op), in call order, plus a total row."""
        import pandas as pd

        rows: dict[str, dict[str, Any]] = {}
        for op in self.ops:
            row = rows.get(op.module)
            if row is None:
                inputs, outputs = self.module_shapes.get(op.module, ([], []))
                row = rows[op.module] = {
                    "module": op.module, "type": self.module_types.get(op.module, ""),
                    "calls": self.calls.get(op.module, 0), "params": self.module_params.get(op.module, 0),
                    "input_shape": _fmt_shapes(inputs), "output_shape": _fmt_shapes(outputs), "dtype": op.dtype,
                    "macs": 0, "other_flops": 0, "bytes_read": 0, "bytes_written": 0, "uncounted": []}
            row["macs"] += op.macs
            row["other_flops"] += op.other_flops
            row["bytes_read"] += op.bytes_read
            row["bytes_written"] += op.bytes_written
            if not op.counted and op.op not in row["uncounted"]:
                row["uncounted"].append(op.op)
        frame = pd.DataFrame(list(rows.values()))
        if frame.empty:
            return frame
        frame["flops"] = 2 * frame["macs"]
        frame["bytes"] = frame["bytes_read"] + frame["bytes_written"]
        frame["intensity"] = (frame["flops"] + frame["other_flops"]) / frame["bytes"].where(frame["bytes"] > 0)
        frame["uncounted"] = frame["uncounted"].map(lambda ops: ", ".join(ops))
        if totals:
            total = {"module": "TOTAL", "type": "", "calls": None, "params": self.total_params, "input_shape": "",
                     "output_shape": "", "dtype": "", "macs": self.macs, "other_flops": self.other_flops,
                     "bytes_read": self.bytes_read, "bytes_written": self.bytes_written, "flops": self.flops,
                     "bytes": self.bytes_read + self.bytes_written, "intensity": self.intensity,
                     "uncounted": ", ".join(sorted(self.uncounted()))}
            frame = pd.concat([frame, pd.DataFrame([total])], ignore_index=True)
        columns = ["module", "type", "calls", "params", "input_shape", "output_shape", "dtype", "macs", "flops",
                   "other_flops", "bytes_read", "bytes_written", "bytes", "intensity", "uncounted"]
        return frame[columns]

    def totals(self) -> dict[str, Any]:
        return {"params": self.total_params, "macs": self.macs, "flops": self.flops, "other_flops": self.other_flops,
                "bytes_read": self.bytes_read, "bytes_written": self.bytes_written, "intensity": self.intensity,
                "uncounted_ops": dict(self.uncounted()), "flops_convention": FLOPS_CONVENTION,
                "bytes_convention": BYTES_CONVENTION, **({"attention": self.attention} if self.attention else {})}


def _fmt_shapes(shapes: list) -> str:
    return " ".join("x".join(map(str, s)) for s in shapes)


def _to_t(x):
    if isinstance(x, torch.Tensor):
        return T(tuple(int(d) for d in x.shape), x.dtype)
    return x


def _shapes(tree) -> list:
    leaves, _ = tree_flatten(tree)
    return [list(map(int, t.shape)) for t in leaves if isinstance(t, torch.Tensor)]


class _ModuleTracker:
    """Global forward pre/post hooks keep a stack of module names (pytorch#111809: not by wrapping modules)."""

    def __init__(self, root: torch.nn.Module, counts: Counts):
        self.root, self.counts = root, counts
        self.stack: list[tuple[str, torch.nn.Module]] = []
        self.first_name = {id(m): (n or root.__class__.__name__) for n, m in root.named_modules()}
        self.handles = []

    def name_of(self, module: torch.nn.Module) -> str:
        if module is self.root:
            return self.first_name[id(module)]
        if self.stack:
            parent_name, parent = self.stack[-1]
            for attr, child in parent._modules.items():
                if child is module:
                    return f"{parent_name}.{attr}" if parent is not self.root else attr
            for path, child in parent.named_modules():
                if child is module and path:
                    return f"{parent_name}.{path}" if parent is not self.root else path
        return self.first_name.get(id(module), module.__class__.__name__)

    def pre(self, module, args):
        name = self.name_of(module)
        counts = self.counts
        if self.stack:
            counts.parents.add(self.stack[-1][0])
        self.stack.append((name, module))
        counts.module_objects.setdefault(name, module)
        counts.calls[name] += 1
        counts.module_types[name] = module.__class__.__name__
        counts.module_params.setdefault(name, sum(p.numel() for p in module.parameters(recurse=False)))
        counts.module_shapes.setdefault(name, (_shapes(args), []))

    def post(self, module, args, output):
        if self.stack and self.stack[-1][1] is module:
            name, _ = self.stack.pop()
            inputs, _ = self.counts.module_shapes.get(name, ([], []))
            self.counts.module_shapes[name] = (inputs, _shapes(output))

    @property
    def current(self) -> tuple[str, str]:
        if not self.stack:
            return "(top level)", ""
        name, module = self.stack[-1]
        return name, module.__class__.__name__

    def __enter__(self):
        self.handles = [torch.nn.modules.module.register_module_forward_pre_hook(self.pre),
                        torch.nn.modules.module.register_module_forward_hook(self.post)]
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()
        return False


#: the fused attention op each target runs, and the note that says which was counted
FUSED_ATTENTION = {
    "cpu": "aten._scaled_dot_product_flash_attention_for_cpu (the CPU's fused kernel)",
    "cuda": "aten._scaled_dot_product_flash_attention (fp16/bf16) or _efficient_attention (fp32, masks): CUDA's "
            "fused kernels",
}


class FusedAttentionMode(TorchFunctionMode):
    """On the meta device ``scaled_dot_product_attention`` has no backend choice and decomposes into the math path
    (the N x N scores written and read: 12-46% more bytes for attention models than a real device moves). Here each
    call on meta tensors runs the fused op the target device would choose instead, so the count sees one op reading
    q, k, v and writing the output. Grouped-query calls (fewer k/v heads) and dropout keep the math path."""

    def __init__(self, target: str):
        super().__init__()
        self.target = target
        self.fused = self.kept = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") == "scaled_dot_product_attention":
            q = args[0] if args else kwargs.get("query")
            if isinstance(q, torch.Tensor) and q.device.type == "meta":
                out = self._fused(*args, **kwargs)
                if out is not None:
                    self.fused += 1
                    return out
                self.kept += 1
        if getattr(func, "__name__", "") == "multi_head_attention_forward":
            return self._with_fused_global(func, args, kwargs)
        return func(*args, **kwargs)

    def _with_fused_global(self, func, args, kwargs):
        """The mode is off inside its own handler, so the attention call nested in nn.MultiheadAttention's
        functional forward is not seen: that forward looks it up in torch.nn.functional, patched here for the
        call."""
        functional = torch.nn.functional
        original = functional.scaled_dot_product_attention

        def fused(*a, **kw):
            q = a[0] if a else kw.get("query")
            out = self._fused(*a, **kw) if isinstance(q, torch.Tensor) and q.device.type == "meta" else None
            if out is None:
                self.kept += isinstance(q, torch.Tensor) and q.device.type == "meta"
                return original(*a, **kw)
            self.fused += 1
            return out

        functional.scaled_dot_product_attention = fused
        try:
            return func(*args, **kwargs)
        finally:
            functional.scaled_dot_product_attention = original

    def _fused(self, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        if dropout_p or q.dim() != 4 or k.shape[-3] != q.shape[-3]:
            return None
        aten = torch.ops.aten
        if self.target == "cpu":
            return aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, bool(is_causal), attn_mask=attn_mask,
                                                                     scale=scale)[0]
        if q.dtype in (torch.float16, torch.bfloat16) and attn_mask is None:
            return aten._scaled_dot_product_flash_attention(q, k, v, 0.0, bool(is_causal), False, scale=scale)[0]
        return aten._scaled_dot_product_efficient_attention(q, k, v, attn_mask, False, 0.0, bool(is_causal),
                                                            scale=scale)[0]


class CountingMode(TorchDispatchMode):
    """Runs every aten op and records its cost; never changes results."""

    def __init__(self, tracker: _ModuleTracker, counts: Counts):
        super().__init__()
        self.tracker, self.counts = tracker, counts
        self.phase = "forward"

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func.overloadpacket
        if packet in FREE_OPS:
            return out
        t_args = tree_map(_to_t, args)
        t_kwargs = {k: tree_map(_to_t, v) for k, v in kwargs.items() if k != "out"}
        t_out = tree_map(_to_t, out)
        formula = FLOP_FORMULAS.get(packet)
        macs = other = 0
        counted = formula is not None
        if counted:
            try:
                cost = formula(*t_args, out=t_out, **t_kwargs)
                macs, other = int(cost.macs), int(cost.other_flops)
            except Exception:  # a formula that does not fit this overload: list the op as uncounted
                counted = False
        byte_formula = BYTE_FORMULAS.get(packet)
        if byte_formula is not None:
            read, written = byte_formula(*t_args, out=t_out, **t_kwargs)
        else:
            read, written = _default_bytes(args, kwargs, out)
        module, module_type = self.tracker.current
        inputs = [list(t.shape) for t in tree_flatten((t_args, t_kwargs))[0] if isinstance(t, T)]
        outputs = [list(t.shape) for t in tree_flatten(t_out)[0] if isinstance(t, T)]
        dtype = next((str(t.dtype).replace("torch.", "") for t in tree_flatten(t_args)[0] if isinstance(t, T)), "")
        self.counts.ops.append(OpRecord(
            module=module if self.phase == "forward" else f"{module} [backward]" if module != "(top level)" else "(backward)",
            module_type=module_type, op=str(packet).replace("aten::", "aten.").replace("torch.ops.", ""),
            input_shapes=inputs, output_shapes=outputs, dtype=dtype, macs=macs, other_flops=other,
            bytes_read=read, bytes_written=written, counted=counted, phase=self.phase))
        return out


def _default_bytes(args, kwargs, out) -> tuple[int, int]:
    seen, read = set(), 0
    for leaf in tree_flatten((args, kwargs))[0]:
        if isinstance(leaf, torch.Tensor) and id(leaf) not in seen:
            seen.add(id(leaf))
            read += leaf.numel() * leaf.element_size()
    written = sum(t.numel() * t.element_size() for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor))
    return read, written


def count_model(model: torch.nn.Module, inputs: tuple | list | torch.Tensor, *, train: bool = False,
                kwargs: dict | None = None, target: str = "cpu") -> Counts:
    """Count one forward (and, with ``train``, one backward) of ``model`` on ``inputs``.

    Forward runs in eval mode under no_grad unless ``train``: that is the inference configuration, where
    torch's fused attention fast paths are taken (and counted here). On the meta device attention is counted as
    the fused op ``target`` ("cpu" or "cuda") would run (FusedAttentionMode); training keeps the math path."""
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    counts = Counts(total_params=sum(p.numel() for p in model.parameters()))
    tracker = _ModuleTracker(model, counts)
    mode = CountingMode(tracker, counts)
    attention = FusedAttentionMode(target if target in FUSED_ATTENTION else "cpu")
    was_training = model.training
    model.train(train)
    try:
        # only on meta: an active TorchFunctionMode turns off nn.MultiheadAttention's fused fast path, which a real
        # device takes (and is counted as it is)
        on_meta = any(isinstance(t, torch.Tensor) and t.device.type == "meta" for t in tree_flatten(inputs)[0])
        with tracker, (attention if on_meta and not train else contextlib.nullcontext()), mode:
            try:
                if train:
                    output = model(*inputs, **(kwargs or {}))
                else:
                    with torch.no_grad():
                        output = model(*inputs, **(kwargs or {}))
            except Exception as exc:
                where = tracker.stack[-1][0] if tracker.stack else "(top level)"
                shapes = counts.module_shapes.get(where, ([], []))[0]
                raise CountError(f"the model failed in layer {where!r} "
                                 f"({tracker.stack[-1][1].__class__.__name__ if tracker.stack else 'no module'}) "
                                 f"with input shapes {shapes or [list(i.shape) for i in inputs if isinstance(i, torch.Tensor)]}: "
                                 f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
            if train:
                mode.phase = "backward"
                tensors = [t for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor) and t.requires_grad]
                if tensors:
                    sum(t.float().sum() for t in tensors).backward()
    finally:
        model.train(was_training)
    if attention.fused:
        counts.attention = f"{attention.fused} attention call(s) counted as {FUSED_ATTENTION[attention.target]}" + \
            (f"; {attention.kept} kept the math path (grouped-query or dropout)" if attention.kept else "")
    elif attention.kept:
        counts.attention = f"{attention.kept} attention call(s) counted on the math path (grouped-query or dropout)"
    return counts


# ---- building models by name ---------------------------------------------------------------------------------
class _ParametersOn:
    """Build a model with its parameters and buffers on ``device`` while everything else its constructor computes
    stays on the CPU (RegNet computes its widths with torch ops and reads them back: a plain
    ``with torch.device("meta")`` breaks that)."""

    def __init__(self, device: str):
        self.device = torch.device(device)

    def __enter__(self):
        self.saved = torch.nn.Module.register_parameter, torch.nn.Module.register_buffer
        register_parameter, register_buffer = self.saved
        device = self.device

        def parameter(module, name, param):
            register_parameter(module, name, param)
            if param is not None and param.device != device:
                kind = type(module._parameters[name])
                module._parameters[name] = kind(module._parameters[name].to(device), requires_grad=param.requires_grad)

        def buffer(module, name, tensor, persistent=True):
            register_buffer(module, name, tensor.to(device) if tensor is not None else None, persistent)

        torch.nn.Module.register_parameter, torch.nn.Module.register_buffer = parameter, buffer
        return self

    def __exit__(self, *exc):
        torch.nn.Module.register_parameter, torch.nn.Module.register_buffer = self.saved
        return False


def build_timm(name: str, device: str = "meta") -> torch.nn.Module:
    """``timm:NAME``: a timm model (no pretrained weights), when timm is installed (the ``timm`` extra)."""
    try:
        import timm
    except ImportError:
        raise CountError(f"timm:{name}: timm is not installed (pip install -e '.[timm]', or pip install timm)") from None
    known = timm.list_models()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
        raise CountError(f"timm:{name}: unknown timm model" + (f"; did you mean {', '.join(close)}?" if close else
                                                              "; see timm.list_models()"))
    with _ParametersOn(device) if device == "meta" else torch.device(device):
        try:
            return timm.create_model(name, pretrained=False)
        except Exception as exc:
            raise CountError(f"timm:{name} could not be built: {type(exc).__name__}: {exc}") from None


def build_model(name: str, device: str = "meta", **model_kwargs) -> torch.nn.Module:
    """A torchvision model name (no weights are loaded), ``package.module:factory`` or ``timm:NAME``, built on
    ``device``."""
    if name.startswith("timm:"):
        return build_timm(name[len("timm:"):], device)
    context = _ParametersOn(device) if device == "meta" else torch.device(device)
    with context:
        if ":" in name:
            module_name, _, attr = name.partition(":")
            try:
                factory = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as exc:
                raise CountError(f"cannot load {name!r}: {exc}") from exc
            if not callable(factory):
                raise CountError(f"{name!r} is a {type(factory).__name__}, not a factory: give a function or class "
                                 "that returns an nn.Module")
            try:
                model = factory(**model_kwargs)
            except TypeError as exc:
                raise CountError(f"the factory {name!r} could not be called without arguments ({exc}); wrap it in a "
                                 "function that takes none and returns the model") from None
            except Exception as exc:
                raise CountError(f"the factory {name!r} raised {type(exc).__name__}: {exc}") from None
            if not isinstance(model, torch.nn.Module):
                raise CountError(f"the factory {name!r} returned a {type(model).__name__}, not a torch.nn.Module")
            return model
        try:
            import torchvision
        except ImportError as exc:
            raise CountError(f"{name!r} looks like a torchvision model name, but torchvision is not installed "
                             "(pip install torchvision, or pass package.module:factory)") from exc
        known = torchvision.models.list_models()
        if name not in known:
            close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else "; see torchvision.models.list_models()"
            raise CountError(f"unknown model {name!r}{hint}")
        return torchvision.models.get_model(name, weights=None, **model_kwargs)


def parse_shape(text: str) -> tuple[int, ...]:
    """'1,3,224,224' (or '1x3x224x224') -> (1, 3, 224, 224); every part must be a positive integer."""
    text = text or ""
    separator = "," if "," in text else "x"
    parts = [v.strip() for v in text.strip().split(separator)] if text.strip() else []
    bad = [v for v in parts if not re.fullmatch(r"\d+", v)]
    if not parts or bad:
        what = (f"{', '.join(repr(v) for v in bad)} {'is' if len(bad) == 1 else 'are'} not a positive integer"
                if bad else "it is empty")
        raise CountError(f"bad input shape {text!r}: {what}; give integers separated by commas, e.g. 1,3,224,224") \
            from None
    shape = tuple(int(v) for v in parts)
    if any(v <= 0 for v in shape):
        raise CountError(f"bad input shape {text!r}: every dimension must be a positive integer")
    return shape


#: dtypes an input may be given with a ':' suffix (token ids are integers)
INPUT_DTYPES = {"int64": torch.int64, "int32": torch.int32, "bool": torch.bool}


def parse_input(text: str) -> tuple[tuple[int, ...], str | None]:
    """'1,128:int64' -> ((1, 128), 'int64'); without a suffix the model's dtype is used (None)."""
    shape_text, _, dtype = text.partition(":")
    dtype = dtype.strip() or None
    if dtype is not None and dtype not in INPUT_DTYPES and dtype not in DTYPES:
        raise CountError(f"bad input {text!r}: unknown dtype {dtype!r}; choose from "
                         f"{', '.join([*INPUT_DTYPES, *DTYPES])}")
    return parse_shape(shape_text), dtype


def parse_batches(text: str) -> list[int]:
    try:
        batches = [int(v) for v in text.split(",")]
    except ValueError:
        raise CountError(f"--batch-sweep {text!r}: give positive integers separated by commas, e.g. 1,8,64") from None
    if not batches or any(b <= 0 for b in batches):
        raise CountError(f"--batch-sweep {text!r}: every batch size must be a positive integer")
    return batches


def check_device(device: str) -> str:
    """meta, cpu, cuda, cuda:N (present), mps (present); anything else is a one-line error."""
    if device in ("meta", "cpu"):
        return device
    if re.fullmatch(r"cuda(:\d+)?", device):
        if not torch.cuda.is_available():
            raise CountError(f"--device {device}: no CUDA device is available here; use --device meta (the default: "
                             "counts without allocating) or cpu")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise CountError(f"--device {device}: there are {torch.cuda.device_count()} CUDA device(s)")
        return device
    if device == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise CountError("--device mps: MPS is not available here; use --device meta or cpu")
        return device
    raise CountError(f"--device {device!r}: unknown; choose meta (default), cpu, cuda, cuda:N or mps")


def check_output_path(path: str, option: str) -> None:
    """Fail before counting if ``path`` cannot be written (a long count must not end in a lost table)."""
    target = Path(path)
    existed = target.exists()
    try:
        with open(target, "a"):
            pass
    except OSError as exc:
        raise CountError(f"{option} {path}: cannot be written ({exc.strerror or exc})") from None
    if not existed:
        target.unlink()


def make_input(shape: tuple[int, ...], dtype: str | None, model_dtype: str, device: str) -> torch.Tensor:
    """One model input: random floats in the model's dtype, or zeros of an integer dtype (token ids)."""
    if dtype in INPUT_DTYPES:
        return torch.zeros(shape, device=device, dtype=INPUT_DTYPES[dtype])
    torch_dtype = DTYPES[dtype or model_dtype]
    return torch.randn(shape, device=device, dtype=torch_dtype) if device != "meta" else \
        torch.empty(shape, device=device, dtype=torch_dtype)


def count_named(name: str, shape, dtype: str = "fp32", device: str = "meta", train: bool = False,
                inputs: list[tuple[tuple[int, ...], str | None]] | None = None) -> Counts:
    """Count ``name`` on one input of ``shape`` (or on several ``inputs``: (shape, dtype or None) each)."""
    if dtype not in DTYPES:
        raise CountError(f"unknown dtype {dtype!r}; choose from {', '.join(DTYPES)}")
    model = build_model(name, device).to(DTYPES[dtype])
    specs = inputs or [(tuple(shape), None)]
    return count_model(model, tuple(make_input(s, d, dtype, device) for s, d in specs), train=train)


def batch_sweep(name: str, shape: tuple[int, ...], batches: list[int], dtype: str = "fp32",
                device: str = "meta"):
    """Total FLOPs, bytes and intensity at several batch sizes (weights are read once per batch, so intensity
    grows with the batch until activations dominate)."""
    import pandas as pd

    rows = []
    for batch in batches:
        counts = count_named(name, (batch, *shape[1:]), dtype, device)
        rows.append({"batch": batch, "flops": counts.flops, "other_flops": counts.other_flops,
                     "bytes": counts.bytes_read + counts.bytes_written, "intensity": counts.intensity})
    return pd.DataFrame(rows)


#: ops whose MACs torchvision's ``weights.meta["_ops"]`` counts (convolutions and matrix products, attention included)
MAC_OPS = ("aten.convolution", "aten.mm", "aten.addmm", "aten.bmm", "aten.baddbmm", "aten._native_multi_head",
           "aten._scaled_dot_product", "aten._transformer_encoder")


def torchvision_builder_kwargs(name: str, weights) -> dict:
    """Build the architecture the weights describe, as torchvision's own builders do."""
    if name == "googlenet":
        # The published GoogLeNet count excludes the auxiliary heads (its builder drops them after loading);
        # Inception-v3's includes them (aux_logits=True, as weights=None builds it). The aux heads do not run in
        # eval, so MACs are the same either way.
        return {"aux_logits": False, "init_weights": False}
    if name.startswith("vit_"):
        return {"image_size": weights.meta["min_size"][0]}
    return {}


def torchvision_check(names: list[str] | None = None):
    """Count torchvision classification models (eval, no_grad, meta device, at the weights' crop size) and
    compare with ``weights.meta``: parameters must be equal; MACs within 1% of ``_ops`` (GFLOPS there counts MACs)
    or within its rounding to 3 decimals (0.0005 GMAC), which decides for the tiniest models."""
    import time

    import pandas as pd
    import torchvision

    rows = []
    for name in names or torchvision.models.list_models(module=torchvision.models):
        weights = torchvision.models.get_model_weights(name).DEFAULT
        crop = weights.transforms().crop_size[0]
        start = time.perf_counter()
        model = build_model(name, **torchvision_builder_kwargs(name, weights))
        counts = count_model(model, (torch.empty(1, 3, crop, crop, device="meta"),))
        macs, published = counts.macs_of(*MAC_OPS), weights.meta["_ops"] * 1e9
        rows.append({"model": name, "crop": crop, "params": counts.total_params,
                     "params_published": weights.meta["num_params"], "gmac": macs / 1e9,
                     "gmac_published": weights.meta["_ops"], "rel_diff": macs / published - 1,
                     "params_ok": counts.total_params == weights.meta["num_params"],
                     "macs_ok": abs(macs - published) <= max(0.01 * published, 0.0005e9),
                     "uncounted": ", ".join(sorted(counts.uncounted())), "seconds": time.perf_counter() - start})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernels.count", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="torchvision model name, package.module:factory, timm:NAME, or 'torchvision-check' "
                        "to compare every torchvision classification model with its published counts")
    parser.add_argument("--input", action="append", default=None,
                        help="input shape, e.g. 1,3,224,224 (default); repeat for a forward that takes several "
                             "inputs; add :int64 (or :int32, :bool, :bf16 ...) for an input of another dtype")
    parser.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    parser.add_argument("--device", default="meta", help="meta (default: allocates nothing) or cpu/cuda")
    parser.add_argument("--train", action="store_true", help="forward + backward (a training step)")
    parser.add_argument("--per-op", action="store_true", help="print the per-op table instead of per layer")
    parser.add_argument("--batch-sweep", help="comma-separated batch sizes: print intensity per batch")
    parser.add_argument("--csv", help="write the per-layer table to this CSV")
    parser.add_argument("--json", help="write totals and the per-layer table to this JSON")
    args = parser.parse_args(argv)
    import pandas as pd

    if args.model == "torchvision-check":
        import time

        start = time.perf_counter()
        table = torchvision_check()
        with pd.option_context("display.max_rows", None, "display.width", 250):
            print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        bad = table[~(table["params_ok"] & table["macs_ok"])]
        print(f"\n{len(table)} models counted in {time.perf_counter() - start:.1f} s; {len(bad)} disagree with "
              f"torchvision's published counts{': ' + ', '.join(bad['model']) if len(bad) else ''}")
        return 1 if len(bad) else 0
    try:
        inputs = [parse_input(text) for text in (args.input or ["1,3,224,224"])]
        shape = inputs[0][0]
        batches = parse_batches(args.batch_sweep) if args.batch_sweep else None
        if batches and len(inputs) > 1:
            raise CountError("--batch-sweep takes a model with one input; give a single --input")
        check_device(args.device)
        for option, path in (("--csv", args.csv), ("--json", args.json)):
            if path:
                check_output_path(path, option)
        counts = count_named(args.model, shape, args.dtype, args.device, args.train, inputs=inputs)
        sweep = batch_sweep(args.model, shape, batches, args.dtype, args.device) if batches else None
    except CountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = counts.op_table() if args.per_op else counts.layer_table()
    with pd.option_context("display.max_rows", None, "display.width", 250, "display.max_colwidth", 40):
        print(table.to_string(index=False))
    t = counts.totals()
    print(f"\n{args.model} {' + '.join(args.input or ['1,3,224,224'])} {args.dtype} ({'train step' if args.train else 'inference'}): "
          f"{t['params']:,} parameters, {t['macs'] / 1e9:.3f} GMAC = {t['flops'] / 1e9:.3f} GFLOP "
          f"(+ {t['other_flops'] / 1e9:.3f} G other FLOPs), {t['bytes_read'] / 1e6:.1f} MB read, "
          f"{t['bytes_written'] / 1e6:.1f} MB written, intensity {t['intensity']:.1f} FLOP/B")
    print(f"  {FLOPS_CONVENTION}; {BYTES_CONVENTION}")
    if t["uncounted_ops"]:
        print(f"  uncounted ops (bytes counted, no FLOP formula): {t['uncounted_ops']}")
    if sweep is not None:
        print("\nbatch sweep:\n" + sweep.to_string(index=False))
    if args.csv:
        counts.layer_table().to_csv(args.csv, index=False)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"model": args.model, "input": list(shape), "dtype": args.dtype, "totals": t,
                       "layers": counts.layer_table().to_dict(orient="records")}, handle, indent=1, default=str)
    return 0


if __name__ == "__main__":
    from results.cli import run

    run(main, "python -m kernels.count", "no --csv/--json file was written, the rows printed above are complete")
