import json
import os
import types

import pytest

import results
from results.record import (
    RecordError,
    RunRecord,
    check_writable,
    measurement,
    read_record,
)
from results.stats import summarise


def test_statistics_by_hand():
    s = summarise([1.0, 2.0, 3.0, 4.0])
    assert s["best_s"] == 1.0 and s["median_s"] == 2.5 and s["mean_s"] == 2.5 and s["n"] == 4
    assert s["cv"] == pytest.approx(1.2909944 / 2.5)


def test_measurement_rates_only_when_ok():
    ok = measurement(group="stream", kernel="copy", dtype="fp32", status="ok", bytes=100, times_s=[2.0, 1.0],
                     verified=True)
    assert ok["bytes_per_s"] == 100.0 and ok["bytes_per_s_median"] == pytest.approx(100 / 1.5)
    bad = measurement(group="stream", kernel="copy", dtype="fp32", status="failed", bytes=100, times_s=[1.0],
                      verified=False)
    assert bad["bytes_per_s"] is None


def test_round_trip_and_never_overwrite(tmp_path):
    first = RunRecord(tmp_path, {"name": "test cpu", "device": "cpu"}, {"quick": True})
    first.add(measurement(group="stream", kernel="copy", dtype="fp32", status="ok", bytes=10, times_s=[1.0],
                          verified=True, size_bytes=64))
    second = RunRecord(tmp_path, {"name": "test cpu", "device": "cpu"}, {"quick": True})
    second.data["run_id"] = first.data["run_id"]  # same second, same host: must still get its own file
    second.save()
    assert first.path != second.path and first.path.exists() and second.path.exists()
    assert read_record(first.path)["measurements"][0]["kernel"] == "copy"
    frame = results.load(first.path)
    assert list(frame["kernel"]) == ["copy"] and frame.loc[0, "bytes_per_s"] == 10.0
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_the_file_follows_the_run_at_most_a_second_behind_and_is_whole_at_the_end(tmp_path, monkeypatch):
    import results.record as rr

    clock = [100.0]
    monkeypatch.setattr(rr, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))  # this module's clock only
    record = RunRecord(tmp_path, {"name": "test cpu", "device": "cpu"}, {"quick": True})
    row = dict(group="stream", kernel="copy", dtype="fp32", status="ok", bytes=10, times_s=[1.0], verified=True)
    record.add(measurement(**row))  # the first point claims the file at once
    assert len(read_record(record.path)["measurements"]) == 1
    clock[0] += 0.5
    record.add(measurement(**row))  # within the interval: not rewritten yet
    assert len(read_record(record.path)["measurements"]) == 1 and record.saved_measurements == 1
    clock[0] += rr.SAVE_INTERVAL_S
    record.add(measurement(**row))
    assert len(read_record(record.path)["measurements"]) == 3
    assert "\n" not in record.path.read_text().strip()  # compact while running (json's C encoder)
    record.save(final=True)
    text = record.path.read_text()
    assert text.count("\n") > 10 and len(read_record(record.path)["measurements"]) == 3  # one field per line


def test_an_interrupt_after_the_rename_propagates_and_the_record_is_whole(tmp_path, monkeypatch):
    # a signal handler's KeyboardInterrupt (torchrun's SIGTERM) can land just after os.replace: the record is then
    # written, and the interrupt must propagate as itself, not as a FileNotFoundError from cleaning up
    record = RunRecord(tmp_path, {"name": "test cpu", "device": "cpu"}, {"quick": True})
    record.save()  # the first save claims a new name; later ones rename a temporary over it
    real_replace = os.replace

    def replace_then_interrupt(src, dst):
        real_replace(src, dst)
        raise KeyboardInterrupt("SIGTERM")

    monkeypatch.setattr(os, "replace", replace_then_interrupt)
    record.data["status"] = "failed at point 3"
    with pytest.raises(KeyboardInterrupt):
        record.save()
    monkeypatch.undo()
    assert read_record(record.path)["status"] == "failed at point 3"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_corrupt_and_foreign_records_fail_clearly(tmp_path):
    truncated = tmp_path / "cut.json"
    truncated.write_text('{"schema": "roofline-run", "measurements": [')
    with pytest.raises(RecordError, match="corrupt or truncated"):
        read_record(truncated)
    foreign = tmp_path / "other.json"
    foreign.write_text(json.dumps({"hello": 1}))
    with pytest.raises(RecordError, match="not a run record"):
        read_record(foreign)
    with pytest.raises(RecordError, match="cannot read"):
        read_record(tmp_path / "absent.json")


def test_unwritable_results_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RecordError, match="cannot be written"):
        check_writable(blocker / "runs")


