"""Probe layers for the predictor: the op classes models are made of, over the shapes they come in.

The GEMM sweep measures large square products; a model at batch 1 is mostly small, odd, grouped and depthwise
convolutions, thin linears and element-wise ops at a few hundred kB, each paying its dispatch cost. Each probe
here is one layer (a module with one input), timed like a model's layer, so a record carries measured times for
op classes and sizes the predictor (kernels.predict) interpolates between instead of assuming an efficiency.

A probe row records its aten ops (``extra.ops``) and, for convolutions and linears, its implicit GEMM
(``extra.implicit_gemm``: M, N, K, batch = groups) and the convolution's kernel size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from results.predict import FRESH_BYTES


@dataclass(frozen=True)
class Probe:
    name: str
    family: str  # conv | conv_dw | conv_grouped | linear | attention | elementwise
    build: tuple  # (factory key, args) so probes stay hashable and printable
    input_shape: tuple


def _conv(cin, cout, k, h, stride=1, groups=1, batch=1):
    family = "conv" if groups == 1 else "conv_dw" if groups == cin == cout else "conv_grouped"
    tag = f"{family}{k}x{k}s{stride}-c{cin}-{cout}g{groups}-h{h}-b{batch}"
    return Probe(tag, family, ("conv", (cin, cout, k, stride, groups)), (batch, cin, h, h))


def _linear(tokens, cin, cout, batch=1):
    return Probe(f"linear-t{tokens}-{cin}-{cout}-b{batch}", "linear", ("linear", (cin, cout)), (batch, tokens, cin))


def _attention(heads, tokens, dim, batch=1):
    return Probe(f"sdpa-h{heads}-t{tokens}-d{dim}-b{batch}", "attention", ("sdpa", ()), (batch, heads, tokens, dim))


def _eltwise(op, channels, h, batch=1):
    return Probe(f"{op}-c{channels}-h{h}-b{batch}", "elementwise", (op, (channels,)), (batch, channels, h, h))


#: element-wise layers of CNNs and transformers; each appears at a small, a medium and a large size
ELEMENTWISE = ("relu", "relu6", "silu", "gelu", "hardswish", "sigmoid", "batchnorm", "layernorm", "add", "mul",
               "maxpool", "avgpool", "softmax", "cat")
#: the data-movement ops of small models, which the generic element-wise median priced roughly: the squeeze-excite
#: gate (hardsigmoid), group norm and the pooling token mixer (PoolFormer: avg_pool2d 3x3 and a subtraction), a
#: channel shuffle and a permute that copy (ShuffleNet, GhostNet, channels-last blocks), a spatial mean
DATA_MOVEMENT = ("hardsigmoid", "groupnorm", "avgpool3", "sub", "shuffle", "permute", "mean")
#: a batch norm that computes its batch's statistics: weight standardisation (NFNet, BiT) runs one on each
#: convolution's weights every call, also in an eval model; 4-11x an eval batch norm (a Zen 5 VM, 2026-12-03)
STATISTICS = ("batchnorm_stats",)


def probes(quick: bool) -> list[Probe]:
    """The probe set: about 100 layers in a full run, a third of them in a quick one."""
    convs = [
        # dense 3x3 along a ResNet/VGG pyramid, stride 1 and 2
        _conv(32, 32, 3, 112), _conv(64, 64, 3, 56), _conv(128, 128, 3, 28), _conv(256, 256, 3, 14),
        _conv(512, 512, 3, 7), _conv(64, 128, 3, 56, stride=2), _conv(256, 512, 3, 14, stride=2),
        _conv(16, 24, 3, 112), _conv(48, 48, 3, 56),
        # 1x1 expansions and projections (bottlenecks, inverted residuals)
        _conv(64, 256, 1, 56), _conv(256, 64, 1, 56), _conv(128, 512, 1, 28), _conv(512, 128, 1, 28),
        _conv(256, 1024, 1, 14), _conv(1024, 256, 1, 14), _conv(512, 2048, 1, 7), _conv(2048, 512, 1, 7),
        _conv(16, 96, 1, 112), _conv(24, 144, 1, 56), _conv(144, 24, 1, 56), _conv(96, 576, 1, 14),
        _conv(320, 1280, 1, 7), _conv(960, 160, 1, 7), _conv(32, 8, 1, 1), _conv(8, 32, 1, 1),
        _conv(1280, 320, 1, 1),
        # narrow convolutions (16-128 channels at 56-14 pixels, depthwise at 4x4): a grid over the gap the probes
        # above leave in (M, N, K), where the blind check (tools/validate_predictor.py, seed 1, 2026-12-02) found
        # convolutions 2-3x slower than the rate of wider probes nearby in M, N and K (a fixed ~0.2 ms per call)
        _conv(16, 64, 1, 56), _conv(64, 16, 1, 56), _conv(32, 32, 1, 28), _conv(128, 32, 1, 28), _conv(64, 64, 1, 14),
        _conv(16, 16, 3, 56), _conv(32, 64, 3, 56, stride=2),
        # small inputs (channels x pixels up to 20480 at batch 1), where torch 2.x on a CPU runs a dense 3x3 or
        # 1x1 convolution by im2col ("Slow2d") instead of oneDNN: 1.3-1.5x slower at one shape (a Zen 5 VM,
        # 2026-12-03); late stages of CNNs at 7x7 and 14x14 pixels. kernels.backends.op_variant tells the two apart
        _conv(48, 48, 3, 14), _conv(96, 96, 3, 14), _conv(192, 192, 3, 7), _conv(384, 384, 3, 7),
        _conv(64, 128, 3, 14, stride=2), _conv(256, 1024, 1, 7), _conv(160, 960, 1, 7),
        # stems and patch embeddings
        _conv(3, 64, 7, 224, stride=2), _conv(3, 32, 3, 224, stride=2), _conv(3, 96, 4, 224, stride=4),
        _conv(3, 768, 16, 224, stride=16),
        # depthwise 3x3 / 5x5 / 7x7 (MobileNet, EfficientNet, ConvNeXt)
        _conv(32, 32, 3, 112, groups=32), _conv(96, 96, 3, 112, stride=2, groups=96),
        _conv(144, 144, 3, 56, groups=144), _conv(192, 192, 3, 28, groups=192), _conv(384, 384, 3, 14, groups=384),
        _conv(960, 960, 3, 7, groups=960), _conv(240, 240, 5, 28, groups=240), _conv(672, 672, 5, 14, groups=672),
        _conv(96, 96, 7, 56, groups=96), _conv(192, 192, 7, 28, groups=192), _conv(384, 384, 7, 14, groups=384),
        _conv(768, 768, 7, 7, groups=768), _conv(32, 32, 3, 28, groups=32), _conv(64, 64, 3, 4, groups=64),
        _conv(256, 256, 3, 4, groups=256),
        # grouped (ResNeXt, RegNet)
        _conv(128, 128, 3, 56, groups=32), _conv(256, 256, 3, 28, groups=32), _conv(512, 512, 3, 14, groups=32),
        _conv(224, 224, 3, 28, groups=28), _conv(64, 64, 3, 14, groups=8),
        # channel counts of 8 modulo 16 (24, 40, 72, 120, 184: MobileNetV3, MnasNet, EfficientNet's early stages):
        # oneDNN's AVX-512 kernels block channels by 16, and such a convolution ran 1.3-2x slower than its aligned
        # neighbours (1x1 64->72 at 56x56: 139 GFLOP/s, 64->64 187, 64->80 213; depthwise 3x3 of 72 channels 15,
        # of 64 and 80 25; a Zen 5 VM without page faults, 2026-12-03); results.predict prices an op nearer probes
        # of its own alignment (channel_alignment)
        _conv(24, 72, 1, 56), _conv(72, 24, 1, 56), _conv(40, 120, 1, 28), _conv(120, 40, 1, 28),
        _conv(40, 240, 1, 28), _conv(80, 184, 1, 14), _conv(184, 80, 1, 14), _conv(112, 672, 1, 14),
        _conv(72, 72, 3, 56, groups=72), _conv(72, 72, 3, 112, stride=2, groups=72), _conv(120, 120, 5, 28, groups=120),
        _conv(72, 72, 5, 56, stride=2, groups=72), _conv(184, 184, 3, 14, groups=184), _conv(24, 24, 3, 112, groups=24),
        # batch 8
        _conv(64, 64, 3, 56, batch=8), _conv(256, 64, 1, 56, batch=8), _conv(512, 512, 3, 7, batch=8),
        _conv(144, 144, 3, 56, groups=144, batch=8), _conv(3, 64, 7, 224, stride=2, batch=8),
        # batch 8 along the pyramid: at batch 8 a convolution's M is 8x its batch-1 M, beyond the batch-1 probes, and
        # oneDNN runs it faster than their rate (the blind batch-8 check of 2026-12-03 priced CNNs 20-40% slow)
        _conv(128, 128, 3, 28, batch=8), _conv(256, 256, 3, 14, batch=8), _conv(128, 512, 1, 28, batch=8),
        _conv(512, 128, 1, 28, batch=8), _conv(1024, 256, 1, 14, batch=8), _conv(2048, 512, 1, 7, batch=8),
        _conv(384, 384, 3, 14, groups=384, batch=8), _conv(96, 96, 7, 56, groups=96, batch=8),
        # batch 8 at 112x112 (the first stages of MobileNet-style models, whose activations of 8 images exceed the
        # last-level cache): priced from the batch-1 probes' rate, HardCoReNAS-B's first convolutions came out
        # 2-2.5x fast on a Zen 5 VM even with glibc keeping freed memory (2026-12-03; the cause not isolated)
        _conv(16, 96, 1, 112, batch=8), _conv(32, 16, 1, 112, batch=8), _conv(32, 32, 3, 112, groups=32, batch=8),
        _conv(96, 96, 3, 112, stride=2, groups=96, batch=8), _conv(3, 32, 3, 224, stride=2, batch=8),
        _conv(24, 144, 1, 56, batch=8), _conv(144, 144, 3, 56, stride=2, groups=144, batch=8),
    ]
    linears = [_linear(1, 512, 1000), _linear(1, 2048, 1000), _linear(1, 1280, 1000), _linear(1, 4096, 4096),
               _linear(1, 768, 3072), _linear(197, 768, 768), _linear(197, 768, 2304), _linear(197, 768, 3072),
               _linear(197, 3072, 768), _linear(49, 384, 1536), _linear(3136, 96, 384), _linear(3136, 384, 96),
               _linear(1, 2048, 8192), _linear(128, 2048, 2048), _linear(8, 2048, 1000),
               _linear(1576, 768, 3072),
               # batch 8 (M = 8 x tokens): channels-last MLPs and token mixers of 8 images
               _linear(3136, 96, 384, batch=8), _linear(784, 192, 768, batch=8), _linear(196, 384, 1536, batch=8),
               # a decode step of 8 sequences (M = 8) through wide MLP weights: priced from the M = 1 probes' rate
               # it came out 2x slow (the calibration list's decoder block at batch 8, 2026-12-03)
               _linear(8, 2048, 8192), _linear(8, 8192, 2048)]
    attention = [_attention(12, 197, 64), _attention(12, 197, 64, batch=8), _attention(3, 49, 32, batch=64),
                 _attention(32, 128, 64), _attention(8, 50, 64)]
    sizes = [(64, 28), (64, 112), (256, 56)]  # 50k, 800k, 800k x 4 elements
    eltwise = [_eltwise(op, c, h) for op in ELEMENTWISE + DATA_MOVEMENT + STATISTICS for c, h in sizes] + \
              [_eltwise(op, 64, 112, batch=8) for op in ("relu", "batchnorm", "add", "gelu", "silu", "layernorm")] + \
              [_eltwise(op, 1280, 7) for op in ("avgpool", "silu", "mul")] + \
              [_eltwise(op, 16, 1) for op in ("relu", "sigmoid", "mul", "add")]
    every = convs + linears + attention + eltwise
    if not quick:
        return every
    keep = {_conv(64, 64, 3, 56).name, _conv(256, 64, 1, 56).name, _conv(512, 512, 3, 7).name,
            _conv(144, 144, 3, 56, groups=144).name, _conv(384, 384, 7, 14, groups=384).name,
            _conv(3, 64, 7, 224, stride=2).name, _conv(256, 256, 3, 28, groups=32).name,
            _linear(1, 2048, 1000).name, _linear(197, 768, 3072).name, _attention(12, 197, 64).name}
    keep |= {_eltwise(op, c, h).name for op in ("relu", "batchnorm", "add", "layernorm") for c, h in sizes[:2]}
    return [p for p in every if p.name in keep]


class _Binary(nn.Module):
    """x op x: the residual add / the squeeze-excite scale of a model, on one input."""

    def __init__(self, op: str):
        super().__init__()
        self.op = op

    def forward(self, x):
        return x + x if self.op == "add" else x * x


class _Shuffle(nn.Module):
    """ShuffleNet's channel shuffle: a view, a transpose and the copy that makes it contiguous."""

    def forward(self, x):
        b, c, h, w = x.shape
        return x.view(b, 2, c // 2, h, w).transpose(1, 2).contiguous().view(b, c, h, w)


class _Permute(nn.Module):
    """NCHW -> NHWC as a copy (a channels-last block's layout change)."""

    def forward(self, x):
        return x.permute(0, 2, 3, 1).contiguous()


class _Mean(nn.Module):
    def forward(self, x):
        return x.mean((2, 3), keepdim=True)


class _Sub(nn.Module):
    def forward(self, x):
        return x - x


class _Cat(nn.Module):
    def forward(self, x):
        import torch

        return torch.cat([x, x], dim=1)


class _Attention(nn.Module):
    def forward(self, q):
        from torch.nn.functional import scaled_dot_product_attention

        return scaled_dot_product_attention(q, q, q)


def build_probe(probe: Probe) -> nn.Module:
    key, args = probe.build
    if key == "conv":
        cin, cout, k, stride, groups = args
        return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2 if stride < k else 0, groups=groups)
    if key == "linear":
        return nn.Linear(*args)
    if key == "sdpa":
        return _Attention()
    channels = args[0]
    return {"relu": lambda: nn.ReLU(), "relu6": lambda: nn.ReLU6(), "silu": lambda: nn.SiLU(),
            "gelu": lambda: nn.GELU(), "hardswish": lambda: nn.Hardswish(), "sigmoid": lambda: nn.Sigmoid(),
            "batchnorm": lambda: nn.BatchNorm2d(channels), "layernorm": lambda: _ChannelsLast(channels),
            "add": lambda: _Binary("add"), "mul": lambda: _Binary("mul"),
            "maxpool": lambda: nn.MaxPool2d(3, 2, 1), "avgpool": lambda: nn.AdaptiveAvgPool2d(1),
            "softmax": lambda: nn.Softmax(dim=-1), "cat": lambda: _Cat(),
            "hardsigmoid": lambda: nn.Hardsigmoid(), "groupnorm": lambda: nn.GroupNorm(1, channels),
            "avgpool3": lambda: nn.AvgPool2d(3, 1, 1, count_include_pad=False), "sub": lambda: _Sub(),
            "shuffle": lambda: _Shuffle(), "permute": lambda: _Permute(), "mean": lambda: _Mean(),
            # no running statistics: the batch's own, in eval mode too (as F.batch_norm(training=True) computes them)
            "batchnorm_stats": lambda: nn.BatchNorm2d(channels, affine=False, track_running_stats=False)}[key]()


