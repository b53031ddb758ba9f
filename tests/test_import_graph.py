"""The import graph has no cycles, counting imports inside functions (they run too, only later).

Imports under ``if __name__ == "__main__":`` are not counted: they run only when the file is executed as a
script (``python -m ...``), never when it is imported, so they cannot take part in an import cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO_ROOT

FOLDERS = {
    "tsjnet_sdk": "tsjnet_sdk",
    "export": "tsjnet_sdk.export",
    "training": "tsjnet_sdk.training",
    "kernels": "tsjnet_sdk.kernels",
    "benchmarks": "tsjnet_sdk.benchmarks",
}


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every SDK module (stage folders under their installed names)."""
    out = {}
    for folder, package in FOLDERS.items():
        for path in (REPO_ROOT / folder).rglob("*.py"):
            rel = path.relative_to(REPO_ROOT / folder).with_suffix("").parts
            parts = [p for p in rel if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


def _is_main_guard(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def imports_of(path: Path, module: str, known: set[str]) -> set[str]:
    """First-party modules ``module`` imports anywhere (functions included), except under a __main__ guard."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for top in tree.body if _is_main_guard(top) for n in ast.walk(top)}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in known:  # `from pkg import mod` or `import pkg.mod.attr`: the deepest module
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    # a package's own __init__ is imported by every submodule; parents are not cycle edges
    return {m: {d for d in imports_of(p, m, known) if not m.startswith(d + ".")} for m, p in files.items()}


def test_the_import_graph_has_no_cycles() -> None:
    graph = import_graph()
    assert sum(len(v) for v in graph.values()) > 200  # the walk sees the imports (function-level ones included)
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
