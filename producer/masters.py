"""Connections through Redis Sentinel that check the server they reach is the master (ROLE), and refuse it if not.

redis-py asks the sentinels for the master's address and connects there without asking the server what it is:
during a failover the sentinels may still name the old master, and a restarted old master at that address is a
replica by the time the connection opens (docs/compose.md, found by `make compose-test-ha`). Writes there fail
with READONLY, which redis-py turns into a reconnect, but reads are served: a producer then reads a stale results
stream. These connections ask ROLE right after connecting and, on anything but ``master``, close and raise
ConnectionError, so the client's retry asks the sentinels again. A restarted old master says ``master`` for the
seconds until the sentinels demote it, and a connection may reach it because the sentinels were asked before the
switch and its name was resolved after the restart (a gone container's name can take seconds to fail): so the
connection then asks the sentinels again and is used only if they still name the address it reached.

redis-py 8 also reconnects a dropped connection, when the next command is sent, straight to the address it had
(``send_packed_command`` calls ``connect_check_health``), without asking the sentinels: after a failover, that is
the old master's name, which resolves to the old master once it is back. These connections route that reconnect
through the sentinels and the checks above too (found by `make compose-test-ha`: the producer ended on `redis`).
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


def _moved(host: str, port: int, named: Any) -> redis.ConnectionError | None:
    if (str(named[0]), int(named[1])) == (str(host), int(port)):
        return None
    return redis.ConnectionError(
        f"{host}:{port} says it is master, but the sentinels now name {named[0]}:{named[1]}: an old master back "
        "before they demoted it"
    )


class MasterConnection(SentinelManagedConnection):
    """A Sentinel-managed connection that is used only if the server says it is the master."""

    _opening = False

    def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        """Open the socket at the current address only from connect_to; any other reconnect asks the sentinels."""
        if self._opening or self._sock:
            super().connect_check_health(check_health=check_health, retry_socket_connect=retry_socket_connect)
        else:
            self.connect()  # type: ignore[no-untyped-call]

    def connect_to(self, address: tuple[str, int]) -> None:
        """Connect to ``address`` and check its ROLE (when the pool wants a master)."""
        self._opening = True
        try:
            super().connect_to(address)  # type: ignore[no-untyped-call]
        finally:
            self._opening = False
        if not self.connection_pool.is_master:
            return
        self.send_command("ROLE")  # type: ignore[no-untyped-call]
        refusal = _refusal(self.host, self.port, self.read_response())
        if refusal is None:
            refusal = _moved(self.host, self.port, self.connection_pool.get_master_address())
        if refusal is not None:
            self.disconnect()  # type: ignore[no-untyped-call]
            raise refusal


class MasterSSLConnection(MasterConnection, SentinelManagedSSLConnection):
    """MasterConnection over TLS."""


class AsyncMasterConnection(async_sentinel.SentinelManagedConnection):
    """The asyncio flavour of MasterConnection."""

    _opening = False

    async def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        """Open the socket at the current address only from connect_to; any other reconnect asks the sentinels."""
        if self._opening or self.is_connected:
            await super().connect_check_health(check_health=check_health, retry_socket_connect=retry_socket_connect)
        else:
            await self.connect()  # type: ignore[no-untyped-call]

    async def connect_to(self, address: tuple[str, int]) -> None:
        """Connect to ``address`` and check its ROLE (when the pool wants a master)."""
        self._opening = True
        try:
            await super().connect_to(address)  # type: ignore[no-untyped-call]
        finally:
            self._opening = False
        if not self.connection_pool.is_master:
            return
        await self.send_command("ROLE")
        refusal = _refusal(self.host, self.port, await self.read_response())
        if refusal is None:
            refusal = _moved(self.host, self.port, await self.connection_pool.get_master_address())
        if refusal is not None:
            await self.disconnect()
            raise refusal


class AsyncMasterSSLConnection(AsyncMasterConnection, async_sentinel.SentinelManagedSSLConnection):
    """AsyncMasterConnection over TLS."""
