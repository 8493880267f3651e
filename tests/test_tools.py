"""The predictor's check tools on hand-made results: the check's table and summary (passes, the machine sentinel,
page faults), the range fit's quantile rule and their error paths. No model is timed."""
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _entry(model, predicted, measured, pass_no, ratio=None, faults=0):
    entry = {"model": model, "batch": 1, "predicted_s": predicted, "best_s": predicted * 0.9,
             "low_s": predicted / 1.2, "high_s": predicted * 1.4, "error": predicted / measured - 1,
             "best_error": 0.0, "inside_range": predicted / 1.2 <= measured <= predicted * 1.4, "pass": pass_no,
             "measured": {"median_s": measured, "best_s": measured * 0.9, "faults_per_call": faults}}
    if ratio:
        entry["machine"] = {"ratio": ratio}
        entry["error_machine"] = predicted * ratio / measured - 1
    return entry


def test_the_checks_summary_gives_each_pass_the_machine_and_the_repeatability():
    check = _tool("validate_predictor")
    results = [_entry("a", 0.010, 0.010, 1, ratio=1.0, faults=12), _entry("b", 0.020, 0.025, 1, ratio=1.25),
               _entry("a", 0.010, 0.015, 2, ratio=1.5), _entry("b", 0.020, 0.025, 2, ratio=1.0)]
    lines = check.summary(results)
    assert lines[0] == "pass 1:" and any(line == "pass 2:" for line in lines)
    assert "the range held 2 of 2" in lines[1]
    assert "ran at 1.00-1.25x" in lines[2] and "median |error| 0%" in lines[2]  # b: 0.020 x 1.25 = 0.025
    assert lines[-1].startswith("repeatability:") and "1.25x" in lines[-1] and "1.50x at most (a batch 1)" in lines[-1]
    table = check.table(results)
    assert "| a (pass 2) | 1 |" in table and table.splitlines()[2].endswith("| -; 12 |")
    results[0]["page_faults"] = 10
    assert check.table(results).splitlines()[2].endswith("| 10; 12 |")


def test_the_check_refuses_no_passes(capsys):
    check = _tool("validate_predictor")
    assert check.main(["--record", "none.json", "--models", "resnet18", "--passes", "0"]) == 2
    assert "--passes 0: give 1 or more" in capsys.readouterr().err


def test_the_range_fits_quantile_rule_and_share_bounds(capsys):
    fit = _tool("fit_range")
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert fit.quantile(values, 0.0) == 1.0 and fit.quantile(values, 1.0) == 5.0
    assert fit.quantile(values, 0.5) == 3.0 and fit.quantile(values, 0.125) == pytest.approx(1.5)
    assert fit.main(["--share", "1.5"]) == 2
    assert "--share 1.5" in capsys.readouterr().err
