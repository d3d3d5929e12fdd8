"""Print the dependencies of facequeue and the extras named on the command line, one per line, from pyproject.toml.

The image installs them before it sees any code, so the layer holding them is rebuilt only when pyproject.toml
changes, not on every code change. Standard library only: it runs on a bare python image.

    python docker/requirements.py pyproject.toml worker   # the package's dependencies plus the worker extra
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    """The core dependencies followed by each extra's, with the project's references to its own extras expanded."""
    project = tomllib.loads(pyproject.read_text())["project"]
    name = project["name"]
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    found: list[str] = list(project["dependencies"])
    pending, seen = list(extras), set()
    while pending:
        extra = pending.pop(0)
        if extra in seen:
            continue
        seen.add(extra)
        if extra not in optional:
            raise SystemExit(f"{pyproject}: no extra named {extra!r} (have: {', '.join(sorted(optional))})")
        for requirement in optional[extra]:
            # `all = ["facequeue[cli,worker,local]"]` names the project itself: install its extras, not the project.
            own = re.fullmatch(rf"{re.escape(name)}\[([^\]]+)\]", requirement.replace(" ", ""))
            if own:
                pending += own.group(1).split(",")
            else:
                found.append(requirement)
    return list(dict.fromkeys(found))


def main(argv: list[str]) -> int:
    """Entry point: `requirements.py PYPROJECT [EXTRA ...]`."""
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    print("\n".join(requirements(Path(argv[0]), argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
