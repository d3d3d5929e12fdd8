"""The `facequeue` command as a user runs it: a subprocess against the session's Redis and worker."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from testmedia.photos import grace_hopper, shared_images
from tests.fixtures.workers import WorkerProcess
from tests.integration.clirun import cli_env, json_lines, run_cli

pytestmark = pytest.mark.timeout(300)


def facequeue(*args: str, redis_url: str, queue: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess, configured only through its environment."""
    return run_cli(*args, env=cli_env(redis_url, queue))


_lines = json_lines


@pytest.fixture
def run(redis_url: str, worker_queue: str, worker: WorkerProcess) -> Any:
    """The CLI against the session's stack."""
    return lambda *args: facequeue(*args, redis_url=redis_url, queue=worker_queue)


def test_analyze_wait_jsonl_prints_one_envelope_per_photo(run: Any, tmp_path: Path) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("a text file named .jpg")
    done = run("analyze", str(grace_hopper()), str(bad), "--wait", "--format", "jsonl", "--attributes", "ALL")
    envelopes = {Path(e["label"]).name: e for e in _lines(done.stdout)}
    assert set(envelopes) == {"grace_hopper.jpg", "notes.jpg"}
    assert envelopes["grace_hopper.jpg"]["status"] == "succeeded"
    assert len(envelopes["grace_hopper.jpg"]["response"]["FaceDetails"]) == 1
    assert envelopes["notes.jpg"]["error"]["code"] == "InvalidImageFormatException"
    # One failed job: exit 1, so scripts can tell
    assert done.returncode == 1


def test_analyze_a_directory_with_a_table(run: Any, tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(grace_hopper().read_bytes())
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.jpg").write_bytes(grace_hopper().read_bytes())
    (tmp_path / "readme.txt").write_text("not a photo")
    done = run("analyze", str(tmp_path), "--wait")
    assert done.returncode == 0, done.stderr
    assert "a.jpg" in done.stdout and "b.jpg" in done.stdout and "readme" not in done.stdout
    assert done.stdout.count("1 face(s)") == 2


def test_status_and_results_of_a_batch(run: Any) -> None:
    submitted = run("analyze", str(grace_hopper()))
    assert submitted.returncode == 0
    batch_id = re.search(r"batch (\w+)", submitted.stderr).group(1)  # type: ignore[union-attr]
    status = run("status", batch_id, "--wait", "--timeout", "60")
    assert json.loads(status.stdout) == {
        "batch_id": batch_id,
        "total": 1,
        "succeeded": 1,
        "failed": 0,
        "pending": 0,
        "finished": True,
    }
    results = run("results", "--batch", batch_id, "--format", "jsonl")
    [envelope] = _lines(results.stdout)
    assert envelope["batch_id"] == batch_id and envelope["status"] == "succeeded"
    one = run("results", envelope["job_id"], "--format", "jsonl")
    assert _lines(one.stdout) == [envelope]


def test_compare_prints_the_similarity(run: Any) -> None:
    done = run("compare", str(grace_hopper()), str(grace_hopper()), "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    [envelope] = _lines(done.stdout)
    assert envelope["response"]["FaceMatches"][0]["Similarity"] > 80


def test_errors_for_people_are_one_line_without_traceback(redis_url: str, worker_queue: str) -> None:
    missing = facequeue("analyze", "/no/such/photo.jpg", redis_url=redis_url, queue=worker_queue)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "facequeue: /no/such/photo.jpg: no such file or directory"
    nobody = facequeue("analyze", str(grace_hopper()), redis_url="redis://127.0.0.1:1/0", queue=worker_queue)
    assert nobody.returncode == 3
    assert "Redis does not answer" in nobody.stderr and "Traceback" not in nobody.stderr
    bad_id = facequeue("collection", "create", "no spaces allowed", redis_url=redis_url, queue=worker_queue)
    assert bad_id.returncode == 2 and "collection_id" in bad_id.stderr


def test_every_shared_photo_has_a_face_and_two_people_has_two(run: Any) -> None:
    photos = sorted(str(p) for p in shared_images().glob("*.jpg"))
    done = run("analyze", *photos, "--wait", "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    faces = {Path(e["label"]).name: len(e["response"]["FaceDetails"]) for e in _lines(done.stdout)}
    assert len(faces) == len(photos)
    assert all(count >= 1 for count in faces.values()), faces
    assert faces["two_people.jpg"] == 2


def test_dead_letters_are_listed_and_retried_from_the_command_line(run: Any) -> None:
    # Given a job that fails for good: its collection does not exist
    collection = f"dead-cli-{uuid.uuid4().hex[:8]}"
    failed = run("collection", "index", collection, str(grace_hopper()), "--format", "jsonl")
    assert failed.returncode == 1
    job_id = _lines(failed.stdout)[0]["job_id"]
    # Then `dead list` shows it with its code, and `dead retry JOB` re-queues it once the cause is fixed
    listed = run("dead", "list", "--format", "jsonl")
    mine = [d for d in _lines(listed.stdout) if d["envelope"]["job_id"] == job_id]
    assert mine and mine[0]["envelope"]["error"]["code"] == "ResourceNotFoundException"
    assert run("collection", "create", collection).returncode == 0
    retried = run("dead", "retry", job_id)
    assert retried.returncode == 0, retried.stderr
    batch_id = re.search(r"batch (\w+)", retried.stderr).group(1)  # type: ignore[union-attr]
    status = run("status", batch_id, "--wait", "--timeout", "60")
    assert json.loads(status.stdout)["succeeded"] == 1
    assert job_id not in run("dead", "list", "--format", "jsonl").stdout
    run("collection", "delete", collection)
