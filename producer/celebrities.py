"""Who a RecognizeCelebrities result names, and where: one sighting per recognised face, and the faces nobody is.

Plain functions of a result envelope, read the same way by the CLI's table, summary, CSV and pictures, and by any
service that imports the library. The response itself stays Rekognition's (``envelope.response``); this only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from producer.contract import JobStatus, ResultEnvelope


@dataclass(frozen=True)
class Sighting:
    """One recognised face: the celebrity (name, Rekognition's Id), how sure, where on the photo (ratios)."""

    name: str
    id: str
    match_confidence: float
    box: dict[str, float]
    urls: tuple[str, ...] = ()
    known_gender: str | None = None
    face: dict[str, Any] | None = None
    """The face as Rekognition describes it (BoundingBox, Confidence, Landmarks, Pose, Quality, ...)."""


def _response(envelope: ResultEnvelope) -> dict[str, Any]:
    if envelope.status is JobStatus.FAILED or envelope.response is None:
        return {}
    return envelope.response


def sightings(envelope: ResultEnvelope) -> list[Sighting]:
    """The celebrities a result names, in Rekognition's order; empty for a failed job or another operation."""
    found = []
    for celebrity in _response(envelope).get("CelebrityFaces", []):
        face = celebrity.get("Face") or {}
        found.append(
            Sighting(
                name=str(celebrity.get("Name", "")),
                id=str(celebrity.get("Id", "")),
                match_confidence=float(celebrity.get("MatchConfidence", 0.0)),
                box=face.get("BoundingBox") or {},
                urls=tuple(celebrity.get("Urls") or ()),
                known_gender=(celebrity.get("KnownGender") or {}).get("Type"),
                face=face,
            )
        )
    return found


def unrecognized(envelope: ResultEnvelope) -> list[dict[str, Any]]:
    """The faces of a result that are nobody the endpoint knows (Rekognition's ComparedFace each)."""
    return list(_response(envelope).get("UnrecognizedFaces", []))
