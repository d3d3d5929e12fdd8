"""A job waits for capacity inside the worker without its job timeout running (issue 25, defect 6): the timeout is
for the call, not for the queueing before it. Through real workers, the shared rate limiter in a real Redis and
the counting stand-in."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from producer import JobStatus, jobs
from tests.fixtures.chaos import PHOTO

pytestmark = pytest.mark.timeout(180)


def test_jobs_queued_behind_the_rate_limit_wait_rather_than_time_out(stack: Callable[..., tuple]) -> None:
    # Given a worker that may call DetectFaces 5 times a second and gives a job 2 s, with 64 jobs in flight
    fq, standin, start = stack("--delay-ms", "50", job_timeout_s="2", rate_limits_tps='{"DetectFaces": 5}')
    start(concurrency=64)
    # When 40 jobs arrive at once: the last waits ~8 s for its slot, its call takes 50 ms
    batch = fq.submit_many(jobs.detect_faces(PHOTO + i.to_bytes(2, "big")) for i in range(40))
    results = fq.wait(batch.batch_id, timeout_s=120)
    # Then every job waited its turn and succeeded, one call each
    failures = Counter(r.error.code for r in results if r.error is not None)
    assert failures == Counter(), failures
    assert all(r.status is JobStatus.SUCCEEDED for r in results)
    assert standin.stats()["calls"] == 40
