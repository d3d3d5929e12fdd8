"""Rekognition operations, one module per API family; OPERATIONS maps each wire name to its handler."""

from __future__ import annotations

from collections.abc import Mapping

from local_rekognition.operations import (
    celebrities,
    collections,
    compare,
    detect,
    faces,
    search,
    user_search,
    users,
    video,
)
from local_rekognition.operations.common import Handler

OPERATIONS: Mapping[str, Handler] = {
    **detect.OPERATIONS,
    **compare.OPERATIONS,
    **collections.OPERATIONS,
    **faces.OPERATIONS,
    **search.OPERATIONS,
    **users.OPERATIONS,
    **user_search.OPERATIONS,
    **video.OPERATIONS,
    **celebrities.OPERATIONS,
}

__all__ = ["OPERATIONS", "Handler"]