class _ChannelsLast(nn.LayerNorm):
    """LayerNorm over the last dimension of a 4-D input (as ConvNeXt and Swin apply it to NHWC activations)."""

    def __init__(self, channels: int):
        super().__init__(channels)
        self.channels = channels

    def forward(self, x):
        return super().forward(x.reshape(-1, self.channels))


def prepare_probe(probe: Probe, dtype: str, device: str = "cpu"):
    """(the prepared layer, its count): ``probe`` built in ``dtype`` on ``device`` with a seeded input, its one
    layer extracted and prepared as the layer harness times it (kernels.layers); what bench/test_opsweep.py times
    and fault_free_times times again."""
    import torch

    from kernels.base import torch_dtype
    from kernels.layers import extract_layers, prepare_layer

    module = build_probe(probe).to(device=device, dtype=torch_dtype(dtype)).eval()
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(probe.input_shape, generator=gen, device=device, dtype=torch_dtype(dtype))
    cases, counts = extract_layers(module, (x,), "opsweep")
    if len(cases) != 1:
        raise RuntimeError(f"probe {probe.name} gave {len(cases)} layers, not one")
    return prepare_layer(cases[0]), counts


#: the size the cost of fresh memory is measured at (bench/test_opsweep.py::test_fresh_memory_cost): twice the size
#: from which an allocation is mapped fresh from the OS on every call (results.predict.FRESH_BYTES)
FRESH_PROBE_BYTES = 2 * FRESH_BYTES


