"""CompareFaces."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from local_rekognition.context import Call
from local_rekognition.errors import InvalidParameter
from local_rekognition.faces import bounding_box, compared_face, passing
from local_rekognition.operations.common import DEFAULT_FACE_MATCH_THRESHOLD, Handler


async def compare_faces(call: Call) -> dict[str, Any]:
    """Compare the source image's largest face with every face of the target image."""
    params = call.params
    threshold = float(params.get("SimilarityThreshold", DEFAULT_FACE_MATCH_THRESHOLD))
    quality_filter = params.get("QualityFilter", "NONE")
    services = call.services
    (source_image, source_faces), (target_image, target_faces) = await asyncio.gather(
        services.analyze(params["SourceImage"], "SourceImage", want_embeddings=True),
        services.analyze(params["TargetImage"], "TargetImage", want_embeddings=True),
    )
    candidates = passing(source_faces, quality_filter, (source_image.width, source_image.height))
    if not candidates:
        raise InvalidParameter("Request has invalid parameters: there are no faces in the source image")
    source = candidates[0]
    assert source.embedding is not None  # analyze() checked that every face has one

    scored = []
    for face in passing(target_faces, quality_filter, (target_image.width, target_image.height)):
        assert face.embedding is not None
        scored.append((services.engine.similarity(source.embedding, face.embedding), face))
    scored.sort(key=lambda pair: pair[0], reverse=True)
    width, height = target_image.width, target_image.height
    return {
        "SourceImageFace": {
            "BoundingBox": bounding_box(source.box, source_image.width, source_image.height),
            "Confidence": min(100.0, max(0.0, float(source.confidence))),
        },
        "FaceMatches": [
            {
                "Similarity": min(100.0, max(0.0, float(similarity))),
                "Face": compared_face(face, width, height),
            }
            for similarity, face in scored
            if similarity >= threshold
        ],
        "UnmatchedFaces": [compared_face(face, width, height) for similarity, face in scored if similarity < threshold],
    }


OPERATIONS: Mapping[str, Handler] = {"CompareFaces": compare_faces}
