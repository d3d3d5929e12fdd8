"""An HTTP FAULT PROXY in front of a Rekognition endpoint (local_rekognition, the stand-in): what a flaky network or
an overloaded service looks like, on demand. Not Rekognition; it forwards every call untouched unless told otherwise.

Faults, set with ``POST /_faults`` (JSON) and read back with ``GET /_stats``:

    {"mode": "pass"}                 forward everything (the default)
    {"mode": "down"}                 close every connection before answering: the endpoint is unreachable
    {"mode": "cut", "share": 0.3}    forward the call, then drop its answer and the connection (paid, never heard)
    {"mode": "stall", "share": 0.2, "stall_s": 15}   hold the call this long before forwarding it
    {"mode": "5xx", "share": 0.5}    answer 500 InternalServerError without forwarding
    {"mode": "throttle", "share": 0.5}  answer 400 ThrottlingException without forwarding
    {"mode": "corrupt", "share": 0.2}   forward, then answer 200 with the body cut in half (not JSON)

``operations`` (a list of X-Amz-Target operation names) limits a fault to those calls. ``/_stats`` counts calls by
operation and what was done to them (``paid:<operation>`` counts the calls the endpoint answered with success,
``answered_4xx``/``answered_5xx`` those it refused), so a test can tell paid calls from the others.

    python bench/fault_proxy.py --upstream http://127.0.0.1:8085 --port 0 --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections import Counter
from typing import Any

import aiohttp
from aiohttp import web

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class FaultProxy:
    """The proxy's faults and counters."""

    def __init__(self, upstream: str, seed: int) -> None:
        self.upstream = upstream.rstrip("/")
        self.rng = random.Random(seed)
        self.fault: dict[str, Any] = {"mode": "pass"}
        self.counts: Counter[str] = Counter()
        self.session: aiohttp.ClientSession | None = None

    def _applies(self, operation: str) -> bool:
        mode = self.fault.get("mode", "pass")
        if mode == "pass":
            return False
        wanted = self.fault.get("operations")
        if wanted and operation not in wanted:
            return False
        return mode == "down" or self.rng.random() < float(self.fault.get("share", 1.0))

    async def _forward(self, request: web.Request, body: bytes, operation: str) -> tuple[int, dict[str, str], bytes]:
        assert self.session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self.session.post(self.upstream + request.path_qs, data=body, headers=headers) as answer:
            # An answered call is paid only when it succeeded: AWS bills no throttled or refused call.
            self.counts[f"{'paid' if answer.status < 300 else f'answered_{answer.status // 100}xx'}:{operation}"] += 1
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
            return answer.status, kept, await answer.read()

    def _error(self, status: int, code: str, message: str) -> web.Response:
        return web.json_response(
            {"__type": code, "message": message}, status=status, content_type="application/x-amz-json-1.1"
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Forward one call, or do to it what the current fault says."""
        operation = request.headers.get("X-Amz-Target", "").rpartition(".")[2] or request.path
        body = await request.read()
        self.counts["calls"] += 1
        mode = self.fault.get("mode", "pass") if self._applies(operation) else "pass"
        self.counts[f"{mode}:{operation}"] += 1
        if mode == "down":
            _drop(request)
            return web.Response()
        if mode == "5xx":
            return self._error(500, "InternalServerError", "injected by the fault proxy")
        if mode == "throttle":
            return self._error(400, "ThrottlingException", "Rate exceeded (injected by the fault proxy)")
        if mode == "stall":
            await asyncio.sleep(float(self.fault.get("stall_s", 15.0)))
        try:
            status, headers, answer = await self._forward(request, body, operation)
        except aiohttp.ClientError:
            self.counts["upstream_unreachable"] += 1
            _drop(request)  # the upstream is down: so are we, as the client sees it
            return web.Response()
        if mode == "cut":
            _drop(request)
            return web.Response()
        if mode == "corrupt":
            answer = answer[: len(answer) // 2]
        return web.Response(status=status, headers=headers, body=answer)

    async def set_faults(self, request: web.Request) -> web.Response:
        """Replace the current fault."""
        self.fault = dict(await request.json())
        return web.json_response(self.fault)

    async def stats(self, _: web.Request) -> web.Response:
        """What the proxy saw and did."""
        return web.json_response({**self.counts, "fault": self.fault})


def _drop(request: web.Request) -> None:
    """Close the client's connection without an answer."""
    if request.transport is not None:
        request.transport.abort()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream", required=True, help="the endpoint to forward to, e.g. http://127.0.0.1:8085")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Run until cancelled, printing the bound URL first."""
    proxy = FaultProxy(args.upstream, args.seed)
    # No total timeout: a stalled upstream is the client's to give up on, not ours.
    proxy.session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None), connector=aiohttp.TCPConnector(limit=0)
    )
    app = web.Application(client_max_size=32 * 2**20)
    app.router.add_post("/_faults", proxy.set_faults)
    app.router.add_get("/_stats", proxy.stats)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, backlog=4096)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"fault proxy listening on http://{args.host}:{port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await proxy.session.close()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    try:
        asyncio.run(serve(parse_args(argv)))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
