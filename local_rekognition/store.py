"""Face collections on disk: one directory per collection, named by a hash so no id can leave the data dir.

Layout under ``<data_dir>/collections/<sha256 of the id>/``:
  collection.json   the real CollectionId, creation time, face model version and tags (written once)
  faces.npz         face records (JSON) and their embeddings (float32 N x D), rewritten as one file
  users.json        users, their faces and recent ClientRequestTokens (user_records.py), rewritten as one file
Every write goes to a temp file in the same directory and is swapped in with os.replace, so a crash leaves the
old or the new state, never half of one. One lock serialises writers; readers get immutable snapshots.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from local_rekognition import user_records
from local_rekognition.user_records import StoredUser, TokenMismatchError, TokenRecord

Matrix = npt.NDArray[np.float32]

_META = "collection.json"
_FACES = "faces.npz"
_USERS = "users.json"

UserChange = Callable[["Collection"], tuple[dict[str, StoredUser], dict[str, Any]]]
"""Given the current snapshot, the collection's users after a call and the call's response (or an error)."""


class CollectionNotFoundError(LookupError):
    """No collection has that id."""


class CollectionExistsError(Exception):
    """A collection with that id exists already."""


@dataclass(frozen=True)
class StoredFace:
    """One indexed face as ListFaces returns it (BoundingBox as ratios)."""

    face_id: str
    image_id: str
    bounding_box: Mapping[str, float]
    confidence: float
    external_image_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as stored in faces.npz."""
        return {
            "FaceId": self.face_id,
            "ImageId": self.image_id,
            "BoundingBox": dict(self.bounding_box),
            "Confidence": self.confidence,
            "ExternalImageId": self.external_image_id,
        }

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> StoredFace:
        """Read a record written by to_json."""
        return cls(
            face_id=record["FaceId"],
            image_id=record["ImageId"],
            bounding_box=record["BoundingBox"],
            confidence=record["Confidence"],
            external_image_id=record.get("ExternalImageId"),
        )


@dataclass(frozen=True)
class Collection:
    """An immutable snapshot of one collection: metadata, faces in index order and their embeddings."""

    collection_id: str
    created_at: float
    face_model_version: str
    tags: Mapping[str, str] = field(default_factory=dict)
    faces: tuple[StoredFace, ...] = ()
    embeddings: Matrix = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    users: Mapping[str, StoredUser] = field(default_factory=dict)
    tokens: Mapping[str, TokenRecord] = field(default_factory=dict)

    @property
    def face_count(self) -> int:
        """How many faces are indexed."""
        return len(self.faces)

    @property
    def user_count(self) -> int:
        """How many users exist, with faces or not."""
        return len(self.users)


def directory_name(collection_id: str) -> str:
    """A collection's directory: hex SHA-256 of its id, so ".", ".." or 255-char ids stay one safe name."""
    return hashlib.sha256(collection_id.encode("utf-8")).hexdigest()


def _write_atomically(path: Path, write: Any) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


