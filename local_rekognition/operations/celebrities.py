"""RecognizeCelebrities, GetCelebrityInfo, StartCelebrityRecognition and GetCelebrityRecognition, from the gallery.

A face is a celebrity when its similarity to one of the gallery's portraits reaches 80, the threshold at which
the engine calls two faces the same person; that similarity is the MatchConfidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from local_rekognition.celebrity_gallery import Celebrity
from local_rekognition.context import Call, Services
from local_rekognition.errors import ResourceNotFound
from local_rekognition.faces import compared_face
from local_rekognition.models.engine import DetectedFace
from local_rekognition.operations.celebrity_matching import recognize
from local_rekognition.operations.common import Handler
from local_rekognition.operations.video import job_of, page, start_job

MAX_FACES = 64
"""RecognizeCelebrities looks at the 64 largest faces of an image and reports nothing about the others."""
# Rekognition's celebrity Face carries the five basic landmarks, and Emotions and Smile besides DEFAULT.
_LANDMARKS = frozenset({"eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight"})
_ATTRIBUTES = frozenset({"EMOTIONS", "SMILE"})
VIDEO_JOB_KIND = "CelebrityRecognition"


def _recognize_all(services: Services, faces: Sequence[DetectedFace]) -> list[tuple[Celebrity, float] | None]:
    return [recognize(services, face) for face in faces]


def _celebrity_face(face: DetectedFace, width: int, height: int) -> dict[str, Any]:
    shown = compared_face(face, width, height)
    shown["Landmarks"] = [landmark for landmark in shown["Landmarks"] if landmark["Type"] in _LANDMARKS]
    for member in ("Emotions", "Smile"):
        if member in face.attributes:
            shown[member] = face.attributes[member]
    return shown


async def recognize_celebrities(call: Call) -> dict[str, Any]:
    """Name the gallery's people among the 64 largest faces; the other faces are UnrecognizedFaces."""
    services = call.services
    image, faces = await services.analyze(call.params["Image"], "Image", attributes=_ATTRIBUTES, want_embeddings=True)
    faces = faces[:MAX_FACES]
    matches = await services.compute(_recognize_all, services, faces)
    celebrities, unrecognized = [], []
    for face, match in zip(faces, matches, strict=True):
        shown = _celebrity_face(face, image.width, image.height)
        if match is None:
            unrecognized.append(shown)
            continue
        person, similarity = match
        celebrities.append(
            {
                **person.info(),
                "Id": person.celebrity_id,
                "Face": shown,
                "MatchConfidence": min(100.0, max(0.0, float(similarity))),
            }
        )
    return {"CelebrityFaces": celebrities, "UnrecognizedFaces": unrecognized}


async def get_celebrity_info(call: Call) -> dict[str, Any]:
    """Name, Urls and KnownGender of a gallery Id."""
    celebrity_id = call.params["Id"]
    person = await call.services.run_io(call.services.celebrities.get, celebrity_id)
    if person is None:
        raise ResourceNotFound(f"The celebrity id: {celebrity_id} does not exist")
    return person.info()


async def start_celebrity_recognition(call: Call) -> dict[str, Any]:
    """Start naming the gallery's people in a stored video; answers the JobId at once."""
    return await start_job(call, VIDEO_JOB_KIND)


async def get_celebrity_recognition(call: Call) -> dict[str, Any]:
    """A celebrity job's status and, once SUCCEEDED, one page of recognitions (SortBy TIMESTAMP or ID)."""
    job = job_of(call, VIDEO_JOB_KIND)
    results = job.results
    if call.params.get("SortBy") == "ID":
        results = sorted(results, key=lambda item: (item["Celebrity"]["Id"], item["Timestamp"]))
    return page(call, job, "Celebrities", results)


OPERATIONS: Mapping[str, Handler] = {
    "RecognizeCelebrities": recognize_celebrities,
    "GetCelebrityInfo": get_celebrity_info,
    "StartCelebrityRecognition": start_celebrity_recognition,
    "GetCelebrityRecognition": get_celebrity_recognition,
}
