"""Errors for people: each problem is one line saying what is wrong and what to do, a non-zero exit, no traceback."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from producer.contract import Operation, queue_for
from testmedia.photos import grace_hopper
from tests.fixtures.redis import free_port
from tests.fixtures.workers import WorkerProcess, worker_environment
from tests.integration.clirun import batch_id, cli_env, json_lines, run_cli, unique_photo

pytestmark = pytest.mark.timeout(300)


def one_line(stderr: str) -> str:
    """The single line a problem prints (after the 'submitted' notice, if any)."""
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("submitted ")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_no_worker_on_the_queue_is_said_and_the_jobs_stay_queued(
    redis_url: str,
    redis_client: redis.Redis,
    moto_s3_url: str,
    local_rekognition_url: str,
    start_worker: Callable[..., WorkerProcess],
    worker: WorkerProcess,
) -> None:
    # Given a queue nobody consumes (the session's worker runs, on another queue)
    queue = f"nobody-{uuid.uuid4().hex[:8]}"
    env = cli_env(redis_url, queue)
    # When a photo is analysed and waited for
    done = run_cli("analyze", str(grace_hopper()), "--wait", "--format", "jsonl", env=env)
    # Then the CLI says so in one line, exits 3, prints no results, and the job is still in the queue
    assert done.returncode == 3
    line = one_line(done.stderr)
    batch = batch_id(done.stderr)
    assert f"no worker consumes queue '{queue}'" in line
    assert f"facequeue status {batch} --wait" in line
    assert done.stdout == ""
    assert redis_client.llen(queue_for(queue, Operation.DETECT_FACES)) == 1
    # And once a worker starts on that queue, the same batch finishes
    start_worker(worker_environment(redis_url, local_rekognition_url, moto_s3_url, queue))
    resumed = run_cli("status", batch, "--wait", "--timeout", "120", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert '"succeeded": 1' in resumed.stdout


@pytest.mark.parametrize(
    ("problem", "code", "advice"),
    [
        ("no-credentials", "NoCredentials", "give its environment AWS_PROFILE"),
        ("unreachable", "EndpointConnectionError", "cannot reach Rekognition"),
    ],
)
def test_a_misconfigured_worker_fails_jobs_with_a_hint(
    problem: str,
    code: str,
    advice: str,
    redis_url: str,
    moto_s3_url: str,
    local_rekognition_url: str,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    # Given a worker without AWS credentials, or one pointed at an endpoint nobody listens on
    queue = f"broken-{uuid.uuid4().hex[:8]}"
    url = local_rekognition_url if problem == "no-credentials" else f"http://127.0.0.1:{free_port()}"
    env = worker_environment(redis_url, url, moto_s3_url, queue, max_attempts="1")
    if problem == "no-credentials":
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.pop(key)
    start_worker(env)
    # When a photo no cache has seen is analysed
    photo = unique_photo(grace_hopper(), tmp_path / "grace.jpg", seed=uuid.uuid4().int)
    done = run_cli("analyze", str(photo), "--wait", "--format", "jsonl", env=cli_env(redis_url, queue))
    # Then the job failed with the worker's code, and the CLI adds one line of advice
    assert done.returncode == 1
    [envelope] = json_lines(done.stdout)
    assert envelope["error"]["code"] == code
    hints = [line for line in done.stderr.splitlines() if line.startswith("facequeue:")]
    assert hints == [f"facequeue: 1 job(s) failed with {code}: " + hints[0].split(": ", 2)[2]]
    assert advice in hints[0]
    assert "Traceback" not in done.stderr


def test_a_missing_bucket_is_said_when_listing_and_when_a_job_reads_it(
    redis_url: str, worker_queue: str, worker: WorkerProcess, moto_s3_url: str
) -> None:
    env = cli_env(redis_url, worker_queue, AWS_ENDPOINT_URL_S3=moto_s3_url)
    bucket = f"no-such-bucket-{uuid.uuid4().hex[:8]}"
    # Listing a prefix of a missing bucket: nothing can be submitted, exit 2
    listing = run_cli("analyze", f"s3://{bucket}/people/", env=env)
    assert listing.returncode == 2
    assert one_line(listing.stderr) == (
        f"facequeue: s3://{bucket}: S3 has no such bucket; check its name (`aws s3 ls`) and AWS_ENDPOINT_URL_S3"
    )
    # One object of a missing bucket: the worker fails the job, the CLI explains the code
    job = run_cli("analyze", f"s3://{bucket}/grace.jpg", "--wait", env=env)
    assert job.returncode == 1
    assert "failed with InvalidS3ObjectException: the S3 bucket or key does not exist" in job.stderr


def test_a_missing_collection_is_explained(redis_url: str, worker_queue: str, worker: WorkerProcess) -> None:
    env = cli_env(redis_url, worker_queue)
    done = run_cli("collection", "search", f"missing-{uuid.uuid4().hex[:8]}", str(grace_hopper()), env=env)
    assert done.returncode == 1
    assert "failed with ResourceNotFoundException: the collection does not exist; create it with" in done.stderr


def test_debug_adds_the_traceback_and_keeps_the_line_and_the_exit_code(worker_queue: str, tmp_path: Path) -> None:
    env = cli_env("redis://127.0.0.1:1/0", worker_queue)
    quiet = run_cli("analyze", str(grace_hopper()), env=env)
    loud = run_cli("analyze", str(grace_hopper()), "--debug", env=env)
    assert quiet.returncode == loud.returncode == 3
    assert one_line(quiet.stderr).startswith("facequeue: Redis does not answer at redis://127.0.0.1:1/0; start it")
    assert "Traceback" in loud.stderr and loud.stderr.rstrip().endswith(quiet.stderr.strip())


def test_a_bad_setting_names_the_variable(worker_queue: str) -> None:
    done = run_cli("status", "x", env=cli_env("http://not-redis", worker_queue))
    assert done.returncode == 2
    assert one_line(done.stderr).startswith("facequeue: FACEQUEUE_REDIS_URL is not valid:")
