"""Reading a stored video: container and codec checks, VideoMetadata, and frames sampled at a fixed rate.

Decoding uses OpenCV's FFmpeg backend, which the opencv-python-headless wheel ships: it decodes H.264 in MP4 and
MOV (its encoder side has no libx264, so tests write their H.264 clips with PyAV). Frames are sampled at
``SAMPLE_FPS`` per second of video: Rekognition reports faces about every 200 ms, and so does this server.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from local_rekognition.models.engine import RGBImage

SAMPLE_FPS = 5.0
"""Frames analysed per second of video (one every 200 ms), whatever the clip's own frame rate."""

MAX_DURATION_MS = 6 * 3600 * 1000
"""Rekognition Video takes stored videos of at most 6 hours."""

# An ISO base media file (MP4, MOV) has an "ftyp" box first; QuickTime files may start with "moov", "mdat",
# "wide" or "free" atoms instead.
_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")
_H264_FOURCCS = frozenset({"h264", "avc1", "H264", "AVC1", "x264", "X264"})


class UnsupportedVideo(Exception):
    """The object is not an H.264 MP4/MOV this server can decode; the message says what it is instead."""


@dataclass(frozen=True)
class VideoInfo:
    """What GetFace* reports as VideoMetadata, plus the frame count to walk."""

    codec: str
    format: str
    frame_rate: float
    width: int
    height: int
    duration_ms: int
    frame_count: int

    def metadata(self) -> dict[str, Any]:
        """Rekognition's VideoMetadata shape."""
        return {
            "Codec": self.codec,
            "DurationMillis": self.duration_ms,
            "Format": self.format,
            "FrameRate": self.frame_rate,
            "FrameHeight": self.height,
            "FrameWidth": self.width,
            "ColorRange": "LIMITED",
        }


def container_format(head: bytes) -> str:
    """ "QuickTime / MOV" or "MPEG-4" (Rekognition's Format strings) from a file's first bytes, else raise."""
    if len(head) < 12 or head[4:8] not in _ISO_BOXES:
        raise UnsupportedVideo("Unsupported codec/format: the object is not an MP4 or MOV file")
    is_quicktime = head[4:8] != b"ftyp" or head[8:12] == b"qt  "
    return "QuickTime / MOV" if is_quicktime else "MPEG-4"


def _fourcc(capture: cv2.VideoCapture) -> str:
    code = int(capture.get(cv2.CAP_PROP_FOURCC))
    return code.to_bytes(4, "little").decode("latin-1").strip("\x00 ")


class FrameSampler:
    """An open video yielding (timestamp ms, RGB frame) every 1/SAMPLE_FPS seconds; not thread-safe."""

    def __init__(self, path: Path, sample_fps: float = SAMPLE_FPS) -> None:
        with path.open("rb") as handle:
            fmt = container_format(handle.read(16))
        self._capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not self._capture.isOpened():
            raise UnsupportedVideo("Unsupported codec/format: the video does not open")
        fourcc = _fourcc(self._capture)
        if fourcc not in _H264_FOURCCS:
            self.close()
            raise UnsupportedVideo(f"Unsupported codec/format: the video is {fourcc or 'unknown'}, not H.264")
        fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if not (fps > 0 and count > 0 and width > 0 and height > 0):
            self.close()
            raise UnsupportedVideo("Unsupported codec/format: the video has no decodable frames")
        duration_ms = round(count * 1000 / fps)
        if duration_ms > MAX_DURATION_MS:
            self.close()
            raise UnsupportedVideo(f"Video is longer than the limit of {MAX_DURATION_MS // 3_600_000} hours")
        self.info = VideoInfo("h264", fmt, round(fps, 3), width, height, duration_ms, count)
        self._step_ms = 1000.0 / sample_fps
        self._index = 0
        self._next_ms = 0.0

    def next_frame(self) -> tuple[int, RGBImage] | None:
        """The next sampled frame and its timestamp in ms, or None at the end; grabs skipped frames undecoded."""
        while True:
            if not self._capture.grab():
                return None
            index = self._index
            self._index += 1
            timestamp_ms = index * 1000.0 / self.info.frame_rate
            if timestamp_ms + 1e-6 < self._next_ms:
                continue
            ok, bgr = self._capture.retrieve()
            if not ok or bgr is None:
                return None
            self._next_ms += self._step_ms
            while self._next_ms <= timestamp_ms:
                self._next_ms += self._step_ms
            return round(timestamp_ms), np.ascontiguousarray(bgr[:, :, ::-1])

    def frames(self) -> Iterator[tuple[int, RGBImage]]:
        """Every sampled frame, in order."""
        while (frame := self.next_frame()) is not None:
            yield frame

    def close(self) -> None:
        """Release the decoder."""
        self._capture.release()
