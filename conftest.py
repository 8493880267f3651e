"""Thin pytest wiring for the suite: options, the platform, the run record, pytest-benchmark seams, summary.

`pytest bench/ --platform cpu|cuda|cuda:N|auto [--quick] [--dtypes fp32,bf16] [--results-dir DIR]`
"""
from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
DEFAULT_RESULTS = ROOT / "results" / "runs"


def pytest_addoption(parser):
    group = parser.getgroup("roofline", "measured roofline suite")
    group.addoption("--platform", default="auto", help="auto (CUDA if present, else CPU), cpu, cuda or cuda:N")
    group.addoption("--quick", action="store_true", help="short sweeps (about a minute on a laptop CPU)")
    group.addoption("--results-dir", default=os.fspath(DEFAULT_RESULTS), help="folder for run records and plots")
    group.addoption("--dtypes", default=None,
                    help="comma-separated GEMM dtypes (fp64,fp32,tf32,fp16,bf16,int8,fp8); default: all")
    group.addoption("--model", default=None,
                    help="time the layers of your own model: a torchvision name or package.module:factory")
    group.addoption("--input", default=None, help="input shape for --model, e.g. 8,3,224,224")
    group.addoption("--budget", default=None, metavar="SECONDS",
                    help="the run's time budget (default: 80 s quick / 600 s full on a CPU, 180 / 900 s on a GPU); "
                         "every group gets its share, and no group starts a point once its share is spent")
    group.addoption("--spec", default=None,
                    help="a vendor spec sheet (YAML, see platforms/specs/) to validate against; default: the "
                         "bundled sheet matching the device")


_CONFIG = None  # the session's config, for the progress hooks that pytest calls without it


def pytest_configure(config):
    global _CONFIG
    _CONFIG = config
    from bench import options, signals
    from platforms import PlatformError, resolve

    try:  # options that need no torch first: a typo is answered at once, not after torch has loaded
        config._roofline_dtypes = options.dtypes(config.getoption("--dtypes"))
        config._roofline_budget_s = options.budget(config.getoption("--budget"))
        options.spec(config.getoption("--spec"))
        try:
            config._roofline_platform = resolve(config.getoption("--platform"))
        except PlatformError as exc:
            raise options.OptionError(str(exc)) from None
        signals.install(config)  # Ctrl-C, SIGTERM and SIGHUP: see bench/signals.py
        options.model(config.getoption("--model"), config.getoption("--input"))
    except options.OptionError as exc:
        raise pytest.UsageError(str(exc)) from None
    config._roofline_suite = None


def pytest_unconfigure(config):
    from bench import signals

    signals.uninstall(config)


