"""Never pay twice: the same image, operation and parameters within a window get the stored response.

Only operations whose answer depends on nothing but the image and parameters are cached. IndexFaces, the deletes and
collection admin change state; SearchFacesByImage and ListFaces read a collection that may have changed: none of
them is ever served from the cache. RecognizeCelebrities reads the endpoint's celebrity gallery too, but that is
Amazon's (or, on local_rekognition, the operator's) and changes rarely, while a repeated photo would be paid again
each time: it is cached, and a person added to the gallery is named in a photo already asked about once the entry
expires (FACEQUEUE_CACHE_TTL_S) or for a job with use_cache=False.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from producer.contract import BlobImage, Job, Operation, S3Image, cache_key

CACHEABLE = frozenset({Operation.DETECT_FACES, Operation.COMPARE_FACES, Operation.RECOGNIZE_CELEBRITIES})


class CacheEntry(NamedTuple):
    """Where a job's fresh response goes in the cache: its key, and seconds to keep it (the publish writes it)."""

    key: str
    ttl_s: int


class CachePlan(NamedTuple):
    """How the cache serves a job: what its fingerprint is made of, and its entry when known from the job alone."""

    operation: str
    params: dict[str, Any]
    ttl_s: int
    entry: CacheEntry | None
    """Known at admission when every image is a blob (its content hash names it); an S3 image is named by its ETag,
    which only its ranged read tells (``entry_for``)."""


def cacheable(job: Job) -> bool:
    """True when the job's response may be served from, and stored in, the cache."""
    return job.operation in CACHEABLE and job.use_cache


def fingerprint(operation: str, params: dict[str, Any], image_identities: Sequence[str]) -> str:
    """A hash of what determines the response: operation, parameters (less the images) and image contents, in order."""
    canonical = json.dumps(
        {"operation": operation, "params": params, "images": list(image_identities)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def image_name(source: BlobImage | S3Image, etag: str = "") -> str:
    """A stable name for an image's content: its hash, its S3 version, or its S3 ETag (from its ranged read)."""
    if isinstance(source, BlobImage):
        return f"sha256:{source.sha256}"
    if source.version:
        return f"s3:{source.bucket}/{source.key}?versionId={source.version}"
    return f"s3:{source.bucket}/{source.key}#{etag}"


def entry_for(plan: CachePlan, images: Sequence[BlobImage | S3Image], etags: Sequence[str]) -> CacheEntry:
    """A job's cache entry once its S3 images' ETags are read (``etags``: one per image, '' for a blob)."""
    names = [image_name(image, etag) for image, etag in zip(images, etags, strict=True)]
    return CacheEntry(cache_key(fingerprint(plan.operation, plan.params, names)), plan.ttl_s)


class ResponseCache:
    """Rekognition responses in Redis, keyed by fingerprint, for ``ttl_s`` seconds (0 turns the cache off)."""

    def __init__(self, redis: Any, ttl_s: int) -> None:
        self._redis = redis
        self.ttl_s = ttl_s

    def plan(self, job: Job, params: dict[str, Any], images: Sequence[BlobImage | S3Image]) -> CachePlan | None:
        """How the cache serves and stores a job's response, worked out once at admission; None when it does not
        (the cache off, an operation that changes or reads a collection, use_cache=False)."""
        if not self.ttl_s or not cacheable(job):
            return None
        entry = None
        if all(isinstance(image, BlobImage) for image in images):
            # Known from the job alone: read with the rest, no S3 read first.
            names = [image_name(image) for image in images]
            entry = CacheEntry(cache_key(fingerprint(job.operation.value, params, names)), self.ttl_s)
        return CachePlan(job.operation.value, params, self.ttl_s, entry)

    async def get(self, entry: CacheEntry) -> dict[str, Any] | None:
        """The stored response of an entry not read with the job's other keys (an S3 image's, named by its ETag)."""
        raw = await self._redis.get(entry.key)
        return json.loads(raw) if raw else None
