"""`facequeue video`: a stored video through the queue from the command line, summary, exports and annotation."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path

import cv2
import numpy as np

from testmedia.photos import grace_hopper
from tests.fixtures.aws import rekognition_client, s3_client
from tests.fixtures.workers import WorkerProcess
from tests.integration.clirun import cli_env, json_lines, run_cli
from tests.video_jobs import video_clip_in_s3


def test_video_wait_summarises_who_was_seen_and_exports_rows(
    redis_url: str,
    worker_queue: str,
    worker: WorkerProcess,
    local_rekognition_url: str,
    moto_s3_url: str,
    s3_bucket: str,
    tmp_path: Path,
) -> None:
    # Given a collection knowing Grace Hopper and a two-second clip of her in S3
    rekognition = rekognition_client(local_rekognition_url)
    collection = f"cli-video-{uuid.uuid4().hex[:8]}"
    rekognition.create_collection(CollectionId=collection)
    rekognition.index_faces(
        CollectionId=collection, Image={"Bytes": grace_hopper().read_bytes()}, ExternalImageId="grace"
    )
    video_clip_in_s3(s3_client(moto_s3_url), s3_bucket, "clips/cli.mp4", seconds=2)
    env = cli_env(redis_url, worker_queue, AWS_ENDPOINT_URL_S3=moto_s3_url, AWS_REGION="us-east-1")
    url = f"s3://{s3_bucket}/clips/cli.mp4"
    # When the CLI searches the video and exports JSON lines, then detects faces and exports CSV
    searched = run_cli("video", url, "--search", collection, "--wait", "--format", "jsonl", env=env)
    detected = run_cli("video", url, "--wait", "--format", "csv", "--annotate", str(tmp_path / "out.mp4"), env=env)
    # Then each run exits 0 with one row per face per timestamp, and the summary names her
    assert searched.returncode == 0, searched.stderr
    rows = json_lines(searched.stdout)
    assert len(rows) >= 8
    assert {row["external_image_id"] for row in rows} == {"grace"}
    assert all(row["person"] == 0 and row["similarity"] >= 80 for row in rows)
    assert "grace" in searched.stderr and "on screen" in searched.stderr
    assert detected.returncode == 0, detected.stderr
    table = list(csv.DictReader(io.StringIO(detected.stdout)))
    assert [int(row["timestamp_ms"]) for row in table] == list(range(0, 2000, 200))
    # And the annotated copy is a playable clip of the same length, with the box drawn in magenta (the clip has none)
    capture = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 20
    ok, frame = capture.read()
    capture.release()
    assert ok
    magenta = cv2.inRange(frame, np.array([180, 0, 180]), np.array([255, 90, 255]))
    assert cv2.countNonZero(magenta) > 100


def test_video_of_a_missing_object_fails_with_the_code(
    redis_url: str, worker_queue: str, worker: WorkerProcess, s3_bucket: str
) -> None:
    done = run_cli("video", f"s3://{s3_bucket}/nope.mp4", "--wait", env=cli_env(redis_url, worker_queue))
    assert done.returncode == 1
    assert "InvalidS3ObjectException" in done.stderr
