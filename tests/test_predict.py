"""The predictor's arithmetic on synthetic records (hand values), its error paths, the model sources it takes, the
fused-attention byte count, and --measure against a tiny model. No timing is asserted."""
import json
import math
import socket

import pytest
import torch
from torch import nn

from bench import predict_cli as cli
from kernels import predict
from kernels.count import CountError, count_model
from kernels.opsweep import _Attention, build_probe, probes
from results.predict import DeviceModel, PredictError
from results.prediction import Op, compare_table


def row(group, kernel, dtype="fp32", **fields):
    base = {"group": group, "kernel": kernel, "dtype": dtype, "status": "ok", "impl": "torch", "extra": {}}
    base.update(fields)
    return base


def gemm_row(m, n, k, rate, batch=1, dtype="fp32"):
    flops = 2 * m * n * k * batch
    return row("gemm", "gemm", dtype, shape=[batch, m, n, k], flops=flops, median_s=flops / rate,
               flop_per_s=rate, flop_per_s_median=rate)


def probe_row(name, family, dtype="fp32", gemm=None, flops=0, time_s=1e-3, nbytes=0, ops=(), shape=None):
    return row("opsweep", name, dtype, flops=flops, bytes=nbytes, median_s=time_s, shape=shape,
               extra={"family": family, "implicit_gemm": gemm, "ops": list(ops), "warm_median_s": time_s})


def record(*rows, host="elsewhere", platform=None):
    from results.record import SCHEMA, SCHEMA_VERSION

    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "run_id": "synthetic", "host": host,
            "platform": platform or {"kind": "cpu", "name": "Test CPU"}, "measurements": list(rows)}


def synthetic():
    """fp32 GEMMs at exactly 50 GFLOP/s, relu probes at 10 us (100 kB) and 1 ms (10 MB), conv probes at 40 GFLOP/s,
    module calls at 2 us."""
    return record(
        gemm_row(256, 256, 256, 50e9), gemm_row(1024, 1024, 1024, 50e9), gemm_row(4096, 4096, 4096, 50e9),
        probe_row("relu-s", "elementwise", nbytes=100_000, time_s=1e-5, ops=["aten.relu"]),
        probe_row("relu-l", "elementwise", nbytes=10_000_000, time_s=1e-3, ops=["aten.relu_"]),
        probe_row("conv-a", "conv", gemm={"m": 3136, "n": 64, "k": 576, "batch": 1}, flops=2 * 3136 * 64 * 576,
                  time_s=2 * 3136 * 64 * 576 / 40e9),
        probe_row("conv-b", "conv", gemm={"m": 784, "n": 128, "k": 1152, "batch": 1}, flops=2 * 784 * 128 * 1152,
                  time_s=2 * 784 * 128 * 1152 / 40e9),
        row("overhead", "module_call", median_s=2e-6),
        row("overhead", "dispatch", median_s=5e-6),
    )


def test_compute_bound_layer_by_hand():
    device = DeviceModel(synthetic())
    op = Op("fc", "aten.mm", "fp32", flops=2 * 1024 ** 3, bytes=3 * 4 * 1024 ** 2, family="linear",
            gemm=(1024, 1024, 1024, 1))
    p = device.predict_op(op)
    assert p.time_s == pytest.approx(2 * 1024 ** 3 / 50e9, rel=1e-9)  # every point at 50 GFLOP/s
    assert p.bound == "compute" and p.low_s < p.time_s < p.high_s
    conv = Op("c", "aten.convolution", "fp32", flops=2 * 3136 * 64 * 576, bytes=1, family="conv", gemm=(3136, 64, 576, 1))
    assert device.predict_op(conv).time_s == pytest.approx(2 * 3136 * 64 * 576 / 40e9, rel=1e-9)


def test_memory_bound_layer_by_hand():
    device = DeviceModel(synthetic())
    at = lambda nbytes: device.predict_op(Op("r", "aten.relu_", "fp32", 0, nbytes, "elementwise")).time_s
    assert at(1_000_000) == pytest.approx(1e-4, rel=1e-9)  # log-log halfway between 10 us at 100 kB and 1 ms at 10 MB
    assert at(20_000_000) == pytest.approx(2e-3, rel=1e-9)  # above the largest probe: linear in bytes
    assert at(10) == pytest.approx(1e-5, rel=1e-9)  # below the smallest: its time (dispatch floor)
    p = device.predict_op(Op("r", "aten.relu", "fp32", 0, 1_000_000, "elementwise"))
    assert p.bound == "memory" and not p.widened


def test_module_calls_and_whole_model_sum():
    device = DeviceModel(synthetic())
    ops = [Op("a", "aten.relu", "fp32", 0, 1_000_000, "elementwise"),
           Op("b", "aten.mm", "fp32", 2 * 1024 ** 3, 1, "linear", (1024, 1024, 1024, 1))]
    p = device.predict("m", ops, module_calls=3, dtype="fp32")
    assert p.predicted_s == pytest.approx(1e-4 + 2 * 1024 ** 3 / 50e9 + 3 * 2e-6, rel=1e-9)
    assert p.low_s < p.predicted_s < p.high_s
    assert [r["layer"] for r in p.layers()] == ["a", "b"]
    assert set(p.as_dict()) >= {"predicted_s", "low_s", "high_s", "layers", "method"}


def test_shape_interpolation_between_measured_rates():
    rec = record(gemm_row(512, 512, 512, 20e9), gemm_row(2048, 2048, 2048, 80e9), gemm_row(8192, 8192, 8192, 80e9))
    device = DeviceModel(rec)
    rate = lambda s: 2 * s ** 3 / device.predict_op(Op("x", "aten.mm", "fp32", 2 * s ** 3, 1, "linear", (s, s, s, 1))).time_s
    assert rate(512) == pytest.approx(20e9, rel=0.02)  # on a measured point: (nearly) its rate
    assert 20e9 < rate(1024) < 80e9  # between two points: between their rates
    assert rate(2048) == pytest.approx(80e9, rel=0.02)


def test_unknown_op_leans_on_generic_probes_and_says_so():
    device = DeviceModel(synthetic())
    p = device.predict_op(Op("g", "aten.hardswish", "fp32", 0, 1_000_000, "elementwise"))
    assert p.widened.startswith("no probe of aten.hardswish") and p.high_s / p.time_s > 1.25


def test_out_of_range_shape_widens_the_range():
    device = DeviceModel(synthetic())
    near = device.predict_op(Op("c", "aten.convolution", "fp32", 1, 1, "conv", (3136, 64, 576, 1)))
    far = device.predict_op(Op("c", "aten.convolution", "fp32", 1, 1, "conv", (1, 2048, 18432, 1)))
    assert not near.widened and "from the nearest measured shape" in far.widened
    assert far.high_s / far.time_s > near.high_s / near.time_s


