"""The worker's floor plan, read from its source with ast: no import circles, and the broker behind its interface.

Every import counts: module level, inside a function, or under ``if TYPE_CHECKING`` (a circle drawn only for the type
checker is still two modules that cannot be read apart).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "worker"
BROKER = "worker.broker"
# Code that may open the broker's rooms directly: the broker itself, and its own tests (Makefile's BROKER_TESTS).
BROKER_INSIDERS = {
    "tests.unit.test_kombu_internals",
    "tests.unit.test_prefetch",
    "tests.integration.test_fetch",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(*folders: str) -> dict[str, Path]:
    return {_module_name(p): p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))}


WORKER_MODULES = _modules("worker")


def _imports(path: Path, known: set[str]) -> set[str]:
    """The modules a file imports; ``from package import name`` counts as an import of package.name when that is a
    module."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known)
    return found


def _graph() -> dict[str, set[str]]:
    known = set(WORKER_MODULES)
    return {name: _imports(path, known) & known - {name} for name, path in WORKER_MODULES.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_reader_sees_every_worker_module() -> None:
    """The graph is read from the files that exist (a reader that found nothing would find no circle either)."""
    graph = _graph()
    assert {"worker.app", "worker.tasks", "worker.broker", "worker.broker.transport"} <= set(graph)
    assert "worker.broker" in graph["worker.app"]


def test_the_worker_has_no_import_circles() -> None:
    """No two worker modules import each other, directly or round a longer loop."""
    assert _circles(_graph()) == []


def test_the_circle_finder_finds_a_circle() -> None:
    """A loop drawn by hand is found, with every module on it (so an empty answer above means something)."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c"]]


def test_the_broker_is_entered_only_through_its_interface() -> None:
    """Outside worker/broker/ (and its own tests), code imports worker.broker, never one of its modules."""
    insides = {name for name in WORKER_MODULES if name.startswith(BROKER + ".")}
    assert {"worker.broker.transport", "worker.broker.take", "worker.broker.consumer", "worker.broker.prefetch"} <= (
        insides
    )
    everyone = _modules("worker", "producer", "local_rekognition", "devtools", "tests", "bench", "scripts")
    known = set(everyone)
    trespass = {
        name: sorted(_imports(path, known) & insides)
        for name, path in everyone.items()
        if not name.startswith(BROKER) and name not in BROKER_INSIDERS
    }
    assert {name: found for name, found in trespass.items() if found} == {}