def fresh_memory_times(nbytes: int, calls: int) -> dict:
    """Per-call seconds of writing ``nbytes`` into a fresh allocation and freeing it (``torch.empty(n).fill_(1)``,
    then ``del``: the fault, zeroing and unmapping of each page, as a model's call pays them) and into one held
    tensor (``fill_``), ``calls`` each after one warm-up, and whether both were filled: what
    bench/test_opsweep.py::test_fresh_memory_cost runs in a child process. (Without the free in the timed region a
    page cost 0.65 us at best on a Zen 5 VM, 2026-12-03, where probes and models paid 1.2-1.5 us: the unmapping.)"""
    import time

    import torch

    n = nbytes // 4
    held = torch.empty(n)
    out, ok = {"held_memory": [], "fresh_memory": []}, True
    for kernel in ("held_memory", "fresh_memory"):
        for i in range(calls + 1):
            start = time.perf_counter()
            x = torch.empty(n).fill_(1.0) if kernel == "fresh_memory" else held.fill_(1.0)
            ok = ok and float(x[0]) == 1.0 and float(x[-1]) == 1.0 and float(x[n // 2]) == 1.0
            del x
            if i:
                out[kernel].append(time.perf_counter() - start)
    out["verified"] = ok
    return out


#: GLIBC_TUNABLES for a child process whose allocator keeps freed memory (no page fault per call): the mmap and
#: trim thresholds raised (512 MiB, 1 GiB); removed NF-ResNet-50's 18,400 faults a call on a Zen 5 VM, 2026-12-03
KEEP_MEMORY_TUNABLES = "glibc.malloc.mmap_threshold=536870912:glibc.malloc.trim_threshold=1073741824"


def timed_calls(fn, budget_s: float, most: int = 100) -> dict:
    """``fn`` called 3 times to warm, then timed call by call until ``budget_s`` (5 calls at least, ``most`` at most):
    per-call times, best, median, and page faults per call in this process. What the child processes of
    bench/test_opsweep.py time probes and the working-set model with, and bench/predict_cli.machine_now the reference
    model: plain calls under a short, bounded budget, outside the harness."""
    import statistics
    import time

    from kernels.pages import minor_faults

    for _ in range(3):
        fn()
    times, start, faults = [], time.perf_counter(), minor_faults()
    while len(times) < 5 or (time.perf_counter() - start < budget_s and len(times) < most):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"times_s": times, "best_s": min(times), "median_s": statistics.median(times), "n": len(times),
            "faults_per_call": (minor_faults() - faults) / len(times)}


def fault_free_times(names: list[str], dtype: str, budget_s: float = 0.5) -> dict:
    """Per probe (by name): its warm per-call times, best and median, and page faults per call, in this process;
    what bench/test_opsweep.py::test_probes_without_faults runs in a child process started with
    KEEP_MEMORY_TUNABLES, so that the probes whose calls faulted pages in run without: their own time, and with
    their faulting time the price of a page fault inside an op."""
    by_name = {p.name: p for p in probes(False)}
    out = {}
    for name in names:
        p, _counts = prepare_probe(by_name[name], dtype)
        out[name] = {**timed_calls(p.fn, budget_s), "verified": p.verify().ok}
    return out


# ---- the whole-model calibration ----------------------------------------------------------------------------
#: the reference model's input (batch 1, a 128x128 image: about 15 ms a call on a 2-core Xeon VM)
REFERENCE_INPUT = (1, 3, 128, 128)
#: the reference model timed again on a larger image (bench/test_opsweep.py::test_working_set_calibration), so large
#: that what one call writes and reads anew (its weights and every op's output) is WORKING_SET_TIMES the last-level
#: cache: each op then finds its data evicted since its last call, as a user's model at 224x224 does; the image's
#: side within these bounds (a multiple of 32)
WORKING_SET_TIMES, WORKING_SET_SIDES = 3, (224, 640)


def working_set_times(side: int, budget_s: float = 1.5, most: int = 100) -> dict:
    """The reference model at ``side`` x ``side`` (batch 1, fp32, eval, no_grad), timed_calls for ``budget_s``:
    per-call times, best, median and page faults per call in this process, and whether its output was finite;
    what bench/test_opsweep.py::test_working_set_calibration runs in a child process started with
    KEEP_MEMORY_TUNABLES where the record's own calls faulted pages in (their faults are priced apart), and
    bench/predict_cli.machine_now runs at the calibration's image."""
    import torch

    model = reference_model().eval()
    x = torch.randn((1, 3, side, side), generator=torch.Generator().manual_seed(0))
    out = {}
    with torch.no_grad():
        times = timed_calls(lambda: out.update(y=model(x)), budget_s, most)
    return {**times, "verified": bool(torch.isfinite(out["y"]).all())}


def working_set_side(llc_bytes: int | None, weight_bytes: int, outputs_at_224: int) -> int:
    """The square image side (a multiple of 32 within WORKING_SET_SIDES) at which the reference model's working set
    (``weight_bytes`` + its outputs, ``outputs_at_224`` bytes at 224x224, growing with the image's area) is
    WORKING_SET_TIMES ``llc_bytes``; the smallest side where the machine names no cache."""
    want = WORKING_SET_TIMES * (llc_bytes or 0) - weight_bytes
    if want <= outputs_at_224 or outputs_at_224 <= 0:
        return WORKING_SET_SIDES[0]
    side = 32 * math.ceil(224 * math.sqrt(want / outputs_at_224) / 32)
    return max(WORKING_SET_SIDES[0], min(WORKING_SET_SIDES[1], side))


class _SqueezeExcite(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.pool, self.reduce = nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, max(8, channels // 4), 1)
        self.act, self.expand, self.gate = nn.ReLU(), nn.Conv2d(max(8, channels // 4), channels, 1), nn.Hardsigmoid()

    def forward(self, x):
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class _Block(nn.Module):
    """An inverted residual (1x1 expand, depthwise 3x3, squeeze-excite, 1x1 project) with a concatenated shortcut
    where the width grows: the small, data-movement-heavy ops of the mobile families."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int = 4):
        super().__init__()
        mid = cin * expand
        self.body = nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.Hardswish(),
                                  nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid),
                                  nn.Hardswish(), _SqueezeExcite(mid),
                                  nn.Conv2d(mid, cout - cin if stride == 1 and cout > cin else cout, 1, bias=False),
                                  nn.BatchNorm2d(cout - cin if stride == 1 and cout > cin else cout))
        self.mode = "add" if stride == 1 and cin == cout else "cat" if stride == 1 else "none"

    def forward(self, x):
        y = self.body(x)
        if self.mode == "add":
            return x + y
        if self.mode == "cat":
            import torch

            return torch.cat([x, y], dim=1)
        return y


def reference_model() -> nn.Module:
    """The model the run times whole to learn how this machine's model calls spread and how far they sit from the
    sum of their ops (bench/test_opsweep.py): built from torch.nn alone, of the shapes and op kinds of a small
    mobile CNN, so it needs no package and is the same on every machine."""
    return nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish(),
                         _Block(16, 16, 1), _Block(16, 24, 2), _Block(24, 32, 1), _Block(32, 32, 1),
                         _Block(32, 64, 2), _Block(64, 96, 1), _Block(96, 96, 1), _Block(96, 160, 2),
                         nn.Conv2d(160, 640, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(640, 1000))


#: the evicting model's input and one block's weights (a 512-channel 3x3 convolution at 7x7: 9.4 MB in fp32)
EVICTING_INPUT = (1, 512, 7, 7)
EVICTING_BLOCK_BYTES = 512 * 512 * 9 * 4
#: blocks: enough that the weights are twice the last-level cache, within these bounds (time stays bounded on a
#: 300 MiB L3: 64 blocks, ~0.6 GB)
EVICTING_BLOCKS = (4, 64)


def evicting_blocks(llc_bytes: int | None) -> int:
    """How many blocks make the evicting model's fp32 weights twice ``llc_bytes`` (the last-level cache)."""
    want = -(-2 * (llc_bytes or 0) // EVICTING_BLOCK_BYTES)
    return max(EVICTING_BLOCKS[0], min(EVICTING_BLOCKS[1], want))


def evicting_model(blocks: int = EVICTING_BLOCKS[0]) -> nn.Module:
    """The model the run times whole to learn how much a model whose weights exceed the last-level cache slows
    down on this machine (bench/test_opsweep.py): ``blocks`` dense 3x3 convolutions of 512 channels at 7x7, each
    with its own 9.4 MB of weights, so each call finds every weight evicted since the last. The predictor prices it
    with warm probes and with cold-cache ones and learns where between them this machine's model calls land."""
    layers = []
    for _ in range(blocks):
        layers += [nn.Conv2d(512, 512, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers)
