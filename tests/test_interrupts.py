"""Interrupts with real signals to a real run (issue 23): a double Ctrl-C, a Ctrl-C to a run started with SIGINT
ignored (a shell's background job), a signal while the run writes its summary; and PNGs written atomically.
The run is the GEMM file on the CPU with a stand-in whose fp64 calls last 2 s (tests/plugins/slow_standin.py), so
a signal lands inside a known call."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _start(tmp_path, env_extra, ignore_sigint=False, args=()):
    env = {**os.environ, "ROOFLINE_STANDIN_SLEEP_S": "2", "ROOFLINE_STANDIN_DTYPES": "fp64", **env_extra}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "bench/test_gemm.py", "--platform", "cpu", "--quick", "--dtypes", "fp64",
         "-p", "tests.plugins.slow_standin", "--results-dir", str(tmp_path), "-q", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None)


def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), f"{path.name} never appeared"


@pytest.mark.parametrize("first", [pytest.param(signal.SIGINT, marks=pytest.mark.slow, id="ctrl-c-twice"),
                                   pytest.param(signal.SIGTERM, id="sigterm-then-ctrl-c")])
def test_a_second_interrupt_to_a_background_run_is_interrupted_not_complete(tmp_path, first):
    """The default run sends SIGTERM then Ctrl-C to a run started with SIGINT ignored: the SIGTERM answer, the
    taken-over SIGINT and the second signal in one run; Ctrl-C twice is the slow variant."""
    mark = tmp_path / "slow-call-started"
    # the end of the run lasts 3 s longer (a slow summary hook), so the second signal finds the process alive
    proc = _start(tmp_path, {"ROOFLINE_STANDIN_MARK": str(mark), "ROOFLINE_STANDIN_SUMMARY_MARK": str(tmp_path / "s"),
                             "ROOFLINE_STANDIN_SUMMARY_S": "3"}, ignore_sigint=True)  # as `pytest ... &` starts
    _wait_for(mark)
    time.sleep(0.5)  # inside the fp64 probe's first 2 s call
    proc.send_signal(first)
    time.sleep(1.9)  # the running call has returned: the second lands while the run stops and saves
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    record = json.loads(next(tmp_path.glob("2*.json")).read_text())
    assert record["status"] == "interrupted", record["status"]
    # on a loaded machine the running call can outlast both signals; Python then handles the pending ones in
    # signal-number order (SIGINT first), so either may be the one recorded
    assert record["interrupt"]["signal"] in ("SIGTERM", "Ctrl-C (SIGINT)") and record["interrupt"]["during"] == "run"
    assert proc.returncode == 2, (proc.returncode, stderr[-2000:])
    assert "Traceback" not in stdout + stderr, (stdout + stderr)[-3000:]
    # the first signal is answered at once with what the run waits for, the second as a repeat
    assert ": stopping; waiting for the running call to return (gemm fp64 probe" in stderr, stderr[-2000:]
    assert "again: already stopping" in stderr or "Ctrl-C (SIGINT), SIGTERM: stopping" in stderr, stderr[-2000:]
    assert all(m["status"] in ("ok", "missing", "skipped", "cut") for m in record["measurements"])
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # no half-written file left behind
    # the summary was written, or one line says the record is saved and how to write what was not
    assert "[interrupted]" in stdout or ("the record is saved" in stdout and "python -m results show" in stdout), stdout


def test_a_signal_during_the_summary_ends_quietly_and_keeps_the_outputs(tmp_path):
    mark = tmp_path / "summary-started"
    proc = _start(tmp_path, {"ROOFLINE_STANDIN_SLEEP_S": "0", "ROOFLINE_STANDIN_SUMMARY_MARK": str(mark),
                             "ROOFLINE_STANDIN_SUMMARY_S": "1"},
                  args=["--budget", "3", "-k", "square-512x512x512"])  # one point: the test is about the end
    _wait_for(mark, timeout=120)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    path = next(tmp_path.glob("2*.json"))
    record = json.loads(path.read_text())
    assert record["status"] == "complete"  # every point had finished before the signal
    assert "Traceback" not in stdout + stderr, (stdout + stderr)[-3000:]
    assert "interrupted while finishing: the record is saved" in stdout
    assert path.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # written whole before the summary


def test_png_is_written_atomically(tmp_path):
    import pytest

    from results.record import atomic_savefig

    target = tmp_path / "r.png"
    target.write_bytes(b"earlier")

    class Figure:
        def savefig(self, path, **kwargs):
            Path(path).write_bytes(b"\x89PNG half")
            raise KeyboardInterrupt("SIGTERM")

    with pytest.raises(KeyboardInterrupt):
        atomic_savefig(Figure(), target)
    assert target.read_bytes() == b"earlier" and sorted(p.name for p in tmp_path.iterdir()) == ["r.png"]


def _interrupt(args, timeout: float = 120):
    """Start a command, send Ctrl-C once it has printed its first line (or after 4 s), return (rc, stderr)."""
    import threading

    # Ctrl-C as at a terminal: the default disposition (a test run started from a script may have SIGINT ignored,
    # which the child would inherit, and a Python started so never raises KeyboardInterrupt)
    proc = subprocess.Popen([sys.executable, "-u", "-m", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = threading.Event()

    def read():
        for _line in proc.stdout:
            seen.set()
    threading.Thread(target=read, daemon=True).start()
    seen.wait(timeout=4)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stderr = proc.stderr.read()
    return proc.wait(timeout=timeout), stderr


def test_ctrl_c_in_the_counter_and_the_predictor_is_one_line(tmp_path):
    import json
    import socket
    from concurrent.futures import ThreadPoolExecutor

    from platforms.cpu import cpu_identity

    # --measure times only on the machine its record is of: a committed record, made this machine's
    data = json.loads(next((ROOT / "results" / "examples").glob("2026-12-01_cpu_*full.json")).read_text())
    data["host"] = socket.gethostname()
    data["platform"].update(cpu_identity())
    record = tmp_path / "here.json"
    record.write_text(json.dumps(data))
    commands = [["kernels.count", "vit_b_16", "--batch-sweep", ",".join(str(b) for b in range(1, 5000))],
                ["kernels.predict", "--record", str(record), "resnet50", "--input", "8,3,224,224", "--measure"]]
    with ThreadPoolExecutor(2) as pool:  # side by side: neither is a benchmark
        results = list(pool.map(_interrupt, commands))
    for rc, stderr in results:
        assert rc == 130 and "Traceback" not in stderr and "interrupted (Ctrl-C)" in stderr, (rc, stderr[-2000:])
        assert len(stderr.strip().splitlines()) == 1


def test_sighup_is_handled_like_sigterm_where_it_has_its_default_action():
    import types

    from bench import signals

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    config = types.SimpleNamespace(pluginmanager=types.SimpleNamespace(get_plugin=lambda name: None))
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        signals.install(config)
        assert signal.getsignal(signal.SIGHUP) is signals.on_signal
        signals.uninstall(config)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # nohup: somebody's choice, kept
        signals.install(config)
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        signals.uninstall(config)
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


@pytest.mark.slow  # a real SIGHUP to a real run; the default run checks the handler above
def test_a_closed_terminal_sighup_saves_the_record_as_interrupted(tmp_path):
    mark = tmp_path / "slow-call-started"
    proc = _start(tmp_path, {"ROOFLINE_STANDIN_MARK": str(mark)})
    _wait_for(mark)
    proc.send_signal(signal.SIGHUP)
    proc.communicate(timeout=60)
    record = json.loads(next(tmp_path.glob("2*.json")).read_text())
    assert record["status"] == "interrupted" and record["interrupt"]["signal"] == "SIGHUP"  # was: died "running"
