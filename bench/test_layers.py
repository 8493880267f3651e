"""Real layers on the measured roofline: every distinct layer of the models (cold- and warm-cache times, the
implicit GEMM of the same shape), and whole-model times. See kernels/layers.py for what a layer is."""
import importlib.util

import pytest

from bench.session import run_of
from kernels import gemm
from kernels.layers import (
    build_spec,
    extract_layers,
    layer_specs,
    prepare_layer,
    prepare_model,
)
from results.analysis import analyse

_CACHE: dict = {}


def _specs(config):
    platform = run_of(config).platform
    return layer_specs(platform.kind, config.getoption("--quick"), config.getoption("--model"),
                       config.getoption("--input"), importlib.util.find_spec("torchvision") is not None)


def _extracted(spec, device):
    """Build and trace a model once per session (at collection), so each distinct layer becomes a test."""
    if spec.key not in _CACHE:
        try:
            model, inputs = build_spec(spec, device)
            cases, counts = extract_layers(model, inputs, spec.name, only_largest=spec.largest)
            _CACHE[spec.key] = (model, inputs, cases, counts, None)
        except Exception as exc:  # reported as a skipped point with its reason, the rest goes on
            _CACHE[spec.key] = (None, None, [], None, f"{type(exc).__name__}: {str(exc)[:300]}")
    return _CACHE[spec.key]


def pytest_generate_tests(metafunc):
    config = metafunc.config
    device = run_of(config).platform.device
    if "layer_point" in metafunc.fixturenames:
        points = []
        for spec in _specs(config):
            if spec.missing:
                points.append(pytest.param((spec, None, None), id=f"{spec.key}-missing"))
                continue
            *_, cases, _counts, error = _extracted(spec, device)
            if error:
                points.append(pytest.param((spec, None, error), id=f"{spec.key}-build"))
            points += [pytest.param((spec, case, None), id=f"{spec.key}-{case.path}") for case in cases]
        metafunc.parametrize("layer_point", points)
    if "model_point" in metafunc.fixturenames:
        metafunc.parametrize("model_point", [pytest.param(s, id=s.key) for s in _specs(config) if not s.largest])


def _gemm_maker(case, dtype, device):
    shape = case.implicit_gemm
    if not shape:
        return None
    g = gemm.GemmShape(shape["m"], shape["n"], shape["k"], batch=shape["batch"], tag="implicit")
    return lambda: gemm.prepare(g, dtype, device)


def test_layer(suite, benchmark, layer_point):
    spec, case, error = layer_point
    fields = dict(group="layer", kernel=f"{spec.name}:{case.path if case else '(build)'}", dtype=spec.dtype)
    if spec.missing:
        suite.not_measured("missing", f"model {spec.source}: {spec.missing}", **fields)
    if error:  # a model that cannot run forward is a failure of the run, not a point to skip
        suite.not_measured("failed", f"model {spec.source} could not be built or traced: {error}", **fields)
    device = suite.platform.device

    def make():
        p = prepare_layer(case)
        p.dtype = spec.dtype
        p.extra.update({"spec": spec.name, "batch_tag": spec.batch_tag, "note": spec.note, "source": spec.source})
        return p

    suite.run_layer(benchmark, make, _gemm_maker(case, spec.dtype, device), **fields)


def test_model(suite, benchmark, model_point):
    spec = model_point
    fields = dict(group="model", kernel=spec.name, dtype=spec.dtype)
    if spec.missing:
        suite.not_measured("missing", f"model {spec.source}: {spec.missing}", **fields)
    model, inputs, _cases, counts, error = _extracted(spec, suite.platform.device)
    if error:
        suite.not_measured("failed", f"model {spec.source} could not be built or traced: {error}", **fields)

    def make():
        p = prepare_model(model, inputs, spec.name, counts)
        p.dtype = spec.dtype
        p.extra.update({"spec": spec.name, "batch_tag": spec.batch_tag, "source": spec.source})
        return p

    suite.run(benchmark, make, **fields)


def test_layers_within_their_model(suite, pytestconfig):
    """After the layers and models: the distinct layers (warm, x multiplicity) of a model cannot take longer than
    the whole model. Where they do by more than 5%, the model is timed again once; if it persists, the model row is
    flagged with both numbers (one of the timings was disturbed, or the layers are not independent of each other)."""
    specs = {(s.name, s.dtype): s for s in _specs(pytestconfig) if not s.largest}
    for m in analyse(suite.record.data).models:
        spec = specs.get((m["model"], m["dtype"]))
        if m["warm_sum_over_model"] <= LAYERS_OVER_MODEL or spec is None:
            continue
        old = next(r for r in suite.record.measurements if r.get("group") == "model" and r["kernel"] == m["model"]
                   and r["dtype"] == m["dtype"] and not r.get("superseded"))
        model, inputs, _cases, counts, error = _extracted(spec, suite.platform.device)
        if error:
            continue

        def make():
            p = prepare_model(model, inputs, spec.name, counts)
            p.dtype = spec.dtype
            p.extra.update({"spec": spec.name, "batch_tag": spec.batch_tag, "source": spec.source})
            return p

        new = suite.remeasure(old, make) or old
        again = next((r for r in analyse(suite.record.data).models if r["model"] == m["model"] and r["dtype"] == m["dtype"]),
                     None)
        if again and again["warm_sum_over_model"] > LAYERS_OVER_MODEL:
            new["sanity"] = {"flag": f"its layers sum to {100 * again['warm_sum_over_model']:.0f}% of the model even "
                                     "after timing the model again: one of the timings is disturbed"}
            suite.record.save()


#: the layers of a model may sum to at most this fraction of the model's time before it is re-measured
LAYERS_OVER_MODEL = 1.05
