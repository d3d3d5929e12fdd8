"""CreateCollection, DescribeCollection, ListCollections, DeleteCollection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from local_rekognition import pagination
from local_rekognition.context import Call
from local_rekognition.errors import InvalidPaginationToken
from local_rekognition.operations.common import Handler

_LISTING = "ListCollections"


async def create_collection(call: Call) -> dict[str, Any]:
    """Create an empty collection tied to the engine's face model version."""
    collection_id = call.params["CollectionId"]
    services = call.services
    collection = await services.run_io(
        services.store.create,
        collection_id,
        services.engine.face_model_version,
        call.params.get("Tags") or {},
    )
    return {
        "StatusCode": 200,
        "CollectionArn": call.collection_arn(collection_id),
        "FaceModelVersion": collection.face_model_version,
    }


async def describe_collection(call: Call) -> dict[str, Any]:
    """Face count, model version, ARN and creation time of one collection."""
    collection_id = call.params["CollectionId"]
    collection = call.services.store.get(collection_id)
    return {
        "FaceCount": collection.face_count,
        "FaceModelVersion": collection.face_model_version,
        "CollectionARN": call.collection_arn(collection_id),
        "CreationTimestamp": collection.created_at,
        "UserCount": collection.user_count,
    }


async def list_collections(call: Call) -> dict[str, Any]:
    """Collection ids in id order, a page at a time."""
    collections = call.services.store.all()
    start = 0
    token = call.params.get("NextToken")
    if token is not None:
        # Ids may be 255 characters, too long for a token: the position is an index into the sorted ids.
        position = pagination.decode(token, _LISTING, None)
        # str.isdigit() also holds for "²" and other digits int() refuses: ASCII only.
        if not (position.isascii() and position.isdigit()):
            raise InvalidPaginationToken("Invalid pagination token")
        start = int(position)
    end = start + pagination.page_size(call.params.get("MaxResults"))
    page = collections[start:end]
    result: dict[str, Any] = {
        "CollectionIds": [collection.collection_id for collection in page],
        "FaceModelVersions": [collection.face_model_version for collection in page],
    }
    if end < len(collections):
        result["NextToken"] = pagination.encode(_LISTING, None, str(end))
    return result


async def delete_collection(call: Call) -> dict[str, Any]:
    """Delete a collection and every face in it."""
    services = call.services
    await services.run_io(services.store.delete, call.params["CollectionId"])
    return {"StatusCode": 200}


OPERATIONS: Mapping[str, Handler] = {
    "CreateCollection": create_collection,
    "DescribeCollection": describe_collection,
    "ListCollections": list_collections,
    "DeleteCollection": delete_collection,
}
