"""Without the `cli` extra the `facequeue` command says which extra to install, and exits 2: no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.fixtures.workers import ROOT


@pytest.mark.parametrize("missing", ["rich", "PIL"])
def test_the_command_names_the_extra_it_needs(missing: str) -> None:
    # Given an install where MISSING cannot be imported (None in sys.modules: import raises ModuleNotFoundError,
    # as it does in a venv that never installed it)
    code = (
        f"import sys; sys.modules[{missing!r}] = None;"
        "from producer.cli import main; sys.exit(main(['status', 'some-batch']))"
    )
    # When the command runs
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    # Then it says what to install, on one line, and exits 2
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "pip install 'facequeue[cli]'" in done.stderr and missing in done.stderr
    assert done.stdout == ""
