"""The worker's floor plan, read from its source with ast: no import circles, and the broker behind its interface.

Every import counts: module level, inside a function, or under ``if TYPE_CHECKING`` (a circle drawn only for the type
checker is still two modules that cannot be read apart). The reading is tests/import_graph.py's.
"""

from __future__ import annotations

from pathlib import Path

from tests.import_graph import Graph, cycles, import_graph, internal

ROOT = Path(__file__).resolve().parents[2]
BROKER = "worker.broker"
# Code that may open the broker's rooms directly: the broker itself, and its own tests (Makefile's BROKER_TESTS).
BROKER_INSIDERS = {
    "tests.unit.test_kombu_internals",
    "tests.unit.test_prefetch",
    "tests.unit.test_redis_wait_reasons",
    "tests.integration.test_fetch",
}
FOLDERS = ("worker", "producer", "local_rekognition", "devtools", "tests", "bench", "scripts")


def _graph() -> Graph:
    return internal(import_graph(ROOT / "worker"))


def test_the_reader_sees_every_worker_module() -> None:
    """The graph is read from the files that exist (a reader that found nothing would find no circle either)."""
    graph = _graph()
    assert {"worker.app", "worker.tasks", "worker.broker", "worker.broker.transport"} <= set(graph)
    assert "worker.broker" in graph["worker.app"]


def test_the_worker_has_no_import_circles() -> None:
    """No two worker modules import each other, directly or round a longer loop."""
    assert cycles(_graph()) == []


def test_the_circle_finder_finds_a_circle() -> None:
    """A loop drawn by hand is found, with every module on it (so an empty answer above means something)."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_broker_is_entered_only_through_its_interface() -> None:
    """Outside worker/broker/ (and its own tests), code imports worker.broker, never one of its modules."""
    known = {name for folder in FOLDERS for name in import_graph(ROOT / folder)}
    insides = {name for name in known if name.startswith(BROKER + ".")}
    assert {"worker.broker.transport", "worker.broker.take", "worker.broker.consumer", "worker.broker.prefetch"} <= (
        insides
    )
    everyone: Graph = {}
    for folder in FOLDERS:
        everyone |= import_graph(ROOT / folder, known=known)
    trespass = {
        name: sorted(targets & insides)
        for name, targets in everyone.items()
        if not name.startswith(BROKER) and name not in BROKER_INSIDERS
    }
    assert {name: found for name, found in trespass.items() if found} == {}
