"""The import graph of a package or a folder of scripts, read from the source with ast (nothing is imported).

For tests that assert a layout: no import circles between modules, none between the rooms (subpackages) of a
package, and arrows only one way between two packages. Every import statement counts, including those inside
functions (a function-local import hides a circle from Python, not from a reader) and under ``TYPE_CHECKING``
unless asked otherwise.

    graph = import_graph(ROOT / "local_rekognition")
    assert not cycles(internal(graph))
    assert not cycles(internal(collapse(graph, depth=2)))
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

Graph = dict[str, set[str]]
"""A module's dotted name → the dotted names of the modules it imports."""


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(tree: ast.AST, type_checking: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test) and not type_checking:
            yield from (s for child in node.orelse for s in _statements_in(child, type_checking))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _statements(node, type_checking)


def _statements_in(node: ast.AST, type_checking: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    yield from _statements(node, type_checking)


def _imported(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, modules: set[str]) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:
        # A relative import counts from the importer's package (a package's __init__ is its own package).
        package = importer.split(".") if is_package else importer.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, *([base] if base else [])])
    # `from a.b import c` imports the module a.b.c when there is one, else the name c from a.b.
    names = {f"{base}.{alias.name}" for alias in node.names}
    found = {name for name in names if name in modules}
    return found if found == names else found | {base}


def import_graph(directory: Path, *, type_checking: bool = True, known: Iterable[str] = ()) -> Graph:
    """Every ``.py`` file under ``directory`` → the modules it imports, named from ``directory``'s parent.

    A package (``local_rekognition/``) gives ``local_rekognition.context`` and so on; a folder of scripts
    (``bench/``) gives ``bench.pipeline_throughput``. ``type_checking=False`` leaves out imports made only for
    the type checker. ``known`` names modules outside ``directory``, so that ``from worker.broker import take``
    read in tests/ counts as an import of the module ``worker.broker.take``.
    """
    root = directory.resolve().parent
    files = {path: _module_name(path, root) for path in sorted(directory.resolve().rglob("*.py"))}
    modules = set(files.values()) | set(known)
    graph: Graph = {}
    for path, name in files.items():
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        edges: set[str] = set()
        for node in _statements(tree, type_checking):
            edges |= _imported(node, name, path.name == "__init__.py", modules)
        graph[name] = edges - {name}
    return graph


def internal(graph: Mapping[str, set[str]]) -> Graph:
    """Only the arrows between the graph's own modules."""
    return {name: {target for target in targets if target in graph} for name, targets in graph.items()}


def collapse(graph: Mapping[str, set[str]], depth: int) -> Graph:
    """The graph between rooms: each module counted as its first ``depth`` name parts (``a.b.c`` → ``a.b``).

    Arrows inside a room disappear; an arrow from ``a.video.runner`` to ``a.context`` becomes ``a.video`` →
    ``a.context``. Imported names outside the graph are cut the same way.
    """
    rooms: Graph = {}
    for name, targets in graph.items():
        room = ".".join(name.split(".")[:depth])
        arrows = rooms.setdefault(room, set())
        arrows |= {".".join(target.split(".")[:depth]) for target in targets}
    return {room: arrows - {room} for room, arrows in rooms.items()}


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The graph's import circles: each strongly connected group of two or more modules, sorted (Tarjan)."""
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


def importers_of(graph: Mapping[str, set[str]], prefix: str) -> dict[str, set[str]]:
    """Modules that import anything named ``prefix`` or under it, with what they import from there."""
    hits = {
        name: {target for target in targets if target == prefix or target.startswith(prefix + ".")}
        for name, targets in graph.items()
    }
    return {name: targets for name, targets in hits.items() if targets}
