"""A Rekognition STAND-IN for benchmarks and chaos tests — not Rekognition, and not local_rekognition.

It speaks Rekognition's wire protocol (AWS JSON 1.1) and answers DetectFaces and RecognizeCelebrities with real
recorded responses after a configured delay, so a benchmark measures the pipeline, not a model. It can enforce an
account-style TPS quota (ThrottlingException above it, as Rekognition does), throttle a share of calls, answer
bursts of 5xx, stall past the client's timeout, and answer 200 with a body that is not JSON. GET /stats returns
what it saw, so a test can count calls, throttles and rates.

    python bench/rekognition_standin.py --port 0 --delay-ms 150 --tps 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web

RECORDED = {
    "DetectFaces": Path(__file__).with_name("detect_faces_response.json"),
    "RecognizeCelebrities": Path(__file__).with_name("recognize_celebrities_response.json"),
}
"""The answers it gives, each recorded from local_rekognition on the Grace Hopper portrait; {} for other operations."""


class TokenBucket:
    """An account quota: `rate` transactions per second, bursting to `rate` (one second's worth)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.stamp = time.monotonic()

    def take(self) -> bool:
        """Spend a token if one is left."""
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class StandIn:
    """The stand-in's behaviour and counters."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.responses = {operation: json.loads(path.read_text()) for operation, path in RECORDED.items()}
        self.buckets: dict[str, TokenBucket] = {}
        self.counts: Counter[str] = Counter()
        self.accepted_times: list[float] = []
        self.rng = random.Random(args.seed)

    def _error(self, status: int, code: str, message: str) -> web.Response:
        self.counts[code] += 1
        return web.json_response(
            {"__type": code, "Message": message}, status=status, content_type="application/x-amz-json-1.1"
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one AWS JSON 1.1 call."""
        operation = request.headers.get("X-Amz-Target", "").rpartition(".")[2]
        await request.read()
        self.counts["calls"] += 1
        a = self.args
        if a.tps > 0:
            bucket = self.buckets.setdefault(operation, TokenBucket(a.tps))
            if not bucket.take():
                return self._error(400, "ThrottlingException", "Rate exceeded")
        roll = self.rng.random()
        if roll < a.throttle_share:
            return self._error(400, "ThrottlingException", "Rate exceeded (injected)")
        if a.error_burst_every and self.counts["calls"] % a.error_burst_every < a.error_burst_len:
            return self._error(500, "InternalServerError", "injected 5xx burst")
        if roll > 1 - a.stall_share:
            self.counts["stalled"] += 1
            await asyncio.sleep(a.stall_s)
        await asyncio.sleep(a.delay_ms / 1000)
        if self.counts["garbled"] < a.garble_first:
            # What a misbehaving proxy or a truncated answer looks like: 200 OK, a body that is not JSON.
            self.counts["garbled"] += 1
            return web.Response(text="<html>502 upstream hiccup</html>", content_type="application/x-amz-json-1.1")
        self.counts["ok"] += 1
        self.accepted_times.append(time.monotonic())
        body: dict[str, Any] = self.responses.get(operation, {})
        return web.json_response(body, content_type="application/x-amz-json-1.1")

    async def stats(self, _: web.Request) -> web.Response:
        """Counters and the accepted-call rate over the busy span."""
        times = self.accepted_times
        span = (times[-1] - times[0]) if len(times) > 1 else 0.0
        return web.json_response(
            {**self.counts, "accepted_rate": (len(times) - 1) / span if span > 0 else 0.0, "span_s": span}
        )

    async def reset(self, _: web.Request) -> web.Response:
        """Zero the counters."""
        self.counts.clear()
        self.accepted_times.clear()
        self.buckets.clear()
        return web.json_response({})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--delay-ms", type=float, default=150.0, help="latency of every accepted call")
    p.add_argument("--tps", type=float, default=0.0, help="quota per operation, 0 = none")
    p.add_argument("--throttle-share", type=float, default=0.0, help="share of calls throttled at random")
    p.add_argument("--error-burst-every", type=int, default=0, help="every N calls start a 5xx burst")
    p.add_argument("--error-burst-len", type=int, default=3)
    p.add_argument("--stall-share", type=float, default=0.0, help="share of calls that stall")
    p.add_argument("--stall-s", type=float, default=10.0)
    p.add_argument("--garble-first", type=int, default=0, help="the first N calls answer 200 with a non-JSON body")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Run until cancelled, printing the bound URL first."""
    standin = StandIn(args)
    app = web.Application(client_max_size=16 * 2**20)
    app.router.add_post("/", standin.handle)
    app.router.add_get("/stats", standin.stats)
    app.router.add_post("/reset", standin.reset)
    app.router.add_get("/health", lambda _: web.json_response({"ok": True}))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, backlog=4096)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"rekognition stand-in listening on http://{args.host}:{port}", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    try:
        asyncio.run(serve(parse_args(argv)))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
