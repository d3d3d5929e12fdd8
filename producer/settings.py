"""ProducerSettings: everything a producer reads from its environment, read once at the edge."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, RedisDsn, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from producer.contract import DEFAULT_QUEUE, DEFAULT_RESULTS_STREAM, MAX_JOBS_PER_MESSAGE, signing_conf

SETTINGS_CONFIG = SettingsConfigDict(
    env_prefix="FACEQUEUE_",
    env_file=".env",
    extra="ignore",
    frozen=True,
    use_attribute_docstrings=True,
    # A value that fails validation is not quoted in the error: it may be a URL with the Redis password in it.
    hide_input_in_errors=True,
)
"""How producers and workers read their settings: FACEQUEUE_* variables, then .env."""


def _host_ports(value: Any) -> Any:
    """``host:port,host:port`` (how an environment variable carries it) as [(host, port), ...]."""
    if not isinstance(value, str):
        return value
    pairs = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"{item!r} is not host:port (e.g. 10.0.0.5:26379)")
        pairs.append((host.strip("[]"), int(port)))
    return pairs


class RedisSettings(BaseSettings):
    """How to reach Redis: shared by producers and workers, so both find the same master the same way."""

    model_config = SETTINGS_CONFIG

    # repr=False: the URL may carry the Redis password, and settings objects end up in logs and tracebacks.
    redis_url: RedisDsn = Field(default=RedisDsn("redis://127.0.0.1:6379/0"), repr=False)
    """Broker, result store, image blobs and results stream (redis:// or rediss://, password in the URL). With
    Sentinel, only its credentials, database number and scheme are used: the sentinels name the server."""
    redis_sentinels: Annotated[list[tuple[str, int]], NoDecode, BeforeValidator(_host_ports)] = Field(
        default_factory=list
    )
    """Redis Sentinel addresses, host:port,host:port; set, every client asks them which server is master and
    follows a failover. Unset: FACEQUEUE_REDIS_URL's server is used as it is."""
    redis_sentinel_master: str = "facequeue"
    """The name the sentinels monitor the master under (`sentinel monitor <name> ...`)."""
    redis_sentinel_password: SecretStr | None = Field(default=None, repr=False)
    """Password of the sentinels themselves, if they require one (`requirepass` in sentinel.conf)."""
    redis_wait_replicas: Annotated[int, Field(ge=0, le=16)] = 0
    """Durable writes: a submit and a publish count only once this many replicas hold them (Redis WAIT), so a
    failover loses neither; 0 (default) trusts the master's acknowledgement (asynchronous replication)."""
    redis_wait_timeout_ms: Annotated[int, Field(ge=1, le=60_000)] = 1000
    """How long a durable write waits for its replicas before it fails with NotReplicated."""

    @model_validator(mode="after")
    def _sentinel_has_a_master_name(self) -> RedisSettings:
        if self.redis_sentinels and not self.redis_sentinel_master:
            raise ValueError("FACEQUEUE_REDIS_SENTINEL_MASTER must name the master the sentinels monitor")
        return self


class ProducerSettings(RedisSettings):
    """Settings of the facequeue client and CLI (environment prefix FACEQUEUE_, `.env` supported)."""

    model_config = SETTINGS_CONFIG
    queue: str = DEFAULT_QUEUE
    """Base name of the Celery queues: jobs travel on `<queue>.<operation>`; workers consume them all."""
    results_stream: str = DEFAULT_RESULTS_STREAM
    """The Redis stream every result is appended to (`facequeue results --follow` reads it)."""
    blob_ttl_s: Annotated[int, Field(ge=60, le=30 * 86400)] = 86400
    """How long image bytes stored in Redis live if no worker picks the job up."""
    result_ttl_s: Annotated[int, Field(ge=60, le=365 * 86400)] = 7 * 86400
    """How long batch progress is kept; workers keep results for their own FACEQUEUE_RESULT_TTL_S."""
    max_image_bytes: Annotated[int, Field(ge=1024, le=200 * 2**20)] = 15 * 2**20
    """Largest image file the producer uploads (Rekognition's S3 limit; the worker downscales past 5 MB)."""
    max_batch_jobs: Annotated[int, Field(ge=1, le=10_000_000)] = 1_000_000
    """Most jobs one submit_many call (one batch) may hold."""
    signing_key: str | None = None
    """PEM private key to sign task messages with (Celery's auth serializer); unset: messages are plain JSON."""
    signing_cert: str | None = None
    """PEM certificate of signing_key."""
    signing_cert_store: str | None = None
    """Glob of the PEM certificates workers trust, e.g. /etc/facequeue/certs/*.pem."""
    window_blob_bytes: Annotated[int, Field(ge=2**20, le=2**40)] = 256 * 2**20
    """Image bytes one producer keeps in Redis for jobs without a result yet; it stores more as results come back,
    so a batch of any size runs in this much Redis memory (plus ~1/16 while a chunk is read). 1 TiB: unbounded."""
    window_jobs: Annotated[int, Field(ge=1, le=10_000_000)] = 10_000
    """Jobs one producer keeps queued without a result; the same as window_blob_bytes, for jobs without images."""
    submit_chunk: Annotated[int, Field(ge=1, le=100_000)] = 500
    """Jobs per Redis pipeline when submitting many: one round trip each."""
    jobs_per_message: Annotated[int, Field(ge=1, le=MAX_JOBS_PER_MESSAGE)] = 16
    """Jobs of one operation a bulk submit packs into one Celery message (a single submit sends one). Workers run a
    message's jobs side by side and weigh it as that many jobs in flight; 1 sends one message per job."""

    def signing(self) -> dict[str, Any] | None:
        """Celery's message-signing settings, when all three signing files are set."""
        if self.signing_key and self.signing_cert and self.signing_cert_store:
            return signing_conf(self.signing_key, self.signing_cert, self.signing_cert_store)
        return None
