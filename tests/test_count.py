"""The model counter against hand-computed values, and against torchvision's published counts."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from kernels.count import CountError, count_model
from kernels.models import Decoder, DecoderConfig
from kernels.zoo import build_model, parse_shape

ROOT = Path(__file__).resolve().parent.parent


def count(module, *inputs, train=False):
    return count_model(module, inputs, train=train)


@pytest.mark.parametrize("conv,shape,macs", [
    (nn.Conv2d(3, 8, 3, padding=1), (1, 3, 8, 8), 8 * 8 * 8 * 3 * 9),  # plain, padding counted as data
    (nn.Conv2d(8, 16, 3, padding=1, groups=4), (1, 8, 6, 6), 16 * 36 * 2 * 9),  # groups: Cin/groups = 2
    (nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), (1, 8, 8, 8), 8 * 16 * 1 * 9),  # depthwise, stride 2
    (nn.Conv2d(2, 4, 3, dilation=2), (1, 2, 9, 9), 4 * 25 * 2 * 9),  # dilation: 9 - 2*2 = 5 outputs per side
    (nn.ConvTranspose2d(4, 2, 3, stride=2), (1, 4, 5, 5), 4 * 25 * 2 * 9),  # each input scatters into Cout*k*k
    (nn.Conv1d(4, 6, 5, bias=False), (2, 4, 20), 2 * 6 * 16 * 4 * 5),
])
def test_convolution_macs_by_hand(conv, shape, macs):
    c = count(conv, torch.randn(shape))
    assert c.macs == macs and c.flops == 2 * macs
    assert c.total_params == sum(p.numel() for p in conv.parameters())


def test_linear_matmul_bmm_by_hand():
    c = count(nn.Linear(10, 20), torch.randn(3, 10))
    assert c.macs == 3 * 10 * 20 and c.other_flops == 3 * 20  # the bias add is another FLOP, not a MAC
    assert count(nn.Linear(10, 20), torch.randn(2, 3, 10)).macs == 6 * 10 * 20

    class Products(nn.Module):
        def forward(self, a, b, x):
            return torch.bmm(a, b), torch.einsum("ij,jk->ik", x, x.t()), a @ b

    c = count(Products(), torch.randn(2, 3, 4), torch.randn(2, 4, 5), torch.randn(6, 7))
    assert c.macs == 2 * 3 * 5 * 4 + 6 * 6 * 7 + 2 * 3 * 5 * 4


def _attention(q, k, v):
    return F.scaled_dot_product_attention(q, k, v)


class SDPA(nn.Module):
    def forward(self, q, k, v):
        return _attention(q, k, v)


ATTENTION_MACS = 2 * 4 * 6 * (8 + 8)  # heads x L x S x (E + Ev)


@pytest.mark.parametrize("backend", ["default", "math"])
def test_attention_through_each_cpu_sdpa_path(backend):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = torch.randn(1, 2, 4, 8), torch.randn(1, 2, 6, 8), torch.randn(1, 2, 6, 8)
    if backend == "math":
        with sdpa_kernel(SDPBackend.MATH):
            c = count(SDPA(), q, k, v)
    else:
        c = count(SDPA(), q, k, v)
    assert c.macs == ATTENTION_MACS
    assert not c.uncounted(), c.uncounted()


def test_multi_head_attention_fast_path_counts_like_the_slow_path():
    mha = nn.MultiheadAttention(16, 2, batch_first=True)
    x = torch.randn(2, 5, 16)

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return self.mha(x, x, x, need_weights=False)[0]

    fast = count(Wrap(), x)  # eval + no_grad: aten._native_multi_head_attention, one fused op
    assert any(o.op == "aten._native_multi_head_attention" for o in fast.ops)
    by_hand = 2 * 5 * 16 * 16 * 4 + 2 * 2 * 5 * 5 * 16  # q, k, v, out projections + QK^T and PV
    assert fast.macs == by_hand
    slow = count_model(Wrap(), (x,), train=True)  # autograd on: the op-by-op path, forward and backward
    forward_slow = sum(o.macs for o in slow.ops if o.phase == "forward")
    assert forward_slow == by_hand


def test_transformer_encoder_layer_fast_path():
    layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
    c = count(layer, torch.randn(2, 5, 16))
    attention = 2 * 5 * 16 * 16 * 4 + 2 * 2 * 5 * 5 * 16
    ffn = 2 * 2 * 5 * 16 * 32
    assert c.macs == attention + ffn and not c.uncounted()


def test_norms_and_elementwise_are_other_flops():
    c = count(nn.LayerNorm(8), torch.randn(2, 5, 8))
    assert c.macs == 0 and c.other_flops == 5 * 80
    bn = nn.BatchNorm2d(3).eval()
    assert count(bn, torch.randn(2, 3, 4, 4)).other_flops == 2 * 96
    assert count(nn.ReLU(), torch.randn(4, 6)).other_flops == 24
    assert count(nn.Softmax(-1), torch.randn(4, 6)).other_flops == 5 * 24
    pool = count(nn.MaxPool2d(2), torch.randn(1, 3, 8, 8))
    assert pool.other_flops == 3 * 16 * 4


def test_shared_module_counted_once_per_call_and_its_parameters_once():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 8)

        def forward(self, x):
            return self.lin(torch.relu(self.lin(x)))

    c = count(Twice(), torch.randn(3, 8))
    assert c.macs == 2 * 3 * 8 * 8 and c.total_params == 8 * 8 + 8
    table = c.layer_table()
    row = table[table["module"] == "lin"].iloc[0]
    assert row["calls"] == 2 and row["macs"] == 2 * 3 * 8 * 8
    total = table[table["module"] == "TOTAL"].iloc[0]
    assert total["macs"] == c.macs and total["params"] == 72


def test_bytes_are_dtype_aware_and_views_free():
    lin = nn.Linear(16, 16, bias=False)
    fp32 = count(lin, torch.randn(4, 16))
    bf16 = count(lin.to(torch.bfloat16), torch.randn(4, 16, dtype=torch.bfloat16))
    assert fp32.bytes_read == (4 * 16 + 16 * 16) * 4 and fp32.bytes_written == 4 * 16 * 4
    assert bf16.bytes_read * 2 == fp32.bytes_read and bf16.bytes_written * 2 == fp32.bytes_written

    class Views(nn.Module):
        def forward(self, x):
            return x.view(4, 4).t().unsqueeze(0).expand(3, 4, 4)

    assert count(Views(), torch.randn(16)).ops == []
    # a reshape that must copy (of a transposed view) is a copy, and is counted as one
    copy = count(nn.Flatten(0), torch.randn(4, 4).t())
    assert [o.op for o in copy.ops] == ["aten.clone"] and copy.bytes_read == 64


def test_embedding_reads_only_the_gathered_rows():
    emb = nn.Embedding(1000, 64)
    c = count(emb, torch.tensor([[1, 2, 3]]))
    assert c.bytes_read == 3 * 8 + 3 * 64 * 4 and c.bytes_written == 3 * 64 * 4


def test_an_op_without_formula_is_listed_not_dropped():
    class Spectrum(nn.Module):
        def forward(self, x):
            return torch.fft.rfft(x).abs()

    c = count(Spectrum(), torch.randn(4, 64))
    assert c.uncounted() and all(o.bytes_read > 0 for o in c.ops)
    assert "fft" in c.layer_table()["uncounted"].iloc[-1]


def test_a_failing_layer_is_named_with_its_shapes():
    model = nn.Sequential(nn.Linear(8, 4), nn.Linear(5, 2))
    with pytest.raises(CountError, match=r"layer '1'.*\[\[2, 4\]\]"):
        count(model, torch.randn(2, 8))


def test_unknown_model_lists_close_matches():
    with pytest.raises(CountError, match="did you mean resnet50"):
        build_model("resnet05")
    with pytest.raises(CountError, match="positive integer"):
        parse_shape("1,0,3")


def test_meta_device_counts_a_70b_decoder_without_allocating():
    cfg = DecoderConfig.llama_70b()
    with torch.device("meta"):
        model = Decoder(cfg).to(torch.bfloat16)
    c = count(model, torch.zeros(1, 16, dtype=torch.long, device="meta"))
    assert c.total_params == cfg.param_count() == 70_553_706_496
    tokens = 16
    dense = tokens * (c.total_params - 2 * cfg.vocab * cfg.hidden - (2 * cfg.layers + 1) * cfg.hidden)
    head = tokens * cfg.vocab * cfg.hidden
    attention = cfg.layers * cfg.heads * tokens * tokens * 2 * (cfg.hidden // cfg.heads)
    assert c.macs == dense + head + attention  # every linear once per token, plus QK^T and PV
    assert not c.uncounted()


def test_training_step_counts_backward():
    lin = nn.Linear(8, 4)
    c = count_model(lin, (torch.randn(3, 8, requires_grad=True),), train=True)
    forward = sum(o.macs for o in c.ops if o.phase == "forward")
    backward = sum(o.macs for o in c.ops if o.phase == "backward")
    assert forward == 3 * 8 * 4 and backward == 2 * forward  # grad input + grad weight


def test_resnet50_matches_the_seed_example():
    pytest.importorskip("torchvision")
    c = count_model(build_model("resnet50"), (torch.empty(1, 3, 224, 224, device="meta"),))
    assert c.total_params == 25_557_032
    assert round(c.macs / 1e9, 2) == 4.09 and round(c.flops / 1e9, 2) == 8.18


def test_command_line(tmp_path, capsys):
    # the real command line once (a subprocess: imports, exit code); the rest in-process through the same main()
    out = subprocess.run([sys.executable, "-m", "kernels.count", "kernels.models:decoder_block", "--input",
                          "1,128,512", "--dtype", "bf16", "--csv", str(tmp_path / "l.csv"), "--batch-sweep", "1,8"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "TOTAL" in out.stdout and "batch sweep" in out.stdout and (tmp_path / "l.csv").exists()
    from bench.count_cli import main

    assert main(["nosuch.module:f"]) == 2 and "cannot load" in capsys.readouterr().err
