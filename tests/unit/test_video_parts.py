"""The pieces of the video path that need no server: container sniffing, the tracker, the contract's video jobs."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from local_rekognition.models.engine import Box, DetectedFace
from local_rekognition.video.decode import UnsupportedVideo, container_format
from local_rekognition.video.tracker import FaceTracker
from producer.contract import FaceDetectionVideoJob, FaceSearchVideoJob, parse_job


def face(left: float, top: float, side: float = 50, embedding: list[float] | None = None) -> DetectedFace:
    """A detected face with a box and, optionally, an embedding."""
    vector = None if embedding is None else np.asarray(embedding, dtype=np.float32)
    return DetectedFace(Box(left, top, side, side), 99.0, {}, {}, {}, embedding=vector)


def test_mp4_and_mov_are_told_apart_and_anything_else_is_refused() -> None:
    assert container_format(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00") == "MPEG-4"
    assert container_format(b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00") == "QuickTime / MOV"
    assert container_format(b"\x00\x00\x00\x08wide\x00\x00\x00\x00") == "QuickTime / MOV"
    for head in (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01", b"RIFF\x00\x00\x00\x00AVI ", b""):
        with pytest.raises(UnsupportedVideo):
            container_format(head)


def test_a_face_moving_a_little_keeps_its_track_and_a_new_face_gets_a_new_one() -> None:
    tracker = FaceTracker()
    assert tracker.update(0, [face(10, 10)]) == [0]
    assert tracker.update(200, [face(14, 12)]) == [0]
    assert tracker.update(400, [face(200, 10), face(18, 14)]) == [1, 0]


def test_a_face_that_jumps_is_followed_by_its_embedding_and_a_track_ends_after_the_gap() -> None:
    tracker = FaceTracker(max_gap_ms=1000)
    a, b = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    assert tracker.update(0, [face(0, 0, embedding=a), face(300, 0, embedding=b)]) == [0, 1]
    # The two swap places in one step: no overlap, identity decides.
    assert tracker.update(200, [face(300, 0, embedding=a), face(0, 0, embedding=b)]) == [0, 1]
    # Seen again after longer than the gap: a new track.
    assert tracker.update(2000, [face(300, 0, embedding=a)]) == [2]


def test_video_jobs_use_their_job_id_as_the_client_request_token() -> None:
    job = FaceDetectionVideoJob.model_validate(
        {"video": {"bucket": "clips", "key": "a.mp4", "version": "v1"}, "face_attributes": "ALL"}
    )
    assert job.request() == {
        "Video": {"S3Object": {"Bucket": "clips", "Name": "a.mp4", "Version": "v1"}},
        "ClientRequestToken": job.job_id,
        "FaceAttributes": "ALL",
    }
    search = parse_job(
        {"operation": "StartFaceSearch", "video": {"bucket": "clips", "key": "a.mp4"}, "collection_id": "staff"}
    )
    assert isinstance(search, FaceSearchVideoJob)
    assert search.request()["FaceMatchThreshold"] == 80.0
    with pytest.raises(ValidationError):
        parse_job({"operation": "StartFaceSearch", "video": {"bucket": "clips", "key": "a.mp4"}})
    with pytest.raises(ValidationError):
        FaceDetectionVideoJob.model_validate({"video": {"bucket": "clips", "key": "a.mp4"}, "face_attributes": "AGE"})
