"""One registry of counting formulas, keyed by aten op (``torch.ops.aten.X``, an OpOverloadPacket).

Each formula is a small pure function of shapes (``T``: shape + dtype), returning a :class:`Cost` with MACs and
the other FLOPs (element-wise, reductions, softmax, norms, pooling) kept apart. FLOPs of MAC ops are 2 x MAC.
Bytes: by default each input tensor is read once and each output written once (the minimum traffic, no cache
model); ops that touch only part of an input (embedding, index_select) register a byte formula beside their FLOPs.
View ops move nothing and cost nothing.

NB, conventions and holes (stated so a reader can pick another):
* MAC = one multiply-accumulate; "2K - 1" refinements are ignored; bias adds are other FLOPs, not MACs.
* Convolution padding is counted as if it were data (every output sees the full kernel), as torchvision does.
* Attention: causal masks are not discounted; the math path is counted op by op (bmm, softmax, ...).
* Element-wise ops count one FLOP per output element whatever their cost in instructions (gelu = 1, like add).
* softmax = 5 per element (max, subtract, exp, sum, divide); layer/group norm = 5; batch norm (eval) = 2
  (the folded scale and shift); pooling = one per window element per output.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

aten = torch.ops.aten


@dataclass(frozen=True)
class T:
    """What a formula sees of a tensor: its shape and dtype (never its values)."""

    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * _itemsize(self.dtype)


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype, device="meta").element_size()


@dataclass
class Cost:
    macs: int = 0
    other_flops: int = 0


FLOP_FORMULAS: dict[Any, Callable[..., Cost]] = {}
BYTE_FORMULAS: dict[Any, Callable[..., tuple[int, int]]] = {}


def _check_key(op):
    if not isinstance(op, torch._ops.OpOverloadPacket):
        raise TypeError(f"register formulas on an aten OpOverloadPacket (e.g. aten.mm), not {op!r}")


def register(*ops):
    """Register one FLOP formula for several ops; a second formula for the same op is an error."""
    def wrap(fn):
        for op in ops:
            _check_key(op)
            if op in FLOP_FORMULAS:
                raise ValueError(f"a FLOP formula for {op} is already registered")
            FLOP_FORMULAS[op] = fn
        return fn
    return wrap


def register_bytes(*ops):
    def wrap(fn):
        for op in ops:
            _check_key(op)
            if op in BYTE_FORMULAS:
                raise ValueError(f"a byte formula for {op} is already registered")
            BYTE_FORMULAS[op] = fn
        return fn
    return wrap


# Ops that move and compute nothing (views, metadata, allocation). Not listed as "uncounted".
FREE_OPS = {getattr(aten, name) for name in (
    "view", "_unsafe_view", "reshape", "expand", "permute", "transpose", "t", "slice", "select", "unsqueeze",
    "squeeze", "detach", "alias", "as_strided", "unflatten", "flatten", "split", "split_with_sizes", "chunk",
    "unbind", "narrow", "view_as", "expand_as", "empty", "empty_like", "empty_strided", "new_empty",
    "new_empty_strided", "_reshape_alias", "lift_fresh", "unsafe_split", "is_same_size", "_to_copy_meta",
    "sym_size", "sym_stride", "sym_numel", "sym_storage_offset", "_local_scalar_dense", "diagonal", "movedim",
    "contiguous", "resize_", "set_", "_has_compatible_shallow_copy_type", "dim", "size", "stride", "numel",
    "is_contiguous", "_nested_tensor_from_mask_left_aligned", "zeros", "ones", "full", "arange", "scalar_tensor",
    "as_strided_", "as_strided_copy", "view_copy", "detach_", "squeeze_", "unsqueeze_", "t_", "transpose_",
    "unfold",  # Tensor.unfold is a strided view (F.unfold is im2col, below)
) if hasattr(aten, name)}


# ---- shared maths (not registered) ---------------------------------------------------------------------------
def matmul_macs(m: int, n: int, k: int, batch: int = 1) -> int:
    return batch * m * n * k


def conv_macs(x: T, w: T, out: T, transposed: bool, groups: int) -> int:
    """Forward convolution MACs: every output element of every output channel sums Cin/groups x kernel inputs.
    Transposed: every INPUT element scatters into Cout/groups x kernel outputs."""
    kernel = math.prod(w.shape[2:])
    if transposed:
        # weight is (Cin, Cout/groups, k...)
        return x.numel * w.shape[1] * kernel
    # weight is (Cout, Cin/groups, k...)
    return out.numel * w.shape[1] * kernel


def attention_macs(q: T, k: T, v: T) -> int:
    """q (..., L, E), k (..., S, E), v (..., S, Ev): QK^T is L*S*E MACs, PV is L*S*Ev, per batch x head."""
    batch = math.prod(q.shape[:-2])
    length, e = q.shape[-2], q.shape[-1]
    s, ev = k.shape[-2], v.shape[-1]
    return batch * length * s * (e + ev)


def _first(outputs):
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


# ---- matrix products -----------------------------------------------------------------------------------------
@register(aten.mm)
def mm_cost(a: T, b: T, *args, out=None, **kw) -> Cost:
    return Cost(matmul_macs(a.shape[0], b.shape[1], a.shape[1]))


@register(aten.addmm)
def addmm_cost(bias: T, a: T, b: T, *args, out=None, **kw) -> Cost:
    return Cost(matmul_macs(a.shape[0], b.shape[1], a.shape[1]), a.shape[0] * b.shape[1])


@register(aten.bmm)
def bmm_cost(a: T, b: T, *args, out=None, **kw) -> Cost:
    return Cost(matmul_macs(a.shape[1], b.shape[2], a.shape[2], a.shape[0]))


@register(aten.baddbmm)
def baddbmm_cost(bias: T, a: T, b: T, *args, out=None, **kw) -> Cost:
    return Cost(matmul_macs(a.shape[1], b.shape[2], a.shape[2], a.shape[0]), a.shape[0] * a.shape[1] * b.shape[2])


@register(aten.addmv)
def addmv_cost(bias: T, a: T, x: T, *args, out=None, **kw) -> Cost:
    return Cost(a.shape[0] * a.shape[1], a.shape[0])


@register(aten.mv)
def mv_cost(a: T, x: T, *args, out=None, **kw) -> Cost:
    return Cost(a.shape[0] * a.shape[1])


@register(aten.dot, aten.vdot)
def dot_cost(a: T, b: T, *args, out=None, **kw) -> Cost:
    return Cost(a.numel)


@register(aten._int_mm)
def int_mm_cost(a: T, b: T, *args, out=None, **kw) -> Cost:
    return Cost(matmul_macs(a.shape[0], b.shape[1], a.shape[1]))


@register(aten._scaled_mm)
def scaled_mm_cost(a: T, b: T, *args, out=None, **kw) -> Cost:
    return Cost(matmul_macs(a.shape[0], b.shape[1], a.shape[1]))


# ---- convolution ---------------------------------------------------------------------------------------------
@register(aten.convolution, aten._convolution)
def convolution_cost(x: T, w: T, bias, stride, padding, dilation, transposed, output_padding, groups, *args,
                     out=None, **kw) -> Cost:
    o = _first(out)
    extra = o.numel if bias is not None else 0
    return Cost(conv_macs(x, w, o, bool(transposed), int(groups)), extra)


@register(aten.convolution_backward)
def convolution_backward_cost(grad_out: T, x: T, w: T, bias_sizes, stride, padding, dilation, transposed,
                              output_padding, groups, output_mask, *args, out=None, **kw) -> Cost:
    """Gradient w.r.t. input and w.r.t. weight each cost one forward convolution (when asked for)."""
    forward = conv_macs(x, w, grad_out, bool(transposed), int(groups))
    macs = forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))
    return Cost(macs, grad_out.numel if output_mask[2] else 0)


# ---- attention -----------------------------------------------------------------------------------------------
_SDPA_FORWARD = [getattr(aten, n) for n in (
    "_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_fused_attention_overrideable",
) if hasattr(aten, n)]
_BSHD_FORWARD = [getattr(aten, n) for n in ("_flash_attention_forward", "_efficient_attention_forward")
                 if hasattr(aten, n)]
_SDPA_BACKWARD = [getattr(aten, n) for n in (
    "_scaled_dot_product_flash_attention_backward", "_scaled_dot_product_flash_attention_for_cpu_backward",
    "_scaled_dot_product_efficient_attention_backward", "_scaled_dot_product_cudnn_attention_backward",
    "_scaled_dot_product_fused_attention_overrideable_backward",
) if hasattr(aten, n)]


@register(*_SDPA_FORWARD)
def sdpa_cost(q: T, k: T, v: T, *args, out=None, **kw) -> Cost:
    """Every fused SDPA backend, q/k/v as (B, H, L, E): QK^T and PV as MACs, softmax as other FLOPs
    (no causal discount)."""
    scores = math.prod(q.shape[:-1]) * k.shape[-2]
    return Cost(attention_macs(q, k, v), 5 * scores)


@register(*_BSHD_FORWARD)
def flash_forward_cost(q: T, k: T, v: T, *args, out=None, **kw) -> Cost:
    """The lower-level flash / efficient kernels take (B, L, H, E): swap to (B, H, L, E) and count as SDPA."""
    q, k, v = (T((x.shape[0], x.shape[2], x.shape[1], x.shape[3]), x.dtype) for x in (q, k, v))
    return sdpa_cost(q, k, v)


@register(*_SDPA_BACKWARD)
def sdpa_backward_cost(grad_out: T, q: T, k: T, v: T, *args, out=None, **kw) -> Cost:
    """Backward: dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q: four products, 2x the forward MACs
    (a flash kernel's recomputation of QK^T is not counted)."""
    scores = math.prod(q.shape[:-1]) * k.shape[-2]
    return Cost(2 * attention_macs(q, k, v), 5 * scores)


def _mha_macs(query: T, key: T, embed_dim: int, num_heads: int) -> tuple[int, int]:
    """Packed in-projection (q, k, v), two attention products, out-projection; inputs (B, L, E)."""
    b, length = (query.shape[0], query.shape[1]) if len(query.shape) == 3 else (1, query.shape[0])
    s = key.shape[-2]
    e = embed_dim
    proj = b * length * e * e + 2 * b * s * e * e + b * length * e * e
    attn = 2 * b * length * s * e  # QK^T and PV summed over heads: H x (L*S*E/H) each
    softmax = 5 * b * num_heads * length * s
    biases = b * length * 2 * e + 2 * b * s * e
    return proj + attn, softmax + biases


@register(aten._native_multi_head_attention)
def native_mha_cost(query: T, key: T, value: T, embed_dim, num_head, *args, out=None, **kw) -> Cost:
    """nn.MultiheadAttention's eval fast path: one fused op that other counters miss."""
    macs, other = _mha_macs(query, key, int(embed_dim), int(num_head))
    return Cost(macs, other)


@register(aten._transformer_encoder_layer_fwd)
def transformer_encoder_layer_cost(src: T, embed_dim, num_heads, qkv_w: T, qkv_b, proj_w, proj_b, use_gelu,
                                   norm_first, eps, norm_w1, norm_b1, norm_w2, norm_b2, ffn_w1: T, ffn_b1, ffn_w2,
                                   ffn_b2, *args, out=None, **kw) -> Cost:
    """nn.TransformerEncoderLayer's eval fast path: attention + two norms + the two FFN linears, fused."""
    macs, other = _mha_macs(src, src, int(embed_dim), int(num_heads))
    tokens = math.prod(src.shape[:-1])
    hidden = ffn_w1.shape[0]
    macs += 2 * tokens * hidden * int(embed_dim)
    other += tokens * (hidden + int(embed_dim))  # FFN biases
    other += tokens * hidden  # activation
    other += 2 * 5 * tokens * int(embed_dim) + 2 * tokens * int(embed_dim)  # two layer norms, two residual adds
    return Cost(macs, other)


# ---- normalisation, softmax, pooling ---------------------------------------------------------------------------
@register(*[getattr(aten, n) for n in ("_softmax", "_log_softmax", "softmax", "log_softmax", "_safe_softmax")
            if hasattr(aten, n)])
def softmax_cost(x: T, *args, out=None, **kw) -> Cost:
    return Cost(0, 5 * x.numel)


@register(aten.native_layer_norm, aten.native_group_norm, aten._fused_rms_norm)
def layer_norm_cost(x: T, *args, out=None, **kw) -> Cost:
    return Cost(0, 5 * x.numel)


@register(aten._native_batch_norm_legit_no_training, aten._native_batch_norm_legit, aten.native_batch_norm,
          aten._batch_norm_impl_index, aten.batch_norm)
def batch_norm_cost(x: T, *args, out=None, **kw) -> Cost:
    """Eval: the folded scale and shift, 2 per element (training adds the statistics: counted the same)."""
    return Cost(0, 2 * x.numel)


def _pool_cost(x: T, kernel_size, *args, out=None, **kw) -> Cost:
    window = math.prod(kernel_size) if isinstance(kernel_size, (list, tuple)) else int(kernel_size)
    if isinstance(kernel_size, (list, tuple)) and len(kernel_size) == 1 and len(x.shape) > 3:
        window = int(kernel_size[0]) ** (len(x.shape) - 2)
    return Cost(0, _first(out).numel * window)


register(aten.max_pool2d_with_indices, aten.max_pool3d_with_indices, aten.avg_pool2d, aten.avg_pool3d,
         aten.avg_pool1d, aten.max_pool2d, aten.max_pool1d)(_pool_cost)


@register(aten._adaptive_avg_pool2d, aten._adaptive_avg_pool3d, aten.adaptive_max_pool2d, aten.adaptive_avg_pool1d)
def adaptive_pool_cost(x: T, *args, out=None, **kw) -> Cost:
    return Cost(0, x.numel)


@register(aten.upsample_bilinear2d, aten._upsample_bilinear2d_aa, aten.upsample_bicubic2d)
def upsample_interp_cost(x: T, *args, out=None, **kw) -> Cost:
    """Bilinear: 4 taps, weighted: about 8 FLOPs per output element (bicubic counted the same, an under-count)."""
    return Cost(0, 8 * _first(out).numel)


@register(aten.upsample_nearest2d, aten._upsample_nearest_exact2d, aten.upsample_nearest1d, aten.upsample_nearest3d)
def upsample_nearest_cost(x: T, *args, out=None, **kw) -> Cost:
    return Cost(0, 0)


# ---- reductions ----------------------------------------------------------------------------------------------
@register(aten.sum, aten.mean, aten.amax, aten.amin, aten.max, aten.min, aten.argmax, aten.argmin, aten.prod,
          aten.norm, aten.linalg_vector_norm, aten.var, aten.std, aten.var_mean, aten.std_mean, aten.cumsum, aten.logsumexp)
def reduction_cost(x: T, *args, out=None, **kw) -> Cost:
    return Cost(0, x.numel if isinstance(x, T) else 0)


# ---- element-wise --------------------------------------------------------------------------------------------
_ELEMENTWISE = [getattr(aten, n) for n in (
    "add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "relu", "relu_", "gelu", "gelu_", "silu", "silu_",
    "sigmoid", "sigmoid_", "tanh", "tanh_", "hardtanh", "hardtanh_", "hardswish", "hardswish_", "hardsigmoid",
    "hardsigmoid_", "leaky_relu", "leaky_relu_", "elu", "elu_", "threshold", "clamp", "clamp_", "clamp_min",
    "clamp_min_", "exp", "exp_", "log", "sqrt", "rsqrt", "pow", "neg", "abs", "reciprocal", "erf", "where",
    "addcmul", "addcdiv", "lerp", "mish", "softplus", "maximum", "minimum", "eq", "ne", "lt", "gt", "le", "ge",
    "logical_not", "masked_fill", "masked_fill_", "sin", "cos", "square", "sign", "floor_divide", "remainder",
    "glu", "fill_", "fill", "zero_", "copy_", "_to_copy", "clone", "cat", "stack", "constant_pad_nd", "roll",
    "index", "gather", "scatter", "index_select", "embedding", "tril", "triu", "repeat", "bernoulli_", "rand_like",
    "native_dropout", "_softmax_backward_data", "threshold_backward", "gelu_backward", "silu_backward",
    "native_layer_norm_backward", "native_batch_norm_backward", "max_pool2d_with_indices_backward",
    "avg_pool2d_backward", "_adaptive_avg_pool2d_backward", "sigmoid_backward", "tanh_backward",
    "hardswish_backward", "hardtanh_backward", "embedding_dense_backward", "ones_like", "zeros_like", "full_like",
    "new_zeros", "new_ones", "new_full", "pad", "flip", "topk", "sort", "native_group_norm_backward",
    "_log_softmax_backward_data", "mish_backward", "leaky_relu_backward",
    "im2col", "reflection_pad1d", "reflection_pad2d", "reflection_pad3d", "replication_pad1d", "replication_pad2d",
    "replication_pad3d", "bitwise_not", "bitwise_and", "bitwise_or", "bitwise_xor", "logical_and", "logical_or",
) if hasattr(aten, n)]
#: data movement only: bytes yes, FLOPs no
_DATA_MOVEMENT = {getattr(aten, n) for n in (
    "fill_", "fill", "zero_", "copy_", "_to_copy", "clone", "cat", "stack", "constant_pad_nd", "roll", "index",
    "gather", "scatter", "index_select", "embedding", "tril", "triu", "repeat", "ones_like", "zeros_like",
    "full_like", "new_zeros", "new_ones", "new_full", "pad", "flip", "embedding_dense_backward", "native_dropout",
    "bernoulli_", "rand_like", "topk", "sort", "masked_fill", "masked_fill_", "where",
    "im2col", "reflection_pad1d", "reflection_pad2d", "reflection_pad3d", "replication_pad1d", "replication_pad2d",
    "replication_pad3d",
) if hasattr(aten, n)}
_NORM_BACKWARD = {getattr(aten, n) for n in ("native_layer_norm_backward", "native_batch_norm_backward",
                                             "native_group_norm_backward") if hasattr(aten, n)}


def _elementwise_cost(op):
    def cost(*args, out=None, **kw) -> Cost:
        if op in _DATA_MOVEMENT:
            return Cost(0, 0)
        outs = out if isinstance(out, (list, tuple)) else [out]
        elements = sum(o.numel for o in outs if isinstance(o, T))
        return Cost(0, (5 if op in _NORM_BACKWARD else 1) * elements)
    return cost


for _op in _ELEMENTWISE:
    register(_op)(_elementwise_cost(_op))


@register(aten.col2im)
def col2im_cost(cols: T, *args, out=None, **kw) -> Cost:
    """F.fold: every column element is added into its output position (one addition per input element)."""
    return Cost(0, cols.numel)


# ---- bytes that are not "every input once" ---------------------------------------------------------------------
@register_bytes(aten.embedding)
def embedding_bytes(weight: T, indices: T, *args, out=None, **kw) -> tuple[int, int]:
    """Only the gathered rows are read, not the whole table."""
    o = _first(out)
    return indices.nbytes + o.nbytes, o.nbytes


@register_bytes(aten.index_select)
def index_select_bytes(x: T, dim, index: T, *args, out=None, **kw) -> tuple[int, int]:
    o = _first(out)
    return index.nbytes + o.nbytes, o.nbytes
