"""How producers and workers reach Redis: a URL, or the master a Sentinel group names; and durable writes.

With Sentinel set (FACEQUEUE_REDIS_SENTINELS, FACEQUEUE_REDIS_SENTINEL_MASTER), every client asks the sentinels
which server is master and asks again when a connection to it fails, so producers and workers follow a failover by
themselves. FACEQUEUE_REDIS_URL then gives only the credentials, the database number and the scheme (rediss:// for
TLS to the servers). Redis replicates asynchronously: a write the master acknowledged can vanish in a failover.
FACEQUEUE_REDIS_WAIT_REPLICAS makes a submit and a publish count only once that many replicas hold them
(``WAIT``), at the price of a replication round trip per write (docs/high-availability.md).

Every client has explicit socket timeouts: a server that vanishes without closing its connections (a killed
container takes its network namespace with it) never answers nor refuses, and without a timeout a command waits
there for the kernel's ~15 minutes of retransmits. redis-py 8 defaults to 5 s, the lowest pinned (5.0) and kombu to
none, and Celery's result backend to 120 s.
"""

from __future__ import annotations

from typing import Any, Protocol

import redis
import redis.asyncio as aredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.connection import SSLConnection, parse_url
from redis.sentinel import Sentinel

from producer.masters import AsyncMasterConnection, AsyncMasterSSLConnection, MasterConnection, MasterSSLConnection

CONNECT_TIMEOUT_S = 5.0
"""How long opening a connection to a Redis server may take."""
REPLY_TIMEOUT_S = 10.0
"""How long a command may wait for its reply, beyond a WAIT's own timeout. Longer than any block the clients ask
for (XREAD BLOCK waits at most 1 s; pub/sub waits poll the socket, not read it), short enough that a job stuck on
a dead server is given back well within the visibility timeout."""
SENTINEL_TIMEOUT_S = 2.0
"""Connect and reply timeout for the sentinels themselves: a sentinel that does not answer is skipped for the next."""
HEALTH_CHECK_S = 30
"""A connection idle this long is PINGed before it is used."""


class RedisTarget(Protocol):
    """The settings a Redis connection is built from (ProducerSettings and WorkerSettings both have them)."""

    @property
    def redis_url(self) -> Any: ...
    @property
    def redis_sentinels(self) -> list[tuple[str, int]]: ...
    @property
    def redis_sentinel_master(self) -> str: ...
    @property
    def redis_sentinel_password(self) -> Any: ...
    @property
    def redis_wait_replicas(self) -> int: ...
    @property
    def redis_wait_timeout_ms(self) -> int: ...


class NotReplicatedError(redis.RedisError):
    """A write the master took but fewer replicas than FACEQUEUE_REDIS_WAIT_REPLICAS confirmed in time."""

    code = "NotReplicated"

    def __init__(self, what: str, acknowledged: int, wanted: int, timeout_ms: int) -> None:
        super().__init__(
            f"{what}: {acknowledged} of {wanted} replicas confirmed the write within {timeout_ms} ms, so a failover "
            "could lose it; it is on the master and may still run. Check the replicas (INFO replication), then "
            "submit again: jobs are deduplicated by job id, so nothing is paid or published twice"
        )
        self.acknowledged = acknowledged
        self.wanted = wanted


def socket_timeout_s(target: RedisTarget) -> float:
    """Seconds a command may wait for its reply: REPLY_TIMEOUT_S, plus the longest a durable write's WAIT blocks."""
    return REPLY_TIMEOUT_S + target.redis_wait_timeout_ms / 1000


def dead_server_options(target: RedisTarget) -> dict[str, Any]:
    """redis-py options that make a client give up on a server that stopped answering, instead of waiting forever."""
    return {
        "socket_timeout": socket_timeout_s(target),
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_keepalive": True,
        "health_check_interval": HEALTH_CHECK_S,
    }


def _server_options(target: RedisTarget) -> dict[str, Any]:
    """Credentials, database and TLS options from the URL, for connections the sentinels point at."""
    options: dict[str, Any] = parse_url(str(target.redis_url))  # type: ignore[no-untyped-call]
    options.pop("host", None)
    options.pop("port", None)
    if options.pop("connection_class", None) is SSLConnection:
        options["ssl"] = True
    return options


