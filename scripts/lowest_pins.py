"""Print pip constraints holding kombu and Celery at the lowest versions pyproject.toml admits (`make test-lowest`)."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

PINNED = ("kombu", "celery")


def lowest(requirement: Requirement) -> str:
    """The version in a requirement's ``>=`` bound: the lowest release the range admits."""
    for spec in requirement.specifier:
        if spec.operator == ">=":
            return spec.version
    raise SystemExit(f"{requirement}: no >= bound, so no lowest version to test")


def main() -> None:
    """Write one ``name==version`` line per pinned package to standard output."""
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    requirements = {r.name.lower(): r for r in map(Requirement, project["dependencies"])}
    for name in PINNED:
        sys.stdout.write(f"{name}=={lowest(requirements[name])}\n")


if __name__ == "__main__":
    main()
