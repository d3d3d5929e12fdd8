"""CreateUser, DeleteUser, AssociateFaces, DisassociateFaces, ListUsers."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

from local_rekognition import pagination
from local_rekognition.context import Call
from local_rekognition.errors import (
    Conflict,
    IdempotentParameterMismatch,
    ResourceNotFound,
    ServiceQuotaExceeded,
)
from local_rekognition.operations.common import Handler, require_compatible
from local_rekognition.store import Collection, UserChange
from local_rekognition.user_records import (
    MAX_FACES_PER_USER,
    StoredUser,
    TokenMismatchError,
    fingerprint,
    owners,
    token_key,
)
from local_rekognition.user_scoring import centroid

DEFAULT_USER_MATCH_THRESHOLD = 75.0
"""AssociateFaces' default: the least similarity a new face needs to a user that already has faces."""

_LISTING = "ListUsers"
_MAX_USERS_PAGE = 500  # MaxUserResults' maximum, and UserList's: a page never holds more


async def _change_users(call: Call, operation: str, change: UserChange) -> dict[str, Any]:
    """Run ``change`` in the store, once per ClientRequestToken, and return the call's response."""
    params = call.params
    token = params.get("ClientRequestToken")
    key = token_key(operation, token) if token is not None else None
    services = call.services
    try:
        response = await services.run_io(
            services.store.change_users, params["CollectionId"], key, fingerprint(params), change
        )
    except TokenMismatchError:
        raise IdempotentParameterMismatch(
            f"ClientRequestToken {token} was already used for a {operation} call with other parameters"
        ) from None
    return dict(response)


def _user(collection: Collection, user_id: str) -> StoredUser:
    try:
        return collection.users[user_id]
    except KeyError:
        raise ResourceNotFound(
            f"The user id: {user_id} does not exist in collection {collection.collection_id}"
        ) from None


async def create_user(call: Call) -> dict[str, Any]:
    """Create a user with no faces; ConflictException if the id is taken (unless it is this call's retry)."""
    user_id = call.params["UserId"]

    def change(current: Collection) -> tuple[dict[str, StoredUser], dict[str, Any]]:
        if user_id in current.users:
            raise Conflict(f"User {user_id} already exists in collection {current.collection_id}")
        return {**current.users, user_id: StoredUser(user_id, time.time())}, {}

    return await _change_users(call, "CreateUser", change)


async def delete_user(call: Call) -> dict[str, Any]:
    """Delete a user; its faces stay in the collection, associated with nobody."""
    user_id = call.params["UserId"]

    def change(current: Collection) -> tuple[dict[str, StoredUser], dict[str, Any]]:
        _user(current, user_id)
        return {key: user for key, user in current.users.items() if key != user_id}, {}

    return await _change_users(call, "DeleteUser", change)


