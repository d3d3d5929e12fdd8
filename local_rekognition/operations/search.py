"""SearchFaces and SearchFacesByImage: one query embedding against a collection's matrix."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from local_rekognition.context import Call
from local_rekognition.errors import InvalidParameter
from local_rekognition.faces import bounding_box, passing
from local_rekognition.models.engine import Embedding, FaceEngine
from local_rekognition.operations.common import (
    DEFAULT_FACE_MATCH_THRESHOLD,
    Handler,
    face_json,
    require_compatible,
)
from local_rekognition.store import Collection
from local_rekognition.user_records import owners

DEFAULT_MAX_FACES = 100


def ranked_matches(
    engine: FaceEngine,
    collection: Collection,
    query: Embedding,
    *,
    threshold: float,
    max_faces: int,
    exclude_face_id: str | None = None,
) -> list[dict[str, Any]]:
    """FaceMatches, most similar first: every face whose similarity to ``query`` reaches ``threshold``.

    One matrix product ranks the whole collection by cosine; the engine's calibrated similarity is a
    monotonic function of that cosine, so walking the ranking stops at the first face below the threshold.
    """
    if collection.face_count == 0:
        return []
    matrix = collection.embeddings
    vector = np.asarray(query, dtype=np.float32)
    if matrix.shape[1] != vector.shape[0]:
        raise InvalidParameter("Request has invalid parameters: the collection's embeddings have another size")
    norms = np.linalg.norm(matrix, axis=1) * float(np.linalg.norm(vector))
    cosines = (matrix @ vector) / np.where(norms > 0, norms, 1.0)
    owner = owners(collection.users)
    matches: list[dict[str, Any]] = []
    for index in np.argsort(-cosines, kind="stable"):
        face = collection.faces[int(index)]
        if face.face_id == exclude_face_id:
            continue
        similarity = float(engine.similarity(vector, matrix[int(index)]))
        if similarity < threshold or len(matches) >= max_faces:
            break
        matches.append(
            {
                "Similarity": min(100.0, max(0.0, similarity)),
                "Face": face_json(face, collection.face_model_version, owner.get(face.face_id)),
            }
        )
    return matches


async def _matches(
    call: Call, collection: Collection, query: Embedding, exclude_face_id: str | None = None
) -> list[dict[str, Any]]:
    """The collection's faces like ``query``, ranked, with the request's threshold and MaxFaces, off the loop."""
    params = call.params
    threshold = float(params.get("FaceMatchThreshold", DEFAULT_FACE_MATCH_THRESHOLD))
    max_faces = int(params.get("MaxFaces", DEFAULT_MAX_FACES))
    return await call.services.compute(
        lambda: ranked_matches(
            call.services.engine,
            collection,
            query,
            threshold=threshold,
            max_faces=max_faces,
            exclude_face_id=exclude_face_id,
        )
    )


async def search_faces(call: Call) -> dict[str, Any]:
    """Faces in the collection like the given indexed face, the face itself excluded."""
    params = call.params
    services = call.services
    collection = services.store.get(params["CollectionId"])
    require_compatible(call, collection)
    face_id = params["FaceId"]
    positions = [index for index, face in enumerate(collection.faces) if face.face_id == face_id]
    if not positions:
        raise InvalidParameter(f"Request has invalid parameters: faceId {face_id} was not found in the collection")
    query = collection.embeddings[positions[0]]
    matches = await _matches(call, collection, query, exclude_face_id=face_id)
    return {
        "SearchedFaceId": face_id,
        "FaceMatches": matches,
        "FaceModelVersion": collection.face_model_version,
    }


async def search_faces_by_image(call: Call) -> dict[str, Any]:
    """Faces in the collection like the largest face of the image (after QualityFilter, default NONE)."""
    params = call.params
    services = call.services
    collection_id = params["CollectionId"]
    require_compatible(call, services.store.get(collection_id))
    image, faces = await services.analyze(params["Image"], "Image", want_embeddings=True)
    candidates = passing(faces, params.get("QualityFilter", "NONE"), (image.width, image.height))
    if not candidates:
        raise InvalidParameter("Request has invalid parameters: there are no faces in the image")
    face = candidates[0]
    assert face.embedding is not None  # analyze() checked that every face has one
    query = face.embedding
    # Read the collection after the (slow) analysis so faces indexed meanwhile are searched too.
    collection = services.store.get(collection_id)
    matches = await _matches(call, collection, query)
    return {
        "SearchedFaceBoundingBox": bounding_box(face.box, image.width, image.height),
        "SearchedFaceConfidence": min(100.0, max(0.0, float(face.confidence))),
        "FaceMatches": matches,
        "FaceModelVersion": collection.face_model_version,
    }


OPERATIONS: Mapping[str, Handler] = {
    "SearchFaces": search_faces,
    "SearchFacesByImage": search_faces_by_image,
}
