"""Model variants: the matrix and why a pair is missing, the bytes of quantised weights by hand, the quality metrics
on known tensors, the choice and the predicted order on synthetic timings, the figure, and one small real run of
bench/test_variants.py that reports missing runtimes (nothing here asserts a speed)."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from kernels.count import count_model
from kernels.runtimes import build
from kernels.variants import (
    DEFAULT_MATRIX,
    OFFERS,
    PRECISIONS,
    DeviceFacts,
    Variant,
    VariantError,
    counted,
    matrix,
    ort_int8_storage,
    parse_list,
    quality,
    stored_bytes,
    weight_storage,
    weighted_layers,
    why_missing,
    within_budget,
)
from results.analysis import analyse
from results.variants import (
    choose,
    explain,
    ordering,
    roofs_of,
    summary,
    summary_lines,
    variant_rows,
)

ROOT = Path(__file__).resolve().parent.parent
CPU = DeviceFacts("cpu")
HAVE_TORCHAO = importlib.util.find_spec("torchao") is not None


# ---- the matrix -------------------------------------------------------------------------------------------------
def test_default_matrix_starts_with_the_reference_and_lists_every_precision_in_eager():
    variants = matrix("cpu")
    assert variants[0] == Variant("eager", "fp32")
    assert {v.precision for v in variants if v.runtime == "eager"} == set(PRECISIONS)
    assert len(variants) == len(set(variants)) == len(DEFAULT_MATRIX["cpu"])
    assert Variant("compile", "fp32") in variants and Variant("compile", "bf16") not in variants  # a minute each
    assert Variant("compile", "bf16") in matrix("cuda")


def test_one_axis_given_takes_what_each_runtime_offers_both_given_takes_every_pair():
    only = matrix("cpu", runtimes=["onnxruntime"])
    assert {v.precision for v in only if v.runtime == "onnxruntime"} == OFFERS["onnxruntime"]
    assert only[0] == Variant("eager", "fp32")  # the reference is always measured
    both = matrix("cpu", precisions=["bf16"], runtimes=["onnxruntime"])
    assert Variant("onnxruntime", "bf16") in both  # listed, and missing with its reason below
    assert "has no bf16 variant" in why_missing(Variant("onnxruntime", "bf16"), CPU)


def test_parse_list_names_the_bad_entry():
    assert parse_list("fp32, int8-wo", PRECISIONS, "--precisions") == ["fp32", "int8-wo"]
    assert parse_list(None, PRECISIONS, "--precisions") is None
    with pytest.raises(VariantError, match="unknown int3"):
        parse_list("fp32,int3", PRECISIONS, "--precisions")
    with pytest.raises(VariantError, match="empty"):
        parse_list(" , ", PRECISIONS, "--precisions")


def test_why_missing_gives_a_reason_for_each_kind_of_absence(monkeypatch):
    import kernels.variants as variants

    assert "GPU variant" in why_missing(Variant("eager", "fp8-wo"), CPU)
    assert "GPU variant" in why_missing(Variant("eager", "int4-wo"), CPU)
    assert "compute capability 8.9" in why_missing(Variant("eager", "fp8-wo"), DeviceFacts("cuda", (8, 0)))
    assert "CPU execution provider has no fp16" in why_missing(Variant("onnxruntime", "fp16"), CPU)
    assert "NVIDIA GPU" in why_missing(Variant("openvino", "fp32"), DeviceFacts("cuda", (9, 0)))
    assert "NVIDIA GPUs; this run is on a CPU" in why_missing(Variant("tensorrt", "fp16"), CPU)
    monkeypatch.setattr(variants, "_have", lambda name: False)
    assert "torchao is not installed" in why_missing(Variant("eager", "int8-wo"), CPU)
    assert "onnx and onnxscript" in why_missing(Variant("onnxruntime", "fp32"), CPU)
    assert why_missing(Variant("eager", "fp32"), CPU) is None and why_missing(Variant("eager", "bf16"), CPU) is None
    monkeypatch.setattr(variants, "_have", lambda name: name != "torch_tensorrt")
    assert "torch_tensorrt is not installed" in why_missing(Variant("tensorrt", "fp16"), DeviceFacts("cuda", (9, 0)))
    monkeypatch.setattr(variants, "openvino_capabilities", lambda: {"FP32", "INT8"})
    monkeypatch.setattr(variants, "_have", lambda name: True)
    assert "lists no BF16" in why_missing(Variant("openvino", "bf16"), CPU)


# ---- bytes by hand ----------------------------------------------------------------------------------------------
class TwoLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(64, 32)
        self.b = nn.Linear(32, 16, bias=False)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def test_stored_bytes_of_plain_weights():
    m = TwoLinear()
    assert stored_bytes(m.a.weight) == 64 * 32 * 4
    assert stored_bytes(m.a.weight.to(torch.bfloat16)) == 64 * 32 * 2
    assert weighted_layers(m) == {"a": (64 * 32, "linear"), "b": (32 * 16, "linear")}
    # ONNX Runtime's quantize_dynamic, per tensor: int8 values, one fp32 scale and one int8 zero point
    assert ort_int8_storage(weighted_layers(m)) == {"a": (2048 + 5, "int8"), "b": (512 + 5, "int8")}


@pytest.mark.skipif(not HAVE_TORCHAO, reason="torchao is not installed")
def test_torchao_int8_weights_are_one_byte_each_plus_a_scale_and_zero_point_per_row():
    m = TwoLinear().eval()
    built = build(Variant("eager", "int8-wo"), m, torch.randn(2, 64), "cpu")
    # int8 values (1 byte each), and per output row one scale in the weight's dtype (fp32 here) and one int8 zero point
    assert built.storage == {"a": (64 * 32 * 1 + 32 * (4 + 1), "int8"), "b": (32 * 16 * 1 + 16 * (4 + 1), "int8")}
    assert not built.dynamic
    assert "2 of 2 weighted layers quantised" in built.notes[0]
    out = built.output(built.run(built.feed(torch.randn(2, 64))))
    assert out.shape == (2, 16)
    assert type(m.a.weight) is nn.Parameter  # the reference model is left as it was
    dyn = build(Variant("eager", "int8-dyn"), m, torch.randn(2, 64), "cpu")
    assert dyn.dynamic == {"a", "b"} and weight_storage(dyn.keep[0], {"a"}) == {"a": dyn.storage["a"]}


def test_counted_bytes_take_each_weight_at_its_stored_width():
    m = TwoLinear().eval()
    counts = count_model(m.to("meta"), (torch.empty(4, 64, device="meta"),))
    plain = counted(counts, {}, set())
    storage = {"a": (2048 + 128, "int8"), "b": (512 + 64, "int8")}
    q = counted(counts, storage, set())
    # each weight read once: 4 bytes an element before, its stored size after
    assert plain["bytes"] - q["bytes"] == (2048 * 4 - 2176) + (512 * 4 - 576)
    assert q["flops"] == plain["flops"] and q["weights_changed"] == 2 and q["weight_bytes_stored"] == 2752
    assert q["intensity"] > plain["intensity"]
    # dynamic: each quantised layer's input also gets an int8 copy, written and read once
    d = counted(counts, storage, {"a", "b"})
    assert d["bytes"] - q["bytes"] == 2 * (4 * 64) + 2 * (4 * 32)
    repriced = counts.with_weights(storage)
    assert {o.weight_dtype for o in repriced.ops if o.macs} == {"int8"}
    assert all(o.weight_dtype == "" for o in counts.ops)  # the count itself is unchanged


# ---- quality ----------------------------------------------------------------------------------------------------
def test_quality_of_identical_outputs_is_perfect():
    ref = torch.randn(8, 10)
    q = quality(ref, ref.clone())
    assert q["n"] == 8 and q["max_rel_error"] == 0 and q["cosine"] == pytest.approx(1.0, abs=1e-6)
    assert q["top1_agreement"] == 1.0 and within_budget(q) == (True, "")


def test_quality_counts_top1_flips_and_scaled_errors():
    ref = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 4.0], [4.0, 0.0, 0.0]])
    got = ref.clone()
    got[0] = torch.tensor([0.0, 1.0, 0.0])  # sample 0's top class flips, its cosine is 0
    got[1, 1] = 2.2  # 10% off, relative to that sample's largest magnitude
    q = quality(ref, got)
    assert q["top1_agreement"] == 0.75 and q["top1_agree_n"] == 3
    assert q["max_rel_error"] == pytest.approx(1.0)  # sample 0: |1 - 0| / 1
    assert q["cosine"] == pytest.approx(0.0, abs=1e-6)
    ok, why = within_budget(q)
    assert not ok and "top-1 agreement 75.0% < 99%" in why and "cosine" in why


def test_quality_of_a_non_classifier_has_no_top1_and_a_bad_shape_is_an_error():
    ref = torch.randn(2, 5, 7)
    assert "top1_agreement" not in quality(ref, ref)
    assert "error" in quality(ref, torch.randn(2, 35, 1)) or quality(ref, torch.randn(3, 5, 7)).get("error")
    assert within_budget({"n": 1, "finite": False, "cosine": 1.0}) == (False, "non-finite outputs")


# ---- the choice on synthetic timings --------------------------------------------------------------------------
def _row(variant, batch, median_s, *, flops=8e9, bytes_=100e6, quality_ok=True, predicted_s=None, status="ok",
         dtype=None, reason="", facts=None):
    runtime, precision = variant.split("/")
    dtype = dtype or {"bf16": "bf16", "fp16": "fp16"}.get(precision, "fp32")
    return {"group": "variant", "kernel": f"m b{batch} {variant}", "dtype": dtype, "impl": runtime, "status": status,
            "reason": reason, "median_s": median_s if status == "ok" else None, "best_s": median_s, "n": 5,
            "iqr_rel": 0.04, "times_s": [median_s] * 5 if status == "ok" else [], "flops": int(flops),
            "bytes": int(bytes_), "extra": {
                "model": "m", "batch": batch, "runtime": runtime, "precision": precision, "compute_dtype": dtype,
                "first_call_s": (median_s or 0) * 2, "build_s": 0.1, "peak_memory_bytes": 1 << 20,
                "counted": {"flops": flops, "bytes": bytes_, "intensity": flops / bytes_},
                "quality": {"n": 16, "cosine": 0.9999 if quality_ok else 0.99, "top1_agreement": 1.0 if quality_ok
                            else 0.9, "finite": True},
                "quality_ok": quality_ok, "quality_why": "" if quality_ok else "cosine 0.99 < 0.999",
                "facts": facts or {}, "predicted": {"predicted_s": predicted_s, "basis": "test"} if predicted_s
                else {"unavailable": "no record"}}}


def _record(rows, roofs=True):
    measurements = list(rows)
    if roofs:
        measurements += [
            {"group": "gemm", "kernel": "gemm", "dtype": "fp32", "impl": "torch", "shape": [1, 1024, 1024, 1024],
             "status": "ok", "verified": True, "flops": 2 * 1024 ** 3, "bytes": 0, "best_s": 2 * 1024 ** 3 / 100e9,
             "median_s": 2 * 1024 ** 3 / 95e9, "n": 5, "times_s": [0.02] * 5, "statistic": "best",
             "flop_per_s": 100e9},
            {"group": "gemm", "kernel": "gemm", "dtype": "bf16", "impl": "torch", "shape": [1, 1024, 1024, 1024],
             "status": "ok", "verified": True, "flops": 2 * 1024 ** 3, "bytes": 0, "best_s": 2 * 1024 ** 3 / 200e9,
             "median_s": 2 * 1024 ** 3 / 190e9, "n": 5, "times_s": [0.01] * 5, "statistic": "best",
             "flop_per_s": 200e9}]
    return {"schema": 1, "run_id": "t", "status": "complete", "platform": {"kind": "cpu", "name": "test CPU",
                                                                           "device": "cpu"},
            "options": {}, "measurements": measurements}


def test_choose_takes_the_fastest_inside_the_quality_budget():
    rows = [_row("eager/fp32", 1, 0.100), _row("eager/bf16", 1, 0.050, bytes_=50e6),
            _row("eager/int8-dyn", 1, 0.030, quality_ok=False), _row("compile/fp32", 1, 0.080),
            _row("eager/fp8-wo", 1, None, status="missing", reason="a GPU variant")]
    analysis = analyse(_record(rows, roofs=False))
    got = variant_rows(analysis)
    assert [r["variant"] for r in got][:2] == ["eager/fp32", "eager/bf16"]
    assert next(r for r in got if r["variant"] == "eager/bf16")["speedup"] == pytest.approx(2.0)
    assert next(r for r in got if r["variant"] == "eager/bf16")["bytes_ratio"] == pytest.approx(2.0)
    d = choose(got)
    assert d["choice"] == "eager/bf16" and d["faster_outside_budget"] == ["eager/int8-dyn"]
    missing = next(r for r in got if r["variant"] == "eager/fp8-wo")
    assert missing["status"] == "missing" and missing["reason"] == "a GPU variant"
    assert choose([r for r in got if not r.get("quality_ok")])["choice"] is None


def test_the_reference_measured_again_gives_the_drift_and_speed_ups_against_the_mean():
    again = _row("eager/fp32", 1, 0.120)
    again["extra"]["again"] = True
    rows = [_row("eager/fp32", 1, 0.100), _row("eager/bf16", 1, 0.050), _row("openvino/fp32", 1, 0.0505), again]
    got = variant_rows(analyse(_record(rows, roofs=False)))
    assert [r["variant"] for r in got] == ["eager/fp32", "eager/bf16", "openvino/fp32"]  # "again" is no variant
    ref = got[0]
    assert ref["drift"] == pytest.approx(0.2) and ref["reference_s"] == pytest.approx(0.110)
    assert got[1]["speedup"] == pytest.approx(0.110 / 0.050)
    d = choose(got)
    assert d["choice"] == "eager/bf16" and d["close"] == ["openvino/fp32"] and "not told apart" in d["close_note"]
    lines = summary_lines(analyse(_record(rows, roofs=False)))
    assert any("drift +20%" in line for line in lines)


def test_explain_names_the_bytes_the_bound_and_what_a_runtime_fused():
    rows = [_row("eager/fp32", 1, 0.100, flops=1e9, bytes_=1e9), _row("eager/bf16", 1, 0.050, flops=1e9, bytes_=5e8),
            _row("compile/fp32", 1, 0.060, flops=1e9, bytes_=1e9, facts={"eager_ops": 300, "generated_kernels": 40})]
    data = summary(analyse(_record(rows)))  # 100 GFLOP/s fp32 roof; no DRAM roof in this record
    by = {r["variant"]: r for r in data["rows"]}
    assert by["eager/bf16"]["explanation"].startswith("eager/bf16: 2.00x fewer bytes (intensity 1 -> 2 FLOP/B)")
    assert "2.00x faster" in by["eager/bf16"]["explanation"]
    assert "300 eager ops -> 40 generated kernels" in by["compile/fp32"]["explanation"]
    assert by["eager/fp32"]["bound"] == "?" and "no DRAM roof" in by["eager/fp32"]["bound_why"]
    assert explain(by["eager/bf16"], None) == "no eager fp32 reference measured"


def test_ordering_counts_agreeing_pairs_and_leaves_ties_out():
    rows = variant_rows(analyse(_record([
        _row("eager/fp32", 1, 0.100, predicted_s=0.090), _row("eager/bf16", 1, 0.050, predicted_s=0.045),
        _row("compile/fp32", 1, 0.080, predicted_s=0.040), _row("openvino/fp32", 1, 0.070, predicted_s=0.041)],
        roofs=False)))
    o = ordering(rows)
    # six pairs: compile vs openvino are tied (2.5% apart); of the other five, bf16 vs compile disagrees
    assert o["tied"] == 1 and o["pairs"] == 5 and o["agree"] == 3
    assert any("eager/bf16 vs compile/fp32" in w for w in o["disagree"])


def test_roofs_from_another_record_place_the_variants():
    rows = [_row("eager/fp32", 1, 0.100, flops=1e9, bytes_=1e9)]
    record = _record(rows, roofs=False)
    record["variant_roofs"] = {"source": "R.json", "run_id": "r", "compute": {"fp32": {"value": 100e9}},
                               "memory": {"DRAM": 20e9}, "dram_level": "DRAM", "dispatch_overhead_s": 1e-6}
    analysis = analyse(record)
    roofs = roofs_of(analysis)
    assert roofs.dram.value == 20e9 and roofs.compute["fp32"].value == 100e9
    row = variant_rows(analysis)[0]
    assert row["bound"] == "memory" and row["ridge"] == pytest.approx(5.0)  # 1 FLOP/B under a ridge of 5
    lines = summary_lines(analysis)
    assert any("roofs: R.json (run r)" in line for line in lines)


def test_the_variants_figure_has_an_arrow_per_variant_and_draws(tmp_path):
    from results import figures
    from results.mplplot import png
    from results.svgplot import svg

    record = _record([_row("eager/fp32", 1, 0.100, flops=1e9, bytes_=1e9),
                      _row("eager/bf16", 1, 0.050, flops=1e9, bytes_=5e8),
                      _row("eager/int8-dyn", 1, 0.040, flops=1e9, bytes_=3e8, quality_ok=False)])
    record["variant_roofs"] = {"source": "R.json", "compute": {"fp32": {"value": 100e9}, "bf16": {"value": 200e9}},
                               "memory": {"DRAM": 20e9}, "dram_level": "DRAM"}
    record["measurements"] = [m for m in record["measurements"] if m["group"] == "variant"]
    analysis = analyse(record)
    fig = figures.variants(analysis, variant_rows(analysis), "m at batch 1")
    assert sum(1 for item in fig.items if item[0] == "arrow") == 2
    assert any(item[0] == "line" and "bf16 peak" in (item[-1] or "") for item in fig.items)
    assert "<polygon" in svg(fig) and "x quality" in svg(fig)
    path = png(fig, tmp_path / "v.png")
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- a real run, small -------------------------------------------------------------------------------------------
def _run(*args, timeout=240):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_a_small_variants_run_measures_the_reference_and_reports_missing_runtimes(tmp_path):
    out = _run("-m", "bench.variants", "tests.data.tiny_cnn:build", "--input", "1,3,16,16", "--batch", "1",
               "--precisions", "fp32,fp8-wo", "--runtimes", "eager,tensorrt", "--budget", "30", "--results-dir",
               str(tmp_path), "--json", str(tmp_path / "v.json"), "-q")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    data = json.loads((tmp_path / "v.json").read_text())
    by = {r["variant"]: r for r in data["rows"]}
    assert by["eager/fp32"]["status"] == "ok" and by["eager/fp32"]["median_s"] > 0
    assert by["eager/fp32"]["quality"]["n"] == 16 and by["eager/fp32"]["quality_ok"]
    assert by["eager/fp8-wo"]["status"] == "missing" and "GPU variant" in by["eager/fp8-wo"]["reason"]
    assert by["tensorrt/fp32"]["status"] == "missing" and "NVIDIA GPUs" in by["tensorrt/fp32"]["reason"]
    assert data["decisions"]["tests.data.tiny_cnn:build b1"]["choice"] == "eager/fp32"
    record = json.loads(next(p for p in tmp_path.glob("*.json") if p.name != "v.json").read_text())
    assert {m["group"] for m in record["measurements"]} - {"sentinel"} == {"variant"}  # + the DRAM sentinel
    assert "Variants (time: median" in out.stdout and "tensorrt/fp32: missing" in out.stdout
    assert list(tmp_path.glob("*.variants-*-b1.png")) and list(tmp_path.glob("*.html"))
    assert "variants" in next(tmp_path.glob("*.html")).read_text()


def test_a_bad_variant_option_is_one_line_from_the_command():
    out = _run("-m", "bench.variants", "resnet18", "--precisions", "fp32,int3", "--budget", "5")
    assert out.returncode == 2 and "unknown int3" in out.stderr and "Traceback" not in out.stderr


class _Config:
    """What bench.variant_plan reads of pytest's config: the options (and a stash with no run: a CPU)."""

    def __init__(self, **options):
        self.options, self.stash = options, {}

    def getoption(self, name, default=None):
        return self.options.get(name.lstrip("-").replace("-", "_"), default)