def test_missing_family_falls_back_and_missing_dtype_is_an_error():
    device = DeviceModel(synthetic())
    dw = device.predict_op(Op("d", "aten.convolution", "fp32", 2 * 3136 * 9 * 64, 1, "conv_dw", (3136, 1, 9, 64)))
    assert dw.widened.startswith("no conv_dw points")
    with pytest.raises(PredictError, match="--dtypes bf16"):
        device.predict("m", [Op("b", "aten.mm", "bf16", 1, 1, "linear", (8, 8, 8, 1))], 0, "bf16")
    with pytest.raises(PredictError, match="not a run record"):
        DeviceModel({"schema": "x"})


def test_old_record_without_probes_prices_elementwise_from_the_stream_curve():
    rec = record(gemm_row(1024, 1024, 1024, 50e9), row("overhead", "dispatch", median_s=5e-6),
                 row("stream", "copy", size_bytes=1_000_000, bytes_per_s_median=10e9, bytes_per_s=12e9,
                     median_s=1e-4))
    p = DeviceModel(rec).predict_op(Op("r", "aten.relu", "fp32", 0, 1_000_000, "elementwise"))
    assert p.time_s == pytest.approx(5e-6 + 1e-4, rel=1e-9) and "stream curve" in p.widened


def test_compare_table_orders_and_explains():
    a, b = DeviceModel(synthetic(), "a.json"), DeviceModel(record(gemm_row(1024, 1024, 1024, 100e9)), "b.json")
    op = [Op("fc", "aten.mm", "fp32", 2 * 1024 ** 3, 1, "linear", (1024, 1024, 1024, 1))]
    rows = compare_table([a.predict("m", op, 0, "fp32"), b.predict("m", op, 0, "fp32")])
    assert [r["record"] for r in rows] == ["b.json", "a.json"]
    assert rows[1]["x_fastest"] == pytest.approx(2.0) and rows[0]["compute_share"] == 1.0


@pytest.mark.parametrize("module,shape,family,gemm", [
    (nn.Conv2d(8, 16, 3, padding=1), (1, 8, 6, 6), "conv", (36, 16, 72, 1)),
    (nn.Conv2d(8, 8, 3, padding=1, groups=8), (2, 8, 6, 6), "conv_dw", (72, 1, 9, 8)),
    (nn.Conv2d(8, 16, 3, padding=1, groups=4), (1, 8, 6, 6), "conv_grouped", (36, 4, 18, 4)),
    (nn.Linear(10, 20), (3, 10), "linear", (3, 20, 10, 1)),
    (nn.Linear(10, 20, bias=False), (2, 3, 10), "linear", (6, 20, 10, 1)),
])
def test_classify_counted_ops(module, shape, family, gemm):
    counts = count_model(module, (torch.randn(shape),))
    got = [predict.classify(o) for o in counts.ops if o.macs]
    assert got == [(family, gemm)]


def test_classify_bmm_and_attention():
    class Bmm(nn.Module):
        def forward(self, a):
            return torch.bmm(a, a.transpose(1, 2))

    counts = count_model(Bmm(), (torch.randn(4, 5, 6),))
    assert [predict.classify(o) for o in counts.ops] == [("bmm", (5, 5, 6, 4))]
    counts = count_model(_Attention().to("meta"), (torch.empty(2, 3, 7, 8, device="meta"),))
    assert [predict.classify(o) for o in counts.ops] == [("attention", (7, 7, 8, 6))]


def test_attention_on_meta_counts_the_fused_op_as_a_real_cpu_runs_it():
    class Qkv(nn.Module):
        def forward(self, q, k, v):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v)

    shapes = [(1, 4, 64, 16)] * 3
    meta = count_model(Qkv(), tuple(torch.empty(s, device="meta") for s in shapes))
    real = count_model(Qkv(), tuple(torch.randn(s) for s in shapes))
    assert [o.op for o in meta.ops] == [o.op for o in real.ops] == ["aten._scaled_dot_product_flash_attention_for_cpu"]
    assert meta.bytes_read + meta.bytes_written == real.bytes_read + real.bytes_written
    assert meta.macs == real.macs and "flash_attention_for_cpu" in meta.attention
    mha = nn.MultiheadAttention(16, 4, batch_first=True).to("meta").eval()
    x = torch.empty(1, 10, 16, device="meta")
    counts = count_model(mha, (x, x, x), kwargs={"need_weights": False})
    assert "aten._safe_softmax" not in {o.op for o in counts.ops}  # the N x N scores are not written
    assert "1 attention call" in counts.attention


def test_formula_fixes_unfold_im2col_col2im_pad_bitwise():
    class Ops(nn.Module):
        def forward(self, x):
            cols = nn.functional.unfold(x, 3)
            return (x.unfold(2, 3, 1), cols, nn.functional.fold(cols, (8, 8), 3),
                    nn.functional.pad(x, (1, 1, 1, 1), mode="reflect"), torch.bitwise_not(x > 0))

    counts = count_model(Ops(), (torch.randn(1, 2, 8, 8),))
    ops = {o.op: o for o in counts.ops}
    assert "aten.unfold" not in ops  # a view: free
    for name in ("aten.im2col", "aten.col2im", "aten.reflection_pad2d", "aten.bitwise_not"):
        assert ops[name].counted, name
    assert ops["aten.col2im"].other_flops == 2 * 9 * 36  # one addition per column element
    assert ops["aten.im2col"].other_flops == 0


def test_model_sources_and_record_arguments(tmp_path, monkeypatch):
    files, models = cli.parse_records(["a.json", "b.json", "mypkg.models:build"], [])
    assert files == ["a.json", "b.json"] and models == ["mypkg.models:build"]
    import builtins

    real_import = builtins.__import__

    def no_timm(name, *args, **kwargs):
        if name == "timm":
            raise ImportError("no timm")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_timm)
    with pytest.raises(CountError, match="timm is not installed"):
        predict.load_model("timm:resnet18")


def test_timm_models_when_installed():
    pytest.importorskip("timm")
    with pytest.raises(CountError, match="unknown timm model"):
        predict.load_model("timm:resnet18x")
    model = predict.load_model("timm:resnet18")
    assert next(model.parameters()).device.type == "meta"
    assert predict.input_config(model, None) == [((1, 3, 224, 224), None)]


def test_every_probe_builds_and_counts_on_meta():
    for probe in probes(quick=False):
        counts = count_model(build_probe(probe).to("meta"), (torch.empty(probe.input_shape, device="meta"),))
        assert counts.ops, probe.name
    assert {p.name for p in probes(quick=True)} < {p.name for p in probes(quick=False)}


def _this_machine_record(tmp_path, **platform):
    from platforms.cpu import cpu_identity

    rec = synthetic()
    rec["host"] = socket.gethostname()
    rec["platform"] = {"kind": "cpu", **cpu_identity(), **platform}
    path = tmp_path / "here.json"
    path.write_text(json.dumps(rec))
    return path


