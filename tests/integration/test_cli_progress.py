"""Watching a batch: the live progress bar, the summary table, and Ctrl-C detaching without cancelling."""

from __future__ import annotations

import re
import signal
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from testmedia.photos import grace_hopper
from tests.fixtures.faultproxy import HoldProbeReply
from tests.fixtures.redis import RedisServer, wait_until
from tests.fixtures.standin import StartStandIn
from tests.fixtures.workers import WorkerProcess, worker_environment
from tests.integration.clirun import batch_id, cli_env, json_lines, run_cli, start_interruptible_cli, unique_photo

pytestmark = pytest.mark.timeout(300)

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def summary_rows(stderr: str) -> dict[str, str]:
    """The summary table's rows as {what: value}, read from rich's box-drawn text."""
    rows: dict[str, str] = {}
    for line in ANSI.sub("", stderr).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if len(cells) == 2 and cells[0]:
            rows[cells[0]] = cells[1]
    return rows


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Two photos no cache has seen and one file that is not a photo."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        unique_photo(grace_hopper(), folder / name, seed=uuid.uuid4().int)
    (folder / "notes.jpg").write_text("not a photo")
    return folder


def test_forced_progress_bar_on_stderr_and_pure_json_lines_on_stdout(
    redis_url: str, worker_queue: str, worker: WorkerProcess, photos: Path
) -> None:
    env = cli_env(redis_url, worker_queue)
    done = run_cli("analyze", str(photos), "--wait", "--format", "jsonl", "--progress", "always", env=env)
    assert done.returncode == 1  # notes.jpg failed
    # stdout: nothing but one envelope per photo
    assert len(json_lines(done.stdout)) == 3 and "\x1b" not in done.stdout
    # stderr: the bar was drawn (terminal control codes, a count out of 3, the failures and ETA columns)...
    plain = ANSI.sub("", done.stderr)
    assert "\x1b[" in done.stderr
    assert re.search(r"batch \w{12} .*[0-3]/3 \d failed .*ETA", plain), plain
    # ...and the summary table follows
    rows = summary_rows(done.stderr)
    assert rows["photos"] == "3 (2 succeeded, 1 failed)"
    assert rows["faces"] == "2"
    assert rows["failed: InvalidImageFormatException"] == "1"
    assert rows["cache hits"] == "0 of 3"


def test_without_a_terminal_there_is_no_bar_but_the_summary_counts_cache_hits(
    redis_url: str,
    moto_s3_url: str,
    local_rekognition_url: str,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    # Given a worker with its response cache on (the session's worker has it off)
    queue = f"cached-{uuid.uuid4().hex[:8]}"
    start_worker(worker_environment(redis_url, local_rekognition_url, moto_s3_url, queue, cache_ttl_s="600"))
    env = cli_env(redis_url, queue)
    photo = unique_photo(grace_hopper(), tmp_path / "new.jpg", seed=uuid.uuid4().int)
    first = run_cli("analyze", str(photo), "--wait", env=env)
    again = run_cli("analyze", str(photo), "--wait", env=env)
    assert first.returncode == again.returncode == 0
    assert "\x1b[" not in first.stderr and "ETA" not in first.stderr
    # The same photo and parameters a second time: served from the worker's cache
    assert summary_rows(first.stderr)["cache hits"] == "0 of 1"
    assert summary_rows(again.stderr)["cache hits"] == "1 of 1"
    assert summary_rows(again.stderr)["faces"] == "1"


def test_ctrl_c_detaches_the_jobs_keep_running_and_status_resumes_with_the_same_display(
    redis_url: str,
    moto_s3_url: str,
    start_standin: StartStandIn,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    # Given a worker whose Rekognition takes minutes to answer, so the job is still running when Ctrl-C comes
    standin = start_standin("--delay-ms", "600000")
    queue = f"slow-{uuid.uuid4().hex[:8]}"
    start_worker(
        worker_environment(
            redis_url, standin.url, moto_s3_url, queue, max_attempts="1", rekognition_read_timeout_s="60"
        )
    )
    env = cli_env(redis_url, queue)
    photo = unique_photo(grace_hopper(), tmp_path / "slow.jpg", seed=uuid.uuid4().int)
    cli = start_interruptible_cli("analyze", str(photo), "--wait", "--progress", "always", env=env)
    try:
        # When the progress bar is up (the CLI is watching), the user presses Ctrl-C
        assert cli.stderr is not None
        seen = ""
        while "ETA" not in seen:
            chunk = cli.stderr.read(1)
            assert chunk, f"the CLI exited before watching: {seen}"
            seen += chunk
        cli.send_signal(signal.SIGINT)
        _, rest = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
    stderr = seen + rest
    batch = batch_id(stderr)
    # Then the CLI detaches: exit 130, and it says how to resume
    assert cli.returncode == 130
    assert f"detached; the jobs keep running. Resume watching with: facequeue status {batch} --wait" in stderr
    assert "Traceback" not in stderr
    # And the job was not cancelled: the worker calls the endpoint after the CLI left, and the job stays pending
    wait_until(lambda: standin.stats()["calls"] == 1, 60, "the worker to call Rekognition")
    status = run_cli("status", batch, env=env)
    assert '"pending": 1' in status.stdout
    # When the endpoint goes away, the worker finishes the job (failed); `status --wait` shows the same display
    standin.process.terminate()
    standin.process.wait(timeout=10)
    resumed = run_cli("status", batch, "--wait", "--progress", "always", "--timeout", "120", env=env)
    assert resumed.returncode == 1
    assert re.search(r"batch \w{12} .*1/1", ANSI.sub("", resumed.stderr)), resumed.stderr
    assert summary_rows(resumed.stderr)["photos"] == "1 (0 succeeded, 1 failed)"
    assert '"finished": true' in resumed.stdout


def test_ctrl_c_while_the_worker_probe_waits_on_redis_detaches(
    start_redis: Callable[..., RedisServer], tmp_path: Path
) -> None:
    # Given a Redis that stops answering the CLI's worker probe (Celery's inspect) once it waits for the replies, as
    # a stalled Redis or network would; kombu, interrupted there, waits for that reply forever as it closes
    server = start_redis()
    proxy = HoldProbeReply(server.port).start()
    env = cli_env(proxy.url, f"unserved-{uuid.uuid4().hex[:8]}")
    photo = unique_photo(grace_hopper(), tmp_path / "queued.jpg", seed=uuid.uuid4().int)
    cli = start_interruptible_cli("analyze", str(photo), "--wait", "--progress", "always", env=env)
    try:
        # When the user presses Ctrl-C while the probe waits (the batch is quiet: the first idle second probes)
        assert proxy.held.wait(120), "the CLI never asked the workers which queues they consume"
        cli.send_signal(signal.SIGINT)
        _, stderr = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
        proxy.stop()
    # Then it detaches as it does at any other moment: exit 130, and it says how to resume
    assert cli.returncode == 130, stderr[-2000:]
    resume = f"facequeue status {batch_id(stderr)} --wait"
    assert f"detached; the jobs keep running. Resume watching with: {resume}" in stderr
    assert "Traceback" not in stderr
