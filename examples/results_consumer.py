"""A service consuming every result from the results stream: a Redis consumer group, no Celery, no facequeue import.

Workers append each job's result envelope (JSON, in the field `envelope`) to the stream FACEQUEUE_RESULTS_STREAM
(default `facequeue:results`). A consumer group gives each entry to one consumer of the group, and remembers what
was delivered: an entry stays pending until the consumer acknowledges it with XACK. So run several copies for
throughput, restart one at any time, and it first takes back what it was given but never acknowledged. Anything that
speaks Redis can do this; here it is redis-py and the json module, nothing else.

The stream is capped (FACEQUEUE_RESULTS_STREAM_MAXLEN on the workers, about 100,000 entries): a consumer further
behind than that loses the oldest results.

    python examples/results_consumer.py --group reports [--consumer NAME] [--count N]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from typing import Any

import redis

STREAM = os.environ.get("FACEQUEUE_RESULTS_STREAM", "facequeue:results")


def handle(envelope: dict[str, Any]) -> None:
    """The service's own work on one result; here, one line per job. It must be safe to run twice (see below)."""
    response = envelope.get("response") or {}
    faces = len(response.get("FaceDetails") or response.get("FaceRecords") or response.get("FaceMatches") or [])
    outcome = envelope["error"]["code"] if envelope.get("error") else f"{faces} face(s)"
    print(f"{envelope['job_id']} {envelope['operation']} {envelope['status']} {outcome}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--group", required=True, help="consumer group: one per service that needs every result")
    parser.add_argument("--consumer", default=f"{socket.gethostname()}-{os.getpid()}", help="this copy's name")
    parser.add_argument("--count", type=int, default=0, help="stop after this many results (0: never)")
    args = parser.parse_args()
    r = redis.Redis.from_url(os.environ.get("FACEQUEUE_REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        # '$': a new group starts with results published from now on; an existing group keeps its place.
        r.xgroup_create(STREAM, args.group, id="$", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    print(f"listening on {STREAM} as {args.group}/{args.consumer}", flush=True)
    handled = 0
    cursor = "0"  # first: entries delivered to this consumer before a crash and never acknowledged
    while not args.count or handled < args.count:
        reply: Any = r.xreadgroup(args.group, args.consumer, {STREAM: cursor}, count=100, block=5000)
        entries = reply[0][1] if reply else []
        if cursor == "0" and not entries:
            cursor = ">"  # nothing left pending: from now on, only entries never delivered to anyone
            continue
        for entry_id, fields in entries:
            if fields:  # a pending entry trimmed from the stream comes back empty: nothing to do but ack
                handle(json.loads(fields[b"envelope"]))
                handled += 1
            # Acknowledge after the work: a crash in between redelivers the entry (at least once), never loses it.
            r.xack(STREAM, args.group, entry_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
