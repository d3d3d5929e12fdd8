"""Result envelopes as flat rows: one row per face, ready for a spreadsheet or ``pandas.read_csv``.

Every job gets at least one row, so a photo without a face or a failed job still shows up in the sheet: a failed job
has its ``error_code`` and ``error_message`` filled and no face columns; a photo without a face has an empty
``face_index``. The columns are fixed (``COLUMNS``), whatever the operation, so files from different batches stack.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import IO, Any

from producer.contract import JobStatus, ResultEnvelope

Row = dict[str, Any]

COLUMNS: tuple[str, ...] = (
    "job_id",
    "batch_id",
    "label",
    "operation",
    "status",
    "error_code",
    "error_message",
    "face_index",
    "bbox_left",
    "bbox_top",
    "bbox_width",
    "bbox_height",
    "confidence",
    "pose_roll",
    "pose_yaw",
    "pose_pitch",
    "quality_brightness",
    "quality_sharpness",
    "age_low",
    "age_high",
    "gender",
    "gender_confidence",
    "top_emotion",
    "top_emotion_confidence",
    "smile",
    "eyeglasses",
    "sunglasses",
    "beard",
    "mustache",
    "eyes_open",
    "mouth_open",
    "face_occluded",
    "similarity",
    "face_id",
    "external_image_id",
    "cached",
    "attempts",
    "rekognition_ms",
    "worker",
    "user_id",
    "celebrity_name",
    "celebrity_id",
    "match_confidence",
)

# Rekognition's yes/no attributes: {"Value": bool, "Confidence": float}. The CSV keeps the value; a column per
# confidence would double the width for little use.
_BOOLEAN_ATTRIBUTES = {
    "smile": "Smile",
    "eyeglasses": "Eyeglasses",
    "sunglasses": "Sunglasses",
    "beard": "Beard",
    "mustache": "Mustache",
    "eyes_open": "EyesOpen",
    "mouth_open": "MouthOpen",
    "face_occluded": "FaceOccluded",
}


def _job_columns(envelope: ResultEnvelope) -> Row:
    row: Row = {
        "job_id": envelope.job_id,
        "batch_id": envelope.batch_id,
        "label": envelope.label,
        "operation": envelope.operation,
        "status": envelope.status.value,
        "cached": envelope.cached,
        "attempts": envelope.attempts,
        "rekognition_ms": envelope.rekognition_ms,
        "worker": envelope.worker,
    }
    if envelope.error is not None:
        row["error_code"] = envelope.error.code
        row["error_message"] = envelope.error.message
    return row


def _box(box: dict[str, Any] | None) -> Row:
    if not box:
        return {}
    return {
        "bbox_left": box.get("Left"),
        "bbox_top": box.get("Top"),
        "bbox_width": box.get("Width"),
        "bbox_height": box.get("Height"),
    }


def face_detail_columns(detail: dict[str, Any]) -> Row:
    """Flatten one FaceDetail (or a Face of a collection) into CSV columns."""
    row: Row = {**_box(detail.get("BoundingBox")), "confidence": detail.get("Confidence")}
    pose = detail.get("Pose") or {}
    row.update(pose_roll=pose.get("Roll"), pose_yaw=pose.get("Yaw"), pose_pitch=pose.get("Pitch"))
    quality = detail.get("Quality") or {}
    row.update(quality_brightness=quality.get("Brightness"), quality_sharpness=quality.get("Sharpness"))
    age = detail.get("AgeRange") or {}
    row.update(age_low=age.get("Low"), age_high=age.get("High"))
    gender = detail.get("Gender") or {}
    row.update(gender=gender.get("Value"), gender_confidence=gender.get("Confidence"))
    emotion = top_emotion(detail)
    if emotion is not None:
        row.update(top_emotion=emotion[0], top_emotion_confidence=emotion[1])
    for column, member in _BOOLEAN_ATTRIBUTES.items():
        if isinstance(detail.get(member), dict):
            row[column] = detail[member].get("Value")
    if "FaceId" in detail:
        row["face_id"] = detail["FaceId"]
    if "ExternalImageId" in detail:
        row["external_image_id"] = detail["ExternalImageId"]
    return row


def top_emotion(detail: dict[str, Any]) -> tuple[str, float] | None:
    """Return the most confident emotion of a FaceDetail as (type, confidence), or None without emotions."""
    emotions = detail.get("Emotions") or []
    if not emotions:
        return None
    best = max(emotions, key=lambda e: float(e.get("Confidence", 0)))
    return str(best.get("Type")), float(best.get("Confidence", 0))


def _face_rows(envelope: ResultEnvelope) -> Iterator[Row]:
    """The per-face columns of a succeeded envelope, one dict per face (none when the photo has no face)."""
    response = envelope.response or {}
    if "FaceDetails" in response:  # DetectFaces
        yield from (face_detail_columns(d) for d in response["FaceDetails"])
    elif "FaceRecords" in response:  # IndexFaces: what was indexed, with its FaceId
        for record in response["FaceRecords"]:
            yield {**face_detail_columns(record.get("FaceDetail") or {}), **_collection_face(record.get("Face"))}
    elif "SourceImageFace" in response:  # CompareFaces: the target's faces, matched ones with their similarity
        for match in response.get("FaceMatches", []):
            yield {**face_detail_columns(match.get("Face") or {}), "similarity": match.get("Similarity")}
        for unmatched in response.get("UnmatchedFaces", []):
            yield face_detail_columns(unmatched)
    elif "SearchedFaceBoundingBox" in response:  # SearchFacesByImage: the searched face, once per match
        searched = {**_box(response["SearchedFaceBoundingBox"]), "confidence": response.get("SearchedFaceConfidence")}
        matches = response.get("FaceMatches", [])
        for match in matches:
            yield {**searched, **_collection_face(match.get("Face")), "similarity": match.get("Similarity")}
        if not matches:
            yield searched
    elif "CelebrityFaces" in response:
        yield from _celebrity_rows(response)
    elif "Faces" in response:  # ListFaces
        yield from ({**face_detail_columns(face), "user_id": face.get("UserId")} for face in response["Faces"])
    else:
        yield from _user_rows(response)


def _celebrity_rows(response: dict[str, Any]) -> Iterator[Row]:
    """RecognizeCelebrities: a row per named face (name, Id, MatchConfidence), then a row per face nobody is."""
    for celebrity in response["CelebrityFaces"]:
        yield {
            **face_detail_columns(celebrity.get("Face") or {}),
            "celebrity_name": celebrity.get("Name"),
            "celebrity_id": celebrity.get("Id"),
            "match_confidence": celebrity.get("MatchConfidence"),
        }
    yield from (face_detail_columns(face) for face in response.get("UnrecognizedFaces", []))


def _user_rows(response: dict[str, Any]) -> Iterator[Row]:
    """SearchUsersByImage and SearchUsers: the searched face once per matching user; ListUsers: one row a user;
    AssociateFaces and DisassociateFaces: one row a face changed."""
    if "UserMatches" in response:
        searched = response.get("SearchedFace") or {}
        face = face_detail_columns(searched.get("FaceDetail") or searched) if searched else {}
        for match in response["UserMatches"]:
            yield {**face, "user_id": match["User"]["UserId"], "similarity": match.get("Similarity")}
        if not response["UserMatches"] and face:
            yield face
    elif "Users" in response:
        yield from ({"user_id": user.get("UserId")} for user in response["Users"])
    else:
        for member in ("AssociatedFaces", "DisassociatedFaces"):
            yield from ({"face_id": face.get("FaceId")} for face in response.get(member, []))


def _collection_face(face: dict[str, Any] | None) -> Row:
    face = face or {}
    return {"face_id": face.get("FaceId"), "external_image_id": face.get("ExternalImageId")}


def rows(envelope: ResultEnvelope) -> list[Row]:
    """Return the envelope's rows: one per face, or a single row when it has none (or failed)."""
    job = _job_columns(envelope)
    if envelope.status is JobStatus.FAILED:
        return [job]
    faces = list(_face_rows(envelope))
    if not faces:
        return [job]
    return [{**job, **face, "face_index": index} for index, face in enumerate(faces)]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class CsvWriter:
    """Writes envelopes as CSV rows as they arrive, the header first."""

    def __init__(self, stream: IO[str]) -> None:
        self._writer = csv.DictWriter(stream, fieldnames=COLUMNS, extrasaction="raise")
        self._writer.writeheader()

    def write(self, envelope: ResultEnvelope) -> None:
        """Write the envelope's rows."""
        for row in rows(envelope):
            self._writer.writerow({column: _cell(row.get(column)) for column in COLUMNS})
