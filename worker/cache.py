"""Never pay twice: the same image, operation and parameters within a window get the stored response.

Only operations whose answer depends on nothing but the image and parameters are cached. IndexFaces, the deletes and
collection admin change state; SearchFacesByImage and ListFaces read a collection that may have changed: none of
them is ever served from the cache.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from producer.contract import Job, Operation, cache_key

CACHEABLE = frozenset({Operation.DETECT_FACES, Operation.COMPARE_FACES})


def cacheable(job: Job) -> bool:
    """True when the job's response may be served from, and stored in, the cache."""
    return job.operation in CACHEABLE and job.use_cache


def fingerprint(job: Job, image_identities: Sequence[str]) -> str:
    """A hash of what determines the response: operation, parameters and image contents, in order."""
    canonical = json.dumps(
        {"operation": job.operation.value, "params": job.request(), "images": list(image_identities)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseCache:
    """Rekognition responses in Redis, keyed by fingerprint, for ``ttl_s`` seconds (0 turns the cache off)."""

    def __init__(self, redis: Any, ttl_s: int) -> None:
        self._redis = redis
        self.ttl_s = ttl_s

    async def get(self, fp: str) -> dict[str, Any] | None:
        """The stored response for a fingerprint, if any."""
        if not self.ttl_s:
            return None
        raw = await self._redis.get(cache_key(fp))
        return json.loads(raw) if raw else None

    async def put(self, fp: str, response: dict[str, Any]) -> None:
        """Store a response (first writer wins: concurrent duplicates store the same answer once)."""
        if self.ttl_s:
            await self._redis.set(cache_key(fp), json.dumps(response, default=str), ex=self.ttl_s, nx=True)
