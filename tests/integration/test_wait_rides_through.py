"""`--wait` must not give up with "no worker consumes queue" while workers are there (issue 13, defect 3): not after
a Redis restart, and not in signed mode, where the worker probe has to be signed like any other message."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from producer import FaceQueue, jobs
from testmedia.photos import grace_hopper
from tests.fixtures.chaos import PHOTO, account
from tests.fixtures.redis import RedisServer, wait_until
from tests.fixtures.workers import ROOT
from tests.integration.clirun import cli_env
from tests.integration.test_redis_acl import acl_urls  # noqa: F401  (the fixture)
from tests.integration.test_signing import make_identity

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]


def _watch(env: dict[str, str], batch_id: str) -> subprocess.Popen[str]:
    """`facequeue status BATCH --wait` as a user runs it, in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "producer.cli", "status", batch_id, "--wait", "--timeout", "180"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_wait_rides_through_a_redis_restart(stack: Callable[..., tuple], tmp_path: Path) -> None:
    # Given a Redis of our own, a worker on a slow endpoint (3 s a call), and a user watching the batch
    server = RedisServer(tmp_path)
    server.start()
    try:
        fq, standin, start = stack("--delay-ms", "3000", redis_at=server.url)
        start(concurrency=4)
        batch = fq.submit_many(jobs.detect_faces(PHOTO, label=str(i)) for i in range(16))
        watcher = _watch(cli_env(server.url, fq.settings.queue), batch.batch_id)
        wait_until(lambda: standin.stats().get("calls", 0) >= 4, 60, "the first calls")
        # When Redis restarts under the worker, the producer and the watcher
        server.restart()
        _out, err = watcher.communicate(timeout=200)
        # Then the watcher waits the batch out and exits 0; nothing was lost or published twice
        assert watcher.returncode == 0, err
        assert "no worker consumes" not in err
        summary = account(fq.redis, fq, batch)
        assert (summary["lost"], summary["duplicated"], summary["succeeded"]) == (0, 0, 16)
    finally:
        server.stop()


def test_wait_works_in_signed_mode_through_quiet_spells(stack: Callable[..., tuple], tmp_path: Path) -> None:
    # Given signing workers and producer, and an endpoint slow enough (3 s a call) that the batch is quiet for >1 s
    key, cert = make_identity(tmp_path, "both")
    signing = {"signing_key": key, "signing_cert": cert, "signing_cert_store": str(tmp_path / "*.pem")}
    fq, _standin, start = stack("--delay-ms", "3000", **signing)
    start(concurrency=2)
    signed = fq.settings.model_copy(update=signing)

    with FaceQueue(signed) as producer:
        batch = producer.submit_many(jobs.detect_faces(PHOTO, label=str(i)) for i in range(4))
    env = cli_env(
        str(fq.settings.redis_url), fq.settings.queue, **{f"FACEQUEUE_{k.upper()}": v for k, v in signing.items()}
    )
    # When a user watches it with --wait
    out, err = _watch(env, batch.batch_id).communicate(timeout=200)
    # Then the watch sees the signing worker and waits the batch out
    assert "no worker consumes" not in err
    assert '"succeeded": 4' in out, err


def test_a_least_privilege_producer_still_learns_no_worker_consumes_the_queue(
    acl_urls: Callable[[str], str],  # noqa: F811
) -> None:
    # Given the documented producer user, which may not read kombu's unacked keys, and a queue nobody consumes
    url = acl_urls("facequeue-producer")
    queue = f"facequeue-nobody-{uuid.uuid4().hex[:8]}"
    # When it submits a photo and waits (with a timeout, so a wait that cannot decide ends too)
    done = subprocess.run(
        [sys.executable, "-m", "producer.cli", "analyze", str(grace_hopper()), "--wait", "--timeout", "40"],
        env=cli_env(url, queue),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then it says that no worker consumes the queue (the probe decides alone), not that time ran out
    assert done.returncode == 3
    assert f"no worker consumes queue '{queue}'" in done.stderr, done.stderr
