"""Video jobs for the producer: build them from ``s3://`` URLs, and read their results as rows per face per time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from producer.contract import (
    FaceDetectionVideoJob,
    FaceSearchVideoJob,
    ResultEnvelope,
    S3Image,
    VideoFaceAttributes,
)
from producer.jobs import PreparedJob, parse_s3_url


def _video(video: str | S3Image) -> S3Image:
    return video if isinstance(video, S3Image) else parse_s3_url(video)


def face_detection(
    video: str | S3Image, *, face_attributes: str = "DEFAULT", label: str | None = None, **fields: Any
) -> PreparedJob:
    """A StartFaceDetection job on a stored video (``s3://bucket/key[?versionId=...]``)."""
    source = _video(video)
    job = FaceDetectionVideoJob(
        video=source,
        face_attributes=VideoFaceAttributes(face_attributes.upper()),
        label=label or source.describe(),
        **fields,
    )
    return PreparedJob(job)


def face_search(
    video: str | S3Image,
    collection_id: str,
    *,
    face_match_threshold: float = 80.0,
    label: str | None = None,
    **fields: Any,
) -> PreparedJob:
    """A StartFaceSearch job: the stored video's faces searched in ``collection_id``."""
    source = _video(video)
    job = FaceSearchVideoJob(
        video=source,
        collection_id=collection_id,
        face_match_threshold=face_match_threshold,
        label=label or source.describe(),
        **fields,
    )
    return PreparedJob(job)


@dataclass(frozen=True)
class FaceRow:
    """One face at one timestamp of a video result: the unit of the JSONL/CSV export."""

    timestamp_ms: int
    person: int | None
    """The track (PersonIndex) of a face search; None for face detection, which does not track."""
    left: float
    top: float
    width: float
    height: float
    confidence: float
    face_id: str | None = None
    external_image_id: str | None = None
    similarity: float | None = None


def face_rows(envelope: ResultEnvelope) -> Iterator[FaceRow]:
    """Every face of a video job's result, in time order (best match first for a search)."""
    response = envelope.response or {}
    for item in response.get("Faces", []):
        yield _row(item["Timestamp"], None, item["Face"], None)
    for item in response.get("Persons", []):
        person = item["Person"]
        best = item["FaceMatches"][0] if item.get("FaceMatches") else None
        yield _row(item["Timestamp"], person.get("Index"), person.get("Face", {}), best)


def _row(timestamp: int, person: int | None, face: dict[str, Any], match: dict[str, Any] | None) -> FaceRow:
    box = face.get("BoundingBox", {})
    matched = (match or {}).get("Face", {})
    return FaceRow(
        timestamp_ms=int(timestamp),
        person=person,
        left=float(box.get("Left", 0.0)),
        top=float(box.get("Top", 0.0)),
        width=float(box.get("Width", 0.0)),
        height=float(box.get("Height", 0.0)),
        confidence=float(face.get("Confidence", 0.0)),
        face_id=matched.get("FaceId"),
        external_image_id=matched.get("ExternalImageId"),
        similarity=float(match["Similarity"]) if match else None,
    )


@dataclass(frozen=True)
class Appearance:
    """One person (a search track, or an identity) on screen: from when, until when, how many sampled frames."""

    who: str
    first_ms: int
    last_ms: int
    frames: int

    @property
    def seconds(self) -> float:
        """Time on screen, first to last sighting."""
        return (self.last_ms - self.first_ms) / 1000


def appearances(rows: list[FaceRow]) -> list[Appearance]:
    """Who was seen, when and for how long: per identity when matched, per track otherwise, first seen first."""
    seen: dict[str, list[int]] = {}
    for row in rows:
        if row.external_image_id or row.face_id:
            who = row.external_image_id or row.face_id or ""
        elif row.person is not None:
            who = f"person {row.person}"
        else:
            who = "faces"
        seen.setdefault(who, []).append(row.timestamp_ms)
    found = [Appearance(who, min(times), max(times), len(times)) for who, times in seen.items()]
    return sorted(found, key=lambda a: (a.first_ms, a.who))
