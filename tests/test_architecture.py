"""The package's shape (issue 14): imports go one way, Parquet is read from Python in one module, and every name
of a kind lives in the Kind table. Each test reads the source, so a change that breaks the rule fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import ticklake
from ticklake.lake import kinds

PACKAGE = Path(ticklake.__file__).parent


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(), str(path))
    return found


def _imports(tree: ast.Module, known: set[str]) -> set[str]:
    """Every ticklake module a module imports, anywhere in it (module level, inside functions, TYPE_CHECKING)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ticklake"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in known else node.module)
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_finds_a_cycle_when_there_is_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_between_ticklake_modules() -> None:
    modules = _modules()
    known = set(modules)
    # The packages' __init__ files re-export the public names; they sit above everything, so they are left out.
    packages = {"ticklake", "ticklake.lake"}
    graph = {name: _imports(tree, known) - packages for name, tree in modules.items() if name not in packages}
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph) or [])}"
    # Nothing under the facade imports it.
    for name in ("ticklake.lake.storage", "ticklake.lake.reader", "ticklake.lake.scan", "ticklake.lake.inventory"):
        assert "ticklake.lake.facade" not in graph[name], name


def test_parquet_is_read_from_python_in_one_module() -> None:
    users = sorted(
        name
        for name, tree in _modules().items()
        for node in ast.walk(tree)
        if (isinstance(node, ast.Import) and any(a.name.startswith("pyarrow.parquet") for a in node.names))
        or (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pyarrow.parquet"))
        or (
            isinstance(node, ast.ImportFrom)
            and node.module == "pyarrow"
            and any(a.name == "parquet" for a in node.names)
        )
    )
    assert users == ["ticklake.lake.reader"]


def test_the_names_of_a_kind_are_written_only_in_the_kind_table() -> None:
    aliases = {k.view for k in kinds.ALL if k.view and k.view != k.folder} | {k.api_timeframe for k in kinds.ALL}
    aliases.discard(None)
    assert aliases >= {"bars_1m", "1Min", "1Day"}
    found = []
    for name, tree in _modules().items():
        if name == "ticklake.lake.kinds":
            continue
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in aliases and id(node) not in docstrings:
                found.append(f"{name}:{node.lineno} {node.value!r}")
    assert found == []


def test_every_name_of_a_kind_finds_the_same_kind() -> None:
    for kind in kinds.ALL:
        names = [kind.folder, kind.short] + ([kind.view] if kind.view else [])
        assert {kinds.of(n) for n in names} == {kind}
    assert kinds.of("bars_1m").api_timeframe == "1Min"
    assert kinds.bar_kind("1d").yearly and not kinds.of("quotes").is_bars
