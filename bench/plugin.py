"""The suite's pytest plugin (loaded by conftest.py): per-item budget hooks, the progress view's hooks, the
``platform`` and ``suite`` fixtures, the DRAM sentinel between files, the end of the run (bench/session.py) and
pytest-benchmark's seams. The run's state is one ``bench.session.Run`` in pytest's stash.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_CONFIG = None  # the session's config, for the progress hooks that pytest calls without it


def pytest_configure(config):
    global _CONFIG
    _CONFIG = config


def pytest_collection_modifyitems(session, config, items):
    from bench.variant_plan import plan_of

    if plan_of(config) is None:  # bench/test_variants.py measures only with --variants MODEL
        mine = ROOT / "bench" / "test_variants.py"
        dropped = [item for item in items if Path(str(item.fspath)).resolve() == mine]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = [item for item in items if item not in dropped]
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
    from bench.harness import TimeBudget, budget_group
    from bench.session import run_of
    from kernels.gemm import dtype_support

    run = run_of(config)
    platform = run.platform
    # pytest-benchmark's public seam for the timer: a marker. The platform's clock syncs the device first.
    for item in bench_items:
        item.add_marker(pytest.mark.benchmark(timer=platform.clock, disable_gc=True))
    run.progress = _make_progress(config, bench_items)

    def has_path(dtype):  # tf32 on a CPU takes no share of the GEMM budget
        try:
            return not dtype_support(dtype, platform.device)
        except Exception:
            return True

    with_path = [d for d in run.dtypes if has_path(d)]
    run.clock = TimeBudget.for_run(platform.kind, config.getoption("--quick"), run.budget_s,
                                   gemm_dtypes=len(with_path) or 1)
    run.groups = {item.nodeid: budget_group(item) for item in bench_items}
    if "variants" in run.groups.values():
        from bench.variant_plan import VARIANTS_BUDGET_S

        seconds = VARIANTS_BUDGET_S["cpu" if platform.kind == "cpu" else "gpu"]
        alone = set(run.groups.values()) == {"variants"}
        if alone and run.budget_s is None:
            run.clock.run_s = seconds  # the variants alone: their own budget, not a full run's plus theirs
        run.clock.add_group("variants", seconds, extend=run.budget_s is None and not alone)
    run.clock.expect(run.groups.values())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Every benchmark item's call (the measuring, not the session's fixtures) counts against its budget group."""
    import time

    from bench.session import run_of

    run = run_of(item.config)
    start = time.monotonic()
    yield
    if item.nodeid in run.groups:
        run.clock.add(run.groups[item.nodeid], time.monotonic() - start)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    from bench.session import run_of

    yield
    run = run_of(item.config)
    if item.nodeid in run.groups:
        run.clock.finished(run.groups[item.nodeid])


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """An item whose group's share (or the run's budget) is spent is cut before it starts, with the reason."""
    from bench.session import run_of

    run = run_of(item.config)
    group, suite = run.groups.get(item.nodeid), run.suite
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


def _progress():
    from bench.session import run_of

    return run_of(_CONFIG).progress if _CONFIG is not None else None


def pytest_runtest_logstart(nodeid, location):
    progress = _progress()
    if progress is not None:
        progress.item_started(nodeid)


def pytest_runtest_logreport(report):
    progress = _progress()
    if progress is None or report.nodeid not in progress.nodes:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        progress.item_finished(report.nodeid)


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report, config):
    """Benchmark items print no letter of their own: the progress view stands for them (failures keep theirs)."""
    progress = _progress()
    if progress is None or report.nodeid not in progress.nodes or report.outcome == "failed":
        return None
    if report.when == "call" or report.outcome == "skipped":
        return report.outcome, "", ""
    return "", "", ""


def _options(config) -> dict:
    from bench.session import run_of

    run = run_of(config)
    return {"platform": config.getoption("--platform"), "quick": config.getoption("--quick"),
            "dtypes": run.dtypes, "results_dir": config.getoption("--results-dir"),
            "spec": os.path.abspath(config.getoption("--spec")) if config.getoption("--spec") else None,
            "model": config.getoption("--model"), "input": config.getoption("--input"),
            "budget_s": run.clock.run_s}


@pytest.fixture(scope="session")
def platform(pytestconfig):
    from bench.session import run_of

    return run_of(pytestconfig).platform


@pytest.fixture(scope="session")
def suite(pytestconfig, platform):
    from bench import session
    from bench.harness import Suite
    from bench.timing import Budget
    from results.summary import threads_lines

    run = session.run_of(pytestconfig)
    record = session.open_record(platform, _options(pytestconfig), pytestconfig.getoption("--results-dir"))
    sampler = platform.sampler(interval_s=0.5)
    sampler.__enter__()
    s = Suite(platform=platform, record=record, budget=Budget.for_run(platform.kind, pytestconfig.getoption("--quick")),
              reporter=pytestconfig.pluginmanager.get_plugin("terminalreporter"),
              capture=pytestconfig.pluginmanager.get_plugin("capturemanager"), clock=run.clock,
              progress=run.progress, run_sampler=sampler)
    run.suite = s
    s.say(f"roofline: measuring {platform.describe()}; record {record.path}")
    for line in threads_lines(record.data["platform"]):
        s.say(line)
    s.say(f"  {record.data['load_at_start']['sentence']}")
    yield s


