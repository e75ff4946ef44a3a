"""The package's layers (docs/architecture.md): no import from a lower layer to a higher one,
no import circle between modules, at most 15 modules directly in ``collector/`` and none
over 400 lines. Read from the source text, so a lazy import inside a function counts too."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "collector"

#: Each layer and the layers it may import from (besides itself).
MAY_IMPORT: dict[str, set[str]] = {
    "core": set(),
    "sources": {"core"},
    "stores": {"core"},
    "simulators": {"core"},
    "pipeline": {"core", "sources", "stores"},
    "outputs": {"core", "stores", "pipeline"},
    "cli": {"core", "sources", "stores", "simulators", "pipeline", "outputs", "bench"},
    "bench": {"core", "sources", "stores", "simulators", "pipeline", "outputs"},
}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    if module == "collector.__main__":  # ``python -m collector``: the command line
        return "cli"
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in MAY_IMPORT:
        return parts[1]
    return "core"


def _imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports from the package at run time (imports for the type
    checker only are no dependency): ``from collector.x import y`` names ``collector.x.y``
    where that is a module, else ``collector.x``."""

    def walk(node: ast.AST) -> Iterator[ast.AST]:
        for child in ast.iter_child_nodes(node):
            if (isinstance(child, ast.If) and isinstance(child.test, ast.Name)
                    and child.test.id == "TYPE_CHECKING"):
                continue
            yield child
            yield from walk(child)

    for node in walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("collector"))
        elif (isinstance(node, ast.ImportFrom) and node.module and node.level == 0
              and (node.module == "collector" or node.module.startswith("collector."))):
            yield from (f"{node.module}.{a.name}" for a in node.names)


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(path):
            # "from collector.x import y": y is a module of package x, or a name in x
            target = imported
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in modules and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def test_no_import_from_a_lower_layer_to_a_higher_one() -> None:
    wrong = sorted(
        f"{source} ({_layer(source)}) imports {target} ({_layer(target)})"
        for source, targets in _graph().items()
        for target in targets
        if _layer(target) != _layer(source) and _layer(target) not in MAY_IMPORT[_layer(source)]
    )
    assert wrong == []


def test_no_import_circle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert circles == []


def test_the_top_holds_the_shared_core_only() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 15, top


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=_module)
def test_no_module_over_400_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 400, f"{path.relative_to(PACKAGE.parent)}: {lines} lines"


def test_only_the_daemon_knows_apscheduler() -> None:
    def imports_it(path: Path) -> bool:
        return any(
            (isinstance(n, ast.Import) and any(a.name.startswith("apscheduler") for a in n.names))
            or (isinstance(n, ast.ImportFrom) and (n.module or "").startswith("apscheduler"))
            for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))))

    users = sorted(_module(p) for p in PACKAGE.rglob("*.py") if imports_it(p))
    assert users == ["collector.pipeline.daemon"]
