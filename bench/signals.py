"""How a run stops: Ctrl-C (SIGINT) and SIGTERM (what `timeout`, CI cancellation and `kill` send).

The first signal while points run stops pytest as Ctrl-C does (a KeyboardInterrupt): the record is marked
"interrupted" and saved, and the summary, plot and page are still written. Every later signal is caught, never
raised into pytest's own interrupt handling (where a second KeyboardInterrupt made pytest report exit status 0 and
the record "complete", with a traceback): while the record is saved it is noted and the plot and page are skipped;
during the end-of-run summary it stops the summary quietly, saying what was not written and the command that
writes it; a third signal once the record is on disk ends the process at once (exit 130).

SIGINT is taken over even where the process started with it ignored (a shell's background job: `pytest ... &`
ignores SIGINT, and a `kill -INT` was then lost while the run went on to "complete"); SIGTERM and SIGHUP (the
terminal closed: the run died with its record marked "running") only where they have their default action
(another handler, or nohup's ignoring, is somebody's choice).

Python runs a signal's handler only between bytecodes: a signal that arrives during a long native call (a BLAS
GEMM, a C kernel) waits for it to return. The pipe given to ``signal.set_wakeup_fd`` gets the signal number at
once, in C; a thread (blocked in read, no CPU) says what the run is waiting for.
"""
from __future__ import annotations

import os
import signal
import threading
import time

NAMES = {int(signal.SIGTERM): "SIGTERM", int(signal.SIGINT): "Ctrl-C (SIGINT)", int(signal.SIGHUP): "SIGHUP"}
#: phase: "run" (points), "finish" (saving the record, plots, page), "summary" (the terminal summary), "done"
STATE = {"count": 0, "phase": "run", "first_phase": None, "record_saved": False, "again": False, "err_fd": 2,
         "bench": False}  # bench: this session runs benchmarks (set at collection); other pytest runs keep Ctrl-C


class StopSummary(BaseException):
    """A further signal during the end-of-run summary: stop writing it (caught by the summary hook)."""


def reset() -> None:
    STATE.update(count=0, phase="run", first_phase=None, record_saved=False, again=False, bench=False)


def record_note() -> dict | None:
    """For the record: which signal stopped the run, and in which phase."""
    if STATE["first_phase"] is None:
        return None
    return {"signal": STATE.get("first_name"), "during": STATE["first_phase"], "signals": STATE["count"]}


def interrupted_run() -> bool:
    """Did a signal stop the points (not only the writing of the outputs after the last one)?"""
    return STATE["first_phase"] == "run"


def _say(text: str) -> None:
    try:
        os.write(STATE["err_fd"], f"\n{text}\n".encode())
    except OSError:
        pass


def on_signal(signum, frame):
    name = NAMES.get(int(signum), f"signal {signum}")
    if not STATE["bench"]:  # a pytest run without benchmarks (the test suite): every signal stops it, as ever
        raise KeyboardInterrupt(name)
    STATE["count"] += 1
    if STATE["first_phase"] is None:
        STATE.update(first_phase=STATE["phase"], first_name=name)
    if STATE["count"] == 1 and STATE["phase"] == "run":
        raise KeyboardInterrupt(name)
    STATE["again"] = True
    if STATE["count"] >= 3 and STATE["record_saved"]:
        _say(f"roofline: {name} a third time: ending now (exit 130); the record is saved")
        os._exit(130)
    if STATE["phase"] == "summary":
        raise StopSummary(name)
    # pytest is handling the first interrupt, or the record is being saved: never raise into either


def install(config) -> None:
    """Take over SIGINT and SIGTERM for the run (main thread only) and start the watcher."""
    if threading.current_thread() is not threading.main_thread():
        return
    reset()
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal closed (nohup ignores it)
        current = signal.getsignal(sig)
        ours = current in (signal.SIG_DFL, signal.SIG_IGN, signal.default_int_handler) if sig == signal.SIGINT \
            else current is signal.SIG_DFL
        if ours:
            previous[sig] = signal.signal(sig, on_signal)
    config._roofline_signals = previous
    _watch(config)


def uninstall(config) -> None:
    for sig, previous in (getattr(config, "_roofline_signals", None) or {}).items():
        signal.signal(sig, previous)
    if hasattr(config, "_roofline_wakeup"):
        try:
            signal.set_wakeup_fd(config._roofline_wakeup)
        except (ValueError, OSError):
            pass


def _watch(config) -> None:
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        config._roofline_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except (ValueError, OSError):
        os.close(read_fd), os.close(write_fd)
        return
    try:  # pytest captures fd 2 while tests run: write to the terminal's own stderr, which its capture keeps open
        err_fd = os.dup(config.pluginmanager.get_plugin("capturemanager")._global_capturing.err.targetfd_save)
    except Exception:  # no fd capture (-s) or another pytest: plain stderr
        err_fd = os.dup(2)
    STATE["err_fd"] = err_fd
    seen = {"n": 0}

    def watch():
        from bench.harness import RUNNING

        while True:
            try:
                data = os.read(read_fd, 64)
            except OSError:
                return
            if not data:
                return
            if not STATE["bench"]:
                continue
            seen["n"] += len(data)
            name = ", ".join(NAMES.get(b, f"signal {b}") for b in sorted(set(data)))
            if seen["n"] == len(data):
                what, since = RUNNING["what"], RUNNING["since"]
                wait = (f"; waiting for the running call to return ({what}, running for "
                        f"{time.monotonic() - since:.1f} s)" if what and since else "")
                _say(f"roofline: {name}: stopping{wait}; the record keeps everything finished")
            else:
                _say(f"roofline: {name} again: already stopping; the record is saved first, the plot, page or "
                     "summary not yet written are skipped (the lines below say how to write them); once the record "
                     "is saved, once more ends the process")

    threading.Thread(target=watch, daemon=True, name="roofline-signal-watch").start()
