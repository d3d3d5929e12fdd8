"""Job builders: turn a path, bytes or an s3:// URL into a validated job plus the image bytes it needs stored."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from producer.contract import (
    AssociateFacesJob,
    BlobImage,
    CompareFacesJob,
    CreateCollectionJob,
    CreateUserJob,
    DeleteCollectionJob,
    DeleteFacesJob,
    DeleteUserJob,
    DetectFacesJob,
    DisassociateFacesJob,
    ImageSource,
    IndexFacesJob,
    Job,
    ListFacesJob,
    ListUsersJob,
    RecognizeCelebritiesJob,
    S3Image,
    SearchFacesByImageJob,
    SearchUsersByImageJob,
    SearchUsersJob,
)

ImageInput = bytes | str | os.PathLike[str] | S3Image | BlobImage
"""A local path, raw bytes, an ``s3://bucket/key[?versionId=v]`` URL, or a ready image source."""

DEFAULT_MAX_IMAGE_BYTES = 15 * 2**20


class ImageInputError(ValueError):
    """An image given to the producer cannot be used (missing file, empty, too large)."""


@dataclass(frozen=True)
class PreparedJob:
    """A validated job and the image bytes the producer must store before the job is enqueued."""

    job: Job
    blobs: Mapping[str, bytes] = field(default_factory=dict)


def parse_s3_url(url: str) -> S3Image:
    """Parse ``s3://bucket/key`` (optionally ``?versionId=...``) into an S3 image source."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise ImageInputError(f"{url!r} is not an s3://bucket/key URL")
    version = None
    if parsed.query.startswith("versionId="):
        version = parsed.query.removeprefix("versionId=")
    return S3Image(bucket=parsed.netloc, key=parsed.path.lstrip("/"), version=version)


def image_source(
    image: ImageInput, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
) -> tuple[ImageSource, dict[str, bytes]]:
    """Return the image's source reference and any bytes that must be stored for it."""
    if isinstance(image, S3Image | BlobImage):
        return image, {}
    if isinstance(image, str) and image.startswith("s3://"):
        return parse_s3_url(image), {}
    if isinstance(image, bytes):
        data = image
    else:
        path = Path(image)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ImageInputError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise ImageInputError(f"{path}: is a directory, not an image file") from None
        except PermissionError:
            raise ImageInputError(f"{path}: permission denied") from None
    if not data:
        raise ImageInputError("the image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise ImageInputError(
            f"the image is {len(data) / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.1f} MiB "
            "(FACEQUEUE_MAX_IMAGE_BYTES)"
        )
    digest = hashlib.sha256(data).hexdigest()
    return BlobImage(sha256=digest, size_bytes=len(data)), {digest: data}


def _label(image: ImageInput) -> str | None:
    if isinstance(image, bytes):
        return None
    if isinstance(image, S3Image | BlobImage):
        return image.describe()
    return str(image)


def detect_faces(
    image: ImageInput, *, attributes: str | Iterable[str] = "DEFAULT", label: str | None = None, **extra: Any
) -> PreparedJob:
    """Prepare a DetectFaces job; ``attributes`` is DEFAULT, ALL, or attribute names."""
    source, blobs = image_source(image, max_bytes=extra.pop("max_bytes", DEFAULT_MAX_IMAGE_BYTES))
    attrs = attributes if isinstance(attributes, str) else list(attributes)
    job = DetectFacesJob(image=source, attributes=attrs, label=label or _label(image), **extra)
    return PreparedJob(job, blobs)


def compare_faces(source: ImageInput, target: ImageInput, *, label: str | None = None, **params: Any) -> PreparedJob:
    """Prepare a CompareFaces job (similarity_threshold, quality_filter)."""
    src, blobs = image_source(source)
    tgt, more = image_source(target)
    default_label = f"{_label(source)} vs {_label(target)}"
    return PreparedJob(
        CompareFacesJob(source=src, target=tgt, label=label or default_label, **params), {**blobs, **more}
    )


def index_faces(image: ImageInput, collection_id: str, *, label: str | None = None, **params: Any) -> PreparedJob:
    """Prepare an IndexFaces job (external_image_id, max_faces, quality_filter, detection_attributes)."""
    source, blobs = image_source(image)
    return PreparedJob(
        IndexFacesJob(image=source, collection_id=collection_id, label=label or _label(image), **params), blobs
    )


