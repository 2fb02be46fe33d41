"""The layering of docs/architecture.md, checked statically with import-linter's contracts, and ruff.

Both tools are in the `test` extra: a missing one is a failure, not a skip, so that a broken
install cannot pass these checks in silence.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool(name: str, package: str) -> str:
    """The tool installed beside this interpreter (or on PATH); a failure naming the extra if absent."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: it comes with the test extra ({package}; pip install -e '.[test]')")
    return found


def test_import_contracts_are_kept():
    lint = _tool("lint-imports", "import-linter")
    done = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "BROKEN" not in done.stdout


def test_ruff_is_clean():
    ruff = _tool("ruff", "ruff")
    done = subprocess.run([ruff, "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


# -- no import cycles ------------------------------------------------------------------------------
# import-linter's layers stop at package boundaries; a cycle between two modules of one layer (often
# hidden in an import inside a function) is found here, from the source, with every import counted.
PACKAGES = ("smmt_core", "smmt_gui")


def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module of the two packages: dotted name -> (file, is a package's __init__)."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _nearest_module(name: str, modules) -> str | None:
    """`name` if it is a module, else the closest enclosing one (an attribute's module)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imported(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, modules) -> set[str]:
    """The modules of the two packages one import statement imports. A package counts as its
    __init__ only; `from pkg import name` imports pkg.name when that is a module, else pkg."""
    if isinstance(node, ast.Import):
        return {m for m in (_nearest_module(alias.name, modules) for alias in node.names) if m}
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        source = ".".join([*base, *([node.module] if node.module else [])])
    else:
        source = node.module or ""
    out = set()
    for alias in node.names:
        target = f"{source}.{alias.name}"
        found = target if target in modules else _nearest_module(source, modules)
        if found:
            out.add(found)
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the modules it imports anywhere in its source (top level, functions, TYPE_CHECKING)."""
    modules = _modules()
    graph = {}
    for name, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets |= _imported(name, is_package, node, modules)
        targets.discard(name)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if start in state:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_the_import_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert "smmt_core.data.template" in graph["smmt_core.data.volume"]  # at the top
    assert "smmt_core.data.intake.brain" in graph["smmt_core.data.intake.pipeline"]  # inside a function
    assert "smmt_core.data.intake.qc" in graph["smmt_core.data.intake.pipeline"]  # `from package import module`
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles_between_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


# -- function length ------------------------------------------------------------------------------
MAX_FUNCTION_LINES = 100  # a longer function does several jobs; give each a name


def test_no_function_in_the_science_core_is_longer_than_a_screenful_or_two():
    long = []
    for path in sorted((ROOT / "smmt_core").rglob("*.py")):
        if "bench" in path.relative_to(ROOT).parts:  # benchmark scripts read top to bottom on purpose
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "split these into named steps: " + "; ".join(long)