# ---- issue 23: every field a reader touches is checked where the record is read, once ------------------------
def _good_record(tmp_path, name="20261201T000000Z-host-cpu.json"):
    from results.record import SCHEMA, SCHEMA_VERSION

    rows = [measurement(group="stream", kernel="copy", dtype="fp32", impl="torch", status="ok", verified=True,
                        size_bytes=1 << 30, bytes=1 << 30, times_s=[0.05, 0.06]),
            measurement(group="gemm", kernel="gemm", dtype="fp32", impl="torch", status="ok", verified=True,
                        shape=[512, 512, 512], flops=2 * 512 ** 3, times_s=[0.01, 0.011])]
    data = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "run_id": name[:-5], "created": "2026-12-01T00:00:00Z",
            "status": "complete", "host": "h", "platform": {"kind": "cpu", "name": "CPU", "caches": []},
            "options": {"quick": True}, "measurements": rows}
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path, data


@pytest.mark.parametrize("edit,field", [
    (lambda d: d.update(options=None), "'options' must be an object, got null"),
    (lambda d: d.update(created=20261201), "'created' must be a string"),
    (lambda d: d["platform"].update(name=["A", "B"]), "'platform.name' must be a string, got list"),
    (lambda d: d["measurements"][0].update(bytes_per_s="44 GB/s"), "measurements[0].bytes_per_s must be a number"),
    (lambda d: d["measurements"][0].update(bytes_per_s=float("nan")), "measurements[0].bytes_per_s must be a finite"),
    (lambda d: d["measurements"][1].update(best_s=0), "measurements[1].best_s must be a positive number"),
    (lambda d: d["measurements"][1].update(best_s=-1e-3), "measurements[1].best_s must be a positive number"),
    (lambda d: d["measurements"][0].update(disturbed="no"), "measurements[0].disturbed must be true or false"),
    (lambda d: d["measurements"][0].update(kernel=["copy"]), "measurements[0].kernel must be a string"),
    (lambda d: d["measurements"][0].update(times_s=[0.1, "x"]), "measurements[0].times_s must be a list of finite"),
])
def test_a_wrong_field_is_one_line_naming_it(tmp_path, edit, field):
    path, data = _good_record(tmp_path)
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError) as info:
        read_record(path)
    assert field in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("command", [["show"], ["validate"], ["plot"], ["report"], ["show", "--json"]])
def test_every_reader_command_gives_the_line_not_a_traceback(tmp_path, capsys, command):
    from results.__main__ import main

    path, data = _good_record(tmp_path)
    data["measurements"][0]["bytes_per_s"] = "44 GB/s"
    path.write_text(json.dumps(data))
    assert main([command[0], str(path), *command[1:]]) == 2
    err = capsys.readouterr().err
    assert "measurements[0].bytes_per_s must be a number" in err and "Traceback" not in err


def test_a_stray_record_in_the_folder_is_skipped_with_a_note(tmp_path, capsys):
    """The defect: one record with "options": null crashed the next run's summary and show --history."""
    from results.__main__ import main
    from results.history import comparable_runs

    path, _ = _good_record(tmp_path)
    _good_record(tmp_path, "20261202T000000Z-host-cpu.json")
    stray, data = _good_record(tmp_path, "20261203T000000Z-host-cpu.json")
    data["options"] = None
    stray.write_text(json.dumps(data))
    notes: list[str] = []
    runs = comparable_runs(tmp_path, read_record(path), notes=notes)
    assert len(runs) == 2 and len(notes) == 1 and str(stray) in notes[0] and "'options'" in notes[0]
    assert main(["show", str(path), "--history", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "Measured roofline" in out.out and "20261203T000000Z-host-cpu.json" in out.err


def test_a_record_without_a_measured_point_is_never_complete(tmp_path):
    path, data = _good_record(tmp_path)
    data["measurements"] = []
    path.write_text(json.dumps(data))
    assert read_record(path)["status"].startswith("nothing measured")


@pytest.mark.parametrize("directory,text", [("", "--results-dir is empty"), ("  ", "--results-dir is empty")])
def test_an_empty_results_dir_is_refused(directory, text):
    with pytest.raises(RecordError, match=text):
        check_writable(directory)


def test_a_results_dir_that_is_a_file_says_so(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("x")
    with pytest.raises(RecordError, match="is a file, not a folder"):
        check_writable(target)


def test_an_empty_spec_sheet_says_it_is_empty(tmp_path):
    from results.specs import SpecError, load_spec

    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(SpecError, match="the file is empty"):
        load_spec(tmp_path / "empty.yaml")
