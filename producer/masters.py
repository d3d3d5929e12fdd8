"""Connections through Redis Sentinel that check the server they reach is the master (ROLE), and refuse it if not.

redis-py asks the sentinels for the master's address and connects there without asking the server what it is:
during a failover the sentinels may still name the old master, and a restarted old master at that address is a
replica by the time the connection opens (docs/compose.md, found by `make compose-test-ha`). Writes there fail
with READONLY, which redis-py turns into a reconnect, but reads are served: a producer then reads a stale results
stream. These connections ask ROLE right after connecting and, on anything but ``master``, close and raise
ConnectionError, so the client's retry asks the sentinels again.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.asyncio import sentinel as async_sentinel
from redis.sentinel import SentinelManagedConnection, SentinelManagedSSLConnection


def _refusal(host: str, port: int, reply: Any) -> redis.ConnectionError | None:
    role = reply[0] if isinstance(reply, list | tuple) and reply else reply
    role = role.decode() if isinstance(role, bytes) else str(role)
    if role == "master":
        return None
    return redis.ConnectionError(
        f"{host}:{port} is a {role}, not the master: the sentinels named it before they saw the failover"
    )


class MasterConnection(SentinelManagedConnection):
    """A Sentinel-managed connection that is used only if the server says it is the master."""

    def connect_to(self, address: tuple[str, int]) -> None:
        """Connect to ``address`` and check its ROLE (when the pool wants a master)."""
        super().connect_to(address)  # type: ignore[no-untyped-call]
        if not self.connection_pool.is_master:
            return
        self.send_command("ROLE")  # type: ignore[no-untyped-call]
        refusal = _refusal(self.host, self.port, self.read_response())
        if refusal is not None:
            self.disconnect()  # type: ignore[no-untyped-call]
            raise refusal


class MasterSSLConnection(MasterConnection, SentinelManagedSSLConnection):
    """MasterConnection over TLS."""


class AsyncMasterConnection(async_sentinel.SentinelManagedConnection):
    """The asyncio flavour of MasterConnection."""

    async def connect_to(self, address: tuple[str, int]) -> None:
        """Connect to ``address`` and check its ROLE (when the pool wants a master)."""
        await super().connect_to(address)  # type: ignore[no-untyped-call]
        if not self.connection_pool.is_master:
            return
        await self.send_command("ROLE")
        refusal = _refusal(self.host, self.port, await self.read_response())
        if refusal is not None:
            await self.disconnect()
            raise refusal


class AsyncMasterSSLConnection(AsyncMasterConnection, async_sentinel.SentinelManagedSSLConnection):
    """AsyncMasterConnection over TLS."""
