"""producer/ has no import circles, and its arrows point one way: producer/cli → the library, never back."""

from __future__ import annotations

from tests.fixtures.workers import ROOT
from tests.import_graph import cycles, import_graph, internal

GRAPH = internal(import_graph(ROOT / "producer"))
MODULES = set(GRAPH)


def test_the_graph_sees_function_local_and_type_checking_imports() -> None:
    # What the walk is trusted for: the CLI's entry point imports its app inside main(), people.py imports the
    # client only for type checking; a graph blind to either would miss the circles they could close.
    assert "producer.cli.app" in GRAPH["producer.cli"]
    assert "producer.client" in GRAPH["producer.people"]
    assert "producer.jobs" in GRAPH["producer.client"]  # `from producer import jobs as _jobs`


def test_producer_has_no_import_circle() -> None:
    assert cycles(GRAPH) == []


def _in_cli(name: str) -> bool:
    return name == "producer.cli" or name.startswith("producer.cli.")


LIBRARY = sorted(name for name in MODULES if not _in_cli(name))
"""The library's modules: what a service that enqueues jobs imports."""


def test_the_library_never_imports_the_cli() -> None:
    assert {"producer", "producer.client", "producer.contract"} <= set(LIBRARY)
    back = {name: sorted(filter(_in_cli, GRAPH[name])) for name in LIBRARY}
    assert not {name: targets for name, targets in back.items() if targets}
