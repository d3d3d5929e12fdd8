"""tests/import_graph.py reads imports as Python resolves them, and finds the circles a reader would trip on."""

from __future__ import annotations

from pathlib import Path

from tests.import_graph import collapse, cycles, import_graph, importers_of, internal


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / next(iter(files)).split("/")[0]


def test_absolute_relative_and_function_local_imports_are_arrows(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.sub import leaf\n",
            "pkg/top.py": "import os\nfrom . import helper\nfrom .sub.leaf import thing\n",
            "pkg/helper.py": "def f():\n    from pkg import top\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/leaf.py": "thing = 1\n",
            "pkg/sub/other.py": "from .. import helper\nfrom ..helper import f\nfrom . import leaf\n",
        },
    )
    graph = import_graph(package)
    assert graph["pkg"] == {"pkg.sub.leaf"}
    assert graph["pkg.top"] == {"os", "pkg.helper", "pkg.sub.leaf"}
    assert graph["pkg.helper"] == {"pkg.top"}
    assert graph["pkg.sub.leaf"] == set()
    assert graph["pkg.sub.other"] == {"pkg.helper", "pkg.sub.leaf"}
    assert internal(graph)["pkg.top"] == {"pkg.helper", "pkg.sub.leaf"}
    # top → helper → top: a function-local import hides the circle from Python, not from the graph.
    assert cycles(internal(graph)) == [["pkg.helper", "pkg.top"]]


def test_type_checking_imports_count_unless_left_out(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from pkg import b\nelse:\n    import json\n",
            "pkg/b.py": "from pkg import a\n",
        },
    )
    assert cycles(internal(import_graph(package))) == [["pkg.a", "pkg.b"]]
    no_types = import_graph(package, type_checking=False)
    assert no_types["pkg.a"] == {"typing", "json"}
    assert cycles(internal(no_types)) == []


def test_rooms_circle_even_when_modules_do_not(tmp_path: Path) -> None:
    # Given context → video.jobs and video.runner → context: no module circle, but the rooms point at each other.
    package = _package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/context.py": "from pkg.video.jobs import Store\n",
            "pkg/video/__init__.py": "",
            "pkg/video/jobs.py": "class Store: ...\n",
            "pkg/video/runner.py": "from pkg.context import Services\n",
        },
    )
    graph = internal(import_graph(package))
    assert cycles(graph) == []
    rooms = collapse(graph, depth=2)
    assert rooms == {"pkg": set(), "pkg.context": {"pkg.video"}, "pkg.video": {"pkg.context"}}
    assert cycles(rooms) == [["pkg.context", "pkg.video"]]


def test_importers_of_a_package(tmp_path: Path) -> None:
    scripts = _package(
        tmp_path,
        {"bench/a.py": "from tests import clips\nimport testsuite\n", "bench/b.py": "from tests.photos import x\n"},
    )
    assert importers_of(import_graph(scripts), "tests") == {"bench.a": {"tests"}, "bench.b": {"tests.photos"}}
