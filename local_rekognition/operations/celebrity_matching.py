"""Matching faces against the celebrity gallery, shared by RecognizeCelebrities and the stored-video job.

It lives apart from celebrities.py so that video_runner.py can use it without a circle (celebrities.py imports
video.py, which imports the runner).
"""

from __future__ import annotations

from typing import Any

from local_rekognition.celebrity_gallery import Celebrity
from local_rekognition.context import Services
from local_rekognition.faces import face_detail
from local_rekognition.models.engine import DetectedFace

MATCH_THRESHOLD = 80.0
"""A face is a gallery person at this similarity or above: the engine's same-person threshold."""


def recognize(services: Services, face: DetectedFace) -> tuple[Celebrity, float] | None:
    """The gallery's person for this face and the match confidence, or None below the threshold (blocking)."""
    assert face.embedding is not None  # every caller asks the engine for embeddings
    best = services.celebrities.best_match(services.engine, face.embedding)
    if best is None or best[1] < MATCH_THRESHOLD:
        return None
    return best


def video_result(
    services: Services, face: DetectedFace, timestamp_ms: int, width: int, height: int
) -> dict[str, Any] | None:
    """One CelebrityRecognition for a video frame's face, or None when it is nobody in the gallery (blocking)."""
    match = recognize(services, face)
    if match is None:
        return None
    person, similarity = match
    detail = face_detail(face, width, height, frozenset())
    celebrity = {
        **person.info(),
        "Id": person.celebrity_id,
        "Confidence": min(100.0, max(0.0, float(similarity))),
        "BoundingBox": detail["BoundingBox"],
        "Face": detail,
    }
    return {"Timestamp": timestamp_ms, "Celebrity": celebrity}
