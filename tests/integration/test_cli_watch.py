"""`facequeue watch`: a live source sampled through the queue into track events (real worker, real endpoint)."""

from __future__ import annotations

import uuid
from pathlib import Path

from testmedia import clips
from testmedia.mjpeg import mjpeg_stream
from testmedia.photos import grace_hopper
from tests.fixtures.aws import rekognition_client
from tests.fixtures.workers import WorkerProcess
from tests.integration.clirun import cli_env, json_lines, run_cli

SIZE = (320, 240)


def test_watch_an_mjpeg_camera_one_person_is_one_track(
    redis_url: str, worker_queue: str, worker: WorkerProcess
) -> None:
    # Given an IP camera's MJPEG stream: 2 s of a person in a slowly moving shot, then 2.5 s of an empty scene
    frames = clips.frames(grace_hopper(), clips.pan, seconds=2, fps=10, size=SIZE) + clips.blank(2.5, 10, SIZE)
    with mjpeg_stream(frames, fps=10) as url:
        # When facequeue watches it at 4 frames per second
        done = run_cli("watch", url, "--fps", "4", "--format", "jsonl", env=cli_env(redis_url, worker_queue))
    # Then the person is one track that appeared at the start and left, with the delay from frame to event
    assert done.returncode == 0, done.stderr
    events = json_lines(done.stdout)
    appeared = [e for e in events if e["event"] == "appeared"]
    left = [e for e in events if e["event"] == "left"]
    assert len(appeared) == 1, events
    assert appeared[0]["track"] == 0 and appeared[0]["at_s"] < 1.0
    assert 0 < appeared[0]["delay_ms"] < 10_000
    assert len(left) == 1 and left[0]["track"] == 0 and left[0]["seen_s"] >= 1.0, events
    assert "frame → result p50" in done.stderr


def test_watch_a_video_file_in_real_time_identifies_the_track(
    redis_url: str, worker_queue: str, worker: WorkerProcess, local_rekognition_url: str, tmp_path: Path
) -> None:
    rekognition = rekognition_client(local_rekognition_url)
    collection = f"watch-{uuid.uuid4().hex[:8]}"
    rekognition.create_collection(CollectionId=collection)
    rekognition.index_faces(
        CollectionId=collection, Image={"Bytes": grace_hopper().read_bytes()}, ExternalImageId="grace"
    )
    clip = tmp_path / "walk-by.mp4"
    frames = clips.blank(0.5, 10, SIZE) + clips.frames(grace_hopper(), clips.zoom, seconds=2, fps=10, size=SIZE)
    clip.write_bytes(clips.h264(frames, 10))
    done = run_cli("watch", str(clip), "--fps", "4", "--search", collection, env=cli_env(redis_url, worker_queue))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sum("appeared" in line for line in lines) == 1, done.stdout
    assert any("track 0 identified as grace" in line for line in lines), done.stdout
    assert any("track 0 (grace) left" in line for line in lines), done.stdout


def test_when_results_fall_behind_watch_drops_frames_and_says_so(redis_url: str, tmp_path: Path) -> None:
    # Given a queue no worker consumes (results never come) and room for one pending frame
    queue = f"watch-stalled-{uuid.uuid4().hex[:8]}"
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(clips.h264(clips.frames(grace_hopper(), clips.still, seconds=2, fps=10, size=SIZE), 10))
    done = run_cli(
        "watch",
        str(clip),
        "--fps",
        "5",
        "--max-pending",
        "1",
        "--result-timeout",
        "0.5",
        "--format",
        "jsonl",
        env=cli_env(redis_url, queue),
    )
    # Then one frame was submitted, the rest dropped and counted, and the missing result reported
    assert done.returncode == 0, done.stderr
    events = json_lines(done.stdout)
    dropped = [e for e in events if e["event"] == "dropped"]
    assert dropped and dropped[-1]["total"] >= 5, events
    assert [e["code"] for e in events if e["event"] == "error"] == ["NoResult"]
    assert "1 submitted" in done.stderr and "dropped" in done.stderr
