"""A short real clip in S3 for tests that need a video job but not a particular story."""

from __future__ import annotations

from typing import Any

from testmedia import clips
from testmedia.photos import grace_hopper


def video_clip_in_s3(s3: Any, bucket: str, key: str = "clips/grace.mp4", seconds: float = 1.0) -> dict[str, Any]:
    """Upload ``seconds`` of a slow pan over Grace Hopper's portrait (H.264, 320x240, 10 fps); the Video member."""
    frames = clips.frames(grace_hopper(), clips.pan, seconds=seconds, fps=10, size=(320, 240))
    s3.put_object(Bucket=bucket, Key=key, Body=clips.h264(frames, 10))
    return {"S3Object": {"Bucket": bucket, "Name": key}}
