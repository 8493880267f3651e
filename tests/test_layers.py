"""Layers: extraction, implicit GEMM shapes, the gap breakdown, the layer report on a synthetic record."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from kernels.layers import extract_layers, implicit_gemm, layer_specs, prepare_layer
from kernels.models import DecoderBlock, DecoderConfig
from results.analysis import analyse
from results.layers import PARTS, fit_level, gap_breakdown
from results.record import measurement

ROOT = Path(__file__).resolve().parent.parent


def test_gap_breakdown_adds_up_on_a_synthetic_case():
    gemm = {"status": "ok", "median_s": 3.0e-3, "flops": 2e8, "bytes": 3e7}
    parts = gap_breakdown(t=5.0e-3, flops=2e8, nbytes=4e7, peak=1e12, bandwidth=5e10, n_ops=3, dispatch_s=1e-5,
                          gemm=gemm)
    assert list(parts) == list(PARTS)
    assert sum(parts.values()) == pytest.approx(5.0e-3, rel=0.01)
    assert parts["roof"] == pytest.approx(8e-4)  # max(2e8 / 1e12, 4e7 / 5e10) = 0.8 ms, memory bound
    assert parts["overhead"] == pytest.approx(3e-5)
    assert parts["gemm_shortfall"] == pytest.approx(3.0e-3 - 1e-5 - 6e-4)  # GEMM minus its dispatch and its roof
    # the layer's own time beyond the GEMM (1.98 ms) is capped by what is left of t: 5 - 0.8 - 0.03 - 2.39 ms
    assert parts["layer_vs_gemm"] == pytest.approx(5.0e-3 - 8e-4 - 3e-5 - (3.0e-3 - 1e-5 - 6e-4))
    assert parts["unexplained"] == pytest.approx(0.0, abs=1e-12)
    assert all(v >= 0 for v in parts.values())


def test_gap_breakdown_never_exceeds_the_time():
    parts = gap_breakdown(t=1e-4, flops=1e9, nbytes=1e6, peak=1e12, bandwidth=1e11, n_ops=50, dispatch_s=1e-5)
    assert sum(parts.values()) == pytest.approx(1e-4) and parts["unexplained"] == 0
    assert parts["roof"] == pytest.approx(1e-4)  # faster than the roof is capped, not negative


def test_fit_level():
    caches = [{"name": "L1", "size_bytes": 32 << 10, "instances": 2}, {"name": "L2", "size_bytes": 1 << 20, "instances": 2},
              {"name": "L3", "size_bytes": 32 << 20, "instances": 1, "shared": True}]
    assert fit_level(60 << 10, caches) == "L1" and fit_level(3 << 20, caches) == "L3"
    assert fit_level(64 << 20, caches) == "DRAM"


def test_implicit_gemm_shapes_by_hand():
    conv = nn.Conv2d(64, 128, 3, stride=2, padding=1)
    assert implicit_gemm(conv, [[2, 64, 56, 56]], [[2, 128, 28, 28]]) == {"m": 2 * 28 * 28, "n": 128, "k": 64 * 9,
                                                                           "batch": 1}
    dw = nn.Conv2d(32, 32, 3, padding=1, groups=32)
    assert implicit_gemm(dw, [[1, 32, 8, 8]], [[1, 32, 8, 8]]) == {"m": 64, "n": 1, "k": 9, "batch": 32}
    assert implicit_gemm(nn.Linear(16, 8), [[4, 10, 16]], [[4, 10, 8]]) == {"m": 40, "n": 8, "k": 16, "batch": 1}
    assert implicit_gemm(nn.ReLU(), [[4]], [[4]]) is None


def test_extract_distinct_layers_with_multiplicity():
    cfg = DecoderConfig(hidden=64, layers=1, heads=4, kv_heads=2, intermediate=128)
    cases, counts = extract_layers(DecoderBlock(cfg).eval(), (torch.randn(1, 5, 64),), "block")
    by_path = {c.path: c for c in cases}
    assert by_path["attn_norm"].multiplicity == 2  # attn_norm and mlp_norm: same type, config and shape
    assert by_path["attn.q"].multiplicity == 2  # q and o projections are the same 64 -> 64 linear
    assert "attn" not in by_path and "mlp" not in by_path  # they call other modules: not timeable alone
    assert by_path["attn.core"].macs == 4 * 5 * 5 * (16 + 16)
    assert sum(c.macs * c.multiplicity for c in cases) == counts.macs  # nothing lost, nothing doubled
    p = prepare_layer(by_path["mlp.gate"])
    p.fn()
    assert p.verify().ok


def test_multi_head_attention_is_a_layer():
    mha = nn.MultiheadAttention(16, 2, batch_first=True)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = mha

        def forward(self, x):
            return self.attn(x, x, x, need_weights=False)[0]

    cases, _ = extract_layers(Block().eval(), (torch.randn(1, 4, 16),), "mha")
    assert [c.type for c in cases] == ["MultiheadAttention"] and cases[0].kwargs == {"need_weights": False}


def _record_with_layers():
    caches = [{"name": "L2", "size_bytes": 1 << 20, "instances": 1, "shared": True}]
    rows = [measurement(group="gemm", kernel="gemm", dtype="fp32", status="ok", shape=[1, 1000, 1000, 1000],
                        flops=2e9, bytes=12e6, times_s=[0.01], verified=True),  # 200 GFLOP/s
            measurement(group="stream", kernel="copy", dtype="fp32", status="ok", size_bytes=64 << 20, bytes=5e8,
                        times_s=[0.01], verified=True),  # DRAM 50 GB/s
            measurement(group="overhead", kernel="dispatch", dtype="fp32", status="ok", times_s=[2e-6], verified=True)]
    gemm = {"status": "ok", "median_s": 1.2e-3, "flops": 1e8, "bytes": 2e6, "shape": [1, 100, 100, 100]}
    rows.append(measurement(group="layer", kernel="net:conv", dtype="fp32", status="ok", flops=1e8, bytes=2e6,
                            times_s=[1.5e-3, 1.6e-3, 1.7e-3], verified=True, statistic="median",
                            extra={"spec": "net", "layer": "conv", "type": "Conv2d", "multiplicity": 2, "n_ops": 1,
                                   "warm_median_s": 1.4e-3, "gemm": gemm, "input_shapes": [[1, 8, 8, 8]]}))
    rows.append(measurement(group="layer", kernel="net:dw", dtype="fp32", status="ok", flops=2e6, bytes=4e6,
                            times_s=[5e-4], verified=True, statistic="median",
                            extra={"spec": "net", "layer": "dw", "type": "Conv2d", "multiplicity": 1, "n_ops": 1,
                                   "warm_median_s": 2e-4}))
    rows.append(measurement(group="model", kernel="net", dtype="fp32", status="ok", times_s=[4e-3], verified=True,
                            statistic="median"))
    return {"schema": "roofline-run", "schema_version": 1, "run_id": "synthetic", "created": "2026-11-29",
            "platform": {"name": "synthetic", "device": "cpu", "kind": "cpu", "caches": caches}, "options": {},
            "measurements": rows}


def test_layer_report_on_a_synthetic_record():
    record = _record_with_layers()
    rows = {r["layer"]: r for r in analyse(record).layers}
    conv, dw = rows["conv"], rows["dw"]
    assert conv["bound"] == "compute" and conv["intensity"] == 50  # ridge 200e9 / 50e9 = 4 FLOP/B
    assert dw["bound"] == "memory" and dw["attribution"].startswith("memory/cache")
    assert conv["efficiency"] == pytest.approx((1e8 / 1.6e-3) / 200e9)
    for r in rows.values():
        assert sum(r[f"gap_{p}_s"] for p in PARTS) == pytest.approx(r["time_s"], rel=0.01)
    assert conv["share_of_model"] == pytest.approx(1.4e-3 * 2 / 4e-3)
    model = analyse(record).models[0]
    assert model["layers_warm_sum_s"] == pytest.approx(1.4e-3 * 2 + 2e-4)


def test_layer_plots_are_pngs(tmp_path):
    from results.plot import write_layer_plots

    paths = write_layer_plots(analyse(_record_with_layers()), tmp_path / "run")
    assert paths and all(Path(p).read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_quick_layer_specs_do_not_need_torchvision():
    specs = layer_specs("cpu", quick=True, have_torchvision=False)
    runnable = {s.source for s in specs if not s.missing}
    assert runnable == {"decoder-block", "resnet50-layer1-conv3x3", "mobilenet_v2-dw3x3"}
    # the torchvision model is listed as missing with the reason, not dropped (issue 23)
    missing = [s for s in specs if s.missing]
    assert [s.source for s in missing] == ["resnet50"] and "torchvision is not installed" in missing[0].missing
    assert all(not s.missing for s in layer_specs("cpu", quick=True, have_torchvision=True))
    user = layer_specs("cpu", quick=True, user_model="pkg.mod:make", user_input="8,3,32,32")
    assert len(user) == 1 and user[0].input_shape == (8, 3, 32, 32)


def test_bad_model_options_fail_before_timing(tmp_path):
    # the real command line once (exit status 4, nothing written), the other cases through the same check
    out = subprocess.run([sys.executable, "-m", "pytest", "bench/", "--platform", "cpu", "--results-dir", str(tmp_path),
                          "--model", "resnet05"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 4 and "did you mean resnet50" in out.stderr and not list(tmp_path.glob("*.json"))
    from bench import options

    for model, shape, message in (("resnet50", "1,a,3", "bad input shape"), (None, "1,3,8,8", "--input needs --model")):
        with pytest.raises(options.OptionError, match=message):
            options.model(model, shape)


def test_labels_of_points_on_top_of_each_other_do_not_overlap():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from results.mplplot import label_points

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.scatter([64, 64, 70, 1], [1e11, 1e11, 1.02e11, 1e9])
    ax.text(64, 1.2e11, "fp32 peak")  # a roof's label is an obstacle too
    label_points(ax, [("layer3.1.conv2", 64, 1e11), ("layer2.1.conv2", 64, 1e11), ("layer1.0.conv2", 70, 1.02e11),
                      ("alone", 1, 1e9)])
    fig.canvas.draw()
    from matplotlib.text import Text

    boxes = [Text.get_window_extent(t) for t in ax.texts]  # the text alone, not an annotation's leader line
    assert len(boxes) == 5
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    alone = ax.texts[-1]
    assert alone.get_text() == "alone" and alone.arrow_patch is None  # no leader where the label sits by its point
    plt.close(fig)
