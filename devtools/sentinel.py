"""A real Redis Sentinel deployment on loopback: a master, a replica and three sentinels, all our own processes.

`redis-server --sentinel` is the same binary Debian's redis-sentinel package links to, so nothing more is installed.
The sentinels are told a master is down after 1 s, so a failover takes a few seconds. Used by the Sentinel tests
(tests/fixtures/sentinel.py) and by bench/failover.py; no pytest here, so the benchmark can use it too.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.sentinel import Sentinel


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    """Poll ``predicate()`` until it is truthy; raise TimeoutError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")


def redis_answers(url: str) -> bool:
    """True when a Redis at ``url`` answers PING."""
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


@dataclass
class RedisServer:
    """A redis-server process (append-only file on, so a restart keeps what it had written)."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    extra_args: list[str] = field(default_factory=list)
    """More redis-server options, e.g. ``--replicaof``."""

    @property
    def url(self) -> str:
        """The redis:// URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [
            *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)),
            *("--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--maxmemory-policy", "noeviction"),
            *("--logfile", str(self.directory / "redis.log"), *self.extra_args),
        ]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        wait_until(lambda: redis_answers(self.url), 15, f"redis-server on port {self.port}")

    def stop(self) -> None:
        """Stop the server (SHUTDOWN keeps the append-only file) and wait for the process."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


MASTER_NAME = "facequeue"
DOWN_AFTER_MS = 1000


@dataclass
class SentinelProcess:
    """One sentinel, its config file rewritten by itself as it learns the topology."""

    directory: Path
    master_port: int
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Write the config and start the sentinel; wait until it answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\n"
            f"logfile {self.directory / 'sentinel.log'}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} 10000\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        self.process = subprocess.Popen(["redis-server", str(conf), "--sentinel"], stdout=subprocess.DEVNULL)
        wait_until(lambda: redis_answers(f"redis://127.0.0.1:{self.port}"), 15, f"sentinel on port {self.port}")

    def stop(self) -> None:
        """Stop the sentinel."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


@dataclass
class SentinelGroup:
    """A master, a replica and three sentinels watching them under the name ``MASTER_NAME``."""

    master: RedisServer
    replica: RedisServer
    sentinels: list[SentinelProcess]

    @property
    def addresses(self) -> str:
        """The sentinels as FACEQUEUE_REDIS_SENTINELS takes them: host:port,host:port,..."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def client(self) -> Sentinel:
        """A redis-py Sentinel client on the group."""
        return Sentinel([("127.0.0.1", s.port) for s in self.sentinels], socket_timeout=1)  # type: ignore[no-untyped-call]

    def master_port(self) -> int:
        """The port of the server the sentinels call master now."""
        return int(self.client().discover_master(MASTER_NAME)[1])  # type: ignore[no-untyped-call]

    def server_on(self, port: int) -> RedisServer:
        """Our process listening on ``port``."""
        return self.master if self.master.port == port else self.replica

    def kill_master(self) -> RedisServer:
        """SIGKILL the current master (no shutdown, nothing saved beyond what its AOF already holds)."""
        server = self.server_on(self.master_port())
        assert server.process is not None
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=15)
        return server

    def wait_for_new_master(self, old_port: int, timeout_s: float = 60) -> int:
        """Wait until the sentinels have promoted another server and it accepts writes; return its port."""

        def promoted() -> bool:
            try:
                port = self.master_port()
                if port == old_port:
                    return False
                role = redis.Redis(port=port, socket_timeout=1).role()
                return bool(role and role[0] == b"master")
            except redis.RedisError:
                return False

        wait_until(promoted, timeout_s, "the sentinels to promote the replica", interval_s=0.1)
        return self.master_port()

    def wait_for_sentinels(self) -> None:
        """Wait until every sentinel knows the replica and the two other sentinels."""

        def all_know_the_replica() -> bool:
            try:
                return all(
                    _count(redis.Redis(port=s.port, socket_timeout=1).sentinel_slaves(MASTER_NAME)) == 1
                    and _count(redis.Redis(port=s.port, socket_timeout=1).sentinel_sentinels(MASTER_NAME)) == 2
                    for s in self.sentinels
                )
            except redis.RedisError:
                return False

        wait_until(all_know_the_replica, 30, "the sentinels to find the replica and each other", interval_s=0.1)

    def rejoin(self, server: RedisServer) -> None:
        """Start a killed server again; the sentinels make it a replica of the new master, and it syncs."""
        server.start()

        def replicating() -> bool:
            try:
                info = redis.Redis(port=server.port, socket_timeout=1).info("replication")
                return info.get("role") == "slave" and info.get("master_link_status") == "up"
            except redis.RedisError:
                return False

        wait_until(replicating, 60, f"port {server.port} to replicate the new master", interval_s=0.1)


def _count(reply: object) -> int:
    return len(reply) if isinstance(reply, list) else 0


def _replica_in_sync(master: RedisServer) -> bool:
    info = redis.Redis(port=master.port, socket_timeout=1).info("replication")
    replica = info.get("slave0")
    return isinstance(replica, dict) and replica.get("state") == "online"


@contextlib.contextmanager
def start_group(directory: Path) -> Iterator[SentinelGroup]:
    """Start a master, a replica and three sentinels under ``directory``; stop them all on exit."""
    master = RedisServer(directory / "master")
    replica = RedisServer(directory / "replica")
    replica.extra_args = ["--replicaof", "127.0.0.1", str(master.port)]
    sentinels = [SentinelProcess(directory / f"sentinel{i}", master.port) for i in range(3)]
    group = SentinelGroup(master, replica, sentinels)
    try:
        for server in (master, replica):
            server.start()
        wait_until(lambda: _replica_in_sync(master), 30, "the replica to sync")
        for sentinel in sentinels:
            sentinel.start()
        group.wait_for_sentinels()
        yield group
    finally:
        for sentinel in sentinels:
            sentinel.stop()
        for server in (master, replica):
            server.stop()
