"""A collection's users and the idempotency tokens of calls that changed them, as stored in users.json.

Users live beside faces.npz, in their own file, because associating a face changes who owns it, not the face:
rewriting every embedding to move a face between users would make AssociateFaces cost as much as the whole
collection. A face belongs to at most one user; the record of that is the user's ``face_ids``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_FACES_PER_USER = 100
"""Rekognition's quota: once a user has 100 faces, AssociateFaces refuses more."""

TOKEN_TTL_S = 24 * 3600.0
"""How long a ClientRequestToken is remembered. AWS does not publish its window; a day covers any SDK or
worker retry (they span minutes) while keeping users.json from growing without bound."""


class TokenMismatchError(Exception):
    """A ClientRequestToken came back with different parameters (IdempotentParameterMismatchException)."""


@dataclass(frozen=True)
class StoredUser:
    """One user: its id, when it was created and its faces in association order."""

    user_id: str
    created_at: float
    face_ids: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """Rekognition's UserStatus: every change here is complete when the call returns, so ACTIVE once it
        has faces, CREATED while it has none (UPDATING and CREATING never last past a call)."""
        return "ACTIVE" if self.face_ids else "CREATED"

    def to_json(self) -> dict[str, Any]:
        """The record as stored in users.json."""
        return {"UserId": self.user_id, "CreatedAt": self.created_at, "FaceIds": list(self.face_ids)}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> StoredUser:
        """Read a record written by to_json."""
        return cls(record["UserId"], record["CreatedAt"], tuple(record["FaceIds"]))


@dataclass(frozen=True)
class TokenRecord:
    """A call made with a ClientRequestToken: what it asked (as a digest), what it answered, and when."""

    fingerprint: str
    response: Mapping[str, Any]
    at: float

    def to_json(self) -> dict[str, Any]:
        """The record as stored in users.json."""
        return {"Fingerprint": self.fingerprint, "Response": dict(self.response), "At": self.at}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> TokenRecord:
        """Read a record written by to_json."""
        return cls(record["Fingerprint"], record["Response"], record["At"])


def token_key(operation: str, token: str) -> str:
    """Where a token is remembered: per operation, so CreateUser and DeleteUser may share a token."""
    return f"{operation}:{token}"


def fingerprint(params: Mapping[str, Any]) -> str:
    """A digest of a call's parameters other than its ClientRequestToken, to spot a token reused for another
    call."""
    asked = {name: value for name, value in params.items() if name != "ClientRequestToken"}
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode("utf-8")).hexdigest()


def owners(users: Mapping[str, StoredUser]) -> dict[str, str]:
    """FaceId → the UserId it is associated with."""
    return {face_id: user.user_id for user in users.values() for face_id in user.face_ids}


def encode(users: Mapping[str, StoredUser], tokens: Mapping[str, TokenRecord]) -> bytes:
    """users.json's bytes."""
    document = {
        "Users": [users[key].to_json() for key in sorted(users)],
        "Tokens": {key: record.to_json() for key, record in tokens.items()},
    }
    return json.dumps(document).encode("utf-8")


def decode(data: bytes) -> tuple[dict[str, StoredUser], dict[str, TokenRecord]]:
    """Users and tokens from users.json's bytes."""
    document = json.loads(data.decode("utf-8"))
    users = {record["UserId"]: StoredUser.from_json(record) for record in document["Users"]}
    tokens = {key: TokenRecord.from_json(record) for key, record in document["Tokens"].items()}
    return users, tokens