def _sentinel_options(target: RedisTarget) -> dict[str, Any]:
    password = target.redis_sentinel_password
    options: dict[str, Any] = {"socket_timeout": SENTINEL_TIMEOUT_S, "socket_connect_timeout": SENTINEL_TIMEOUT_S}
    return options | ({"password": password.get_secret_value()} if password is not None else {})


def _master_options(target: RedisTarget, tls: type, plain: type) -> dict[str, Any]:
    """_server_options with the connection class that checks ROLE (producer/masters.py)."""
    options = _server_options(target)
    options["connection_class"] = tls if options.pop("ssl", False) else plain
    return options


def sync_client(target: RedisTarget, **options: Any) -> redis.Redis:
    """A redis-py client on the URL, or on whichever server the sentinels call master."""
    options = dead_server_options(target) | options
    if not target.redis_sentinels:
        return redis.Redis.from_url(str(target.redis_url), **options)
    sentinel = Sentinel(target.redis_sentinels, sentinel_kwargs=_sentinel_options(target))  # type: ignore[no-untyped-call]
    server = _master_options(target, MasterSSLConnection, MasterConnection)
    client: redis.Redis = sentinel.master_for(target.redis_sentinel_master, **server, **options)  # type: ignore[no-untyped-call]
    return client


def async_client(target: RedisTarget, max_connections: int | None = None, **options: Any) -> aredis.Redis:
    """The asyncio flavour of sync_client; with ``max_connections`` a command past it waits for a free connection.

    (Waiting, not MaxConnectionsError, which would fail a job that has nothing wrong with it.) redis-py's Sentinel
    pool cannot wait, so with Sentinel the pool is unbounded: the jobs in flight bound it.
    """
    options = dead_server_options(target) | options
    if not target.redis_sentinels:
        if max_connections is None:
            return aredis.Redis.from_url(str(target.redis_url), **options)
        pool = aredis.BlockingConnectionPool.from_url(
            str(target.redis_url), max_connections=max_connections, timeout=None, **options
        )
        return aredis.Redis.from_pool(pool)
    sentinel = AsyncSentinel(target.redis_sentinels, sentinel_kwargs=_sentinel_options(target))  # type: ignore[no-untyped-call]
    server = _master_options(target, AsyncMasterSSLConnection, AsyncMasterConnection)
    client: aredis.Redis = sentinel.master_for(target.redis_sentinel_master, **server, **options)
    return client


def celery_url(target: RedisTarget) -> str:
    """The broker and result-backend URL Celery takes: the URL itself, or one sentinel:// URL per sentinel."""
    if not target.redis_sentinels:
        return str(target.redis_url)
    options = _server_options(target)
    user, password = options.get("username") or "", options.get("password") or ""
    auth = f"{user}:{password}@" if password else ""
    return ";".join(f"sentinel://{auth}{host}:{port}/{options.get('db', 0)}" for host, port in target.redis_sentinels)


def celery_sentinel_options(target: RedisTarget) -> dict[str, Any]:
    """Transport options Celery's broker and result backend need to find the master (empty without Sentinel)."""
    if not target.redis_sentinels:
        return {}
    return {"master_name": target.redis_sentinel_master, "sentinel_kwargs": _sentinel_options(target)}


def wait_command(target: RedisTarget) -> tuple[str, int, int] | None:
    """The WAIT to append to a pipeline of writes that must be replicated, or None when writes are not durable."""
    if target.redis_wait_replicas <= 0:
        return None
    return ("WAIT", target.redis_wait_replicas, target.redis_wait_timeout_ms)


def check_replicated(target: RedisTarget, acknowledged: Any, what: str) -> None:
    """Raise NotReplicatedError when WAIT's answer says fewer replicas than wanted hold the writes."""
    if int(acknowledged) < target.redis_wait_replicas:
        raise NotReplicatedError(what, int(acknowledged), target.redis_wait_replicas, target.redis_wait_timeout_ms)
