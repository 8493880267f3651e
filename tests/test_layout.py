"""The shape of the code: imports go one way (no cycle, even one hidden inside a function), results/ never imports
torch, and no module grows past ~450 lines without saying why in its docstring."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bench", "kernels", "platforms", "results")
#: a module this long says why in its docstring (a line holding "long:")
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    out["conftest"] = ROOT / "conftest.py"
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module of ours that ``path`` imports, at the top or inside a function (an `if __name__` block, a thin
    entry point left behind by a move, is not part of the module's use)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and \
                getattr(node.test.left, "id", None) == "__name__":
            node.body = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def test_no_import_cycle():
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    # a package's __init__ is imported by every module under it: only its own imports count
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str):
        state[name] = 1
        stack.append(name)
        for nxt in sorted(graph.get(name, ())):
            if nxt.startswith(name + ".") or name.startswith(nxt + "."):
                continue  # a package and its own modules
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if not state.get(nxt):
                visit(nxt)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if not state.get(name):
            visit(name)


def test_results_and_platforms_do_not_import_upward():
    """results/ reads records anywhere (no torch, no kernels, no bench); platforms/ knows nothing of kernels."""
    modules = _modules()
    for name, path in modules.items():
        used = _imports(path, modules)
        if name.startswith("results"):
            assert not {u for u in used if u.split(".")[0] in ("bench", "kernels")}, (name, used)
            assert "import torch" not in path.read_text(encoding="utf-8"), name
        if name.startswith("platforms"):
            assert not {u for u in used if u.split(".")[0] in ("bench", "kernels", "results")}, (name, used)


def test_no_module_is_long_without_a_reason():
    long = []
    for name, path in _modules().items():
        lines = path.read_text(encoding="utf-8").count("\n")
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if lines > MAX_LINES and "long:" not in doc:
            long.append(f"{name} ({lines} lines)")
    assert not long, "modules over ~450 lines without 'long: <why>' in their docstring: " + ", ".join(long)
