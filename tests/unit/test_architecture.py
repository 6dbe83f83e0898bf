"""The house's shape, checked: layer contracts, no import cycle, no import hidden in a function.

docs/architecture.md draws the layers; pyproject.toml's [tool.importlinter] holds the contracts.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp

SRC = Path(__file__).resolve().parents[2] / "src" / "suanli"
ENTRY_POINTS = ("cli", "api")  # thin layers that may import lazily to keep start-up fast


def test_layer_contracts_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint), "--no-cache"], cwd=SRC.parents[1],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if not child.startswith("suanli"):
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(
                        child)))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle() -> None:
    graph = grimp.build_graph("suanli", exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def test_no_import_hidden_in_a_function_below_the_entry_points() -> None:
    hidden = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC)
        if relative.parts[0] in ENTRY_POINTS:
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith(
                        "suanli"):
                    hidden.append(f"{relative}:{inner.lineno} {inner.module}")
    assert hidden == [], "imports inside functions (fix the cycle instead): " + ", ".join(hidden)


FILE_IO_METHODS = frozenset({"read_text", "read_bytes", "write_text", "write_bytes"})


def _file_io_calls(tree: ast.AST) -> list[int]:
    """Lines that open or read a file: `open(...)`, `print(..., file=...)`, `x.read_text()`."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name) and (
                node.func.id == "open"
                or node.func.id == "print" and any(k.arg == "file" for k in node.keywords)):
            lines.append(node.lineno)
        elif isinstance(node.func, ast.Attribute) and node.func.attr in FILE_IO_METHODS:
            lines.append(node.lineno)
    return sorted(lines)


def test_the_domain_reads_no_file() -> None:
    """Data files are read by suanli.catalog and passed in; the import contract keeps io, os,
    pathlib, csv and importlib out of domain/, this keeps the builtins out."""
    found = [f"{path.relative_to(SRC)}:{line}"
             for path in sorted((SRC / "domain").rglob("*.py"))
             for line in _file_io_calls(ast.parse(path.read_text(), str(path)))]
    assert found == [], "file I/O in the pure domain: " + ", ".join(found)


def test_the_file_io_finder_finds_file_io() -> None:
    code = "def f(p):\n    with open(p) as fh:\n        x = fh.read()\n    return p.read_text()\n"
    assert _file_io_calls(ast.parse(code)) == [2, 4]
    assert _file_io_calls(ast.parse("Account.open('a', kind)\n")) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    graph.add_import(importer="suanli.a", imported="suanli.b")
    graph.add_import(importer="suanli.b", imported="suanli.c")
    graph.add_import(importer="suanli.c", imported="suanli.a")
    graph.add_import(importer="suanli.c", imported="suanli.d")
    assert _cycles(graph) == [["suanli.a", "suanli.b", "suanli.c"]]


# What a service may take from SQLAlchemy: the session it is handed (to pass on to
# repositories), the engine type, and the errors it turns into answers. Statements (select,
# insert, update, delete, func, text, ...) belong to adapters/store/repositories (issue 11).
SERVICE_SQLALCHEMY_NAMES = frozenset({"Session", "Engine", "DBAPIError", "IntegrityError",
                                      "OperationalError"})


def _sqlalchemy_names(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("sqlalchemy")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names
                      if a.name not in SERVICE_SQLALCHEMY_NAMES]
    return found


def test_services_build_no_sql() -> None:
    found = [f"{path.relative_to(SRC)}:{line} {name}"
             for path in sorted((SRC / "services").rglob("*.py"))
             for line, name in _sqlalchemy_names(ast.parse(path.read_text(), str(path)))]
    assert found == [], "SQL outside the repositories: " + ", ".join(found)


def test_the_sql_finder_finds_sql() -> None:
    code = ("from sqlalchemy import select, update\nfrom sqlalchemy.orm import Session\n"
            "import sqlalchemy\n")
    assert _sqlalchemy_names(ast.parse(code)) == [
        (1, "sqlalchemy.select"), (1, "sqlalchemy.update"), (3, "sqlalchemy")]
