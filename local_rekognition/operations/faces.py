"""IndexFaces, ListFaces, DeleteFaces."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np

from local_rekognition import pagination
from local_rekognition.context import Call
from local_rekognition.faces import bounding_box, face_detail, quality_reasons, requested_attributes
from local_rekognition.operations.common import Handler, face_json, require_compatible
from local_rekognition.store import StoredFace
from local_rekognition.user_records import owners

_LISTING = "ListFaces"


async def index_faces(call: Call) -> dict[str, Any]:
    """Detect faces, keep those passing QualityFilter (default AUTO) up to MaxFaces, and store them."""
    params = call.params
    services = call.services
    collection_id = params["CollectionId"]
    require_compatible(call, services.store.get(collection_id))
    attributes = requested_attributes(params.get("DetectionAttributes"))
    quality_filter = params.get("QualityFilter", "AUTO")
    max_faces: int | None = params.get("MaxFaces")
    image, faces = await services.analyze(params["Image"], "Image", attributes=attributes, want_embeddings=True)

    image_id = str(uuid.uuid4())
    records: list[dict[str, Any]] = []
    stored: list[StoredFace] = []
    embeddings = []
    unindexed: list[dict[str, Any]] = []
    # Faces come largest first: quality filtering happens first, then the largest MaxFaces survivors are kept.
    for face in faces:
        detail = face_detail(face, image.width, image.height, attributes)
        reasons = quality_reasons(face, quality_filter, (image.width, image.height))
        if not reasons and max_faces is not None and len(stored) >= max_faces:
            reasons = ["EXCEEDS_MAX_FACES"]
        if reasons:
            unindexed.append({"Reasons": reasons, "FaceDetail": detail})
            continue
        record = StoredFace(
            face_id=str(uuid.uuid4()),
            image_id=image_id,
            bounding_box=bounding_box(face.box, image.width, image.height),
            confidence=min(100.0, max(0.0, float(face.confidence))),
            external_image_id=params.get("ExternalImageId"),
        )
        stored.append(record)
        embeddings.append(face.embedding)
        records.append({"Face": record, "FaceDetail": detail})

    collection = services.store.get(collection_id)
    if stored:
        matrix = np.stack([np.asarray(row, dtype=np.float32) for row in embeddings])
        collection = await services.run_io(services.store.add_faces, collection_id, stored, matrix)
    version = collection.face_model_version
    return {
        "FaceRecords": [
            {"Face": face_json(item["Face"], version), "FaceDetail": item["FaceDetail"]} for item in records
        ],
        "FaceModelVersion": version,
        "UnindexedFaces": unindexed,
    }


async def list_faces(call: Call) -> dict[str, Any]:
    """The collection's faces in FaceId order, a page at a time, optionally only the given FaceIds."""
    params = call.params
    collection_id = params["CollectionId"]
    collection = call.services.store.get(collection_id)
    faces = sorted(collection.faces, key=lambda face: face.face_id)
    if params.get("FaceIds") is not None:
        wanted = set(params["FaceIds"])
        faces = [face for face in faces if face.face_id in wanted]
    owner = owners(collection.users)
    if params.get("UserId") is not None:
        faces = [face for face in faces if owner.get(face.face_id) == params["UserId"]]
    token = params.get("NextToken")
    if token is not None:
        after = pagination.decode(token, _LISTING, collection_id)
        faces = [face for face in faces if face.face_id > after]
    size = pagination.page_size(params.get("MaxResults"))
    page = faces[:size]
    result: dict[str, Any] = {
        "Faces": [face_json(face, collection.face_model_version, owner.get(face.face_id)) for face in page],
        "FaceModelVersion": collection.face_model_version,
    }
    if len(faces) > size:
        # Keyed on the last FaceId, so faces indexed or deleted between pages neither repeat nor vanish.
        result["NextToken"] = pagination.encode(_LISTING, collection_id, page[-1].face_id)
    return result


async def delete_faces(call: Call) -> dict[str, Any]:
    """Delete faces by id; unknown ids and faces a user holds come back in UnsuccessfulFaceDeletions."""
    services = call.services
    deleted, missing, held = await services.run_io(
        services.store.delete_faces, call.params["CollectionId"], call.params["FaceIds"]
    )
    result: dict[str, Any] = {}
    # The model gives DeletedFaces a minimum length of 1, so an empty list is left out rather than sent.
    if deleted:
        result["DeletedFaces"] = deleted
    unsuccessful = [{"FaceId": face_id, "Reasons": ["FACE_NOT_FOUND"]} for face_id in missing]
    unsuccessful += [
        {"FaceId": face_id, "UserId": user_id, "Reasons": ["ASSOCIATED_TO_AN_EXISTING_USER"]}
        for face_id, user_id in held
    ]
    if unsuccessful:
        result["UnsuccessfulFaceDeletions"] = unsuccessful
    return result


OPERATIONS: Mapping[str, Handler] = {
    "IndexFaces": index_faces,
    "ListFaces": list_faces,
    "DeleteFaces": delete_faces,
}