def pytest_collection_modifyitems(session, config, items):
    bench_items = [item for item in items if "suite" in getattr(item, "fixturenames", ())]
    if not bench_items:
        return
    from bench import signals

    signals.STATE["bench"] = True  # from here on a signal stops a run that has a record to keep
    if not config.pluginmanager.hasplugin("benchmark"):  # pytest-benchmark's entry-point name
        raise pytest.UsageError("the suite times through pytest-benchmark, which is disabled here (-p no:benchmark): "
                                "leave it enabled (--benchmark-disable is fine: the suite then times each call itself)")
    from results.record import RecordError, check_writable

    try:
        check_writable(config.getoption("--results-dir"))
    except RecordError as exc:
        raise pytest.UsageError(str(exc)) from None
    platform = config._roofline_platform
    # pytest-benchmark's public seam for the timer: a marker. The platform's clock syncs the device first.
    for item in bench_items:
        item.add_marker(pytest.mark.benchmark(timer=platform.clock, disable_gc=True))
    config._roofline_progress = _make_progress(config, bench_items)
    from bench.harness import TimeBudget, budget_group
    from kernels.gemm import dtype_support

    def has_path(dtype):  # tf32 on a CPU takes no share of the GEMM budget
        try:
            return not dtype_support(dtype, platform.device)
        except Exception:
            return True

    with_path = [d for d in config._roofline_dtypes if has_path(d)]
    config._roofline_clock = TimeBudget.for_run(platform.kind, config.getoption("--quick"), config._roofline_budget_s,
                                                gemm_dtypes=len(with_path) or 1)
    config._roofline_groups = {item.nodeid: budget_group(item) for item in bench_items}
    config._roofline_clock.expect(config._roofline_groups.values())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Every benchmark item's call (the measuring, not the session's fixtures) counts against its budget group."""
    import time

    groups = getattr(item.config, "_roofline_groups", None) or {}
    start = time.monotonic()
    yield
    if item.nodeid in groups:
        item.config._roofline_clock.add(groups[item.nodeid], time.monotonic() - start)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    yield
    groups = getattr(item.config, "_roofline_groups", None) or {}
    if item.nodeid in groups:
        item.config._roofline_clock.finished(groups[item.nodeid])


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """An item whose group's share (or the run's budget) is spent is cut before it starts, with the reason."""
    group = (getattr(item.config, "_roofline_groups", None) or {}).get(item.nodeid)
    suite = getattr(item.config, "_roofline_suite", None)
    if group is None or suite is None:
        return
    reason = suite.clock.cut_reason(group)
    if reason:
        from bench.harness import item_label

        suite.not_measured("cut", reason, **item_label(item, group))


def _make_progress(config, items):
    """The run's progress view (bench/progress.py): live on a terminal, plain lines otherwise, quiet with -q."""
    from bench.progress import RunProgress

    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or config.option.verbose < 0:
        mode = "quiet"
    elif getattr(reporter, "isatty", False) and os.environ.get("TERM") != "dumb":
        mode = "live"
    else:
        mode = "plain"
    try:
        progress = RunProgress.for_items(items, mode, file=getattr(getattr(reporter, "_tw", None), "_file", None))
    except Exception:  # a progress view must never stop a run
        return None
    if reporter is not None and mode != "quiet":
        # pytest's file names and [ NN%] markers would land inside the view (live) or double every line (plain)
        reporter.showfspath = False
        if hasattr(reporter, "_show_progress_info"):
            reporter._show_progress_info = False
    if reporter is not None:
        progress.emit_fn = lambda line: (reporter.ensure_newline(), reporter.write_line(line))
    return progress


def pytest_runtest_logstart(nodeid, location):
    progress = getattr(_CONFIG, "_roofline_progress", None)
    if progress is not None:
        progress.item_started(nodeid)


def pytest_runtest_logreport(report):
    progress = getattr(_CONFIG, "_roofline_progress", None)
    if progress is None or report.nodeid not in progress.nodes:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        progress.item_finished(report.nodeid)


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report, config):
    """Benchmark items print no letter of their own: the progress view stands for them (failures keep theirs)."""
    progress = getattr(config, "_roofline_progress", None)
    if progress is None or report.nodeid not in progress.nodes or report.outcome == "failed":
        return None
    if report.when == "call" or report.outcome == "skipped":
        return report.outcome, "", ""
    return "", "", ""


def _options(config) -> dict:
    return {"platform": config.getoption("--platform"), "quick": config.getoption("--quick"),
            "dtypes": config._roofline_dtypes, "results_dir": config.getoption("--results-dir"),
            "spec": os.path.abspath(config.getoption("--spec")) if config.getoption("--spec") else None,
            "model": config.getoption("--model"), "input": config.getoption("--input"),
            "budget_s": config._roofline_clock.run_s}


@pytest.fixture(scope="session")
def platform(pytestconfig):
    return pytestconfig._roofline_platform


@pytest.fixture(scope="session")
def suite(pytestconfig, platform):
    from bench.harness import Budget, Suite
    from results.record import RunRecord

    info = dict(platform.info())
    record = RunRecord(pytestconfig.getoption("--results-dir"), info, _options(pytestconfig))
    record.data["timing_method"] = platform.timing_method
    record.data["single_call_method"] = platform.single_call_method
    record.data["start_state"] = platform.static_telemetry()
    sampler = platform.sampler(interval_s=0.5)
    sampler.__enter__()
    s = Suite(platform=platform, record=record, budget=Budget.for_run(platform.kind, pytestconfig.getoption("--quick")),
              reporter=pytestconfig.pluginmanager.get_plugin("terminalreporter"),
              capture=pytestconfig.pluginmanager.get_plugin("capturemanager"), clock=pytestconfig._roofline_clock)
    s.run_sampler = sampler
    s.progress = getattr(pytestconfig, "_roofline_progress", None)
    pytestconfig._roofline_suite = s
    from platforms.load import machine_load
    from results.summary import threads_lines

    record.data["load_at_start"] = machine_load(gpu_processes=platform.other_device_processes())
    record.save()
    s.say(f"roofline: measuring {platform.describe()}; record {record.path}")
    for line in threads_lines(info):
        s.say(line)
    s.say(f"  {record.data['load_at_start']['sentence']}")
    yield s