def test_measure_a_tiny_model_against_its_prediction(tmp_path, capsys):
    path = _this_machine_record(tmp_path)
    out = tmp_path / "p.json"
    rc = cli.main(["--record", str(path), "tests.data.tiny_cnn:build", "--input", "1,3,16,16", "--measure",
                   "--json", "--out", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())[0]
    assert result["predicted_s"] > 0 and result["measured"]["median_s"] > 0
    assert math.isfinite(result["error"]) and result["layer_errors"]
    assert result["measured"]["faults_per_call"] >= 0
    assert result["page_faults"] is not None and any("counted by running the model here" in n for n in result["notes"])
    assert json.loads(capsys.readouterr().out)[0]["model"] == "tests.data.tiny_cnn:build"
    assert cli.main(["--record", str(path), "tests.data.tiny_cnn:build", "--input", "1,3,16,16", "--no-faults",
                     "--json", "--out", str(out)]) == 0
    assert json.loads(out.read_text())[0]["page_faults"] is None


def test_measure_names_page_faults_per_call_where_a_model_has_many(capsys):
    p = DeviceModel(synthetic()).predict("m", [Op("a", "aten.relu", "fp32", 0, 1_000_000, "elementwise")], 0, "fp32")
    measured = {"median_s": 2e-3, "best_s": 1e-3, "method": "test", "iqr_rel": 0.1, "layers": {}}
    for faults, said in ((18_400, True), (3, False)):
        cli.print_prediction(p, 3, {**measured, "faults_per_call": faults})
        assert ("page faults: 18400 per call" in capsys.readouterr().out) == said


def test_measure_refuses_a_record_from_another_machine(tmp_path, capsys):
    path = tmp_path / "other.json"
    path.write_text(json.dumps(synthetic()))
    assert cli.main(["--record", str(path), "tests.data.tiny_cnn:build", "--input", "1,3,16,16", "--measure"]) == 2
    err = capsys.readouterr().err
    assert "not from here" in err and "elsewhere" in err and len(err.strip().splitlines()) == 1
    path = _this_machine_record(tmp_path, physical_cores=999)
    assert cli.main(["--record", str(path), "tests.data.tiny_cnn:build", "--input", "1,3,16,16", "--measure"]) == 2
    assert "physical_cores" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--record", "nope.json", "resnet18"], "No such file"),
    (["--record", "R.json"], "give a model"),
    (["--record", "R.json", "resnet18", "--dtype", "fp99"], "--dtype"),
])
def test_bad_input_is_one_line(tmp_path, capsys, argv, message):
    if "R.json" in argv:
        (tmp_path / "R.json").write_text(json.dumps(synthetic()))
        argv = [str(tmp_path / "R.json") if a == "R.json" else a for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_prediction_in_several_dtypes_and_records_prints_a_table(tmp_path, capsys):
    rec = synthetic()
    rec["measurements"] += [gemm_row(256, 256, 256, 25e9, dtype="bf16"), gemm_row(1024, 1024, 1024, 25e9, dtype="bf16"),
                            probe_row("relu-b", "elementwise", "bf16", nbytes=100_000, time_s=1e-5, ops=["aten.relu"])]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(rec))
    assert cli.main(["--record", str(path), "tests.data.tiny_cnn:build", "--input", "1,3,16,16",
                     "--dtype", "fp32,bf16"]) == 0
    out = capsys.readouterr().out
    assert "fastest first" in out and "bf16" in out and "fp32" in out


