"""No import circles in ``app/``: none between modules, none between packages.

Every ``import`` counts, at module level or inside a function: an import moved into a function
to dodge a circle still ties the two modules together. Only ``if TYPE_CHECKING:`` blocks are
left out (they never run). A package is a folder under ``app/`` (``goals``, ``core``, ...);
a top-level module (``app/main.py``, ``app/wiring.py``) is its own node."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from tests.support.paths import ROOT

APP = ROOT / "app"


def app_sources() -> dict[str, str]:
    """Every module of ``app/`` by dotted name, with its source."""
    sources = {}
    for path in sorted(APP.rglob("*.py")):
        parts = list(path.relative_to(APP.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        sources[".".join(parts)] = path.read_text()
    return sources


def _type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", "")
    return name == "TYPE_CHECKING"


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if _type_checking_block(node):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _imports(node)


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """Module -> the modules of ``sources`` it imports (``from a import b`` imports ``a.b``
    when that is a module, else ``a``)."""
    graph: dict[str, set[str]] = {}
    for name, source in sources.items():
        package = name if _is_package(name, sources) else name.rpartition(".")[0]
        found = set()
        for node in _imports(ast.parse(source)):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
                continue
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in sources else base)
        graph[name] = {target for target in found if target in sources and target != name}
    return graph


def _is_package(name: str, sources: dict[str, str]) -> bool:
    return any(other.startswith(name + ".") for other in sources)


def package_of(module: str) -> str:
    """``app.goals.service`` -> ``app.goals``; ``app.main`` -> ``app.main``."""
    return ".".join(module.split(".")[:2])


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        edges = packages.setdefault(package_of(module), set())
        edges.update(package_of(t) for t in targets if package_of(t) != package_of(module))
    return packages


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_no_module_imports_itself_through_others() -> None:
    graph = import_graph(app_sources())
    assert len(graph) > 100  # the walk found the application
    assert sum(len(targets) for targets in graph.values()) > 300
    assert cycles(graph) == []


def test_no_package_imports_itself_through_others() -> None:
    packages = package_graph(import_graph(app_sources()))
    assert {"app.core", "app.goals", "app.webhooks", "app.auth"} <= set(packages)
    assert cycles(packages) == []


def test_a_circle_is_found_at_module_level_and_inside_a_function() -> None:
    sources = {
        "app": "",
        "app.core": "",
        "app.core.errors": "def f():\n    from app.core.faults import g\n",
        "app.core.faults": "from app.core import metrics\n",
        "app.core.metrics": "import app.core.errors\n",
        "app.goals": "",
        "app.goals.service": "from app.webhooks.events import record\n",
        "app.webhooks": "",
        "app.webhooks.events": "from app.resources import load\n",
        "app.resources": "from app.goals import service\n",
    }
    graph = import_graph(sources)
    assert graph["app.core.faults"] == {"app.core.metrics"}
    assert cycles(graph) == [
        ["app.core.errors", "app.core.faults", "app.core.metrics"],
        ["app.goals.service", "app.resources", "app.webhooks.events"],
    ]
    assert cycles(package_graph(graph)) == [["app.goals", "app.resources", "app.webhooks"]]


def test_a_package_circle_without_a_module_circle_is_found() -> None:
    sources = {
        "app": "",
        "app.auth": "",
        "app.auth.routing": "from app.idempotency.service import check\n",
        "app.auth.dependencies": "",
        "app.idempotency": "",
        "app.idempotency.service": "from app.auth.dependencies import CurrentPrincipal\n",
    }
    graph = import_graph(sources)
    assert cycles(graph) == []
    assert cycles(package_graph(graph)) == [["app.auth", "app.idempotency"]]


def test_type_checking_imports_and_relative_imports() -> None:
    sources = {
        "app": "",
        "app.a": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app.b import x\n",
        "app.b": "",
        "app.b.c": "from . import d\nfrom .d import y\n",
        "app.b.d": "from app.a import z\n",
    }
    graph = import_graph(sources)
    assert graph["app.a"] == set()
    assert graph["app.b.c"] == {"app.b.d"}
