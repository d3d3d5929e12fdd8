"""WorkerSettings: everything a worker reads from its environment, read once when the process starts.

AWS endpoint, region and credentials are not here on purpose: they come from the standard AWS chain
(AWS_ENDPOINT_URL_REKOGNITION, AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_PROFILE, instance roles...), so the same worker
runs against AWS, MinIO and local_rekognition with no code path of its own for any of them.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

from pydantic import AliasChoices, Field, ValidationError, model_validator

from producer.contract import DEFAULT_QUEUE, DEFAULT_RESULTS_STREAM, IMAGE_PIXELS_MAX, signing_conf
from producer.settings import SETTINGS_CONFIG, RedisSettings


class WorkerSettings(RedisSettings):
    """Settings of a facequeue worker process (environment prefix FACEQUEUE_, `.env` supported)."""

    model_config = SETTINGS_CONFIG

    queue: str = DEFAULT_QUEUE
    """Base name of the queues consumed: `<queue>` and `<queue>.<operation>` for every operation."""
    results_stream: str = DEFAULT_RESULTS_STREAM
    """The Redis stream every result is appended to, for consumers that do not use Celery."""
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
    """Seconds to open a connection to Rekognition or S3 before the attempt counts as a transient failure."""
    rekognition_read_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    """Seconds to wait for an answer before the attempt counts as a transient failure and is retried."""
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    """Rekognition calls per job for transient errors (throttling, 5xx, timeouts, connection errors)."""
    backoff_base_s: Annotated[float, Field(gt=0, le=60)] = 0.2
    """First retry waits up to this long; each further one up to twice as long (full jitter)."""
    backoff_cap_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    """No retry waits longer than this."""

    rate_limits_tps: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    """Per-operation quota shared by all workers, e.g. {"DetectFaces": 50, "IndexFaces": 5}; unset means no limit.
    Set it to your account's Rekognition quota for the region (Service Quotas console)."""
    adaptive_rate: bool = True
    """Learn each operation's quota from throttling, together with every other worker (worker/throttle.py): slow
    start, then back off on ThrottlingException, so a burst at any concurrency fails no job. A configured
    rate_limits_tps stays the ceiling. False: operations without a configured limit go at full concurrency."""
    rate_limit_burst: Annotated[int, Field(ge=1, le=1000)] = 1
    """Calls that may go out back to back after an idle spell; 1 spreads calls evenly."""
    cache_ttl_s: Annotated[int, Field(ge=0, le=365 * 86400)] = 86400
    """How long a DetectFaces / CompareFaces / RecognizeCelebrities response is reused for the same image and
    parameters; 0 = off."""

    s3_allowed: list[str] = Field(default_factory=list)
    """Buckets (or bucket/key-prefix) the worker may read, e.g. ["photos", "uploads/faces/"]. Any other S3 image
    fails with AccessDeniedException before any S3 or Rekognition call. Empty: whatever the credentials can read."""

    max_image_bytes: Annotated[int, Field(ge=1024, le=500 * 2**20)] = 50 * 2**20
    """Largest image the worker downloads to normalise."""
    max_image_pixels: Annotated[int, Field(ge=80 * 80, le=2_000_000_000)] = IMAGE_PIXELS_MAX
    """Larger images are refused as decompression bombs before they are decoded."""

    job_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 120.0
    """A job still running after this long (fetching, calling) fails with the retryable code JobTimeout and becomes a
    dead letter. Waiting for a rate-limit slot or a retry's backoff does not count: the timeout is for the calls."""
    video_outage_s: Annotated[float, Field(gt=0, le=86400)] = 15 * 60.0
    """How long the checks of a running video job may keep failing transiently (the endpoint down, 5xx, throttled,
    cut answers) before the job fails; the Rekognition job runs on meanwhile, and an outage shorter than this is
    waited out on the poll's countdown."""
    signing_key: str | None = None
    """PEM private key of this worker (Celery's auth serializer). With all three signing settings set, the worker
    accepts only messages signed by a certificate in signing_cert_store; unset: plain JSON messages."""
    signing_cert: str | None = None
    """PEM certificate of signing_key."""
    signing_cert_store: str | None = None
    """Glob of the PEM certificates whose signatures are accepted, e.g. /etc/facequeue/certs/*.pem."""
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0
    """Port of this worker's Prometheus metrics (/metrics); 0 turns them off."""
    visibility_timeout_s: Annotated[int, Field(ge=10, le=43200)] = 180
    """A job not acknowledged within this time is redelivered to another worker: how long a SIGKILLed worker's jobs
    wait before they run again. Must exceed FACEQUEUE_JOB_TIMEOUT_S (checked at start)."""
    restore_interval_s: Annotated[int, Field(ge=1, le=600)] = 5
    """How often workers sweep for jobs whose visibility timeout has passed."""
    idle_recheck_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    """An idle worker is woken by Redis (CLIENT TRACKING) when a job arrives; it also looks on its own this often,
    in case a wake-up was lost. Where Redis refuses CLIENT TRACKING it looks every 0.1 s instead."""
    redis_error_pause_s: Annotated[float, Field(gt=0, le=300)] = 5.0
    """A message whose results Redis refused goes back to the queue after this pause, doubled each time it comes back
    (at most 60 s), so a lasting refusal does not become a busy loop."""
    max_requeues: Annotated[int, Field(ge=1, le=100)] = 5
    """Times a message may go back to the queue for Redis errors; then its unpublished jobs become dead letters."""

    @model_validator(mode="after")
    def _visibility_fits_longest_job(self) -> WorkerSettings:
        # Publishing and acknowledging follow the job; leave them a margin before Redis hands the job to another.
        if self.visibility_timeout_s < self.job_timeout_s + 10:
            raise ValueError(
                f"FACEQUEUE_VISIBILITY_TIMEOUT_S={self.visibility_timeout_s} must exceed FACEQUEUE_JOB_TIMEOUT_S="
                f"{self.job_timeout_s:g} by at least 10 s; otherwise Redis redelivers jobs that are still running"
            )
        return self

    def signing(self) -> dict[str, Any] | None:
        """Celery's message-signing settings, when all three signing files are set."""
        if self.signing_key and self.signing_cert and self.signing_cert_store:
            return signing_conf(self.signing_key, self.signing_cert, self.signing_cert_store)
        return None


EX_CONFIG = 78
"""sysexits.h: the worker's configuration is unusable; a supervisor should not restart it in a loop."""


def load_settings() -> WorkerSettings:
    """Read the worker's settings; on a bad value, say which setting and how to fix it, and exit with EX_CONFIG.

    No traceback and no value: a FACEQUEUE_REDIS_URL that does not parse usually has a password in it.
    """
    try:
        return WorkerSettings()
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            name = "FACEQUEUE_" + ".".join(str(p) for p in error["loc"]).upper() if error["loc"] else "settings"
            advice = ""
            if error["loc"] and error["loc"][0] == "redis_url":
                advice = "; percent-encode special characters of the password (/ as %2F, @ as %40, : as %3A)"
            print(f"facequeue worker: cannot start: {name} is not valid: {error['msg']}{advice}", file=sys.stderr)
        raise SystemExit(EX_CONFIG) from None
