"""Faults and bad input (issue 10): a full disk, SIGTERM, a dead writer, exit statuses, bad records and sheets,
bad command lines. Each asserts the one-line message a user reads and that nothing measured is lost unsaid."""
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from results.record import (
    RecordError,
    RunRecord,
    check_writable,
    measurement,
    read_record,
)

ROOT = Path(__file__).resolve().parent.parent

FULL_DISK_PLUGIN = '''
import errno
import results.record as record

_real, _calls = record.atomic_write, [0]


def atomic_write(path, text):
    _calls[0] += 1
    if _calls[0] > 3:
        raise OSError(errno.ENOSPC, "No space left on device")
    return _real(path, text)


record.atomic_write = atomic_write
record.SAVE_INTERVAL_S = 0  # a save per point, so the failing write is the 4th point's
'''


def run(*args, env=None, timeout=240):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_disk_full_mid_run_stops_and_says_where_the_last_good_record_is(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "full_disk.py").write_text(FULL_DISK_PLUGIN)
    runs = tmp_path / "runs"
    out = run("-m", "pytest", "bench/test_stream.py", "--platform", "cpu", "--quick", "--results-dir", str(runs),
              "-q", "-p", "full_disk", env={"PYTHONPATH": str(tmp_path / "plugins")})
    text = out.stdout + out.stderr
    assert out.returncode == 2, text[-3000:]  # pytest's "interrupted": the run stopped early
    assert "No space left on device" in text and "the last good record is" in text and "RECORD NOT SAVED" in text
    assert "Traceback" not in text
    [path] = list(runs.glob("2*.json"))
    record = read_record(path)  # complete JSON: the writes that failed left the last good file whole
    assert len(record["measurements"]) == 3  # the first save (no rows yet) plus three updates
    assert "with 3 measurements" in text and "the 1 measured since" in text
    assert record["status"] == "did not finish (the process died)"  # "running" on disk, and its writer is gone
    assert not list(runs.glob("*.tmp"))


def test_a_full_disk_fails_before_measuring(tmp_path, monkeypatch):
    def fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(RecordError, match="No space left on device"):
        check_writable(tmp_path)
    assert not list(tmp_path.iterdir())  # the probe file is gone again


# SIGTERM handled like Ctrl-C (status "interrupted", summary and plot written): tests/test_budget.py, mid-call


def test_a_record_whose_process_died_says_so(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = RunRecord(tmp_path, {"name": "t", "device": "cpu"}, {})
    record.data["writer"] = {"pid": dead.pid, "started": None}
    record.save()
    assert read_record(record.path)["status"] == "did not finish (the process died)"
    alive = RunRecord(tmp_path, {"name": "t", "device": "cpu"}, {})
    alive.save()  # written by this (living) process
    assert read_record(alive.path)["status"] == "running"
    elsewhere = RunRecord(tmp_path, {"name": "t", "device": "cpu"}, {})
    elsewhere.data["host"] = "another-host"
    elsewhere.save()
    assert read_record(elsewhere.path)["status"] == "running (or died) on another host"


@pytest.mark.parametrize("field, value, message", [
    ("schema_version", "1", "'schema_version' must be an integer"),
    ("schema_version", 0, "schema version 0 is not a version"),
    ("schema_version", 99, "newer than this code understands"),
    ("platform", None, "'platform' must be a object, got null"),
    ("options", [], "'options' must be an object, got list"),
    ("measurements", {}, "'measurements' must be a list"),
])
def test_mistyped_records_name_the_field(tmp_path, field, value, message):
    data = {"schema": "roofline-run", "schema_version": 1, "run_id": "x", "platform": {}, "measurements": []}
    data[field] = value
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match=message.replace("(", r"\(")):
        read_record(path)


def test_bad_rows_and_bytes_are_one_line_errors(tmp_path):
    base = {"schema": "roofline-run", "schema_version": 1, "run_id": "x", "platform": {}}
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**base, "measurements": [1]}))
    with pytest.raises(RecordError, match=r"measurements\[0\] must be an object, got integer"):
        read_record(path)
    path.write_text(json.dumps({**base, "measurements": [{"group": "gemm", "kernel": "gemm", "status": "ok",
                                                          "best_s": "fast"}]}))
    with pytest.raises(RecordError, match=r"measurements\[0\].best_s must be a number"):
        read_record(path)
    path.write_bytes(b'{"schema": "\xff\xfe"}')
    with pytest.raises(RecordError, match="not UTF-8"):
        read_record(path)
    out = run("-m", "results", "show", str(path))
    assert out.returncode == 2 and out.stderr.startswith("error:") and "Traceback" not in out.stderr


