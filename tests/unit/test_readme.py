"""The README is a first read that maps the docs; the docs' tables are the code's own, checked both ways.

Each table here mirrors something in the code: a row the code lacks fails, and so does a thing the code has that
no row names. Links between the pages must land on a file and, with a #fragment, on one of its headings.
"""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import redis
from pydantic import BaseModel

import producer.contract
from local_rekognition.operations import OPERATIONS
from worker.metrics import REGISTRY, QueueDepth

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md")), ROOT / "bench" / "README.md"]
README_MAX_LINES = 200


def _rows(text: str, section: str | None = None) -> list[list[str]]:
    """The body rows of the Markdown tables in ``text`` (or in its section titled ``section``), cells stripped."""
    if section is not None:
        text = text.split(f"\n{section}\n", 1)[1]
        text = re.split(r"\n#{1,6} ", text, maxsplit=1)[0]
    rows: list[list[str]] = []
    for line in text.splitlines():
        if re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line):
            rows.pop()  # the line above a separator is the table's header
        elif line.startswith("|"):
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def _names(cell: str) -> set[str]:
    """The `code` names in one table cell."""
    return set(re.findall(r"`([^`]+)`", cell))


@cache
def _settings_tables() -> dict[str, list[str]]:
    """scripts/settings_table.py's rows, by settings class."""
    printed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings_table.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "", "PYTHONPATH": str(ROOT), "HOME": str(Path.home())},
    ).stdout
    tables: dict[str, list[str]] = {}
    for block in printed.split("#### ")[1:]:
        name, _, table = block.partition("\n")
        tables[name.strip()] = [line for line in table.splitlines() if line.startswith("| `")]
    return tables


def test_the_configuration_tables_are_the_settings_classes() -> None:
    # Printed from the classes: a field added without regenerating the page fails, and so does a row left behind
    # after a field is removed or renamed.
    printed = _settings_tables()
    assert set(printed) == {"ProducerSettings", "WorkerSettings", "LocalRekognitionSettings"}
    page = (DOCS / "configuration.md").read_text()
    documented: dict[str, list[str]] = {}
    for section in re.split(r"\n## ", page)[1:]:
        heading, _, body = section.partition("\n")
        name = re.search(r"\(`(\w+Settings)`", heading)
        assert name, f"docs/configuration.md: a section that is not a settings class: {heading}"
        documented[name.group(1)] = [line for line in body.splitlines() if line.startswith("| `")]
    assert documented == printed, "regenerate docs/configuration.md's tables: python scripts/settings_table.py"


def test_every_facequeue_variable_the_docs_name_exists() -> None:
    settings = {name for rows in _settings_tables().values() for row in rows for name in _names(row.split(" | ")[0])}
    # Compose's own variables, and the one scripts/compose_test.py reads.
    compose_files = [ROOT / "docker-compose.yml", ROOT / "scripts" / "compose_test.py"]
    compose = {name for path in compose_files for name in re.findall(r"FACEQUEUE_COMPOSE_[A-Z0-9_]+", path.read_text())}
    assert "FACEQUEUE_REDIS_URL" in settings and compose
    for page in PAGES:
        for name in set(re.findall(r"FACEQUEUE_[A-Z0-9_]*", page.read_text())):
            if name.endswith("_"):  # a prefix: FACEQUEUE_, FACEQUEUE_LOCAL_*, FACEQUEUE_COMPOSE_*
                assert any(real.startswith(name) for real in settings | compose), f"{page.name}: {name}*"
            else:
                assert name in settings | compose, f"{page.relative_to(ROOT)} names {name}, which nothing reads"


def test_the_operations_table_is_the_servers_operations() -> None:
    rows = _rows((DOCS / "local_rekognition.md").read_text(), "## Operations")
    documented = {name for row in rows for name in _names(row[0])}
    assert documented == set(OPERATIONS)


def test_the_job_table_is_the_contracts_jobs() -> None:
    rows = _rows((DOCS / "contract.md").read_text(), "## Jobs and the result envelope")
    documented = {name for row in rows for name in _names(row[0])}
    jobs = {
        name
        for name, value in vars(producer.contract).items()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and name.endswith("Job")
        and not name.startswith("_")
    }
    assert len(jobs) > 15
    assert documented == jobs


def test_the_metrics_table_is_the_workers_metrics() -> None:
    rows = _rows((DOCS / "deployment.md").read_text(), "## Metrics")
    documented = {row[0].strip("`"): row[1].split()[0] for row in rows}
    # Counters are exposed with _total, as Prometheus names them; the queue depth is collected at scrape time.
    families = [*REGISTRY.collect(), *QueueDepth(redis.Redis.from_url("redis://127.0.0.1:1/0"), []).collect()]
    exposed = {family.name + ("_total" if family.type == "counter" else ""): family.type for family in families}
    assert documented == exposed


def test_the_two_commands_and_the_quick_check_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    readme = (ROOT / "README.md").read_text()
    for target in ("demo", "test", "check"):
        assert f"\n{target}:" in makefile
        assert f"make {target}" in readme
    assert "make check" in (DOCS / "development.md").read_text()
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_readme_is_a_first_read() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines: move reference to docs/"


def test_the_readme_maps_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text()
    mapped = {cell for row in _rows(readme, "## Documentation") for cell in re.findall(r"\]\(([^)]+)\)", row[0])}
    pages = {f"docs/{page.name}" for page in DOCS.glob("*.md")} | {"bench/README.md"}
    assert mapped == pages


def _anchors(page: Path) -> set[str]:
    # GitHub's heading ids: lower case, punctuation but - and _ dropped, spaces to hyphens.
    anchors, fence = set(), False
    for line in page.read_text().splitlines():
        fence ^= line.startswith("```")
        if not fence and (heading := re.match(r"#{1,6} (.+)", line)):
            anchors.add(re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-"))
    return anchors


def test_links_between_the_pages_land() -> None:
    checked = 0
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto
            path, _, fragment = target.partition("#")
            landing = (page.parent / path).resolve() if path else page
            assert landing.exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"
            if fragment:
                assert fragment in _anchors(landing), f"{page.relative_to(ROOT)} links to {target}: no such heading"
            checked += 1
    assert checked > 30
