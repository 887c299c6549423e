"""The package's layers, read from its source: only the HTTP layer's own modules and the
entry points import gateway.api (the request path and everything under it never know about
HTTP handlers), and no gateway module imports itself back through others."""

from __future__ import annotations

import ast
from pathlib import Path

import gateway

ROOT = Path(gateway.__file__).parent
HTTP_LAYER = "gateway.api"
# Who may import the HTTP layer: the layer itself, the app that assembles it, the command line
# that serves it, and the reviewer's page (gateway/review/, its own app on the same helpers).
MAY_IMPORT_HTTP = ("gateway.api", "gateway.app", "gateway.cli", "gateway.__main__",
                   "gateway.review")  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imported(name: str, path: Path, runtime_only: bool = False) -> set[str]:
    """The gateway modules `name` imports by name, anywhere in it (in a function too; not the
    parent packages Python runs first); with `runtime_only`, not those under
    `if TYPE_CHECKING:`, which never run."""
    tree = ast.parse(path.read_text(), str(path))
    skipped: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..y import z
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {m for m in found if m == "gateway" or m.startswith("gateway.")}


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_only_the_http_layer_and_the_entry_points_import_it() -> None:
    offenders = {
        name: sorted(m for m in imported(name, path) if within(m, (HTTP_LAYER,)))
        for name, path in modules().items()
        if not within(name, MAY_IMPORT_HTTP)
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_no_gateway_module_imports_itself_back() -> None:
    known = modules()
    graph = {
        name: {m for m in imported(name, path, runtime_only=True) if m in known and m != name}
        for name, path in known.items()
    }
    assert cycles(graph) == []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The modules of each import cycle (a strongly connected group, by Tarjan's algorithm),
    sorted, so a failure names the modules to untangle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = stack[stack.index(node) :]
            del stack[stack.index(node) :]
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle_and_only_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
