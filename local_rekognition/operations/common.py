"""What several operation families share: the handler type, collection checks, the Face wire shape."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from local_rekognition.context import Call
from local_rekognition.errors import InvalidParameter
from local_rekognition.store import Collection, StoredFace

Handler = Callable[[Call], Awaitable[dict[str, Any]]]

DEFAULT_FACE_MATCH_THRESHOLD = 80.0
"""Rekognition's default for SearchFaces, SearchFacesByImage and CompareFaces."""

_INDEX_MODEL_VERSION = re.compile(r"[0-9.]+")


def require_compatible(call: Call, collection: Collection) -> None:
    """Refuse to mix embeddings of two face models: their similarities would mean nothing."""
    current = call.services.engine.face_model_version
    if collection.face_model_version != current:
        raise InvalidParameter(
            f"Collection {collection.collection_id} holds faces of face model version "
            f"{collection.face_model_version}, but this server runs {current}: create a new collection"
        )


def face_json(face: StoredFace, face_model_version: str, user_id: str | None = None) -> dict[str, Any]:
    """A stored face as Rekognition's Face structure (with the UserId it is associated with, if any)."""
    result: dict[str, Any] = {
        "FaceId": face.face_id,
        "BoundingBox": dict(face.bounding_box),
        "ImageId": face.image_id,
    }
    if face.external_image_id is not None:
        result["ExternalImageId"] = face.external_image_id
    result["Confidence"] = face.confidence
    # The model pattern for IndexFacesModelVersion is numeric; an engine version like "local-…" is left out
    # rather than sent in a shape strict clients would reject.
    if _INDEX_MODEL_VERSION.fullmatch(face_model_version):
        result["IndexFacesModelVersion"] = face_model_version
    if user_id is not None:
        result["UserId"] = user_id
    return result
