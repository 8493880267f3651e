"""The HTML report (results/page.py): structure of the page for the committed example records, one and several,
a distributed one; self-contained (no network); ids unique; every inline SVG well-formed; results imports without
torch; the CLI's errors; and, where Debian's chromium is installed, a real headless browser that must load the page
without a console error or a missing figure (a screenshot is saved). Plus the progress view (bench/progress.py)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from results.analysis import analyse
from results.page import render, write_report

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "results" / "examples"
FULL = EXAMPLES / "2026-11-29_cpu_amd-epyc-2core-vm.json"  # a full CPU record with layers of 5 models
RECENT = EXAMPLES / "2026-12-01_cpu_amd-epyc.json"
DIST = EXAMPLES / "2026-12-01_cpu_amd-epyc_gloo-2ranks.json"
JETSON = ROOT / "tests" / "data" / "handmade_jetson_orin_nano_super.json"


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def full_page() -> str:
    return render([analyse(_load(FULL))], [str(FULL)])


def _svgs(page: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page, re.S)


def test_full_record_page_has_every_section(full_page):

    record = _load(FULL)
    rows = analyse(record).layers
    models = {(r["model"], r["dtype"]) for r in rows}
    for heading in ("Device and software stack", "Telemetry through the run", "Measured roofline", "Measured / spec",
                    "Models (whole forward)",
                    "Machine load", "Missing, cut, skipped, failed or disturbed", "Terminal summary"):
        assert heading in full_page
    for model, dtype in models:
        assert f"{model} [{dtype}]: layers on the roofline" in full_page
    # one hover text per timed layer, naming it, its time and its gap
    titles = re.findall(r"<circle [^>]*><title>([^<]*)</title>", full_page)
    layer_titles = [t for t in titles if "median (cold)" in t and "batch" not in t.split(":")[0]]
    assert len(layer_titles) >= len(rows)
    assert any("mlp.gate (Linear)" in t and "% of attainable" in t and "gap:" in t for t in layer_titles)
    # the ceilings table: every dtype's GEMM roof and every memory level, with median and CV
    for name in ("fp32", "bf16", "int8", "L1", "L2", "L3", "DRAM"):
        assert re.search(rf"<td>{name}</td><td class=\"num\" data-v=", full_page), name
    assert full_page.count('class="sortable"') >= len(models) + 2
    assert "<script>" in full_page and "table.sortable" in full_page  # the sort script is inline


def test_page_is_self_contained_and_well_formed(full_page):
    # nothing fetched from elsewhere: no src/href to a network address, no @import, no link rel=stylesheet
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", full_page)
    assert "@import" not in full_page and "<link" not in full_page
    ids = re.findall(r'\bid="([^"]+)"', full_page)
    duplicates = {i for i in ids if ids.count(i) > 1}
    assert not duplicates, sorted(duplicates)[:5]
    for svg in _svgs(full_page):
        ET.fromstring(svg)  # every figure parses as XML (escaping, nesting)
    assert len(full_page.encode()) < 5_000_000


def test_compare_page_for_two_records_and_a_handmade_one():
    records = [_load(FULL), _load(RECENT), _load(JETSON)]
    page = render([analyse(r) for r in records], [str(FULL), str(RECENT), str(JETSON)])
    assert '<section id="compare">' in page and "Measured rooflines compared" in page
    assert "HAND-MADE" in page  # the invented Jetson figures stay labelled
    head = re.search(r'<section id="compare">.*?</thead>', page, re.S).group(0)
    assert head.count("<th>") == 2 + 3  # what, name, one column per record
    assert "peak compute (best)" in page and "measured / spec" in page
    for svg in _svgs(page):
        ET.fromstring(svg)


def test_distributed_record_page():
    page = render([analyse(_load(DIST))], [str(DIST)])
    assert "Collectives: bus bandwidth vs message size" in page
    assert "Data-parallel resnet50" in page and "Point-to-point bandwidth matrix" in page
    kinds = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast")
    assert all(k in page for k in kinds)


def test_results_import_no_torch(tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"
            "import json; from results.page import write_report; from results.analysis import analyse\n"
            f"r = json.load(open({str(FULL)!r}))\n"
            f"write_report([analyse(r)], [None], {str(tmp_path / 'r.html')!r})\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "r.html").stat().st_size > 100_000


def test_report_cli_defaults_and_errors(tmp_path):
    copy = tmp_path / "run.json"
    shutil.copyfile(RECENT, copy)
    out = subprocess.run([sys.executable, "-m", "results", "report", str(copy)], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.returncode == 0 and (tmp_path / "run.html").exists()  # beside the record by default
    bad = subprocess.run([sys.executable, "-m", "results", "report", str(copy), "-o", str(tmp_path / "r.png")],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "ending in .html" in bad.stderr and bad.stderr.count("\n") == 1
    gone = subprocess.run([sys.executable, "-m", "results", "report", str(copy), "-o",
                           str(tmp_path / "nope" / "r.html")], cwd=ROOT, capture_output=True, text=True)
    assert gone.returncode == 2 and "does not exist" in gone.stderr
    missing = subprocess.run([sys.executable, "-m", "results", "report", str(tmp_path / "none.json")], cwd=ROOT,
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--enable-logging=stderr", "--v=0", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="no headless chromium (Debian: apt-get install chromium)")
@pytest.mark.parametrize("name,records", [("one", [FULL]), ("compare", [FULL, RECENT]), ("distributed", [DIST])])
def test_report_in_a_real_browser(tmp_path, name, records):
    page = tmp_path / f"report-{name}.html"
    write_report([analyse(_load(p)) for p in records], [str(p) for p in records], page)
    dom = _chromium("--dump-dom", page.as_uri())
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console[:5]  # no script error, and the page's own check found no missing figure
    assert 'data-check="ok"' in dom.stdout
    figures = int(re.search(r'data-figures="(\d+)"', dom.stdout).group(1))
    assert figures == len(_svgs(page.read_text()))
    shot = tmp_path / f"report-{name}.png"
    _chromium("--window-size=1280,1800", f"--screenshot={shot}", page.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


# ---- the progress view -------------------------------------------------------------------------------------------
class _Item:
    def __init__(self, nodeid: str, module: str, function: str, param: str = ""):
        import types

        self.nodeid, self.name = nodeid, function + (f"[{param}]" if param else "")
        self.module = types.SimpleNamespace(__name__=f"bench.{module}")
        self.function = types.SimpleNamespace(__name__=function)
        self.callspec = types.SimpleNamespace(id=param) if param else None


def _items():
    return ([_Item(f"bench/test_gemm.py::test_gemm[fp32-square-{n}]", "test_gemm", "test_gemm", f"fp32-square-{n}")
             for n in (512, 1024)]
            + [_Item("bench/test_gemm.py::test_gemm[bf16-square-512]", "test_gemm", "test_gemm", "bf16-square-512")]
            + [_Item(f"bench/test_stream.py::test_stream[copy-{k}KiB]", "test_stream", "test_stream", f"copy-{k}KiB")
               for k in (16, 64, 256)]
            + [_Item("bench/test_layers.py::test_model[resnet50]", "test_layers", "test_model", "resnet50")])


def test_progress_groups_and_plain_lines():
    from bench.progress import RunProgress, group_of

    assert group_of("test_gemm", "test_gemm", "fp64-square-512x512x512") == "GEMM fp64"
    assert group_of("test_native", "test_native_stream") == "stream"
    assert group_of("test_layers", "test_layer") == "layers" and group_of("test_layers", "test_model") == "models"
    lines: list[str] = []
    progress = RunProgress.for_items(_items(), "plain")
    progress.emit_fn = lines.append
    assert {g: x.total for g, x in progress.groups.items()} == {"GEMM fp32": 2, "GEMM bf16": 1, "stream": 3,
                                                                 "models": 1}
    for item in _items():
        progress.item_started(item.nodeid)
        progress.headline("best 70 GFLOP/s" if "gemm" in item.nodeid else "DRAM so far 20 GB/s")
        progress.item_finished(item.nodeid)
    finished = [line for line in lines if "GEMM fp32 2/2" in line]
    assert finished and "best 70 GFLOP/s" in finished[0]
    assert any(line.startswith("progress: stream 3/3") and "DRAM so far" in line for line in lines)
    assert lines[-1].endswith("7/7 points, 0:00 elapsed, ~0:00 left")


def test_progress_live_view_renders_one_line_per_group():
    import io

    from bench.progress import RunProgress

    buffer = io.StringIO()
    progress = RunProgress.for_items(_items(), "live")
    progress._open_live(buffer)
    progress.console.width = 120
    first = _items()[0]
    progress.item_started(first.nodeid)
    progress.headline("best 66 GFLOP/s")
    progress.item_finished(first.nodeid)
    progress.item_started(_items()[1].nodeid)
    rendered = progress._render()
    from rich.console import Console

    out = Console(file=io.StringIO(), width=120, color_system=None)
    out.print(rendered)
    lines = out.file.getvalue().splitlines()
    assert len(lines) == 5  # one per group, then the whole run
    assert lines[-1].startswith("all") and "1/7 points" in lines[-1] and "(rough)" in lines[-1]
    assert lines[0].startswith("GEMM fp32") and "1/2" in lines[0] and "left" in lines[0]
    assert "best 66 GFLOP/s · fp32-square-1024" in lines[0]
    assert "waiting" in lines[2]
    progress.close()
    assert progress.closed and progress._view is None


def test_quiet_progress_prints_nothing():
    from bench.progress import RunProgress

    lines: list[str] = []
    progress = RunProgress.for_items(_items(), "quiet")
    progress.emit_fn = lines.append
    for item in _items():
        progress.item_started(item.nodeid)
        progress.item_finished(item.nodeid)
    assert lines == []


def test_a_record_ten_times_a_full_run_makes_a_page_in_bounded_time_and_size(tmp_path):
    """Scale (issue 23): the committed full run, ten times over (distinct points), then once more appended to itself.
    The page stays within 5 MB and the repeated rows are flagged (time is a benchmark's business: printed only)."""
    import json
    import time

    from results.__main__ import main
    source = next((ROOT / "results" / "examples").glob("2026-12-01_cpu_intel-xeon-emr-2core-vm-full.json"))
    text = source.read_text()
    record = json.loads(text)
    rows = []
    for k in range(10):
        for row in json.loads(text)["measurements"]:  # a fresh copy per round, cheaper than deepcopy per row
            if k and row.get("size_bytes"):
                row["size_bytes"] = int(row["size_bytes"] * (1 + 0.01 * k))
            if k and row["group"] in ("layer", "model"):
                row["kernel"] += f"#{k}"
            if k and row.get("times_s"):
                row["times_s"] = [t * (1 + 1e-6 * k) for t in row["times_s"]]
            rows.append(row)
    record["measurements"] = rows + rows[:500]  # and 500 rows appended twice
    path = tmp_path / "big.json"
    path.write_text(json.dumps(record))
    start = time.perf_counter()
    assert main(["report", str(path), "-o", str(tmp_path / "big.html")]) == 0
    print(f"page of {len(rows) + 500} rows: {time.perf_counter() - start:.2f} s")
    assert (tmp_path / "big.html").stat().st_size < 5e6
    repeats = sum(1 for row in rows[:500] if row.get("times_s"))  # rows without times (cut, missing) are no repeats
    assert f"{repeats} of {len(rows) + 500} rows repeat an earlier row exactly" in (tmp_path / "big.html").read_text()