def pytest_sessionfinish(session, exitstatus):
    from bench import session as run_session
    from bench import signals
    from results.record import measured_rows

    signals.STATE["phase"] = "finish"
    if signals.interrupted_run():  # a second signal inside pytest's own interrupt handling left it at exit status 0
        exitstatus = session.exitstatus = pytest.ExitCode.INTERRUPTED
    run = run_session.run_of(session.config)
    if run.progress is not None:
        run.progress.close()
    suite = run.suite
    if suite is None:
        bench_dir = ROOT / "bench"
        benchmarks = [i for i in getattr(session, "items", []) if bench_dir in Path(str(i.path)).resolve().parents]
        collect_only = session.config.getoption("collectonly", False)
        if int(exitstatus) == 0 and benchmarks and not collect_only:  # every selected one skipped before measuring
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            run.nothing = True
        return
    record = suite.record
    if run.progress is not None:
        record.data["progress_view"] = {"mode": run.progress.mode, "seconds_spent": round(run.progress.overhead_s, 4)}
    suite.run_sampler.__exit__(None, None, None)
    record.data["telemetry"] = suite.run_sampler.summary()
    record.data["time_budget"] = suite.clock.to_dict()
    status = {0: "complete", 1: "finished with failures (see the failed points)", 2: "interrupted"}.get(
        int(exitstatus), f"ended with pytest exit status {int(exitstatus)}")
    measured = measured_rows(record.measurements)  # checks of the machine are not the run's figures
    if suite.save_error:
        status = "stopped: the record could not be saved"
    elif not measured and int(exitstatus) in (0, 1):
        # nothing measured is never "complete": say why, exit non-zero
        reasons = sorted({f"{m.get('status')}: {m.get('reason')}" for m in record.measurements
                          if m.get("status") != "ok"})
        status = "nothing measured" + (f" ({'; '.join(reasons[:3])})" if reasons else " (no benchmark was selected)")
        session.exitstatus = 1
    if signals.record_note():
        record.data["interrupt"] = signals.record_note()
    run.finished = run_session.finish(record, status, measured=bool(measured), layer_pngs=not suite.budget.quick,
                                      save_error=suite.save_error, stop=lambda: signals.STATE["again"],
                                      saved=lambda: signals.STATE.__setitem__("record_saved", True))


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    from bench import signals
    from bench.session import run_of

    run = run_of(config)
    if run.suite is None:
        if run.nothing:
            terminalreporter.write_line("roofline: nothing measured: every selected benchmark was skipped before it "
                                        "could run (the skip reasons are above); no record written", red=True)
        return
    done = run.finished
    path = os.fspath(done.path) if done and done.path else None
    signals.STATE["phase"] = "summary"
    try:
        if not signals.STATE["again"] and done is not None:
            _terminal_summary(terminalreporter, run.suite, done)
    except signals.StopSummary:
        pass
    finally:
        signals.STATE["phase"] = "done"
    if signals.STATE["again"]:  # a signal while finishing (or a second one): one quiet line, no traceback
        skipped = list(done.skipped if done else [])
        if path:
            skipped.append(f"summary (python -m results show {path})")
        saved = path and not (done and done.save_error)
        terminalreporter.write_line(
            "roofline: interrupted while finishing: " + (f"the record is saved: {path}" if saved
                                                          else "RECORD NOT SAVED") + "; not written: "
            + ("; ".join(skipped) or "nothing else"), yellow=True)


def _terminal_summary(terminalreporter, suite, done) -> None:
    from results.history import comparable_runs, run_to_run

    notes: list[str] = []
    history = run_to_run(comparable_runs(suite.record.directory, suite.record.data, notes=notes))
    terminalreporter.section("measured roofline")
    terminalreporter.write_line(done.summary(history))
    if done.save_error:
        terminalreporter.write_line(f"RECORD NOT SAVED: {done.save_error}", red=True, bold=True)
    for line in done.output_lines():
        terminalreporter.write_line(line)
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
    from bench.session import run_of

    platform = run_of(config).platform
    if platform is not None:
        machine_info["roofline_platform"] = platform.info()


@pytest.hookimpl(optionalhook=True)  # pytest-benchmark's hook: absent with -p no:benchmark
def pytest_benchmark_update_json(config, benchmarks, output_json):
    from bench.session import run_of

    run = run_of(config)
    if run.suite is not None and run.suite.record.path is not None:
        from results.analysis import analyse
        from results.summary import ceilings_json

        analysis = run.finished.analysis_now() if run.finished else analyse(run.suite.record.data)
        output_json["roofline"] = {"record": os.fspath(run.suite.record.path), **ceilings_json(analysis)}