def search_faces_by_image(
    image: ImageInput, collection_id: str, *, label: str | None = None, **params: Any
) -> PreparedJob:
    """Prepare a SearchFacesByImage job (face_match_threshold, max_faces, quality_filter)."""
    source, blobs = image_source(image)
    job = SearchFacesByImageJob(image=source, collection_id=collection_id, label=label or _label(image), **params)
    return PreparedJob(job, blobs)


def create_collection(collection_id: str) -> PreparedJob:
    """Prepare a CreateCollection job."""
    return PreparedJob(CreateCollectionJob(collection_id=collection_id, label=collection_id))


def delete_collection(collection_id: str) -> PreparedJob:
    """Prepare a DeleteCollection job."""
    return PreparedJob(DeleteCollectionJob(collection_id=collection_id, label=collection_id))


def list_faces(collection_id: str, *, max_results: int | None = None, next_token: str | None = None) -> PreparedJob:
    """Prepare a ListFaces job (one page)."""
    return PreparedJob(
        ListFacesJob(collection_id=collection_id, max_results=max_results, next_token=next_token, label=collection_id)
    )


def delete_faces(collection_id: str, face_ids: Iterable[str]) -> PreparedJob:
    """Prepare a DeleteFaces job."""
    return PreparedJob(DeleteFacesJob(collection_id=collection_id, face_ids=tuple(face_ids), label=collection_id))


def create_user(collection_id: str, user_id: str) -> PreparedJob:
    """Prepare a CreateUser job (its ClientRequestToken is the job id)."""
    return PreparedJob(CreateUserJob(collection_id=collection_id, user_id=user_id, label=user_id))


def delete_user(collection_id: str, user_id: str) -> PreparedJob:
    """Prepare a DeleteUser job (its faces stay in the collection)."""
    return PreparedJob(DeleteUserJob(collection_id=collection_id, user_id=user_id, label=user_id))


def associate_faces(collection_id: str, user_id: str, face_ids: Iterable[str], **params: Any) -> PreparedJob:
    """Prepare an AssociateFaces job (user_match_threshold)."""
    job = AssociateFacesJob(
        collection_id=collection_id, user_id=user_id, face_ids=tuple(face_ids), label=user_id, **params
    )
    return PreparedJob(job)


def disassociate_faces(collection_id: str, user_id: str, face_ids: Iterable[str]) -> PreparedJob:
    """Prepare a DisassociateFaces job."""
    return PreparedJob(
        DisassociateFacesJob(collection_id=collection_id, user_id=user_id, face_ids=tuple(face_ids), label=user_id)
    )


def list_users(collection_id: str, *, max_results: int | None = None, next_token: str | None = None) -> PreparedJob:
    """Prepare a ListUsers job (one page)."""
    return PreparedJob(
        ListUsersJob(collection_id=collection_id, max_results=max_results, next_token=next_token, label=collection_id)
    )


def search_users(
    collection_id: str, *, user_id: str | None = None, face_id: str | None = None, **params: Any
) -> PreparedJob:
    """Prepare a SearchUsers job from one user_id or one face_id (user_match_threshold, max_users)."""
    job = SearchUsersJob(
        collection_id=collection_id, user_id=user_id, face_id=face_id, label=user_id or face_id, **params
    )
    return PreparedJob(job)


def search_users_by_image(
    image: ImageInput, collection_id: str, *, label: str | None = None, **params: Any
) -> PreparedJob:
    """Prepare a SearchUsersByImage job (user_match_threshold, max_users, quality_filter)."""
    source, blobs = image_source(image)
    job = SearchUsersByImageJob(image=source, collection_id=collection_id, label=label or _label(image), **params)
    return PreparedJob(job, blobs)


def recognize_celebrities(image: ImageInput, *, label: str | None = None, **extra: Any) -> PreparedJob:
    """Prepare a RecognizeCelebrities job: the celebrities among the image's faces, and the faces nobody is."""
    source, blobs = image_source(image, max_bytes=extra.pop("max_bytes", DEFAULT_MAX_IMAGE_BYTES))
    return PreparedJob(RecognizeCelebritiesJob(image=source, label=label or _label(image), **extra), blobs)
