"""Celebrity jobs end to end: producer → Redis → real worker → local_rekognition's celebrity gallery, and the
`facequeue celebrities` command as a user runs it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local_rekognition.validation import service_model
from producer import FaceQueue, JobStatus, ProducerSettings, jobs
from producer.cli.show.annotate import MATCH, NO_MATCH
from producer.contract import ResultEnvelope
from testmedia.photos import grace_hopper, shared_images
from testmedia.small_faces import Condition, make_scene, shared_portraits, wheel_portraits
from tests.botocore_shapes import assert_output_conforms
from tests.fixtures.aws import s3_client
from tests.fixtures.workers import WorkerProcess, worker_environment
from tests.integration.clirun import cli_env, json_lines, run_cli, unique_photo
from tests.integration.test_cli_annotate import share_on_box_edge

pytestmark = pytest.mark.timeout(300)

HOPPER_ID = "Q11641"
"""Grace Hopper's Id in the built-in gallery (her Wikidata item)."""


@pytest.fixture
def fq(redis_url: str, worker_queue: str, worker: WorkerProcess) -> Iterator[FaceQueue]:
    """A producer client on the session's Redis and queue, with the session's worker running."""
    client = FaceQueue(ProducerSettings(redis_url=redis_url, queue=worker_queue))  # type: ignore[arg-type]
    yield client
    client.close()


def stranger() -> Path:
    """A portrait of someone the built-in gallery does not hold (it holds Grace Hopper and Eileen Collins)."""
    return shared_images() / "obama.jpg"


def recognize(fq: FaceQueue, image: Any) -> ResultEnvelope:
    """Run one RecognizeCelebrities job through the queue; its envelope, checked against botocore's output shape."""
    envelope = fq.result(fq.submit(jobs.recognize_celebrities(image)), timeout_s=60)
    assert envelope.status is JobStatus.SUCCEEDED, envelope.error
    assert envelope.response is not None and "ResponseMetadata" not in envelope.response
    assert_output_conforms(service_model().operation_model("RecognizeCelebrities"), envelope.response)
    return envelope


def test_grace_hopper_is_named_in_matplotlibs_portrait(fq: FaceQueue) -> None:
    envelope = recognize(fq, grace_hopper())

    assert envelope.operation == "RecognizeCelebrities" and envelope.attempts == 1 and not envelope.cached
    response = envelope.response or {}
    [celebrity] = response["CelebrityFaces"]
    assert (celebrity["Name"], celebrity["Id"]) == ("Grace Hopper", HOPPER_ID)
    assert celebrity["MatchConfidence"] >= 80 and celebrity["KnownGender"] == {"Type": "Female"}
    assert response["UnrecognizedFaces"] == []
    assert envelope.face_count() == 1


def test_a_stranger_lands_in_unrecognized_faces(fq: FaceQueue) -> None:
    response = recognize(fq, stranger()).response or {}

    assert response["CelebrityFaces"] == []
    assert len(response["UnrecognizedFaces"]) == 1


def test_in_a_batch_a_group_photo_names_both_celebrities_and_counts_the_strangers(fq: FaceQueue) -> None:
    # Given a 1280x720 photo of Grace Hopper, Eileen Collins and three strangers, and Grace's portrait, as one batch
    shared_images()
    strangers = [p for p in shared_portraits() if p.name in {"obama.jpg", "biden2.jpg", "obama1.jpg"}]
    condition = Condition((1280, 720), (90,), blur_sigma=0, motion_px=0, motion_deg=0, roll_deg=0, jpeg_quality=90)
    scene = make_scene("celebrities", [wheel_portraits()[0], *strangers, wheel_portraits()[1]], condition, seed=3)
    batch = fq.submit_many(
        [jobs.recognize_celebrities(scene.jpeg, label="group"), jobs.recognize_celebrities(grace_hopper())]
    )
    # When the batch is done
    results = {e.label: e for e in fq.wait(batch.batch_id, timeout_s=120)}
    # Then the group photo names both and leaves the three strangers unrecognized; the portrait names Grace
    group = results["group"]
    assert group.status is JobStatus.SUCCEEDED, group.error
    assert_output_conforms(service_model().operation_model("RecognizeCelebrities"), group.response or {})
    response = group.response or {}
    assert sorted(c["Name"] for c in response["CelebrityFaces"]) == ["Eileen Collins", "Grace Hopper"]
    assert len(response["UnrecognizedFaces"]) == 3 and group.face_count() == 5
    [portrait] = [e for label, e in results.items() if label != "group"]
    assert [c["Name"] for c in (portrait.response or {})["CelebrityFaces"]] == ["Grace Hopper"]


def test_an_s3_photo_goes_to_rekognition_by_reference(fq: FaceQueue, moto_s3_url: str, s3_bucket: str) -> None:
    s3_client(moto_s3_url).put_object(Bucket=s3_bucket, Key="people/grace.jpg", Body=grace_hopper().read_bytes())

    envelope = recognize(fq, f"s3://{s3_bucket}/people/grace.jpg")

    assert [c["Name"] for c in (envelope.response or {})["CelebrityFaces"]] == ["Grace Hopper"]
    assert envelope.label == f"s3://{s3_bucket}/people/grace.jpg"


