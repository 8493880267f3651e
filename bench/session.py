"""One run's life, written once for both entry points: `pytest bench/` (conftest.py) and `torchrun -m
bench.distributed`. Opening a run: the record (platform facts, options, how it is timed, the machine's load before
measuring), saved at once so a crash leaves something. Finishing it: the status, the final save, one analysis, the
plots, the report page, and the summary text; every output after the record is optional, and a failure or a
second signal while writing one loses nothing already saved.

The entry points keep what is theirs alone: pytest's hooks, items and progress view (conftest.py, bench/harness.py),
torchrun's ranks and collectives (bench/distributed.py).
"""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from results.record import RunRecord, check_writable


@dataclass
class Run:
    """A pytest run's own state, kept once in pytest's stash (``run_of(config)``) instead of attributes hung on the
    config: the platform and the options read at configure time, then the budget clock, the progress view and the
    harness's ``Suite`` as the run reaches them. Bench files read the platform and dtypes from here in
    ``pytest_generate_tests`` (before any fixture exists) and through the ``platform`` fixture in tests."""

    platform: Any = None
    dtypes: list = field(default_factory=list)
    budget_s: float | None = None
    clock: Any = None  # bench.harness.TimeBudget
    groups: dict = field(default_factory=dict)  # nodeid -> budget group
    progress: Any = None  # bench.progress.RunProgress
    suite: Any = None  # bench.harness.Suite, once the first benchmark asks for it
    finished: Finished | None = None
    #: every selected benchmark was skipped before it could measure (no record written)
    nothing: bool = False


RUN_KEY = pytest.StashKey[Run]()


def run_of(config) -> Run:
    """The run's state (an empty one outside a configured run: a fake config in a test)."""
    try:
        return config.stash[RUN_KEY]
    except KeyError:
        return Run()


def open_record(platform, options: dict, results_dir: str | os.PathLike, *, load_check: bool = True,
                run_suffix: str = "", **data: Any) -> RunRecord:
    """A new run record for ``platform``: its facts, the options, how it times, its state before measuring and (with
    ``load_check``) what else was running; ``data`` adds record-level fields. Saved before returning."""
    check_writable(results_dir)
    record = RunRecord(results_dir, dict(platform.info()), options)
    if run_suffix:
        record.data["run_id"] += run_suffix
    record.data["timing_method"] = platform.timing_method
    record.data["single_call_method"] = platform.single_call_method
    record.data["start_state"] = platform.static_telemetry()
    record.data.update(data)
    if load_check:
        from platforms.load import machine_load

        record.data["load_at_start"] = machine_load(gpu_processes=platform.other_device_processes())
    record.save()
    return record


@dataclass
class Finished:
    """What finishing a run wrote, and what it could not (each failure kept as a one-line reason)."""

    record: RunRecord
    path: Path | None = None
    analysis: Any = None
    save_error: str | None = None
    plot_path: str | None = None
    plots: list[str] = field(default_factory=list)
    plots_note: str | None = None
    plot_error: str | None = None
    report_path: str | None = None
    report_error: str | None = None
    #: outputs left out because the run was interrupted again while finishing, each with the command that writes it
    skipped: list[str] = field(default_factory=list)

    def summary(self, history: dict | None = None) -> str:
        """The run's text summary (the distributed one for a torchrun job)."""
        path = None if self.save_error else (os.fspath(self.path) if self.path else None)
        if self.record.data.get("distributed"):
            from results.distributed import summary_text

            return summary_text(self.record.data, path)
        from results.summary import summary_text

        return summary_text(self.analysis_now(), path, self.plot_path, history)

    def analysis_now(self):
        """The record's analysis (made here where the save failed before the outputs were drawn)."""
        if self.analysis is None:
            from results.analysis import analyse

            self.analysis = analyse(self.record.data)
        return self.analysis

    def output_lines(self) -> list[str]:
        """The lines that follow the summary: the files written, and what failed (the record is intact then)."""
        lines = [f"Plot:   {p}" for p in self.plots]
        if self.plots_note:
            lines.append(self.plots_note)
        if self.plot_error:
            lines.append(f"plot failed: {self.plot_error}")
        if self.report_path:
            lines.append(f"Report: {self.report_path} (one self-contained page; open it in a browser)")
        if self.report_error:
            lines.append(f"report failed: {self.report_error} (the record is intact)")
        return lines


def finish(record: RunRecord, status: str, *, measured: bool = True, layer_pngs: bool = True,
           save_error: str | None = None, stop: Callable[[], bool] = lambda: False,
           saved: Callable[[], None] = lambda: None) -> Finished:
    """Set the status, save the record for good, then draw: the roofline PNG (only where something was measured),
    the layer PNGs (``layer_pngs``; a --quick run leaves them to the page), the page. ``save_error``: an earlier save
    already failed (nothing more is written). ``stop()`` true after the save: a second signal, so the outputs are
    skipped with the commands that make them; ``saved()`` is told once the record is on disk."""
    record.data["status"] = status
    record.data["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    done = Finished(record, save_error=save_error)
    if save_error:
        return done  # the disk refused the last save: do not pretend with plots; the summary says where the data is
    try:
        done.path = record.save(final=True)
    except OSError as exc:
        done.save_error = str(exc)
        return done
    saved()
    path = done.path
    if stop():  # interrupted again: the record is what matters; the pictures can be made later
        done.skipped = [f"plot (python -m results plot {os.fspath(path)})",
                        f"report page (python -m results report {os.fspath(path)})"]
        return done
    try:
        _draw(done, measured, layer_pngs)
    except KeyboardInterrupt:  # stopped while drawing (torchrun passes Ctrl-C to every rank): the record is saved
        done.skipped = [f"plot (python -m results plot {os.fspath(path)})",
                        f"report page (python -m results report {os.fspath(path)})"]
    return done


def _draw(done: Finished, measured: bool, layer_pngs: bool) -> None:
    record, path = done.record, done.path
    distributed = bool(record.data.get("distributed"))
    try:
        if distributed:
            from results.plot import write_distributed_plots

            done.plots = write_distributed_plots(record.data, path.with_suffix(""))
        elif measured:  # nothing measured, nothing to draw (matplotlib spends a second or two on an empty roofline)
            from results.plot import (
                roofline_png,
                write_layer_plots,
                write_variant_plots,
            )

            analysis = done.analysis_now()
            if analysis.compute or analysis.memory:  # a run of variants alone has no roofline of its own to draw
                done.plot_path = roofline_png(analysis, path.with_suffix(".png"))
            done.plots += write_variant_plots(done.analysis, path.with_suffix(""))  # few: even a --quick run
            if layer_pngs:
                done.plots += write_layer_plots(done.analysis, path.with_suffix(""))
            elif done.analysis.layers:
                # matplotlib needs ~0.5 s a figure (4-5 s of a --quick run on a slow CPU); the report page below
                # draws the same figures in a fraction of that
                done.plots_note = (f"Layer figures: in the report page (a --quick run draws no layer PNGs; "
                                   f"python -m results plot {os.fspath(path)} writes them)")
    except Exception as exc:  # a plot failure must not lose the record
        done.plot_error = f"{type(exc).__name__}: {exc}"
    try:
        from results.page import write_report

        done.report_path = write_report([done.analysis_now()], [os.fspath(path)], path.with_suffix(".html"))
    except Exception as exc:  # nor a report failure
        done.report_error = f"{type(exc).__name__}: {exc}"
