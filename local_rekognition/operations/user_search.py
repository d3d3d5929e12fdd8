"""SearchUsers and SearchUsersByImage: a face (or a user) against every user's centroid (user_scoring.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from local_rekognition.context import Call
from local_rekognition.errors import InvalidParameter, ResourceNotFound
from local_rekognition.faces import face_detail, quality_reasons
from local_rekognition.models.engine import Embedding
from local_rekognition.operations.common import DEFAULT_FACE_MATCH_THRESHOLD, Handler, require_compatible
from local_rekognition.store import Collection
from local_rekognition.user_scoring import centroid, ranked_users

DEFAULT_MAX_USERS = 100
"""The model leaves MaxUsers' default unsaid; 100 matches SearchFaces' MaxFaces."""


async def _user_matches(
    call: Call, collection: Collection, query: Embedding, exclude_user_id: str | None = None
) -> list[dict[str, Any]]:
    """UserMatches for ``query`` with the request's UserMatchThreshold (default 80) and MaxUsers, off the loop."""
    params = call.params
    threshold = float(params.get("UserMatchThreshold", DEFAULT_FACE_MATCH_THRESHOLD))
    max_users = int(params.get("MaxUsers", DEFAULT_MAX_USERS))
    ranked = await call.services.compute(
        lambda: ranked_users(
            call.services.engine,
            collection,
            query,
            threshold=threshold,
            max_users=max_users,
            exclude_user_id=exclude_user_id,
        )
    )
    return [
        {"Similarity": similarity, "User": {"UserId": user.user_id, "UserStatus": user.status}}
        for similarity, user in ranked
    ]


async def search_users(call: Call) -> dict[str, Any]:
    """Users like an indexed face (its own user included) or like a user (that user excluded)."""
    params = call.params
    collection = call.services.store.get(params["CollectionId"])
    require_compatible(call, collection)
    face_id, user_id = params.get("FaceId"), params.get("UserId")
    if (face_id is None) == (user_id is None):
        raise InvalidParameter("Request has invalid parameters: give exactly one of FaceId and UserId")
    result: dict[str, Any] = {}
    if face_id is not None:
        rows = [index for index, face in enumerate(collection.faces) if face.face_id == face_id]
        if not rows:
            raise InvalidParameter(f"Request has invalid parameters: faceId {face_id} was not found in the collection")
        query: Embedding | None = collection.embeddings[rows[0]]
        result["SearchedFace"] = {"FaceId": face_id}
    else:
        assert user_id is not None
        if user_id not in collection.users:
            raise ResourceNotFound(f"The user id: {user_id} does not exist in collection {collection.collection_id}")
        query = centroid(collection, collection.users[user_id].face_ids)
        if query is None:
            raise InvalidParameter(f"Request has invalid parameters: user {user_id} has no faces to search with")
        result["SearchedUser"] = {"UserId": user_id}
    assert query is not None
    result["UserMatches"] = await _user_matches(call, collection, query, exclude_user_id=user_id)
    result["FaceModelVersion"] = collection.face_model_version
    return result


async def search_users_by_image(call: Call) -> dict[str, Any]:
    """Users like the largest face of the image passing QualityFilter (default NONE); no such face, no match."""
    params = call.params
    services = call.services
    collection_id = params["CollectionId"]
    require_compatible(call, services.store.get(collection_id))
    image, faces = await services.analyze(params["Image"], "Image", want_embeddings=True)
    quality_filter = params.get("QualityFilter", "NONE")
    searched = None
    unsearched: list[dict[str, Any]] = []
    # Faces come largest first: the first that passes the filter is searched, the rest are reported unsearched.
    for face in faces:
        reasons = quality_reasons(face, quality_filter)
        if not reasons and searched is None:
            searched = face
            continue
        detail = face_detail(face, image.width, image.height, frozenset())
        unsearched.append({"FaceDetails": detail, "Reasons": reasons or ["FACE_NOT_LARGEST"]})
    # Read the collection after the (slow) analysis so users changed meanwhile are searched as they are now.
    collection = services.store.get(collection_id)
    result: dict[str, Any] = {"UserMatches": [], "FaceModelVersion": collection.face_model_version}
    if searched is not None:
        assert searched.embedding is not None  # analyze() checked that every face has one
        result["UserMatches"] = await _user_matches(call, collection, searched.embedding)
        result["SearchedFace"] = {"FaceDetail": face_detail(searched, image.width, image.height, frozenset())}
    result["UnsearchedFaces"] = unsearched
    return result


OPERATIONS: Mapping[str, Handler] = {
    "SearchUsers": search_users,
    "SearchUsersByImage": search_users_by_image,
}