def test_the_hand_made_jetson_record_in_the_several_record_table(capsys):
    """Until a GPU record exists, the HAND-MADE Jetson record (invented figures, labelled so) shows the table."""
    jetson = "tests/data/handmade_jetson_orin_nano_super.json"
    example = "results/examples/2026-12-01_cpu_amd-epyc.json"
    assert cli.main(["--record", example, jetson, "resnet18", "--dtype", "fp32,fp16", "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "fastest first" in out and "Orin" in out and "AMD EPYC" in out
    assert "cannot predict" in out and "--dtypes fp16" in out  # the CPU record has no fp16: said, the rest goes on


def test_a_stream_only_record_says_what_it_lacks_not_that_fp32_was_not_measured():
    """The defect: a stream-only fp32 record got "no measured points in fp32: measure it with --dtypes fp32"."""
    from results.record import SCHEMA, SCHEMA_VERSION, measurement

    record = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "run_id": "r", "platform": {"kind": "cpu"},
              "measurements": [measurement(group="stream", kernel="copy", dtype="fp32", impl="torch", status="ok",
                                           verified=True, size_bytes=1 << 30, bytes=1 << 30, times_s=[0.05])]}
    try:
        device = DeviceModel(record)
    except PredictError as exc:  # refusing the record outright is as good, if it says why
        assert "stream" in str(exc) or "GEMM" in str(exc)
        return
    with pytest.raises(PredictError) as info:
        device.predict("m", [Op("b", "aten.mm", "fp32", 1, 1, "linear", (8, 8, 8, 1))], 0, "fp32")
    text = str(info.value)
    assert "stream points only" in text and "bench/test_gemm.py" in text and "no measured points" not in text


def test_a_quick_records_large_conv_probes_are_no_floor_for_small_convs():
    """The defect (issue 23): a --quick record holds four large dense conv probes; with three or more, their fastest
    call (1.45 ms there) was taken as the least any conv costs, so every small conv of MobileNetV2 cost 1.45 ms."""
    big = [probe_row(f"conv-{c}", "conv", gemm={"m": 12544, "n": c, "k": 9 * c, "batch": 1},
                     flops=2 * 12544 * c * 9 * c, time_s=2 * 12544 * c * 9 * c / 100e9) for c in (64, 128, 256, 512)]
    rec = record(gemm_row(64, 64, 64, 5e9), gemm_row(256, 256, 256, 40e9), gemm_row(1024, 1024, 1024, 100e9),
                 *big, row("overhead", "dispatch", median_s=5e-6))
    rec["options"] = {"quick": True}
    device = DeviceModel(rec)
    fastest_probe = min(r["median_s"] for r in big)
    small = Op("pw", "aten.convolution", "fp32", flops=2 * 784 * 32 * 16, bytes=1, family="conv",
               gemm=(784, 32, 16, 1))  # a MobileNet-sized pointwise conv, 0.8 MFLOP
    p = device.predict_op(small)
    assert p.time_s < fastest_probe / 10, (p.time_s, fastest_probe)
    assert "less work than the smallest conv probe" in p.widened and "GEMM" in p.widened
    assert p.time_s >= 5e-6  # never below the record's dispatch cost
    prediction = device.predict("m", [small], 0, "fp32")
    assert any("--quick record" in n and "bench/test_opsweep.py" in n for n in prediction.notes)


def _calibrated(best_s=0.012, median_s=0.018):
    rows = list(synthetic()["measurements"]) + [
        row("calibration", "reference_model", best_s=best_s, median_s=median_s, n=40, shape=[1, 3, 128, 128],
            extra={"input": [1, 3, 128, 128]})]
    return DeviceModel(record(*rows))


def test_whole_model_calibration_by_hand():
    """best = sum + ops x K_OP x (reference best - reference sum) / reference ops; median = best x (1 + K_TYPICAL x
    (reference median / best - 1))."""
    from results.predict import K_OP, K_TYPICAL

    device = _calibrated()  # reference: best 12 ms, median 18 ms
    per_op, typical, how = device.calibrate("fp32", reference_sum_s=0.010, reference_ops=100)
    assert per_op == pytest.approx(K_OP * 0.002 / 100) and typical == pytest.approx(1 + K_TYPICAL * 0.5)
    assert "us per op" in how
    ops = [Op("b", "aten.mm", "fp32", 2 * 1024 ** 3, 1, "linear", (1024, 1024, 1024, 1))] * 3
    p = device.predict("m", ops, module_calls=0, dtype="fp32")
    assert p.sum_s == pytest.approx(3 * 2 * 1024 ** 3 / 50e9, rel=1e-9)
    assert p.best_s == pytest.approx(p.sum_s + 3 * per_op) and p.predicted_s == pytest.approx(typical * p.best_s)
    assert any("calibrated on the record's reference model" in n for n in p.notes)
    d = p.as_dict()
    assert d["statistic"].startswith("median") and d["best_s"] < d["predicted_s"] and d["range_coverage"] > 0


def test_a_calibration_out_of_bounds_is_not_used_and_no_calibration_is_said():
    device = _calibrated(best_s=0.1, median_s=0.11)
    per_op, typical, how = device.calibrate("fp32", reference_sum_s=0.010, reference_ops=100)  # 10x: disturbed
    assert (per_op, typical) == (0.0, 1.0) and "not used" in how
    plain = DeviceModel(synthetic()).predict("m", [Op("a", "aten.relu", "fp32", 0, 1_000_000, "elementwise")], 0, "fp32")
    assert plain.predicted_s == plain.best_s == plain.sum_s
    assert any("no whole-model calibration" in n for n in plain.notes)


def test_the_range_is_the_calibrated_band_and_widens_with_fallbacks():
    from results.prediction import RANGE, RANGE_WIDEN

    device = DeviceModel(synthetic())
    known = device.predict("m", [Op("a", "aten.relu", "fp32", 0, 1_000_000, "elementwise")], 0, "fp32")
    assert known.low_s == pytest.approx(known.predicted_s / RANGE[0]) and known.high_s == pytest.approx(
        known.predicted_s * RANGE[1])
    unknown = device.predict("m", [Op("a", "aten.hardswish", "fp32", 0, 1_000_000, "elementwise")], 0, "fp32")
    assert unknown.high_s == pytest.approx(unknown.predicted_s * RANGE[1] * RANGE_WIDEN)
    assert "widened" in unknown.range_note() and unknown.fallback_ops()[0][:2] == ("aten.hardswish", 1)


def test_the_machines_drift_during_the_record_widens_the_range():
    """The reference model timed again after the probes: 18 ms before, 27 after (1.5x) widens the band 1.5x each
    side and says so; a steady machine (within 10%) leaves it as calibrated. The record's summary names the move."""
    from results.analysis import analyse
    from results.prediction import RANGE
    from results.summary import sentinel_lines

    ops = [Op("a", "aten.relu", "fp32", 0, 1_000_000, "elementwise")]
    for again_s, widened in ((0.027, 1.5), (0.019, 1.0)):
        rec = synthetic()
        rec["measurements"] += [row("calibration", "reference_model", best_s=0.012, median_s=0.018, n=50),
                                row("calibration", "reference_model_again", best_s=0.012, median_s=again_s, n=50)]
        device = DeviceModel(rec)
        assert device.drift("fp32")[0] == pytest.approx(again_s / 0.018)
        p = device.predict("m", ops, 0, "fp32")
        assert p.drift == pytest.approx(widened) and p.high_s == pytest.approx(p.predicted_s * RANGE[1] * widened)
        assert ("speed moved" in p.range_note()) == (widened > 1) and any("speed moved" in n for n in p.notes) == \
            (widened > 1)
        from results.predict import K_TYPICAL

        _per_op, typical, how = device.calibrate("fp32", reference_sum_s=0.010, reference_ops=100)
        assert typical == pytest.approx(1 + K_TYPICAL * (math.sqrt(0.018 * again_s) / 0.012 - 1)) and \
            "before and after the probes" in how
        line = sentinel_lines(analyse(rec))
        assert line and "compute sentinel" in line[0] and ("widen their range" in line[0]) == (widened > 1)
    assert DeviceModel(synthetic()).drift("fp32") == (1.0, "")


def test_the_reference_model_counts_and_prices_from_a_record():
    """kernels.predict.calibrate prices the reference model from the record and sets the factors."""
    from kernels import predict as kp

    device = _calibrated()
    kp.calibrate(device, "fp32", "cpu")
    per_op, typical, how = device.factors["fp32"]
    assert per_op >= 0 and typical >= 1 and "reference model" in how  # used, or said why not (synthetic probes)


def test_weights_beyond_the_cache_price_ops_between_warm_and_cold_probes():
    """A conv probe whose cold-cache time is twice its warm one, a 10 MiB last-level cache: a model with 40 MiB of
    weights finds 3/4 of them evicted between two calls of an op, so its op is priced 75% of the way to cold; a model
    that fits the cache, and an op that alone moves more than the cache, keep the warm time."""
    flops = 2 * 3136 * 64 * 576
    warm = flops / 40e9
    conv = row("opsweep", "conv-a", "fp32", flops=flops, bytes=1, median_s=2 * warm, shape=None,
               extra={"family": "conv", "implicit_gemm": {"m": 3136, "n": 64, "k": 576, "batch": 1}, "ops": [],
                      "warm_median_s": warm})
    caches = [{"name": "L2", "size_bytes": 1 << 20}, {"name": "L3", "size_bytes": 10 << 20}]
    device = DeviceModel(record(conv, platform={"kind": "cpu", "name": "Test CPU", "caches": caches}))
    assert device.llc_bytes == 10 << 20
    small = Op("c", "aten.convolution", "fp32", flops=flops, bytes=1 << 20, family="conv", gemm=(3136, 64, 576, 1))
    assert device.predict_op(small).cold_ratio == pytest.approx(2.0)
    fits = device.predict("m", [small], 0, "fp32", weight_bytes=5 << 20)
    assert fits.ops[0].time_s == pytest.approx(warm, rel=1e-9)
    evicted = device.predict("m", [small], 0, "fp32", weight_bytes=40 << 20)
    assert evicted.ops[0].time_s == pytest.approx(warm * 1.75, rel=1e-9)
    assert any("exceed the last-level cache" in n and "75%" in n for n in evicted.notes)
    big = Op("c", "aten.convolution", "fp32", flops=flops, bytes=20 << 20, family="conv", gemm=(3136, 64, 576, 1))
    assert device.predict("m", [big], 0, "fp32", weight_bytes=40 << 20).ops[0].time_s == pytest.approx(warm, rel=1e-9)
    assert DeviceModel(synthetic()).llc_bytes is None  # a record that names no cache: nothing changes


def test_the_eviction_calibration_sets_how_far_to_cold_from_the_evicting_model():
    """The same conv probe (cold twice warm), and an evicting-model row whose best call is 25% of the way from its
    ops' warm sum to their cold sum: a model with 40 MiB of weights against a 10 MiB cache is priced 0.25 x 75% of
    the way to cold; a best call below the warm sum clamps to 0 (warm), above the cold sum to 1."""
    from kernels.opsweep import EVICTING_BLOCKS, evicting_blocks

    flops = 2 * 3136 * 64 * 576
    warm = flops / 40e9
    conv = row("opsweep", "conv-a", "fp32", flops=flops, bytes=1, median_s=2 * warm, shape=None,
               extra={"family": "conv", "implicit_gemm": {"m": 3136, "n": 64, "k": 576, "batch": 1}, "ops": [],
                      "warm_median_s": warm})
    caches = [{"name": "L3", "size_bytes": 10 << 20}]
    op = Op("c", "aten.convolution", "fp32", flops=flops, bytes=1 << 20, family="conv", gemm=(3136, 64, 576, 1))
    for best, landed in ((1.25 * warm * 4, 0.25), (0.5 * warm * 4, 0.0), (3 * warm * 4, 1.0)):
        evicting = row("calibration", "evicting_model", best_s=best, median_s=best, extra={"blocks": 4})
        device = DeviceModel(record(conv, evicting, platform={"kind": "cpu", "name": "Test CPU", "caches": caches}))
        factor, how = device.calibrate_eviction("fp32", [op] * 4)
        assert factor == pytest.approx(landed)
        assert f"{100 * landed:.0f}% of the way to cold" in how
        priced = device.predict("m", [op], 0, "fp32", weight_bytes=40 << 20)
        assert priced.ops[0].time_s == pytest.approx(warm * (1 + landed * 0.75), rel=1e-9)
    assert evicting_blocks(None) == EVICTING_BLOCKS[0]
    assert evicting_blocks(32 << 20) == 8  # 2 x 32 MiB of 9.4 MB blocks
    assert evicting_blocks(300 << 20) == EVICTING_BLOCKS[1]


def test_the_record_evicting_model_is_counted_and_priced():
    """kernels.predict.calibrate counts the record's evicting model (its block count from the row) and sets the
    eviction factor with its note."""
    dev = DeviceModel(record(*synthetic()["measurements"],
                             row("calibration", "evicting_model", best_s=1.0, median_s=1.1, extra={"blocks": 5})))
    predict.calibrate(dev, "fp32", "cpu")
    factor, how = dev.eviction["fp32"]
    assert 0.0 <= factor <= 1.0 and "5 blocks" in how


def test_kernel_taps_keep_a_1x1_convolution_off_a_patch_embedding_probe():
    """Two conv probes of the same implicit GEMM, a 1x1 at 100 GFLOP/s and a 16x16 patch embedding at 20: a 1x1
    op of a nearby GEMM is priced from the 1x1 probe, a 16x16 op from the patch embedding."""
    gemm = {"m": 196, "n": 768, "k": 768, "batch": 1}
    flops = 2 * 196 * 768 * 768
    one = probe_row("conv1x1", "conv", gemm=gemm, flops=flops, time_s=flops / 100e9)
    one["extra"]["conv"] = [768, 768, 1, 1, 1]
    patch = probe_row("patch16", "conv", gemm=gemm, flops=flops, time_s=flops / 20e9)
    patch["extra"]["conv"] = [3, 768, 16, 16, 1]
    device = DeviceModel(record(one, patch))
    near = (196, 1024, 1024, 1)
    as_1x1 = Op("c", "aten.convolution", "fp32", flops=2 * 196 * 1024 * 1024, bytes=1, family="conv", gemm=near,
                taps=1)
    as_patch = Op("c", "aten.convolution", "fp32", flops=2 * 196 * 1024 * 1024, bytes=1, family="conv", gemm=near,
                  taps=256)
    assert as_1x1.flops / device.predict_op(as_1x1).time_s > 80e9
    assert as_patch.flops / device.predict_op(as_patch).time_s < 30e9
    conv = nn.Conv2d(64, 64, 3, padding=1)
    counted = predict.ops_of(count_model(conv, (torch.randn(1, 64, 8, 8),)), "fp32")
    assert [o.taps for o in counted if o.family == "conv"] == [9]


def test_a_grouped_convolution_of_wide_groups_is_priced_as_a_dense_one():
    """Dense conv points at 80 GFLOP/s, one narrow-group probe at 5: a conv of 2 groups of 64 output channels is
    priced from the dense points at one group's GEMM; one of 32 groups of 4 from the grouped probe."""
    dense = probe_row("dense", "conv", gemm={"m": 3136, "n": 64, "k": 576, "batch": 1}, flops=2 * 3136 * 64 * 576,
                      time_s=2 * 3136 * 64 * 576 / 80e9)
    narrow = probe_row("narrow", "conv_grouped", gemm={"m": 3136, "n": 4, "k": 36, "batch": 32},
                       flops=2 * 3136 * 4 * 36 * 32, time_s=2 * 3136 * 4 * 36 * 32 / 5e9)
    device = DeviceModel(record(dense, narrow))
    wide = Op("g", "aten.convolution", "fp32", flops=2 * 3136 * 64 * 576 * 2, bytes=1, family="conv_grouped",
              gemm=(3136, 64, 576, 2))
    priced = device.predict_op(wide)
    assert wide.flops / priced.time_s == pytest.approx(80e9, rel=0.01) and priced.op is wide
    thin = Op("g", "aten.convolution", "fp32", flops=2 * 3136 * 4 * 36 * 32, bytes=1, family="conv_grouped",
              gemm=(3136, 4, 36, 32))
    assert thin.flops / device.predict_op(thin).time_s == pytest.approx(5e9, rel=0.01)


def test_the_count_says_which_backend_runs_a_cpu_convolution_and_a_statistics_batch_norm():
    """kernels.backends.op_variant asks torch which backend a CPU convolution takes (on meta too) and marks a batch norm
    that computes its batch's statistics; an eval batch norm and a CUDA target's convolution carry none."""
    from kernels.backends import op_variant

    big, small = nn.Conv2d(64, 64, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
    x_big, x_small = torch.empty(1, 64, 56, 56, device="meta"), torch.empty(1, 8, 8, 8, device="meta")
    aten = torch.ops.aten
    args = lambda conv, x: (x, conv.weight.to("meta"), conv.bias.to("meta"), [1, 1], [1, 1], [1, 1], False, [0, 0], 1)
    expect = lambda conv, x: str(torch._C._select_conv_backend(
        torch.empty(x.shape), conv.weight, conv.bias, [1, 1], [1, 1], [1, 1], False, [0, 0], 1)).rsplit(".", 1)[-1]
    assert op_variant(aten.convolution, args(big, x_big), "cpu") == expect(big, x_big)
    assert op_variant(aten.convolution, args(small, x_small), "cpu") == expect(small, x_small)
    assert op_variant(aten.convolution, args(big, x_big), "cuda") == ""
    stats = nn.BatchNorm2d(8, affine=False, track_running_stats=False).eval()
    with torch.no_grad():
        counted = count_model(nn.Sequential(small, nn.BatchNorm2d(8).eval(), stats), (torch.randn(1, 8, 8, 8),))
    variants = [o.variant for o in counted.ops if o.op == "aten.native_batch_norm"]
    assert variants == ["", "train"]
    assert [o.variant for o in predict.ops_of(counted, "fp32") if o.family == "conv"] == [expect(small, x_small)]


def test_a_convolution_is_priced_among_probes_of_its_backend_and_a_statistics_batch_norm_apart():
    """Conv probes near one shape, two run by oneDNN at 100 GFLOP/s, two by im2col at 50: an op the count says runs
    im2col is priced at 50, one run by oneDNN at 100, one of no known backend among all four; a batch norm computing
    statistics is priced from its own probes (10x the eval ones), and, where a record has none, as an eval one with
    the fallback named."""
    rows = []
    for name, variant, rate, m in (("a", "Mkldnn", 100e9, 196), ("b", "Mkldnn", 100e9, 392),
                                   ("c", "Slow2d", 50e9, 196), ("d", "Slow2d", 50e9, 392)):
        flops = 2 * m * 256 * 2304
        r = probe_row(name, "conv", gemm={"m": m, "n": 256, "k": 2304, "batch": 1}, flops=flops, time_s=flops / rate)
        r["extra"]["variants"] = {"aten.convolution": variant}
        rows.append(r)
    eval_bn = probe_row("bn", "elementwise", nbytes=1_000_000, time_s=1e-5, ops=["aten.native_batch_norm"])
    stats_bn = probe_row("bn-stats", "elementwise", nbytes=1_000_000, time_s=1e-4, ops=["aten.native_batch_norm"])
    stats_bn["extra"]["variants"] = {"aten.native_batch_norm": "train"}
    device = DeviceModel(record(*rows, eval_bn, stats_bn))
    flops = 2 * 280 * 256 * 2304
    rate = lambda variant: flops / device.predict_op(Op("c", "aten.convolution", "fp32", flops, 1, "conv",
                                                        (280, 256, 2304, 1), taps=9, variant=variant)).time_s
    assert rate("Slow2d") == pytest.approx(50e9, rel=0.01)
    assert rate("Mkldnn") == pytest.approx(100e9, rel=0.01)
    assert 50e9 < rate("") < 100e9
    bn = lambda variant: device.predict_op(Op("b", "aten.native_batch_norm", "fp32", 0, 1_000_000, "elementwise",
                                              variant=variant))
    assert bn("train").time_s == pytest.approx(1e-4) and bn("").time_s == pytest.approx(1e-5)
    plain = DeviceModel(record(eval_bn)).predict_op(Op("b", "aten.native_batch_norm", "fp32", 0, 1_000_000,
                                                       "elementwise", variant="train"))
    assert plain.time_s == pytest.approx(1e-5) and "no probe of aten.native_batch_norm[train]" in plain.widened


def test_outputs_beyond_the_fresh_threshold_pay_the_records_page_cost():
    """A record whose 64 MiB fresh write took 17 ms at best and the held one 1 ms: 16 ms / 16384 pages a page. An
    op writing a 40 MiB output pays 10240 pages of it on top of its probes' time; a 1 MiB output and an in-place
    op pay nothing; kernels.predict.out_bytes reads the largest output of a counted op, 0 in place."""
    from results.predict import FRESH_BYTES, PAGE_BYTES

    size = 2 * FRESH_BYTES
    rec = synthetic()
    rec["measurements"] += [row("overhead", "held_memory", best_s=1e-3, median_s=1.2e-3, size_bytes=size),
                            row("overhead", "fresh_memory", best_s=17e-3, median_s=0.14, size_bytes=size)]
    device = DeviceModel(rec)
    page_s = 16e-3 / (size / PAGE_BYTES)
    assert device.fresh_page_s() == pytest.approx(page_s)
    big = Op("g", "aten.gelu", "fp32", 0, 80 * 2**20, "elementwise", out_bytes=40 * 2**20)
    small = Op("g", "aten.gelu", "fp32", 0, 2 * 2**20, "elementwise", out_bytes=2**20)
    alone = {o.out_bytes: device.predict_op(o).time_s for o in (big, small)}
    p = device.predict("m", [big, small], 0, "fp32")
    assert p.ops[0].time_s == pytest.approx(alone[big.out_bytes] + 40 * 2**20 / PAGE_BYTES * page_s)
    assert p.ops[1].time_s == pytest.approx(alone[small.out_bytes]) and "fresh pages" in p.ops[0].basis
    assert any("maps fresh from the OS" in n and "median calls cost" in n for n in p.notes)
    assert DeviceModel(synthetic()).fresh_page_s() == 0.0
    with torch.no_grad():
        counted = count_model(nn.Sequential(nn.GELU(), nn.ReLU(inplace=True)), (torch.randn(1, 4, 8, 8),))
    assert [predict.out_bytes(o) for o in counted.ops] == [4 * 4 * 8 * 8, 0]


def _with_fresh_rows(rec):
    """The fresh-memory rows of a record whose 64 MiB fresh write took 17 ms at best and the held one 1 ms."""
    from results.predict import FRESH_BYTES

    rec["measurements"] += [row("overhead", "held_memory", best_s=1e-3, median_s=1.2e-3, size_bytes=2 * FRESH_BYTES),
                            row("overhead", "fresh_memory", best_s=17e-3, median_s=0.14, size_bytes=2 * FRESH_BYTES)]
    return rec


def test_counted_page_faults_are_priced_in_the_best_and_median_call_and_replace_the_size_rule():
    """1000 counted faults a call x the record's page cost go into the best call (and so the median); the 40 MiB
    output is then not priced again by the size rule; a reason instead of a count is said, and the size rule
    prices; a GPU record prices no faults."""
    from kernels.pages import FaultCount

    device = DeviceModel(_with_fresh_rows(synthetic()))
    page_s = device.fresh_page_s()
    big = Op("g", "aten.gelu", "fp32", 0, 80 * 2**20, "elementwise", out_bytes=40 * 2**20)
    alone = device.predict_op(big).time_s
    count = FaultCount(1000, [5000, 1000, 1000], True, 0.1, 2)
    p = device.predict("m", [big], 0, "fp32", faults=count)
    assert p.page_faults == 1000 and p.fault_s == pytest.approx(1000 * page_s)
    assert p.ops[0].time_s == pytest.approx(alone) and "fresh pages" not in p.ops[0].basis
    assert p.best_s == pytest.approx(p.sum_s + p.fault_s) and p.predicted_s == pytest.approx(p.best_s * p.typical_factor)
    assert any("1000 page faults a call, counted by running the model here" in n and "steady" in n for n in p.notes)
    assert p.as_dict()["page_faults"] == 1000
    said = device.predict("m", [big], 0, "fp32", faults="--no-faults")
    assert said.page_faults is None and "fresh pages" in said.ops[0].basis
    assert any(n == "page faults not counted: --no-faults" for n in said.notes)
    gpu = _with_fresh_rows(synthetic())
    gpu["platform"] = {"kind": "cuda", "name": "Test GPU"}
    assert DeviceModel(gpu).predict("m", [big], 0, "fp32", faults=count).fault_s == 0.0


def test_the_reference_models_own_faults_come_out_of_its_calibration():
    device = _with_fresh_rows(_calibrated().record)
    plain = DeviceModel(device).calibrate("fp32", reference_sum_s=0.010, reference_ops=100)
    device["measurements"] = [dict(m, extra={**m["extra"], "faults_per_call": 100})
                              if m.get("group") == "calibration" else m for m in device["measurements"]]
    less = DeviceModel(device)
    per_op, typical, how = less.calibrate("fp32", reference_sum_s=0.010, reference_ops=100)
    assert per_op < plain[0] and "less its 100 page faults a call" in how
    paid = 100 * less.fresh_page_s()
    assert per_op == pytest.approx(plain[0] - 0.5 * paid / 100)


def test_steady_faults_counts_the_fresh_pages_a_call_takes():
    """A call that allocates and writes 64 MiB (above glibc's largest mmap threshold: mapped fresh on every call)
    takes a fault per 4 KiB page, call after call; a budget of 0 s stops after one call and says it is not steady.
    Counts, not times: nothing here depends on the machine's speed."""
    from kernels.pages import count_faults, model_call, steady_faults

    class Fresh(nn.Module):
        def forward(self, x):
            return torch.ones(16 * 2**20) + x  # 64 MiB fp32

    count = steady_faults(model_call(Fresh(), (torch.zeros(1),)))
    if count.per_call == 0:
        pytest.skip("this OS reports no page faults")
    assert count.steady and count.per_call >= 0.9 * 16384 and len(count.calls) >= 3
    assert "counted by running the model here" in count.how() and "steady" in count.how()
    once = steady_faults(model_call(Fresh(), (torch.zeros(1),)), budget_s=0.0)
    assert len(once.calls) == 1 and not once.steady and "NOT steady" in once.how()
    assert "exceed 50% of the memory" in count_faults("tests.data.tiny_cnn:build", [((1, 3, 16, 16), None)], "fp32",
                                                      weight_bytes=10**15)
    assert count_faults("tests.data.tiny_cnn:build", [((1, 5, 16, 16), None)], "fp32").startswith(
        "the model did not run here: RuntimeError")


def test_a_probe_that_faults_is_priced_from_its_best_call_less_its_faults():
    """A probe whose calls took 1000 page faults each: priced from its best warm call (10 ms, not the 30 ms median
    that the faults' varying cost gives) less 1000 x the record's page cost; one that faults nothing keeps its
    warm median."""
    rec = _with_fresh_rows(synthetic())
    gemm = {"m": 3136, "n": 64, "k": 576, "batch": 1}
    flops = 2 * 3136 * 64 * 576
    for name, faults in (("conv-faults", 1000), ("conv-none", 0)):
        r = probe_row(name, "conv", gemm=gemm, flops=flops, time_s=30e-3)
        r["extra"].update(warm_times_s=[10e-3, 30e-3, 50e-3], faults_per_call=faults)
        rec["measurements"].append(r)
    device = DeviceModel(rec)
    by_label = {p.label: p for p in device.points[("conv", "fp32")]}
    page_s = device.fresh_page_s()
    assert by_label["probe conv-faults"].time_s == pytest.approx(10e-3 - 1000 * page_s)
    assert by_label["probe conv-none"].time_s == pytest.approx(30e-3)
    assert by_label["probe conv-a"].time_s == pytest.approx(flops / 40e9)


def test_probes_timed_without_faults_give_their_own_time_and_the_price_of_a_fault():
    """A probe that faulted 1000 pages a call (best 10 ms) and ran 4 ms without faults: priced at its fault-free
    median (4.2 ms); the price of a fault is (10 - 4) ms / 1000 = 6 us (time added over faults, summed over such
    probes), which a
    model's counted faults are priced at instead of the fresh-memory write's."""
    from kernels.pages import FaultCount

    rec = _with_fresh_rows(synthetic())
    gemm = {"m": 3136, "n": 64, "k": 576, "batch": 1}
    r = probe_row("conv-faults", "conv", gemm=gemm, flops=2 * 3136 * 64 * 576, time_s=30e-3)
    r["extra"].update(warm_times_s=[10e-3, 30e-3], faults_per_call=1000)
    rec["measurements"] += [r, row("overhead", "probe_without_faults", median_s=4.2e-3, extra={
        "probe": "conv-faults", "warm_median_s": 4.2e-3, "best_s": 4e-3, "page_fault_s": 6e-6,
        "faults_per_call_with": 1000, "best_with_faults_s": 10e-3})]
    device = DeviceModel(rec)
    assert {p.label: p for p in device.points[("conv", "fp32")]}["probe conv-faults"].time_s == pytest.approx(4.2e-3)
    price, how = device.page_fault_s()
    assert price == pytest.approx(6e-6) and "faulting probes timed with and without faults" in how
    assert price != pytest.approx(device.fresh_page_s())
    p = device.predict("m", [Op("g", "aten.gelu", "fp32", 0, 1000, "elementwise")], 0, "fp32",
                       faults=FaultCount(500, [500, 500, 500], True, 0.1, 2))
    assert p.fault_s == pytest.approx(500 * 6e-6)
    assert DeviceModel(synthetic()).page_fault_s()[0] == 0.0


def test_a_model_predicted_too_slow_to_run_three_times_is_not_run_to_count_its_faults(monkeypatch):
    """The fault count runs a model 3+ times: where one call is predicted to take over a third of its budget, it is
    skipped with the reason, and the prediction says it."""
    import kernels.pages as pages

    monkeypatch.setattr(pages, "BUDGET_S", 1e-9)
    device = DeviceModel(_with_fresh_rows(synthetic()))
    counts = predict.count_for("tests.data.tiny_cnn:build", [((1, 3, 16, 16), None)], "fp32", "cpu")
    why = cli._count_faults(device, "tests.data.tiny_cnn:build", counts, [((1, 3, 16, 16), None)], "fp32", "cpu", 2)
    assert isinstance(why, str) and "counting its faults takes 3 calls or more" in why


def test_the_records_summary_names_the_faulting_probes_and_the_price_of_a_fault():
    from results.summary import fault_lines

    rec = _with_fresh_rows(synthetic())
    assert fault_lines(rec) == []
    r = probe_row("conv-faults", "conv", gemm={"m": 3136, "n": 64, "k": 576, "batch": 1}, flops=1, time_s=30e-3)
    r["extra"].update(warm_times_s=[10e-3], faults_per_call=1000)
    rec["measurements"] += [r, row("overhead", "probe_without_faults", median_s=4e-3, extra={
        "probe": "conv-faults", "warm_median_s": 4e-3, "best_s": 4e-3, "page_fault_s": 6e-6,
        "faults_per_call_with": 1000, "best_with_faults_s": 10e-3})]
    (line,) = fault_lines(rec)
    assert "1 probe faulted" in line and "a fault cost 6.00 us here" in line


def _conv_probe(name, cin, cout, pixels, rate, groups=1, taps=1, cold=None):
    n, k = cout // groups, cin // groups * taps
    flops = 2 * pixels * n * k * groups
    time_s = flops / rate
    return row("opsweep", name, "fp32", flops=flops, bytes=1, median_s=cold or time_s, shape=None,
               extra={"family": "conv" if groups == 1 else "conv_dw", "ops": [], "warm_median_s": time_s,
                      "implicit_gemm": {"m": pixels, "n": n, "k": k, "batch": groups},
                      "conv": [cin, cout, int(round(taps ** 0.5)), 1, groups]})


def test_channel_alignment_prices_a_72_channel_conv_among_probes_like_it():
    """Probes of 64 and 80 channels at 100 GFLOP/s and one of 72 at 50 (oneDNN blocks channels by 16): a 1x1 conv
    of 72 -> 72 channels leans on the 72-channel probe, one of 64 -> 64 on the aligned ones."""
    from results.predict import ALIGN, channel_alignment

    assert channel_alignment("conv", (3136, 72, 24, 1), 1) == 8  # 24 -> 72: both 8 modulo 16
    assert channel_alignment("conv", (3136, 64, 128, 1), 1) == ALIGN
    assert channel_alignment("conv_dw", (3136, 1, 9, 72), 9) == 8  # a depthwise one: its channels
    assert channel_alignment("conv", (12544, 32, 27, 1), 9) == 1  # an RGB stem
    assert channel_alignment("linear", (1, 64, 64, 1), 1) == 0
    dev = DeviceModel(record(_conv_probe("c64", 64, 64, 3136, 100e9), _conv_probe("c80", 80, 80, 3136, 100e9),
                             _conv_probe("c72", 72, 72, 3136, 50e9)))

    def rate(cin, cout):
        flops = 2 * 3136 * cin * cout
        op = Op("c", "aten.convolution", "fp32", flops=flops, bytes=1, family="conv", gemm=(3136, cout, cin, 1),
                taps=1)
        return flops / dev.predict_op(op).time_s

    assert rate(72, 72) < 0.6 * rate(64, 64)
    assert rate(64, 64) > 90e9


def test_the_working_set_calibration_prices_a_model_that_outgrows_the_cache():
    """A conv probe whose cold-cache time is twice its warm one, a 10 MiB cache; the record's working-set model
    touches 40 MiB a call (3/4 past the cache) and its best call landed 3/8 of the way from its ops' warm sum to
    their cold sum: a factor of 0.5, so a model touching 40 MiB is priced 0.5 x 75% of the way to cold, one that fits
    the cache warm; the factor is bounded, and without the row the weights-only rule stands."""
    from kernels.opsweep import WORKING_SET_SIDES, working_set_side
    from results.predict import WORKING_SET_BOUNDS, working_set_bytes

    warm = 2 * 3136 * 64 * 64 / 40e9
    conv = _conv_probe("c64", 64, 64, 3136, 40e9, cold=2 * warm)
    caches = [{"name": "L3", "size_bytes": 10 << 20}]
    op = Op("c", "aten.convolution", "fp32", flops=2 * 3136 * 64 * 64, bytes=1 << 20, family="conv",
            gemm=(3136, 64, 64, 1), taps=1, out_bytes=1 << 20)
    for landed, factor in ((0.375, 0.5), (-0.2, 0.0), (3.0, WORKING_SET_BOUNDS[1])):
        working = row("calibration", "working_set_model", best_s=4 * warm * (1 + landed), median_s=5 * warm,
                      extra={"working_set_bytes": 40 << 20, "input": [1, 3, 256, 256]})
        dev = DeviceModel(record(conv, working, platform={"kind": "cpu", "name": "Test CPU", "caches": caches}))
        got, how = dev.calibrate_working_set("fp32", [op] * 4, 0)
        assert got == pytest.approx(factor) and "256x256" in how
        outgrows = dev.predict("m", [op], 0, "fp32", weight_bytes=39 << 20)  # 39 MiB + a 1 MiB output
        assert outgrows.ops[0].time_s == pytest.approx(warm * (1 + factor * 0.75), rel=1e-9)
        if factor:
            assert any("past the last-level cache" in n for n in outgrows.notes)
        assert dev.predict("m", [op], 0, "fp32", weight_bytes=1 << 20).ops[0].time_s == pytest.approx(warm)
    assert working_set_bytes(100, [1, 2, 3]) == 106
    without = DeviceModel(record(conv, platform={"kind": "cpu", "name": "Test CPU", "caches": caches}))
    assert without.predict("m", [op], 0, "fp32", weight_bytes=39 << 20).ops[0].time_s == pytest.approx(
        warm * (1 + 1.0 * (1 - 10 / 39)), rel=1e-9)  # no calibration at all: the weights-only rule, the full way
    assert working_set_side(None, 4_800_000, 90_000_000) == WORKING_SET_SIDES[0]
    assert working_set_side(32 << 20, 4_800_000, 90_000_000) == 256  # 3 x 32 MiB: 224 x sqrt(95.9 / 90), up to 32
    assert working_set_side(300 << 20, 4_800_000, 90_000_000) == WORKING_SET_SIDES[1]


def test_a_warm_median_above_the_cold_one_is_not_believed():
    """A probe whose warm calls ran slower than its cold-cache ones (the machine slowed while they ran) is priced
    at its cold median: warm calls cannot be slower."""
    from results.predict import _warm_s

    probe = row("opsweep", "silu", median_s=300e-6, extra={"warm_median_s": 450e-6, "warm_times_s": [4e-4, 5e-4]})
    assert _warm_s(probe) == pytest.approx(300e-6)
    probe["extra"]["warm_median_s"] = 150e-6
    assert _warm_s(probe) == pytest.approx(150e-6)


def test_the_machine_now_is_said_beside_a_prediction_from_this_machine(tmp_path):
    """A CPU record made here with a reference-model calibration: the command line times that model now and says
    how far the machine's speed moved since the record (in the notes and the JSON); --no-now, a record from another
    machine or one without the calibration says nothing. No speed is asserted: the ratio is whatever this machine
    gives, the wording follows it."""
    rec = json.loads(_this_machine_record(tmp_path).read_text())
    rec["measurements"].append(row("calibration", "reference_model", best_s=1e-3, median_s=1.2e-3, n=100,
                                   extra={"input": [1, 3, 32, 32]}))
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(rec))
    out = tmp_path / "p.json"
    assert cli.main(["--record", str(path), "tests.data.tiny_cnn:build", "--input", "1,3,16,16", "--no-faults",
                     "--json", "--out", str(out)]) == 0
    result = json.loads(out.read_text())[0]
    now = result["machine_now"]
    assert now["record_median_s"] == pytest.approx(1.2e-3) and now["n"] >= 5
    assert now["ratio"] == pytest.approx(now["reference_median_s"] / 1.2e-3)
    assert any(n.startswith("the machine now: the record's reference model") for n in result["notes"])
    assert cli.main(["--record", str(path), "tests.data.tiny_cnn:build", "--input", "1,3,16,16", "--no-faults",
                     "--no-now", "--json", "--out", str(out)]) == 0
    assert "machine_now" not in json.loads(out.read_text())[0]
    assert cli.machine_now(DeviceModel(synthetic())) is None  # another host
    steady = {"reference_median_s": 1.05e-3, "record_median_s": 1e-3, "ratio": 1.05, "n": 9}
    assert "the prediction stands as made" in cli._now_note(steady)
    assert "about 2.00x the prediction" in cli._now_note({**steady, "reference_median_s": 2e-3, "ratio": 2.0})
