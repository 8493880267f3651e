"""Theoretical counts for any model: parameters, MACs, FLOPs, bytes read/written, arithmetic intensity.

Counting happens at the aten level, under a TorchDispatchMode, so functional calls, fused fast paths
(``_native_multi_head_attention``, ``_transformer_encoder_layer_fwd``), every SDPA backend and einsum are all seen.
Each op is attributed to the module that called it through GLOBAL forward hooks (not by wrapping modules); a module
shared by two parents is named after the parent that called it, and counted once per call.

Runs on the meta device by default: no weights are allocated, so a 70B-parameter model from a config can be
counted on a laptop. Formulas live in :mod:`kernels.formulas` (one registry keyed by aten op).

Models by name and their inputs: kernels/zoo.py. The command line (`python -m kernels.count resnet50 --input
1,3,224,224`): bench/count_cli.py, which ``python -m kernels.count`` runs.
"""
from __future__ import annotations

import contextlib
import math
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from kernels.backends import op_variant
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
    #: the dtype the op's weight is stored in, where it differs from the activations' (a quantised variant)
    weight_dtype: str = ""
    #: what runs the op where its cost depends on more than its shapes (kernels.backends.op_variant): a CPU convolution's
    #: backend as torch picks it, "train" for a batch norm that computes its batch's statistics; "" otherwise
    variant: str = ""


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

    def with_weights(self, storage: dict[str, tuple[int, str]], dynamic=frozenset()) -> "Counts":
        """A copy in which each module of ``storage`` (path -> (bytes its weight is stored in, storage dtype)) reads
        its weight at that size instead of the activation dtype's: weight dtype apart from activation dtype (int8
        weights and their scales). Modules in ``dynamic`` quantise their input at each call: its int8 copy is written
        and read once more. The change lands on the module's first op with MACs (the one that reads the weight)."""
        ops = list(self.ops)
        for name, (stored, dtype) in storage.items():
            module = self.module_objects.get(name)
            weight = getattr(module, "weight", None)
            index = next((i for i, o in enumerate(ops) if o.module == name and o.macs), None)
            if weight is None or index is None:
                continue
            op = ops[index]
            read = op.bytes_read - weight.numel() * weight.element_size() + stored
            written = op.bytes_written
            if name in dynamic:
                inputs = self.module_shapes.get(name, ([], []))[0]
                numel = math.prod(inputs[0]) if inputs else 0
                read, written = read + numel, written + numel
            ops[index] = replace(op, bytes_read=max(0, read), bytes_written=written, weight_dtype=dtype)
        return replace(self, ops=ops)

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

    def __init__(self, tracker: _ModuleTracker, counts: Counts, target: str = "cpu"):
        super().__init__()
        self.tracker, self.counts, self.target = tracker, counts, target
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
            bytes_read=read, bytes_written=written, counted=counted, phase=self.phase,
            variant=op_variant(packet, args, self.target)))
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
    mode = CountingMode(tracker, counts, target)
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


if __name__ == "__main__":  # the command users type; the command line itself is bench/count_cli.py
    from bench.count_cli import main
    from results.cli import run

    run(main, "python -m kernels.count", "no --csv/--json file was written, the rows printed above are complete")