class CollectionStore:
    """All collections of one data directory; safe to call from many threads at once."""

    def __init__(self, data_dir: Path) -> None:
        self._root = data_dir.resolve() / "collections"
        self._trash = data_dir.resolve() / "trash"
        self._root.mkdir(parents=True, exist_ok=True)
        self._trash.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._collections: dict[str, Collection] = {}
        self._empty_trash()
        for directory in sorted(self._root.iterdir()):
            if directory.is_dir() and not directory.name.startswith("."):
                loaded = self._load(directory)
                if loaded is not None:
                    self._collections[loaded.collection_id] = loaded

    def _path(self, collection_id: str) -> Path:
        path = self._root / directory_name(collection_id)
        # Belt and braces: the hash has no separators, but never trust a path we did not check.
        if path.parent != self._root:
            raise ValueError(f"collection path escapes the data directory: {path}")
        return path

    def _load(self, directory: Path) -> Collection | None:
        try:
            meta = json.loads((directory / _META).read_text("utf-8"))
        except FileNotFoundError:
            return None  # a half-made directory; create() replaces it
        for temp in directory.glob(".tmp-*"):
            temp.unlink()  # a write that died before its os.replace
        collection_id = meta["CollectionId"]
        if directory_name(collection_id) != directory.name:
            raise ValueError(f"{directory} holds collection {collection_id!r}, whose directory is another")
        faces: tuple[StoredFace, ...] = ()
        embeddings = np.zeros((0, 0), dtype=np.float32)
        if (directory / _FACES).exists():
            with np.load(directory / _FACES, allow_pickle=False) as archive:
                records = json.loads(archive["records"].tobytes().decode("utf-8"))
                embeddings = np.array(archive["embeddings"], dtype=np.float32)
            faces = tuple(StoredFace.from_json(record) for record in records)
        embeddings.setflags(write=False)
        users: dict[str, StoredUser] = {}
        tokens: dict[str, TokenRecord] = {}
        if (directory / _USERS).exists():
            users, tokens = user_records.decode((directory / _USERS).read_bytes())
        return Collection(
            collection_id=collection_id,
            created_at=meta["CreationTimestamp"],
            face_model_version=meta["FaceModelVersion"],
            tags=meta.get("Tags", {}),
            faces=faces,
            embeddings=embeddings,
            users=users,
            tokens=tokens,
        )

    def _empty_trash(self) -> None:
        for leftover in self._trash.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)
        for temp in self._root.glob(".tmp-*"):
            shutil.rmtree(temp, ignore_errors=True)

    def create(self, collection_id: str, face_model_version: str, tags: Mapping[str, str]) -> Collection:
        """Create an empty collection; CollectionExistsError if the id is taken."""
        with self._lock:
            if collection_id in self._collections:
                raise CollectionExistsError(collection_id)
            collection = Collection(
                collection_id=collection_id,
                created_at=time.time(),
                face_model_version=face_model_version,
                tags=dict(tags),
            )
            # Build the directory aside and rename it in: a collection appears whole or not at all.
            staging = Path(tempfile.mkdtemp(dir=self._root, prefix=".tmp-"))
            meta = {
                "CollectionId": collection_id,
                "CreationTimestamp": collection.created_at,
                "FaceModelVersion": face_model_version,
                "Tags": dict(tags),
            }
            (staging / _META).write_text(json.dumps(meta), "utf-8")
            final = self._path(collection_id)
            if final.exists():  # left by a create that died before writing its metadata: never visible
                shutil.rmtree(final)
            os.replace(staging, final)
            self._collections[collection_id] = collection
            return collection

    def get(self, collection_id: str) -> Collection:
        """The collection's current snapshot; CollectionNotFoundError if there is none."""
        with self._lock:
            try:
                return self._collections[collection_id]
            except KeyError:
                raise CollectionNotFoundError(collection_id) from None

    def all(self) -> list[Collection]:
        """Every collection, sorted by id."""
        with self._lock:
            return [self._collections[key] for key in sorted(self._collections)]

    def delete(self, collection_id: str) -> None:
        """Delete a collection and its faces; CollectionNotFoundError if there is none."""
        with self._lock:
            if collection_id not in self._collections:
                raise CollectionNotFoundError(collection_id)
            # Move out of sight in one rename, then remove at leisure.
            target = self._trash / uuid.uuid4().hex
            os.replace(self._path(collection_id), target)
            del self._collections[collection_id]
        shutil.rmtree(target, ignore_errors=True)

    def add_faces(self, collection_id: str, faces: Iterable[StoredFace], embeddings: Matrix) -> Collection:
        """Append faces with their embeddings (one row each) and persist; returns the new snapshot."""
        new_faces = tuple(faces)
        rows = np.asarray(embeddings, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[0] != len(new_faces):
            raise ValueError("one embedding row per face is needed")
        with self._lock:
            current = self._get(collection_id)
            if not new_faces:
                return current
            if current.face_count and current.embeddings.shape[1] != rows.shape[1]:
                raise ValueError(
                    f"embeddings have {rows.shape[1]} dimensions, stored ones {current.embeddings.shape[1]}"
                )
            merged = np.concatenate([current.embeddings, rows]) if current.face_count else rows.copy()
            return self._replace(current, current.faces + new_faces, merged)

    def delete_faces(
        self, collection_id: str, face_ids: Iterable[str]
    ) -> tuple[list[str], list[str], list[tuple[str, str]]]:
        """Delete faces by id; returns (deleted, not found, (face, user) kept because a user holds them), each
        in the order asked. As on AWS, a face must be disassociated from its user before it can be deleted."""
        with self._lock:
            current = self._get(collection_id)
            present = {face.face_id for face in current.faces}
            owner = user_records.owners(current.users)
            asked = list(dict.fromkeys(face_ids))
            deleted = [face_id for face_id in asked if face_id in present and face_id not in owner]
            missing = [face_id for face_id in asked if face_id not in present]
            held = [(face_id, owner[face_id]) for face_id in asked if face_id in present and face_id in owner]
            if deleted:
                gone = set(deleted)
                keep = [index for index, face in enumerate(current.faces) if face.face_id not in gone]
                faces = tuple(current.faces[index] for index in keep)
                embeddings = current.embeddings[keep] if keep else np.zeros((0, 0), dtype=np.float32)
                self._replace(current, faces, embeddings)
            return deleted, missing, held

    def change_users(
        self, collection_id: str, token_key: str | None, fingerprint: str, change: UserChange
    ) -> Mapping[str, Any]:
        """Apply ``change`` to the collection's users and persist them, once per ClientRequestToken.

        A token seen within TOKEN_TTL_S with the same parameters answers the first call's response without
        changing anything again; with other parameters, TokenMismatchError. A change that raises stores
        nothing, so its retry runs afresh.
        """
        with self._lock:
            current = self._get(collection_id)
            now = time.time()
            tokens = {
                key: record for key, record in current.tokens.items() if now - record.at < user_records.TOKEN_TTL_S
            }
            if token_key is not None and token_key in tokens:
                if tokens[token_key].fingerprint != fingerprint:
                    raise TokenMismatchError(token_key)
                return tokens[token_key].response
            users, response = change(current)
            if token_key is not None:
                tokens[token_key] = TokenRecord(fingerprint, response, now)
            data = user_records.encode(users, tokens)
            _write_atomically(self._path(collection_id) / _USERS, lambda handle: handle.write(data))
            self._collections[collection_id] = dataclasses.replace(current, users=users, tokens=tokens)
            return response

    def _get(self, collection_id: str) -> Collection:
        # For callers already holding the lock.
        try:
            return self._collections[collection_id]
        except KeyError:
            raise CollectionNotFoundError(collection_id) from None

    def _replace(self, current: Collection, faces: tuple[StoredFace, ...], embeddings: Matrix) -> Collection:
        records = json.dumps([face.to_json() for face in faces]).encode("utf-8")
        matrix = np.ascontiguousarray(embeddings, dtype=np.float32)

        def write(handle: Any) -> None:
            np.savez(handle, records=np.frombuffer(records, dtype=np.uint8), embeddings=matrix)

        _write_atomically(self._path(current.collection_id) / _FACES, write)
        matrix.setflags(write=False)
        updated = Collection(
            collection_id=current.collection_id,
            created_at=current.created_at,
            face_model_version=current.face_model_version,
            tags=current.tags,
            faces=faces,
            embeddings=matrix,
            users=current.users,
            tokens=current.tokens,
        )
        self._collections[current.collection_id] = updated
        return updated
