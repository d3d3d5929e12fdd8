"""Opaque NextTokens: where a listing resumes, bound to the listing they came from, checked on return."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from local_rekognition.errors import InvalidPaginationToken

DEFAULT_PAGE_SIZE = 1000


def _scope(listing: str, collection_id: str | None) -> str:
    # A short digest, not the id itself: PaginationToken allows 255 characters and ids take up to 255.
    key = f"{listing}\0{collection_id or ''}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def encode(listing: str, collection_id: str | None, position: str) -> str:
    """A token resuming ``listing`` (of ``collection_id``) after ``position``."""
    payload = json.dumps({"s": _scope(listing, collection_id), "p": position}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode("utf-8")).decode("ascii")


def decode(token: str, listing: str, collection_id: str | None) -> str:
    """The position in a token from encode() for the same listing, else InvalidPaginationToken."""
    try:
        payload: Any = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise InvalidPaginationToken("Invalid pagination token") from exc
    if (
        not isinstance(payload, dict)
        or payload.get("s") != _scope(listing, collection_id)
        or not isinstance(payload.get("p"), str)
    ):
        raise InvalidPaginationToken("Invalid pagination token: it belongs to another listing")
    position: str = payload["p"]
    return position


def page_size(max_results: float | None) -> int:
    """MaxResults, or the default page when it is absent or 0 (0 would make a paginator loop forever)."""
    # Validation lets integral JSON numbers such as 3.0 through as floats; a slice needs an int.
    return int(max_results or DEFAULT_PAGE_SIZE)
