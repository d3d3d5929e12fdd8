"""Every file in examples/ runs as a user would run it: a subprocess against the test stack, configured by env."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from producer import FaceQueue, ProducerSettings, jobs
from testmedia.photos import grace_hopper
from tests.fixtures.workers import ROOT, WorkerProcess, worker_environment
from tests.integration.clirun import blocked_modules, cli_env

pytestmark = pytest.mark.timeout(300)

EXAMPLES = ROOT / "examples"


def run_example(name: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.fixture
def env(redis_url: str, worker_queue: str, worker: WorkerProcess) -> dict[str, str]:
    return cli_env(redis_url, worker_queue)


def test_web_handler_accepts_a_photo_and_serves_its_result(env: dict[str, str]) -> None:
    done = run_example("web_handler.py", "demo", str(grace_hopper()), env=env)
    assert done.returncode == 0, done.stderr
    posted, got = done.stdout.splitlines()
    assert posted.startswith("POST /photos -> 202 job ")
    job_id = posted.rsplit(" ", 1)[1]
    assert got == f"GET /jobs/{job_id} -> 200 succeeded: 1 face(s)"


def test_asyncio_example_awaits_one_job_then_a_batch(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a photo")
    done = run_example("asyncio_enqueue.py", str(grace_hopper()), str(bad), env=env)
    assert done.returncode == 1  # one photo of the batch failed, and the example says so
    lines = done.stdout.splitlines()
    assert lines[0] == f"one job: {grace_hopper()}: 1 face(s)"
    assert sorted(line.split(": ", 1)[1] for line in lines[1:]) == sorted(
        [f"{grace_hopper()}: 1 face(s)", f"{bad}: InvalidImageFormatException"]
    )


def test_results_consumer_reads_with_a_group_acknowledges_and_never_imports_celery(
    redis_url: str,
    local_rekognition_url: str,
    moto_s3_url: str,
    start_worker: Callable[..., WorkerProcess],
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    # Given a worker publishing to a results stream of this test's own
    queue, stream, group = (f"{kind}-{uuid.uuid4().hex[:8]}" for kind in ("consumer", "results", "reports"))
    start_worker(worker_environment(redis_url, local_rekognition_url, moto_s3_url, queue, results_stream=stream))
    # And the consumer running where importing Celery would fail
    no_celery = blocked_modules(tmp_path / "blocked", "celery", "kombu")
    env = cli_env(redis_url, queue, FACEQUEUE_RESULTS_STREAM=stream, PYTHONPATH=no_celery)
    consumer = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "results_consumer.py"), "--group", group, "--count", "2"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert consumer.stdout is not None
        assert consumer.stdout.readline().startswith(f"listening on {stream} as {group}/"), consumer.stderr
        # When two jobs run after the group exists
        with FaceQueue(ProducerSettings(redis_url=redis_url, queue=queue)) as fq:
            batch = fq.submit_many([jobs.detect_faces(grace_hopper()), jobs.detect_faces(b"not a photo")])
        output, errors = consumer.communicate(timeout=120)
    finally:
        if consumer.poll() is None:
            consumer.kill()
    # Then the consumer handled both, and acknowledged both
    assert consumer.returncode == 0, errors
    handled = {line.split()[0]: line for line in output.splitlines()}
    assert set(handled) == set(batch.job_ids)
    assert sorted(line.split(" ", 1)[1] for line in handled.values()) == [
        "DetectFaces failed InvalidImageFormatException",
        "DetectFaces succeeded 1 face(s)",
    ]
    assert redis_client.xpending(stream, group)["pending"] == 0


def test_index_a_folder_and_search_it(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "people"
    folder.mkdir()
    (folder / "grace.jpg").write_bytes(grace_hopper().read_bytes())
    collection = f"example-{uuid.uuid4().hex[:8]}"
    done = run_example("index_and_search.py", collection, str(folder), str(grace_hopper()), env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"indexed 1 face(s) from 1 photo(s) into {collection}"
    assert lines[1].startswith(f"{grace_hopper()} -> grace.jpg (")
    # Running it again reuses the collection
    again = run_example("index_and_search.py", collection, str(folder), str(grace_hopper()), env=env)
    assert again.returncode == 0, again.stderr
