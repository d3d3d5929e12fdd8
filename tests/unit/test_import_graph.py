"""producer/ has no import circles, and its arrows point one way: producer/cli → the library, never back."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.fixtures.workers import ROOT

PACKAGE = ROOT / "producer"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """Every producer module NAME imports, wherever the import stands (top level, function, TYPE_CHECKING)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from producer.cli import faces` imports the module producer.cli.faces; `from x import Name`, x.
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {module for module in found if module in MODULES and module != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycle() -> list[str] | None:
    """One import circle as a path of module names, or None."""
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = "open"
        for target in sorted(GRAPH[name]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target] if target in path else [*path, target]
            if target not in state and (found := visit(target, [*path, target])):
                return found
        state[name] = "done"
        return None

    for start in GRAPH:
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_the_graph_sees_function_local_and_type_checking_imports() -> None:
    # What the walk is trusted for: the CLI's entry point imports its app inside main(), people.py imports the
    # client only for type checking; a graph blind to either would miss the circles they could close.
    assert "producer.cli.app" in GRAPH["producer.cli"]
    assert "producer.client" in GRAPH["producer.people"]
    assert "producer.jobs" in GRAPH["producer.client"]  # `from producer import jobs as _jobs`


def test_producer_has_no_import_circle() -> None:
    assert _cycle() is None, " → ".join(_cycle() or [])


def _in_cli(name: str) -> bool:
    return name == "producer.cli" or name.startswith("producer.cli.")


LIBRARY = sorted(name for name in MODULES if not _in_cli(name))
"""The library's modules: what a service that enqueues jobs imports."""


def test_the_library_never_imports_the_cli() -> None:
    assert {"producer", "producer.client", "producer.contract"} <= set(LIBRARY)
    back = {name: sorted(filter(_in_cli, GRAPH[name])) for name in LIBRARY}
    assert not {name: targets for name, targets in back.items() if targets}