async def associate_faces(call: Call) -> dict[str, Any]:
    """Associate faces with a user: each face with one user only, at most 100 per user, and, once the user has
    faces, only faces whose similarity to the user reaches UserMatchThreshold (default 75)."""
    params = call.params
    user_id = params["UserId"]
    threshold = float(params.get("UserMatchThreshold", DEFAULT_USER_MATCH_THRESHOLD))
    asked = list(dict.fromkeys(params["FaceIds"]))
    engine = call.services.engine
    require_compatible(call, call.services.store.get(params["CollectionId"]))

    def change(current: Collection) -> tuple[dict[str, StoredUser], dict[str, Any]]:
        user = _user(current, user_id)
        position = {face.face_id: index for index, face in enumerate(current.faces)}
        owner = owners(current.users)
        # Scored against the faces the user had before this call, so one call cannot vouch for itself.
        vector = centroid(current, user.face_ids)
        associated: list[str] = []
        unsuccessful: list[dict[str, Any]] = []
        for face_id in asked:
            if face_id not in position:
                unsuccessful.append({"FaceId": face_id, "UserId": user_id, "Reasons": ["FACE_NOT_FOUND"]})
            elif owner.get(face_id) == user_id:
                continue  # already this user's: ignored, as AWS does
            elif face_id in owner:
                unsuccessful.append(
                    {"FaceId": face_id, "UserId": owner[face_id], "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]}
                )
            else:
                similarity = (
                    100.0
                    if vector is None
                    else min(100.0, max(0.0, float(engine.similarity(current.embeddings[position[face_id]], vector))))
                )
                if similarity < threshold:
                    unsuccessful.append(
                        {
                            "FaceId": face_id,
                            "UserId": user_id,
                            "Confidence": similarity,
                            "Reasons": ["LOW_MATCH_CONFIDENCE"],
                        }
                    )
                else:
                    associated.append(face_id)
        if len(user.face_ids) + len(associated) > MAX_FACES_PER_USER:
            room = MAX_FACES_PER_USER - len(user.face_ids)
            raise ServiceQuotaExceeded(
                f"User {user_id} has {len(user.face_ids)} faces; a user holds at most {MAX_FACES_PER_USER}, "
                f"so at most {room} more can be associated"
            )
        updated = dataclasses.replace(user, face_ids=user.face_ids + tuple(associated))
        response = {
            "AssociatedFaces": [{"FaceId": face_id} for face_id in associated],
            "UnsuccessfulFaceAssociations": unsuccessful,
            "UserStatus": updated.status,
        }
        return {**current.users, user_id: updated}, response

    return await _change_users(call, "AssociateFaces", change)


async def disassociate_faces(call: Call) -> dict[str, Any]:
    """Remove faces from a user; faces of another user or of no collection come back unsuccessful."""
    params = call.params
    user_id = params["UserId"]
    asked = list(dict.fromkeys(params["FaceIds"]))

    def change(current: Collection) -> tuple[dict[str, StoredUser], dict[str, Any]]:
        user = _user(current, user_id)
        present = {face.face_id for face in current.faces}
        owner = owners(current.users)
        removed: list[str] = []
        unsuccessful: list[dict[str, Any]] = []
        for face_id in asked:
            if face_id not in present:
                unsuccessful.append({"FaceId": face_id, "UserId": user_id, "Reasons": ["FACE_NOT_FOUND"]})
            elif owner.get(face_id) == user_id:
                removed.append(face_id)
            elif face_id in owner:
                unsuccessful.append(
                    {"FaceId": face_id, "UserId": owner[face_id], "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]}
                )
            # else: associated with nobody, so already disassociated: ignored, as AWS does
        gone = set(removed)
        updated = dataclasses.replace(user, face_ids=tuple(f for f in user.face_ids if f not in gone))
        response = {
            "DisassociatedFaces": [{"FaceId": face_id} for face_id in removed],
            "UnsuccessfulFaceDisassociations": unsuccessful,
            "UserStatus": updated.status,
        }
        return {**current.users, user_id: updated}, response

    return await _change_users(call, "DisassociateFaces", change)


async def list_users(call: Call) -> dict[str, Any]:
    """Users in UserId order with their status, a page at a time."""
    params = call.params
    collection_id = params["CollectionId"]
    collection = call.services.store.get(collection_id)
    user_ids = sorted(collection.users)
    token = params.get("NextToken")
    if token is not None:
        after = pagination.decode(token, _LISTING, collection_id)
        user_ids = [user_id for user_id in user_ids if user_id > after]
    size = int(params.get("MaxResults") or _MAX_USERS_PAGE)
    page = user_ids[:size]
    result: dict[str, Any] = {
        "Users": [{"UserId": user_id, "UserStatus": collection.users[user_id].status} for user_id in page]
    }
    if len(user_ids) > size:
        # Keyed on the last UserId, so users created or deleted between pages neither repeat nor vanish.
        result["NextToken"] = pagination.encode(_LISTING, collection_id, page[-1])
    return result


OPERATIONS: Mapping[str, Handler] = {
    "CreateUser": create_user,
    "DeleteUser": delete_user,
    "AssociateFaces": associate_faces,
    "DisassociateFaces": disassociate_faces,
    "ListUsers": list_users,
}
