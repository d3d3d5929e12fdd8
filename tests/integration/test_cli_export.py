"""Exports: a batch's results as CSV (one row per face) or JSON lines, on stdout or into a file."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path

import pytest
from PIL import Image

from producer.cli.show.export import COLUMNS
from testmedia.photos import grace_hopper
from tests.fixtures.workers import WorkerProcess
from tests.integration.clirun import batch_id, cli_env, json_lines, run_cli

pytestmark = pytest.mark.timeout(300)


def two_faces(path: Path) -> Path:
    """Two Grace Hoppers side by side: one photo, two faces."""
    with Image.open(grace_hopper()) as img:
        portrait = img.convert("RGB")
    pair = Image.new("RGB", (portrait.width * 2, portrait.height), "white")
    pair.paste(portrait, (0, 0))
    pair.paste(portrait, (portrait.width, 0))
    pair.save(path, "JPEG", quality=95)
    return path


def test_results_of_a_batch_as_csv_one_row_per_face(
    redis_url: str, worker_queue: str, worker: WorkerProcess, tmp_path: Path
) -> None:
    # Given a batch with a one-face photo, a two-face photo and a file that is not a photo
    env = cli_env(redis_url, worker_queue)
    (tmp_path / "one.jpg").write_bytes(grace_hopper().read_bytes())
    two_faces(tmp_path / "two.jpg")
    (tmp_path / "bad.jpg").write_text("not a photo")
    submitted = run_cli("analyze", str(tmp_path), "--attributes", "ALL", "--wait", "--format", "jsonl", env=env)
    batch = batch_id(submitted.stderr)
    envelopes = {Path(e["label"]).name: e for e in json_lines(submitted.stdout)}

    # When its results are exported as CSV
    exported = run_cli("results", "--batch", batch, "--format", "csv", env=env)
    assert exported.returncode == 1  # bad.jpg failed, as in the batch itself
    reader = csv.DictReader(io.StringIO(exported.stdout, newline=""))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    rows = list(reader)

    # Then every face is a row, with the envelope's numbers, and the failed job has a row with its code
    by_photo: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_photo.setdefault(Path(row["label"]).name, []).append(row)
    assert {name: len(found) for name, found in by_photo.items()} == {"one.jpg": 1, "two.jpg": 2, "bad.jpg": 1}
    [one] = by_photo["one.jpg"]
    face = envelopes["one.jpg"]["response"]["FaceDetails"][0]
    assert float(one["bbox_left"]) == face["BoundingBox"]["Left"]
    assert float(one["confidence"]) == face["Confidence"]
    assert (int(one["age_low"]), int(one["age_high"])) == (face["AgeRange"]["Low"], face["AgeRange"]["High"])
    assert one["gender"] == face["Gender"]["Value"]
    assert one["job_id"] == envelopes["one.jpg"]["job_id"] and one["batch_id"] == batch
    assert sorted(row["face_index"] for row in by_photo["two.jpg"]) == ["0", "1"]
    [bad] = by_photo["bad.jpg"]
    assert (bad["status"], bad["error_code"], bad["face_index"]) == ("failed", "InvalidImageFormatException", "")

    # And --output writes the same rows to a file, leaving stdout empty
    target = tmp_path / "out" / "faces.csv"
    to_file = run_cli("results", "--batch", batch, "--format", "csv", "--output", str(target), env=env)
    assert to_file.stdout == ""
    with target.open(newline="") as stream:
        assert list(csv.DictReader(stream)) == rows
    as_jsonl = run_cli("results", "--batch", batch, "--format", "jsonl", env=env)
    assert {e["job_id"] for e in json_lines(as_jsonl.stdout)} == {e["job_id"] for e in envelopes.values()}


def test_search_results_as_csv_carry_similarity_and_face_id(
    redis_url: str, worker_queue: str, worker: WorkerProcess
) -> None:
    env = cli_env(redis_url, worker_queue)
    collection = f"export-{uuid.uuid4().hex[:8]}"
    assert run_cli("collection", "create", collection, env=env).returncode == 0
    indexed = run_cli("collection", "index", collection, str(grace_hopper()), "--format", "csv", env=env)
    [record] = list(csv.DictReader(io.StringIO(indexed.stdout, newline="")))
    searched = run_cli("collection", "search", collection, str(grace_hopper()), "--format", "csv", env=env)
    assert searched.returncode == 0, searched.stderr
    [match] = list(csv.DictReader(io.StringIO(searched.stdout, newline="")))
    assert match["face_id"] == record["face_id"] and match["external_image_id"] == "grace_hopper.jpg"
    assert float(match["similarity"]) > 80
