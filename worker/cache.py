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
from typing import TYPE_CHECKING, Any, NamedTuple

import pydantic_core

from producer.contract import Job, Operation, cache_key

if TYPE_CHECKING:
    from worker.images import JobReads

CACHEABLE = frozenset({Operation.DETECT_FACES, Operation.COMPARE_FACES, Operation.RECOGNIZE_CELEBRITIES})


class CacheEntry(NamedTuple):
    """A response to store in the cache: key, JSON, seconds to keep."""

    key: str
    value: bytes
    ttl_s: int


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


class ResponseCache:
    """Rekognition responses in Redis, keyed by fingerprint, for ``ttl_s`` seconds (0 turns the cache off)."""

    def __init__(self, redis: Any, ttl_s: int) -> None:
        self._redis = redis
        self.ttl_s = ttl_s

    async def get(self, fp: str, reads: JobReads) -> dict[str, Any] | None:
        """The stored response for a fingerprint, if any (from the job's prefetch when it holds the key)."""
        if not self.ttl_s:
            return None
        raw = await reads.redis_get(self._redis, cache_key(fp))
        return json.loads(raw) if raw else None

    def entry(self, fp: str, response: dict[str, Any]) -> CacheEntry | None:
        """What to store for a fresh response; the publish script writes it (first writer wins), saving a round trip."""
        if not self.ttl_s:
            return None
        # pydantic-core's serialiser: the response is a few KB of nested JSON, and json.dumps cost ~3% of the loop.
        return CacheEntry(cache_key(fp), pydantic_core.to_json(response, fallback=str), self.ttl_s)
