"""The README's configuration tables are the settings classes' own, and its commands name real things."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_configuration_tables_match_the_settings_classes() -> None:
    # The tables are printed from the classes; a field added without regenerating them fails here.
    printed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings_table.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "", "PYTHONPATH": str(ROOT), "HOME": str(Path.home())},
    ).stdout
    readme = (ROOT / "README.md").read_text()
    for line in printed.splitlines():
        if line.startswith("| `"):
            assert line in readme, f"README's configuration table is stale: {line}"


def test_the_two_commands_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    readme = (ROOT / "README.md").read_text()
    for target in ("demo", "test"):
        assert f"\n{target}:" in makefile
        assert f"make {target}" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
