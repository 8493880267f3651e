"""Models built from torch.nn only (no torchvision needed): a decoder-only transformer, Llama-style.

``DecoderConfig.llama_70b()`` is the shape of a 70B-parameter decoder (hidden 8192, 80 layers, 64 query heads,
8 key/value heads, SwiGLU width 28672, vocabulary 128256): build it under the meta device and count it without
allocating its weights. ``DecoderBlock`` at batch 1 and one token is decode (matrix-vector, memory bound); at a long
prompt it is prefill (compute bound).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class DecoderConfig:
    hidden: int = 512
    layers: int = 2
    heads: int = 8
    kv_heads: int = 8
    intermediate: int = 1536
    vocab: int = 32000
    tie_embeddings: bool = False

    @classmethod
    def llama_70b(cls) -> "DecoderConfig":
        return cls(hidden=8192, layers=80, heads=64, kv_heads=8, intermediate=28672, vocab=128256)

    @classmethod
    def llama_8b(cls) -> "DecoderConfig":
        return cls(hidden=4096, layers=32, heads=32, kv_heads=8, intermediate=14336, vocab=128256)

    def param_count(self) -> int:
        """By hand: per layer q, k, v, o projections + three MLP matrices + two RMSNorm weights."""
        head_dim = self.hidden // self.heads
        attn = self.hidden * self.hidden * 2 + 2 * self.hidden * self.kv_heads * head_dim
        mlp = 3 * self.hidden * self.intermediate
        per_layer = attn + mlp + 2 * self.hidden
        embeddings = self.vocab * self.hidden * (1 if self.tie_embeddings else 2)
        return self.layers * per_layer + embeddings + self.hidden


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class ScaledDotProduct(nn.Module):
    """The attention core as its own module, so it can be timed and placed on the roofline as a layer.
    Grouped-query attention: key/value heads are repeated to the query heads."""

    def __init__(self, heads: int, kv_heads: int):
        super().__init__()
        self.groups = heads // kv_heads

    def forward(self, q, k, v):
        if self.groups > 1:
            k = k.repeat_interleave(self.groups, dim=1)
            v = v.repeat_interleave(self.groups, dim=1)
        return F.scaled_dot_product_attention(q, k, v, is_causal=q.shape[-2] > 1)


class Attention(nn.Module):
    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = cfg.heads, cfg.kv_heads, cfg.hidden // cfg.heads
        self.q = nn.Linear(cfg.hidden, cfg.hidden, bias=False)
        self.k = nn.Linear(cfg.hidden, cfg.kv_heads * self.head_dim, bias=False)
        self.v = nn.Linear(cfg.hidden, cfg.kv_heads * self.head_dim, bias=False)
        self.core = ScaledDotProduct(cfg.heads, cfg.kv_heads)
        self.o = nn.Linear(cfg.hidden, cfg.hidden, bias=False)

    def forward(self, x):
        b, s, _ = x.shape
        q = self.q(x).view(b, s, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        y = self.core(q, k, v)
        return self.o(y.transpose(1, 2).reshape(b, s, -1))


class SwiGLU(nn.Module):
    def forward(self, gate, up):
        return F.silu(gate) * up


class MLP(nn.Module):
    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.gate = nn.Linear(cfg.hidden, cfg.intermediate, bias=False)
        self.up = nn.Linear(cfg.hidden, cfg.intermediate, bias=False)
        self.act = SwiGLU()
        self.down = nn.Linear(cfg.intermediate, cfg.hidden, bias=False)

    def forward(self, x):
        return self.down(self.act(self.gate(x), self.up(x)))


class DecoderBlock(nn.Module):
    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.hidden)
        self.attn = Attention(cfg)
        self.mlp_norm = RMSNorm(cfg.hidden)
        self.mlp = MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class Decoder(nn.Module):
    """Token ids (batch, seq) -> logits (batch, seq, vocab)."""

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab, cfg.hidden)
        self.blocks = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.layers))
        self.norm = RMSNorm(cfg.hidden)
        self.head = nn.Linear(cfg.hidden, cfg.vocab, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.embed.weight

    def forward(self, tokens):
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def block_config() -> DecoderConfig:
    """The block the layer benchmarks time: Llama-3.2-1B-like widths (hidden 2048, 32 heads, 8 kv heads, MLP 8192),
    so a decode step's weights (~100 MB in fp32) do not fit a CPU's last-level cache."""
    return DecoderConfig(hidden=2048, layers=1, heads=32, kv_heads=8, intermediate=8192)


def decoder_block() -> DecoderBlock:
    """Factory for ``python -m kernels.count kernels.models:decoder_block --input 1,128,512``."""
    return DecoderBlock(DecoderConfig())


def bench_decoder_block() -> DecoderBlock:
    """The layer benchmarks' decoder block (``block_config``: hidden 2048), for ``--input 1,128,2048``."""
    return DecoderBlock(block_config())
