"""local_rekognition has no import circles, between modules or between its rooms; bench/ imports nothing from tests/.

Read from the source (tests/import_graph.py), function-local imports included: hiding an import inside a function
keeps Python from tripping on a circle, not a reader.
"""

from __future__ import annotations

from pathlib import Path

from tests.import_graph import collapse, cycles, import_graph, importers_of, internal

ROOT = Path(__file__).resolve().parents[2]


def test_local_rekognition_modules_import_no_circle() -> None:
    graph = internal(import_graph(ROOT / "local_rekognition"))
    assert len(graph) > 40  # the whole package was read
    assert cycles(graph) == []


def test_local_rekognition_rooms_point_one_way() -> None:
    # Rooms: each subpackage (operations/, models/, video/) and each top-level module (context, store, ...).
    rooms = internal(collapse(import_graph(ROOT / "local_rekognition"), depth=2))
    assert {"local_rekognition.operations", "local_rekognition.video", "local_rekognition.context"} <= set(rooms)
    assert cycles(rooms) == []


def test_bench_imports_nothing_from_tests() -> None:
    # Tests run the bench scripts (tests/integration/test_bench_smoke_*.py): the arrow goes one way only.
    graph = import_graph(ROOT / "bench")
    assert "bench.watch_delay" in graph
    assert importers_of(graph, "tests") == {}
