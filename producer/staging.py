"""S3 staging: put local photos in S3 under their content hash and send S3 references instead of bytes.

With a stage, no image bytes pass through Redis at all, and Rekognition reads the objects itself (up to 15 MB, where
Bytes stop at 5 MB). Keys are ``<prefix>/<sha256>.<ext>``: a photo staged before (by any batch, any producer) is
found with one HEAD and not uploaded again. Staged objects are not deleted by facequeue; expire them with a
lifecycle rule on the prefix (docs/big-batches.md).

boto3 is imported only when a stage is used: the producer library does not need it otherwise.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from producer.contract import BlobImage, S3Image
from producer.jobs import ImageInputError, PreparedJob

_SUFFIXES = {b"\xff\xd8\xff": ".jpg", b"\x89PNG": ".png"}
_CONTENT_TYPES = {".jpg": "image/jpeg", ".png": "image/png"}
_IMAGE_FIELDS = ("image", "source", "target")
UPLOAD_THREADS = 8
"""Uploads in flight at once: S3 answers each in tens of milliseconds, so one at a time would pace the batch."""


class StageError(RuntimeError):
    """The stage cannot be used (no such bucket, access denied): raised before any job is submitted."""


def _suffix(data: bytes) -> str:
    return next((suffix for magic, suffix in _SUFFIXES.items() if data.startswith(magic)), "")


@dataclass
class S3Stage:
    """Where photos are staged (``s3://bucket/prefix``), with counters of what staging did."""

    bucket: str
    prefix: str
    client: Any
    uploaded: int = 0
    already_there: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_url(cls, url: str, client: Any = None) -> S3Stage:
        """A stage at ``s3://bucket/prefix``; ``client`` defaults to boto3's S3 client from the AWS chain."""
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ImageInputError(f"{url!r} is not an s3://bucket/prefix URL")
        if client is None:
            try:
                import boto3
            except ImportError:
                raise ImageInputError("staging to S3 needs boto3: pip install 'facequeue[worker]'") from None
            client = boto3.client("s3")
        return cls(parsed.netloc, parsed.path.strip("/"), client)

    @property
    def url(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key_for(self, sha256: str, data: bytes) -> str:
        """The content-addressed key of a photo."""
        name = f"{sha256}{_suffix(data)}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def put(self, sha256: str, data: bytes) -> S3Image:
        """Upload a photo unless an object is already under its key; return its S3 reference."""
        from botocore.exceptions import ClientError

        key = self.key_for(sha256, data)
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise StageError(f"{self.url}: {exc}") from exc
            extra = {"ContentType": _CONTENT_TYPES[s]} if (s := _suffix(data)) else {}
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)
            except ClientError as put_error:
                raise StageError(f"{self.url}: {put_error}") from put_error
            with self._lock:
                self.uploaded += 1
        else:
            with self._lock:
                self.already_there += 1
        return S3Image(bucket=self.bucket, key=key)

    def stage(self, prepared: PreparedJob) -> PreparedJob:
        """The job with each image it would store in Redis replaced by the staged object's reference."""
        if not prepared.blobs:
            return prepared
        update: dict[str, Any] = {}
        for name in _IMAGE_FIELDS:
            source = getattr(prepared.job, name, None)
            if isinstance(source, BlobImage):
                update[name] = self.put(source.sha256, prepared.blobs[source.sha256])
        return PreparedJob(prepared.job.model_copy(update=update))

    def stage_all(self, prepared: Iterable[PreparedJob], threads: int = UPLOAD_THREADS) -> Iterator[PreparedJob]:
        """Stage a stream of jobs, ``threads`` uploads at a time, in order, holding at most ``2 × threads`` photos."""
        with ThreadPoolExecutor(threads, thread_name_prefix="facequeue-stage") as pool:
            ahead: deque[Future[PreparedJob]] = deque()
            for item in prepared:
                ahead.append(pool.submit(self.stage, item))
                if len(ahead) >= 2 * threads:
                    yield ahead.popleft().result()
            while ahead:
                yield ahead.popleft().result()
