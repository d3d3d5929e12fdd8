"""Enqueue and await from asyncio code: one job awaited on its own, then a batch consumed as it completes.

AsyncFaceQueue never blocks the event loop on Redis, so a bot, an aiohttp/FastAPI handler or any asyncio service
can queue work and keep serving while workers run it. Waiting costs no polling: `result` listens for the job's
completion notice, and `iter_results` reads the batch's completion stream.

    python examples/asyncio_enqueue.py PHOTO [PHOTO...]
"""

from __future__ import annotations

import asyncio
import sys

from producer import AsyncFaceQueue, jobs


async def main(photos: list[str]) -> int:
    async with AsyncFaceQueue() as fq:  # settings from FACEQUEUE_* environment variables
        # One job: submit, do other work, await its result when it is needed.
        handle = await fq.submit(jobs.detect_faces(photos[0]))
        other_work = asyncio.sleep(0)  # stands for whatever else the service does meanwhile
        envelope, _ = await asyncio.gather(fq.result(handle, timeout_s=120), other_work)
        print(f"one job: {envelope.label}: {envelope.face_count()} face(s)")

        # Many jobs: one batch (one Redis round trip per 500 jobs), results in the order they complete.
        # Reading the files is blocking I/O: for big folders do it in asyncio.to_thread.
        batch = await fq.submit_many(jobs.detect_faces(p, attributes="ALL") for p in photos)
        failed = 0
        async for envelope in fq.iter_results(batch.batch_id, timeout_s=300):
            failed += envelope.error is not None
            outcome = envelope.error.code if envelope.error else f"{envelope.face_count()} face(s)"
            print(f"batch {batch.batch_id[:8]}: {envelope.label}: {outcome}")
        return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(asyncio.run(main(sys.argv[1:])))