def pytest_sessionfinish(session, exitstatus):
    from bench import signals

    signals.STATE["phase"] = "finish"
    if signals.interrupted_run():  # a second signal inside pytest's own interrupt handling left it at exit status 0
        exitstatus = session.exitstatus = pytest.ExitCode.INTERRUPTED
    progress = getattr(session.config, "_roofline_progress", None)
    if progress is not None:
        progress.close()
    suite = getattr(session.config, "_roofline_suite", None)
    if suite is None:
        bench_dir = Path(__file__).resolve().parent / "bench"
        benchmarks = [i for i in getattr(session, "items", []) if bench_dir in Path(str(i.path)).resolve().parents]
        collect_only = session.config.getoption("collectonly", False)
        if int(exitstatus) == 0 and benchmarks and not collect_only:  # every selected one skipped before measuring
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            session.config._roofline_nothing = True
        return
    record = suite.record
    if progress is not None:
        record.data["progress_view"] = {"mode": progress.mode, "seconds_spent": round(progress.overhead_s, 4)}
    suite.run_sampler.__exit__(None, None, None)
    record.data["telemetry"] = suite.run_sampler.summary()
    record.data["time_budget"] = suite.clock.to_dict()
    record.data["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    status = {0: "complete", 1: "finished with failures (see the failed points)", 2: "interrupted"}.get(
        int(exitstatus), f"ended with pytest exit status {int(exitstatus)}")
    from results.record import measured_rows

    measured = measured_rows(record.measurements)  # checks of the machine are not the run's figures
    if suite.save_error:
        status = "stopped: the record could not be saved"
    elif not measured and int(exitstatus) in (0, 1):
        # nothing measured is never "complete": say why, exit non-zero
        reasons = sorted({f"{m.get('status')}: {m.get('reason')}" for m in record.measurements
                          if m.get("status") != "ok"})
        status = "nothing measured" + (f" ({'; '.join(reasons[:3])})" if reasons else " (no benchmark was selected)")
        session.exitstatus = 1
    record.data["status"] = status
    if signals.record_note():
        record.data["interrupt"] = signals.record_note()
    suite.plot_path = None
    if suite.save_error:
        return  # the disk refused the last save: do not pretend with plots; the summary says where the data is
    try:
        path = record.save(final=True)
    except OSError as exc:
        suite.save_error = str(exc)
        return
    signals.STATE["record_saved"] = True
    if signals.STATE["again"]:  # interrupted again: the record is what matters; the pictures can be made later
        suite.skipped_outputs = [f"plot (python -m results plot {os.fspath(path)})",
                                 f"report page (python -m results report {os.fspath(path)})"]
        return
    from results.analysis import analyse

    suite.analysis = analyse(record.data)  # the record is final: analysed once for the plots, page and summary
    try:
        from results.plot import roofline_png

        # nothing measured, nothing to draw (matplotlib would spend a second or two on an empty roofline)
        suite.plot_path = roofline_png(suite.analysis, path.with_suffix(".png")) if measured else None
        from results.layer_plots import write_layer_plots

        if not suite.budget.quick:
            suite.layer_plots = write_layer_plots(suite.analysis, path.with_suffix(""))
        elif suite.analysis.layers:
            # matplotlib needs ~0.5 s a figure (4-5 s of a --quick run on a slow CPU); the report page below draws
            # the same figures in a fraction of that
            suite.layer_plots_note = (f"Layer figures: in the report page (a --quick run draws no layer PNGs; "
                                      f"python -m results plot {os.fspath(path)} writes them)")
    except Exception as exc:  # a plot failure must not lose the record
        suite.plot_error = f"{type(exc).__name__}: {exc}"
    try:
        from results.page import write_report

        suite.report_path = write_report([suite.analysis], [os.fspath(path)], path.with_suffix(".html"))
    except Exception as exc:  # nor a report failure
        suite.report_error = f"{type(exc).__name__}: {exc}"


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    suite = getattr(config, "_roofline_suite", None)
    if suite is None:
        if getattr(config, "_roofline_nothing", False):
            terminalreporter.write_line("roofline: nothing measured: every selected benchmark was skipped before it "
                                        "could run (the skip reasons are above); no record written", red=True)
        return
    from bench import signals

    path = os.fspath(suite.record.path) if suite.record.path else None
    signals.STATE["phase"] = "summary"
    try:
        if not signals.STATE["again"]:
            _terminal_summary(terminalreporter, suite)
    except signals.StopSummary:
        pass
    finally:
        signals.STATE["phase"] = "done"
    if signals.STATE["again"]:  # a signal while finishing (or a second one): one quiet line, no traceback
        skipped = list(getattr(suite, "skipped_outputs", []))
        if path:
            skipped.append(f"summary (python -m results show {path})")
        terminalreporter.write_line(
            "roofline: interrupted while finishing: " + (f"the record is saved: {path}" if path and not suite.save_error
                                                          else "RECORD NOT SAVED") + "; not written: "
            + ("; ".join(skipped) or "nothing else"), yellow=True)