def test_the_plan_from_the_options_and_its_errors(tmp_path):
    from bench.options import OptionError
    from bench.variant_plan import make_plan, parse_batches

    assert make_plan(_Config()) is None
    with pytest.raises(OptionError, match="--variant-batches needs --variants MODEL"):
        make_plan(_Config(variant_batches="1"))
    with pytest.raises(OptionError, match="unknown int3"):
        make_plan(_Config(variants="tests.data.tiny_cnn:build", precisions="fp32,int3"))
    with pytest.raises(OptionError, match="positive integers"):
        parse_batches("0,1")
    plan = make_plan(_Config(variants="tests.data.tiny_cnn:build", variant_input="1,3,16,16",
                             variant_batches="8,1,8"))
    assert plan.batches == [1, 8] and plan.shape == (1, 3, 16, 16) and plan.variants == matrix("cpu")
    torch.save(torch.randn(4, 3, 16, 16), tmp_path / "x.pt")
    with pytest.raises(OptionError, match="4 samples, fewer than the largest batch"):
        make_plan(_Config(variants="tests.data.tiny_cnn:build", variant_input="1,3,16,16",
                          variant_data=str(tmp_path / "x.pt")))
    torch.save(torch.randn(8, 3, 8, 8), tmp_path / "y.pt")
    with pytest.raises(OptionError, match=r"samples are \[3, 8, 8\], the model's input is \[3, 16, 16\]"):
        make_plan(_Config(variants="tests.data.tiny_cnn:build", variant_input="1,3,16,16",
                          variant_data=str(tmp_path / "y.pt")))
