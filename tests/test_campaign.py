"""Cases found by the hostile-user campaign of issue 23 (beyond the issue's list), each a one-line answer."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "results" / "examples" / "2026-12-01_cpu_intel-xeon-emr-2core-vm-full.json"


def test_disabling_pytest_benchmark_is_a_usage_error_not_an_internal_error(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pytest", "bench/test_gemm.py", "--platform", "cpu", "--quick",
                          "-p", "no:benchmark", "--results-dir", str(tmp_path)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 4 and "INTERNALERROR" not in out.stdout + out.stderr
    assert "disabled here (-p no:benchmark)" in out.stdout + out.stderr


def test_a_negative_cache_size_is_refused(tmp_path):
    from results.record import RecordError, read_record

    data = json.loads(EXAMPLE.read_text())
    data["platform"]["caches"][0]["size_bytes"] = -1
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match="positive integer size_bytes"):
        read_record(path)


def test_history_of_a_missing_folder_and_a_record_compared_with_itself_say_so(tmp_path, capsys):
    from results.__main__ import main

    assert main(["show", str(EXAMPLE), "--history", str(tmp_path / "nope")]) == 0
    assert "no such folder" in capsys.readouterr().err
    assert main(["compare", str(EXAMPLE), str(EXAMPLE), "-o", str(tmp_path / "c.png")]) == 0
    assert "given more than once" in capsys.readouterr().err


def test_a_thread_variable_that_is_not_a_number_is_flagged():
    from results.summary import threads_lines

    lines = threads_lines({"torch_threads": 2, "physical_cores": 2, "logical_cores": 2,
                           "environment": {"OMP_NUM_THREADS": "abc"}})
    assert any("OMP_NUM_THREADS=abc is not a whole number" in line for line in lines)


def test_a_compiler_that_fails_silently_is_named(tmp_path, monkeypatch):
    from kernels import native

    monkeypatch.setenv("CC", "/bin/false")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(native.Unsupported, match="exited with status 1 and printed nothing"):
        native.build(force=True)


def test_output_to_a_full_disk_is_one_line(monkeypatch, capsys):
    import errno
    import io

    from results.__main__ import main

    class Full(io.StringIO):
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sys, "stdout", Full())
    assert main(["show", str(EXAMPLE)]) == 2
    assert "cannot write the output: No space left on device" in capsys.readouterr().err
