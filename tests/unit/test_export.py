"""CSV rows: one per face, a row for every job, fixed columns a spreadsheet or pandas reads back."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from producer.cli.show.export import COLUMNS, CsvWriter, rows
from producer.contract import JobError, JobStatus, ResultEnvelope

DETAIL = {
    "BoundingBox": {"Left": 0.1, "Top": 0.2, "Width": 0.3, "Height": 0.4},
    "Confidence": 99.5,
    "Pose": {"Roll": 1.0, "Yaw": -2.0, "Pitch": 3.0},
    "Quality": {"Brightness": 50.0, "Sharpness": 60.0},
    "AgeRange": {"Low": 30, "High": 40},
    "Gender": {"Value": "Female", "Confidence": 98.0},
    "Emotions": [{"Type": "SAD", "Confidence": 10.0}, {"Type": "HAPPY", "Confidence": 80.0}],
    "Smile": {"Value": True, "Confidence": 90.0},
    "Eyeglasses": {"Value": False, "Confidence": 90.0},
}


def envelope(operation: str, response: dict[str, Any] | None, error: JobError | None = None) -> ResultEnvelope:
    now = datetime.now(UTC)
    return ResultEnvelope(
        job_id="j1",
        batch_id="b1",
        label='photo,with "quotes".jpg',
        operation=operation,
        status=JobStatus.FAILED if error else JobStatus.SUCCEEDED,
        response=response,
        error=error,
        started_at=now,
        finished_at=now,
    )


def read_back(*envelopes: ResultEnvelope) -> list[dict[str, str]]:
    stream = io.StringIO(newline="")
    writer = CsvWriter(stream)
    for e in envelopes:
        writer.write(e)
    reader = csv.DictReader(io.StringIO(stream.getvalue(), newline=""))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    return list(reader)


def test_every_face_is_a_row_with_its_attributes_flattened() -> None:
    [first, second] = read_back(
        envelope("DetectFaces", {"FaceDetails": [DETAIL, {"BoundingBox": DETAIL["BoundingBox"]}]})
    )
    assert first["label"] == 'photo,with "quotes".jpg'
    assert (first["face_index"], second["face_index"]) == ("0", "1")
    assert float(first["bbox_left"]) == 0.1 and float(first["bbox_height"]) == 0.4
    assert (first["pose_yaw"], first["quality_sharpness"]) == ("-2.0", "60.0")
    assert (first["age_low"], first["age_high"], first["gender"]) == ("30", "40", "Female")
    assert (first["top_emotion"], first["top_emotion_confidence"]) == ("HAPPY", "80.0")
    assert (first["smile"], first["eyeglasses"], first["sunglasses"]) == ("true", "false", "")
    assert second["age_low"] == "" and second["status"] == "succeeded"


def test_a_failed_job_and_a_photo_without_faces_still_get_a_row() -> None:
    failed = envelope("DetectFaces", None, JobError(code="InvalidImageFormatException", message="bad", retryable=False))
    [fail_row, empty_row] = read_back(failed, envelope("DetectFaces", {"FaceDetails": []}))
    assert (fail_row["status"], fail_row["error_code"], fail_row["face_index"]) == (
        "failed",
        "InvalidImageFormatException",
        "",
    )
    assert (empty_row["status"], empty_row["error_code"], empty_row["face_index"]) == ("succeeded", "", "")


def test_search_rows_carry_similarity_and_the_matched_face() -> None:
    response = {
        "SearchedFaceBoundingBox": {"Left": 0.5, "Top": 0.5, "Width": 0.1, "Height": 0.1},
        "SearchedFaceConfidence": 99.0,
        "FaceMatches": [
            {"Similarity": 99.1, "Face": {"FaceId": "a" * 8, "ExternalImageId": "grace.jpg"}},
            {"Similarity": 85.0, "Face": {"FaceId": "b" * 8}},
        ],
    }
    [best, other] = read_back(envelope("SearchFacesByImage", response))
    assert (best["similarity"], best["face_id"], best["external_image_id"]) == ("99.1", "a" * 8, "grace.jpg")
    assert (other["similarity"], other["external_image_id"]) == ("85.0", "")
    assert best["bbox_left"] == other["bbox_left"] == "0.5"


def test_compare_rows_are_the_target_faces_matched_or_not() -> None:
    response = {
        "SourceImageFace": {"BoundingBox": DETAIL["BoundingBox"], "Confidence": 99.0},
        "FaceMatches": [{"Similarity": 97.0, "Face": {"BoundingBox": DETAIL["BoundingBox"], "Confidence": 99.0}}],
        "UnmatchedFaces": [{"BoundingBox": DETAIL["BoundingBox"], "Confidence": 98.0}],
    }
    [matched, unmatched] = read_back(envelope("CompareFaces", response))
    assert (matched["similarity"], unmatched["similarity"]) == ("97.0", "")


def test_index_rows_carry_the_new_face_ids() -> None:
    response = {"FaceRecords": [{"Face": {"FaceId": "c" * 8, "ExternalImageId": "x.jpg"}, "FaceDetail": DETAIL}]}
    [row] = read_back(envelope("IndexFaces", response))
    assert (row["face_id"], row["external_image_id"], row["gender"]) == ("c" * 8, "x.jpg", "Female")


def test_rows_only_use_known_columns() -> None:
    for e in (envelope("DetectFaces", {"FaceDetails": [DETAIL]}), envelope("ListFaces", {"Faces": [DETAIL]})):
        for row in rows(e):
            assert set(row) <= set(COLUMNS)
