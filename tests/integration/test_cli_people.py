"""`facequeue enrol`, `identify` and `users` as a user runs them: subprocesses against the session's stack."""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from testmedia.imaging import plain, views
from testmedia.photos import astronaut, grace_hopper
from tests.fixtures.workers import WorkerProcess
from tests.integration.clirun import cli_env, json_lines, run_cli

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def run(redis_url: str, worker_queue: str, worker: WorkerProcess) -> Any:
    """The CLI against the session's stack."""
    return lambda *args: run_cli(*args, env=cli_env(redis_url, worker_queue))


def photos(directory: Path, path: Path, name: str) -> dict[str, Path]:
    """The photo and its extra views (flipped, cropped, darker, brighter) as files in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {"orig": directory / f"{name}.jpg"}
    files["orig"].write_bytes(path.read_bytes())
    for view, data in views(path).items():
        files[view] = directory / f"{name}-{view}.jpg"
        files[view].write_bytes(data)
    return files


def test_enrol_then_identify(run: Any, tmp_path: Path) -> None:
    cid = f"people-{uuid.uuid4().hex[:8]}"
    grace = photos(tmp_path / "grace", grace_hopper(), "grace")
    eileen = photos(tmp_path / "eileen", astronaut(), "eileen")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(plain(300, 300))
    assert run("collection", "create", cid).returncode == 0
    # Given Grace enrolled from three photos, one of them without a face, and Eileen from three
    report = tmp_path / "grace.json"
    enrolled = run(
        "enrol", cid, "grace.hopper", str(grace["orig"]), str(grace["flipped"]), str(empty), "--report", str(report)
    )
    # Then the two faces are associated and the empty photo is reported left out, with why (exit 1: not all went in)
    assert enrolled.returncode == 1, enrolled.stderr
    outcome = json.loads(report.read_text())
    assert sorted(Path(p).name for p in outcome["associated"]) == ["grace-flipped.jpg", "grace.jpg"]
    assert {Path(p).name: why for p, why in outcome["left_out"].items()} == {"empty.jpg": "no face found"}
    assert outcome["user_status"] == "ACTIVE"
    assert "left out" in enrolled.stderr
    enrolled = run("enrol", cid, "eileen", str(eileen["orig"]), str(eileen["flipped"]), str(eileen["darker"]))
    assert enrolled.returncode == 0, enrolled.stderr
    # A photo of someone else is not added to Grace: too unlike her, and its face is removed from the collection
    refused = run("enrol", cid, "grace.hopper", str(eileen["brighter"]), "--report", str(report))
    assert refused.returncode == 1
    [why] = json.loads(report.read_text())["left_out"].values()
    assert why.startswith("too unlike the person's other faces")
    listed = run("collection", "list", cid, "--format", "jsonl")
    assert len(json_lines(listed.stdout)[0]["response"]["Faces"]) == 5
    # When held-back photos are identified (CSV, and annotated)
    out_dir = tmp_path / "annotated"
    held_back = [grace["cropped"], eileen["cropped"], empty]
    identified = run("identify", cid, *map(str, held_back), "--format", "csv", "--annotate", str(out_dir))
    assert identified.returncode == 0, identified.stderr
    rows = {Path(row["label"]).name: row for row in csv.DictReader(io.StringIO(identified.stdout))}
    assert (rows["grace-cropped.jpg"]["user_id"], rows["eileen-cropped.jpg"]["user_id"]) == ("grace.hopper", "eileen")
    assert float(rows["grace-cropped.jpg"]["similarity"]) >= 80
    assert rows["empty.jpg"]["user_id"] == "" and rows["empty.jpg"]["face_index"] == ""
    pictures = sorted(path for path in out_dir.rglob("*") if path.is_file())
    assert len(pictures) == 3
    with Image.open(pictures[0]) as picture:
        assert picture.size[0] > 0
    # A stranger at a strict threshold is "unknown" in the table
    strict = run("identify", cid, str(grace["brighter"]), "--threshold", "100")
    assert "unknown" in strict.stdout
    # users list and delete
    listed_users = run("users", "list", cid, "--format", "jsonl")
    assert json_lines(listed_users.stdout) == [
        {"UserId": "eileen", "UserStatus": "ACTIVE"},
        {"UserId": "grace.hopper", "UserStatus": "ACTIVE"},
    ]
    assert run("users", "delete", cid, "eileen").returncode == 0
    assert [u["UserId"] for u in json_lines(run("users", "list", cid, "--format", "jsonl").stdout)] == ["grace.hopper"]
    missing = run("users", "delete", cid, "eileen")
    assert missing.returncode == 1 and "ResourceNotFoundException" in missing.stdout
    assert run("collection", "delete", cid).returncode == 0


def test_enrol_refuses_a_bad_person_id_before_indexing(run: Any) -> None:
    done = run("enrol", "somewhere", "has space", str(grace_hopper()))
    assert done.returncode == 2
    assert "user_id" in done.stderr


def test_enrol_leaves_out_an_unusable_file_and_enrols_the_rest(run: Any, tmp_path: Path) -> None:
    # Given a person's photo and an empty file beside it (an interrupted copy)
    cid = f"people-{uuid.uuid4().hex[:8]}"
    grace = photos(tmp_path / "grace", grace_hopper(), "grace")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"")
    assert run("collection", "create", cid).returncode == 0
    report = tmp_path / "report.json"
    # When they are enrolled together
    enrolled = run("enrol", cid, "grace", str(grace["orig"]), str(broken), "--report", str(report))
    # Then the good photo is associated, the empty file is left out with why, and the exit code says not all went in
    assert enrolled.returncode == 1, enrolled.stderr
    outcome = json.loads(report.read_text())
    assert [Path(p).name for p in outcome["associated"]] == ["grace.jpg"]
    assert [Path(p).name for p in outcome["left_out"]] == ["broken.jpg"]
    assert "empty" in next(iter(outcome["left_out"].values()))
    assert run("collection", "delete", cid).returncode == 0
