"""WorkerSettings: everything a worker reads from its environment, read once when the process starts.

AWS endpoint, region and credentials are not here on purpose: they come from the standard AWS chain
(AWS_ENDPOINT_URL_REKOGNITION, AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_PROFILE, instance roles...), so the same worker
runs against AWS, MinIO and local_rekognition with no code path of its own for any of them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, Field, RedisDsn, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from producer.contract import DEFAULT_QUEUE, DEFAULT_RESULTS_STREAM


class WorkerSettings(BaseSettings):
    """Settings of a facequeue worker process (environment prefix FACEQUEUE_, `.env` supported)."""

    model_config = SettingsConfigDict(env_prefix="FACEQUEUE_", env_file=".env", extra="ignore", frozen=True)

    redis_url: RedisDsn = RedisDsn("redis://127.0.0.1:6379/0")
    """Broker, result backend, image blobs and results stream."""
    queue: str = DEFAULT_QUEUE
    results_stream: str = DEFAULT_RESULTS_STREAM
    results_stream_maxlen: Annotated[int, Field(ge=1000)] = 100_000
    """Approximate cap of the results stream (XADD MAXLEN ~): consumers must keep up within this many results."""
    result_ttl_s: Annotated[int, Field(ge=60, le=365 * 86400)] = 7 * 86400
    """How long a job's result envelope stays readable (result key and Celery backend)."""

    aws_region: str | None = Field(default=None, validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))
    """AWS_REGION (what other AWS SDKs read) or AWS_DEFAULT_REGION (botocore's own); unset: the profile decides."""

    concurrency: Annotated[int, Field(ge=1, le=2048)] = 64
    """Jobs in flight per worker process (Celery threads feeding one event loop and one HTTP pool)."""

    # DetectFaces answers in well under a second; a call still silent after 10 s is retried on a fresh connection.
    rekognition_connect_timeout_s: Annotated[float, Field(gt=0, le=60)] = 3.0
    rekognition_read_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    """Rekognition calls per job for transient errors (throttling, 5xx, timeouts, connection errors)."""
    backoff_base_s: Annotated[float, Field(gt=0, le=60)] = 0.2
    backoff_cap_s: Annotated[float, Field(gt=0, le=300)] = 10.0

    max_image_bytes: Annotated[int, Field(ge=1024, le=500 * 2**20)] = 50 * 2**20
    """Largest image the worker downloads to normalise."""
    max_image_pixels: Annotated[int, Field(ge=80 * 80, le=2_000_000_000)] = 100_000_000
    """Larger images are refused as decompression bombs before they are decoded."""

    visibility_timeout_s: Annotated[int, Field(ge=30, le=43200)] = 600
    """A job not acknowledged within this time is redelivered; must exceed the longest job (checked at start)."""

    @model_validator(mode="after")
    def _visibility_fits_longest_job(self) -> WorkerSettings:
        worst = self.longest_job_s()
        if self.visibility_timeout_s <= worst:
            raise ValueError(
                f"FACEQUEUE_VISIBILITY_TIMEOUT_S={self.visibility_timeout_s} must exceed the longest job, "
                f"{worst:.0f} s (max_attempts × (connect + read timeout) + backoff); otherwise Redis redelivers "
                "jobs that are still running"
            )
        return self

    def longest_job_s(self) -> float:
        """Worst-case seconds one job can take: every attempt timing out, every backoff at its cap."""
        per_call = self.rekognition_connect_timeout_s + self.rekognition_read_timeout_s
        # Two retried phases: fetching the image (an S3 header read and a download per attempt), then Rekognition
        # (one call per attempt), each with a capped backoff between attempts.
        retried_calls = self.max_attempts * (2 + 1)
        return retried_calls * per_call + 2 * (self.max_attempts - 1) * self.backoff_cap_s