def _terminal_summary(terminalreporter, suite) -> None:
    from results.analysis import analyse
    from results.history import comparable_runs, run_to_run
    from results.summary import summary_text

    notes: list[str] = []
    history = run_to_run(comparable_runs(suite.record.directory, suite.record.data, notes=notes))
    terminalreporter.section("measured roofline")
    path = os.fspath(suite.record.path) if suite.record.path else None
    analysis = getattr(suite, "analysis", None) or analyse(suite.record.data)  # not yet made where the save failed
    terminalreporter.write_line(summary_text(analysis, None if suite.save_error else path, suite.plot_path, history))
    if suite.save_error:
        terminalreporter.write_line(f"RECORD NOT SAVED: {suite.save_error}", red=True, bold=True)
    for extra in getattr(suite, "layer_plots", []):
        terminalreporter.write_line(f"Plot:   {extra}")
    if getattr(suite, "layer_plots_note", None):
        terminalreporter.write_line(suite.layer_plots_note)
    if getattr(suite, "plot_error", None):
        terminalreporter.write_line(f"plot failed: {suite.plot_error}")
    if getattr(suite, "report_path", None):
        terminalreporter.write_line(f"Report: {suite.report_path} (one self-contained page; open it in a browser)")
    if getattr(suite, "report_error", None):
        terminalreporter.write_line(f"report failed: {suite.report_error} (the record is intact)")
    for note in notes[:5]:
        terminalreporter.write_line(f"note: run-to-run history {note}")
    if len(notes) > 5:
        terminalreporter.write_line(f"note: ... and {len(notes) - 5} more unreadable files in {suite.record.directory}")


@pytest.fixture(autouse=True, scope="module")
def _dram_sentinel(request):
    """A DRAM sentinel at the start of the run and at the end of every benchmark file (bench/harness.py:
    Suite.sentinel); the end of one file is the start of the next, seconds apart, so that is measured once."""
    in_bench = Path(request.module.__file__).resolve().parent == ROOT / "bench"
    uses_suite = in_bench and any("suite" in getattr(item, "fixturenames", ()) for item in request.session.items
                                  if getattr(item, "module", None) is request.module)
    if not uses_suite:
        yield
        return
    suite = request.getfixturevalue("suite")
    if not any(m.get("group") == "sentinel" for m in suite.record.measurements):
        suite.sentinel(f"start of {request.module.__name__}")
    yield
    last = max((i for i, m in enumerate(suite.record.measurements) if m.get("group") == "sentinel"), default=-1)
    if any(m.get("status") == "ok" for m in suite.record.measurements[last + 1:]):  # only after measuring something
        suite.sentinel(f"end of {request.module.__name__}")


@pytest.hookimpl(optionalhook=True)  # pytest-benchmark's hook: absent with -p no:benchmark
def pytest_benchmark_update_machine_info(config, machine_info):
    platform = getattr(config, "_roofline_platform", None)
    if platform is not None:
        machine_info["roofline_platform"] = platform.info()


@pytest.hookimpl(optionalhook=True)  # pytest-benchmark's hook: absent with -p no:benchmark
def pytest_benchmark_update_json(config, benchmarks, output_json):
    suite = getattr(config, "_roofline_suite", None)
    if suite is not None and suite.record.path is not None:
        from results.analysis import analyse
        from results.summary import ceilings_json

        analysis = getattr(suite, "analysis", None) or analyse(suite.record.data)
        output_json["roofline"] = {"record": os.fspath(suite.record.path), **ceilings_json(analysis)}