def test_a_bad_image_fails_with_rekognitions_code_and_the_worker_keeps_serving(
    fq: FaceQueue, worker: WorkerProcess
) -> None:
    bad = fq.result(fq.submit(jobs.recognize_celebrities(b"this is a text file, not a photo")), timeout_s=60)

    assert bad.status is JobStatus.FAILED and bad.response is None and bad.error is not None
    assert (bad.error.code, bad.error.retryable) == ("InvalidImageFormatException", False)
    assert bad.operation == "RecognizeCelebrities" and bad.attempts == 0  # refused by the worker: no call paid
    assert recognize(fq, grace_hopper()).status is JobStatus.SUCCEEDED
    assert worker.alive


def test_the_same_photo_is_recognized_once_then_served_from_the_cache(
    redis_url: str,
    moto_s3_url: str,
    local_rekognition_url: str,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    # Given a worker with the response cache on, against local_rekognition
    queue = f"celebs-cache-{uuid.uuid4().hex[:8]}"
    start_worker(worker_environment(redis_url, local_rekognition_url, moto_s3_url, queue, cache_ttl_s="600"))
    fq = FaceQueue(ProducerSettings(redis_url=redis_url, queue=queue))  # type: ignore[arg-type]
    photo = unique_photo(grace_hopper(), tmp_path / "grace.jpg", seed=uuid.uuid4().int % 65536)
    # When the same photo is recognised twice, then once more with the cache refused
    first = recognize(fq, photo)
    second = recognize(fq, photo)
    fresh = fq.result(fq.submit(jobs.recognize_celebrities(photo, use_cache=False)), timeout_s=60)
    fq.close()
    # Then the second answer is the first one, with no call; opting out calls again
    assert (first.cached, first.attempts) == (False, 1)
    assert (second.cached, second.attempts) == (True, 0)
    assert second.response == first.response
    assert (fresh.cached, fresh.attempts) == (False, 1)


@pytest.fixture
def run(redis_url: str, worker_queue: str, worker: WorkerProcess) -> Any:
    """The CLI against the session's stack."""
    # A wide terminal, so a table cell is one line (rich folds cells to the 80 columns it assumes otherwise).
    return lambda *args: run_cli(*args, env=cli_env(redis_url, worker_queue, COLUMNS="200"))


def test_the_command_names_who_is_where_and_draws_the_names(run: Any, tmp_path: Path) -> None:
    # Given a folder with Grace Hopper's portrait and a stranger's
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "grace.jpg").write_bytes(grace_hopper().read_bytes())
    (photos / "stranger.jpg").write_bytes(stranger().read_bytes())
    out = tmp_path / "annotated"
    # When `facequeue celebrities` runs on it, waiting for the table, and again as JSON lines with pictures
    table = run("celebrities", str(photos), "--wait")
    done = run("celebrities", str(photos), "--annotate", str(out), "--format", "jsonl")
    assert table.returncode == 0, table.stderr
    assert done.returncode == 0, done.stderr
    envelopes = {Path(e["label"]).name: e for e in json_lines(done.stdout)}
    [grace] = envelopes["grace.jpg"]["response"]["CelebrityFaces"]
    # Then the table names Grace with her MatchConfidence and counts the stranger as unrecognized
    [grace_row] = [line for line in table.stdout.splitlines() if "grace.jpg" in line]
    [stranger_row] = [line for line in table.stdout.splitlines() if "stranger.jpg" in line]
    assert "RecognizeCelebrities" in grace_row and f"Grace Hopper {grace['MatchConfidence']:.1f}" in grace_row
    assert "nobody recognized · 1 unrecognized" in stranger_row
    # And the summary on stderr says who was seen in which photo, and how many faces were nobody known
    [roll_row] = [line for line in table.stderr.splitlines() if "Grace Hopper" in line]
    assert HOPPER_ID in roll_row and "grace.jpg" in roll_row and f"{grace['MatchConfidence']:.1f}" in roll_row
    assert "1 celebrity recognized in 1 of 2 photo(s); 1 unrecognized face(s) in 1 photo(s)" in table.stderr
    # And each picture has the celebrity's face in green and the stranger's in red
    grace_face = grace["Face"]
    stranger_face = envelopes["stranger.jpg"]["response"]["UnrecognizedFaces"][0]
    assert share_on_box_edge(out / "grace.jpg", grace_face["BoundingBox"], MATCH) > 0.8
    assert share_on_box_edge(out / "stranger.jpg", stranger_face["BoundingBox"], NO_MATCH) > 0.8
    assert f"annotated 2 photo(s) in {out}" in done.stderr


def test_the_command_without_wait_submits_and_says_how_to_follow(run: Any) -> None:
    done = run("celebrities", str(grace_hopper()))

    assert done.returncode == 0, done.stderr
    assert "facequeue status" in done.stderr and done.stdout == ""
