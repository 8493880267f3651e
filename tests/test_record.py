import json
import os
import types

import pytest

import results
from results.record import RecordError, RunRecord, check_writable, measurement, read_record
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