def test_a_stray_bad_file_never_breaks_the_history(tmp_path):
    from results.history import comparable_runs

    (tmp_path / "stray.json").write_bytes(b"\xff not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    good = RunRecord(tmp_path, {"name": "t", "device": "cpu"}, {})
    good.add(measurement(group="stream", kernel="copy", dtype="fp32", status="ok", bytes=10, times_s=[1.0],
                         verified=True, size_bytes=64))
    notes: list[str] = []
    runs = comparable_runs(tmp_path, good.data, notes=notes)
    assert runs == [good.data] and len(notes) == 2
    assert any("stray.json" in n and "UTF-8" in n for n in notes)


def test_bad_spec_sheets_name_the_field(tmp_path):
    from results.specs import SpecError, load_spec

    sheet = tmp_path / "s.yaml"
    sheet.write_bytes(b"name: \xff\n")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_spec(sheet)
    sheet.write_text("schema: roofline-spec/1\nname: x\nsource: {document: d}\nmatch: {name_regex: x}\n"
                     "compute_tflops: [1, 2]\n")
    with pytest.raises(SpecError, match="'compute_tflops' must be a mapping"):
        load_spec(sheet)


def test_compare_output_paths(tmp_path):
    record = ROOT / "results" / "examples" / "2026-11-29_cpu_amd-epyc-2core-vm.json"
    out = run("-m", "results", "compare", str(record), str(record), "-o", str(tmp_path / "cmp"))
    assert out.returncode == 0, out.stderr
    assert f"Plot: {tmp_path / 'cmp.png'}" in out.stdout and (tmp_path / "cmp.png").exists()
    out = run("-m", "results", "compare", str(record), "-o", str(tmp_path / "cmp.pdf"))
    assert out.returncode == 2 and "ending in .png" in out.stderr
    out = run("-m", "results", "compare", str(record), "-o", str(tmp_path / "absent" / "c.png"))
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_option_errors(tmp_path):
    from bench import options
    from platforms import PlatformError, resolve

    with pytest.raises(PlatformError, match="--platform is empty"):  # conftest turns these into usage errors
        resolve("")
    with pytest.raises(options.OptionError, match="names no dtype"):
        options.dtypes(",")
    out = run("-m", "pytest", "bench/test_gemm.py", "--platform", "cpu", "--quick", "--dtypes", "fp32,fp32",
              "--collect-only", "-q", "--results-dir", str(tmp_path))
    ids = [line for line in out.stdout.splitlines() if "test_gemm[" in line]
    assert ids and len(ids) == len(set(ids))
    assert out.returncode == 0 and "nothing measured" not in out.stdout  # listing is not measuring


@pytest.mark.slow  # the default run checks the same in tests/test_cli.py (GPU-only files and tf32 in one run)
def test_nothing_measured_is_not_complete(tmp_path):
    out = run("-m", "pytest", "bench/test_gemm.py", "--platform", "cpu", "--quick", "--dtypes", "tf32",
              "--results-dir", str(tmp_path), "-q")
    assert out.returncode == 1, out.stdout[-2000:]
    [path] = list(tmp_path.glob("2*.json"))
    status = read_record(path)["status"]
    assert status.startswith("nothing measured") and "TF32" in status


def test_a_model_that_fails_in_forward_fails_the_run(tmp_path):
    out = run("-m", "pytest", "bench/test_layers.py", "--platform", "cpu", "--quick", "--results-dir", str(tmp_path),
              "--model", "tests.data.broken_model:fails_in_forward", "--input", "2,4", "-q")
    assert out.returncode == 1, out.stdout[-2000:]
    record = read_record(next(tmp_path.glob("2*.json")))
    assert not record["status"].startswith("complete")
    failed = [m for m in record["measurements"] if m["status"] == "failed"]
    assert failed and "fails in forward on purpose" in failed[0]["reason"]


@pytest.mark.parametrize("args, message", [
    (["resnet18", "--input", "1,x"], "'x' is not a positive integer"),
    (["resnet18", "--input", ""], "it is empty"),
    (["resnet18", "--batch-sweep", "0"], "every batch size must be a positive integer"),
    (["resnet18", "--batch-sweep", "1,a"], "give positive integers"),
    (["resnet18", "--csv", "/nonexistent-dir/x.csv"], "--csv /nonexistent-dir/x.csv: cannot be written"),
    (["resnet18", "--json", "/nonexistent-dir/x.json"], "--json /nonexistent-dir/x.json: cannot be written"),
    (["resnet18", "--device", "tpu"], "--device 'tpu': unknown"),
    (["tests.data.broken_model:raises"], "raised ValueError: the factory itself fails"),
    (["tests.data.broken_model:needs_argument"], "could not be called without arguments"),
    (["tests.data.broken_model:not_a_module"], "returned a int, not a torch.nn.Module"),
    (["tests.data.broken_model:fails_in_forward", "--input", "2,4"], "fails in forward on purpose"),
])
def test_count_cli_errors_are_one_line(args, message, capsys):
    # in-process (a subprocess per case cost ~3 s of torch import each); the real command line is checked below
    from bench.count_cli import main

    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err, err[-2000:]
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_count_cli_error_from_the_real_command_line():
    out = run("-m", "kernels.count", "resnet18", "--input", "1,x", timeout=120)
    assert out.returncode == 2 and "'x' is not a positive integer" in out.stderr, out.stderr[-2000:]
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_count_takes_several_inputs():
    from kernels.zoo import count_named, parse_input

    inputs = [parse_input("2,8:int64"), parse_input("2,8")]
    assert inputs == [((2, 8), "int64"), ((2, 8), None)]
    counts = count_named("tests.data.two_inputs:build", (2, 8), inputs=inputs)
    assert counts.total_params == 100 * 16 + 16 * 16 and counts.macs == 2 * 8 * 16 * 16
