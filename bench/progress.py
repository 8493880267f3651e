"""What a person sees while the suite runs: per group (GEMM per dtype, stream, layers, models, ...) points done of
how many, the current point, elapsed and estimated time left, and the headline figures so far.

Three modes, picked from pytest's terminal:
* ``live`` (a terminal): one line per group, redrawn in place by rich's Progress (rich rather than tqdm: one
  renderer for several labelled lines with free-text columns, and a console that prints notes above them). It is
  redrawn only between points (``auto_refresh=False``): no render thread runs while a kernel is timed, so the view
  costs nothing inside a measurement (on 2 cores one extra busy thread distorts a point by orders of magnitude).
  Per-point lines are not printed; notes (missing, cut, disturbed, failed) are, above the view.
* ``plain`` (not a terminal: CI logs, pipes): the per-point lines as before, and one status line per group when it
  finishes and at most every ``PLAIN_EVERY_S`` seconds.
* ``quiet`` (``-q``): nothing but failures; the terminal summary at the end is unchanged in every mode.

pytest's own per-test letters (the dots after each line) are switched off for benchmark items in every mode: the
view replaces them (conftest.py: pytest_report_teststatus).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

PLAIN_EVERY_S = 15.0
REDRAW_S = 0.5

#: (module, test function) -> group; GEMM items get their dtype appended
GROUPS = {
    ("test_gemm", "test_gemm"): "GEMM",
    ("test_stream", None): "stream", ("test_native", "test_native_stream"): "stream",
    ("test_triton", "test_triton_stream"): "stream",
    ("test_native", "test_fma_peak"): "silicon peak", ("test_native", "test_engine_peak"): "silicon peak",
    ("test_native", "test_silicon_above_gemm"): "silicon peak", ("test_triton", "test_triton_fma_peak"): "silicon peak",
    ("test_native", "test_thread_scaling"): "thread scaling", ("test_transfer", None): "transfers",
    ("test_layers", "test_layer"): "layers", ("test_layers", None): "models", ("test_opsweep", None): "probes",
    ("test_variants", None): "variants",
}


def group_of(module: str, function: str, param_id: str = "") -> str:
    name = GROUPS.get((module, function)) or GROUPS.get((module, None)) or module.removeprefix("test_")
    if name == "GEMM" and param_id:
        return f"GEMM {param_id.split('-')[0]}"
    return name


def item_group(item) -> str:
    module = getattr(getattr(item, "module", None), "__name__", "").rsplit(".", 1)[-1]
    function = getattr(getattr(item, "function", None), "__name__", item.name.split("[")[0])
    callspec = getattr(item, "callspec", None)
    return group_of(module, function, callspec.id if callspec else "")


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}h{seconds % 3600 // 60:02d}"


@dataclass
class Group:
    name: str
    total: int = 0
    done: int = 0
    spent_s: float = 0.0
    started: float | None = None
    current: str = ""
    headline: str = ""
    task: Any = None

    def left_s(self) -> float | None:
        """Time left at the mean time per item so far (None before the first item finished)."""
        if self.done == 0:
            return None
        return self.spent_s / self.done * (self.total - self.done)


@dataclass
class RunProgress:
    mode: str  # "live" | "plain" | "quiet"
    groups: dict[str, Group] = field(default_factory=dict)
    nodes: dict[str, str] = field(default_factory=dict)  # nodeid -> group
    console: Any = None
    start: float = field(default_factory=time.perf_counter)
    _view: Any = None
    _last_plain: float = field(default_factory=time.perf_counter)
    overhead_s: float = 0.0  # time spent in this object (reported, so its cost is measured, not assumed)
    closed: bool = False
    _last_draw: float = 0.0
    #: where the live view draws (pytest's terminal); the view opens at the first item
    file: Any = None
    _current: Group | None = None  # the group of the item running now
    _item_start: float = 0.0

    @classmethod
    def for_items(cls, items, mode: str, file=None) -> "RunProgress":
        """Groups and totals from the collected items; in "live" mode the view opens at the first item."""
        progress = cls(mode=mode, file=file)
        for item in items:
            name = item_group(item)
            progress.nodes[item.nodeid] = name
            progress.groups.setdefault(name, Group(name)).total += 1
        return progress

    # -- live view --------------------------------------------------------------------------------------------
    def _open_live(self, file) -> None:
        t0 = time.perf_counter()
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=file, highlight=False)
        self._view = Live(self._render(), console=self.console, auto_refresh=False, transient=False,
                          redirect_stdout=False, redirect_stderr=False)
        self._view.start()
        self.overhead_s += time.perf_counter() - t0

    def _render(self):
        """One line per group: name, bar, done/total, clock, then the current point and the headline, cut with an
        ellipsis at the terminal's width. Plain rich Text lines (a Table layout costs ~10x more per redraw)."""
        from rich.console import Group as Lines
        from rich.text import Text

        now = time.perf_counter()
        name_w = max((len(name) for name in self.groups), default=8)
        count_w = 2 * len(str(max((g.total for g in self.groups.values()), default=1))) + 1
        width = self.console.width if self.console is not None else 100
        lines = []
        for g in self.groups.values():
            running = g.started is not None and g.done < g.total
            if g.done >= g.total:
                clock = f"{_clock(g.spent_s)} done"
            elif running:
                elapsed = g.spent_s + (now - self._item_start if g is self._current else 0.0)
                clock = f"{_clock(elapsed)} elapsed, ~{_clock(g.left_s())} left"
            else:
                clock = "waiting"
            filled = int(round(16 * g.done / g.total)) if g.total else 16
            line = Text(f"{g.name:<{name_w}} ")
            line.append("━" * filled, style="green" if g.done >= g.total else "magenta")
            line.append("━" * (16 - filled), style="grey37")
            line.append(f" {f'{g.done}/{g.total}':>{count_w}} {clock:<26} ")
            line.append(" · ".join(x for x in (g.headline, g.current if running else "") if x), style="cyan")
            line.truncate(width, overflow="ellipsis")
            lines.append(line)
        total = Text(f"{'all':<{name_w}} " + self.status_lines()[0].removeprefix("progress: "), style="bold")
        total.truncate(width, overflow="ellipsis")
        return Lines(*lines, total)

    def _redraw(self, force: bool = False) -> None:
        """At most every ``REDRAW_S`` (a redraw costs a few ms on a terminal), always when ``force``."""
        now = time.perf_counter()
        if self._view is not None and (force or now - self._last_draw >= REDRAW_S):
            self._last_draw = now
            self._view.update(self._render(), refresh=True)

    def close(self) -> None:
        self.closed = True
        if self._view is not None:
            t0 = time.perf_counter()
            self._redraw(force=True)
            self._view.stop()
            self._view = None
            self.overhead_s += time.perf_counter() - t0

    # -- events -----------------------------------------------------------------------------------------------
    def item_started(self, nodeid: str) -> None:
        t0 = time.perf_counter()
        if self.mode == "live" and self._view is None and not self.closed:
            try:
                self._open_live(self.file)
            except Exception:  # no rich, or a terminal it cannot drive: plain lines
                self.mode, self._view = "plain", None
        g = self._current = self.groups.get(self.nodes.get(nodeid, ""))
        if g is not None:
            g.current = nodeid.split("[", 1)[1].rstrip("]") if "[" in nodeid else nodeid.rsplit("::", 1)[-1]
            g.started = g.started or t0
            self._item_start = t0
            self._redraw()
        self.overhead_s += time.perf_counter() - t0

    def item_finished(self, nodeid: str) -> None:
        t0 = time.perf_counter()
        g = self.groups.get(self.nodes.get(nodeid, ""))
        if g is not None and g.done < g.total:
            g.done += 1
            g.spent_s += (t0 - self._item_start) if g is self._current else 0.0
            if self.mode == "plain" and (g.done == g.total or t0 - self._last_plain > PLAIN_EVERY_S):
                self._last_plain = t0
                self._plain_line(g)
            if all(x.done >= x.total for x in self.groups.values()):
                self.close()  # before pytest writes its last line under the view
            else:
                self._redraw(force=g.done == g.total)
        self.overhead_s += time.perf_counter() - t0

    def headline(self, text: str, group_name: str | None = None) -> None:
        """The best figure so far of ``group_name`` (default: the group running now), shown beside its line and in
        the plain status lines; never redraws (called inside a test, between points)."""
        g = self.groups.get(group_name) if group_name else self._current
        if g is not None:
            g.headline = text

    def status_lines(self) -> list[str]:
        total = sum(g.total for g in self.groups.values())
        done = sum(g.done for g in self.groups.values())
        # groups that have not finished a point yet are priced at the mean time per point so far (a guess:
        # "(rough)" until every group has timed one point)
        spent = sum(g.spent_s for g in self.groups.values() if g.done)
        mean = spent / done if done else None
        left, rough = 0.0, False
        for g in self.groups.values():
            if g.done >= g.total:
                continue
            own = g.left_s()
            if own is None:
                rough = True
                own = None if mean is None else mean * (g.total - g.done)
            if own is None:
                left = None
                break
            left += own
        return [f"progress: {done}/{total} points, {_clock(time.perf_counter() - self.start)} elapsed, "
                f"~{_clock(left)} left" + (" (rough)" if rough and left is not None else "")]

    def _plain_line(self, g: Group) -> None:
        left = "" if g.done == g.total else f", ~{_clock(g.left_s())} left"
        line = (f"progress: {g.name} {g.done}/{g.total} ({_clock(g.spent_s)}{left})"
                + (f"; {g.headline}" if g.headline else "") + f" | {self.status_lines()[0][10:]}")
        self.emit(line)

    emit_fn: Any = None

    def emit(self, line: str) -> None:
        if self.emit_fn is not None:
            self.emit_fn(line)

    def note(self, line: str) -> None:
        """A line that matters (missing, cut, disturbed, failed): above the live view, or as a plain line."""
        t0 = time.perf_counter()
        if self._view is not None:
            self.console.print(line, markup=False, highlight=False)
        else:
            self.emit(line)
        self.overhead_s += time.perf_counter() - t0
