"""Short test videos made from still photos: pans and zooms written as H.264 MP4/MOV with PyAV.

OpenCV's wheel decodes H.264 but has no H.264 encoder (VideoWriter with 'avc1' does not open here; 'mp4v'
writes MPEG-4 Part 2), so clips are encoded with PyAV, whose wheel ships libx264. Low resolution, few seconds:
the test machine's two cores are shared.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

Frame = npt.NDArray[np.uint8]
Camera = Callable[[float], tuple[float, float, float]]
"""Progress 0..1 → (centre x, centre y as fractions of the photo, zoom ≥ 1)."""


def still(_: float) -> tuple[float, float, float]:
    """A camera that does not move."""
    return 0.5, 0.5, 1.0


def pan(_: float) -> tuple[float, float, float]:
    """Slide across the photo's middle at 1.3x."""
    return 0.4 + 0.2 * _, 0.5, 1.3


def zoom(progress: float) -> tuple[float, float, float]:
    """Push in from the whole photo to 1.6x."""
    return 0.5, 0.45, 1.0 + 0.6 * progress


def drift(progress: float) -> tuple[float, float, float]:
    """Ease in slightly (1x to 1.15x) while sliding a little: every face stays in the picture."""
    return 0.48 + 0.04 * progress, 0.5, 1.0 + 0.15 * progress


def frames(photo: Path, camera: Camera, *, seconds: float, fps: int, size: tuple[int, int]) -> list[Frame]:
    """RGB frames of ``size`` (w, h) looking at ``photo`` through ``camera``."""
    image = np.asarray(Image.open(photo).convert("RGB"))
    height, width = image.shape[:2]
    out_w, out_h = size
    count = round(seconds * fps)
    result: list[Frame] = []
    for n in range(count):
        cx, cy, scale = camera(n / max(1, count - 1))
        # The largest window of the output's aspect ratio that fits the photo, shrunk by the zoom.
        window_w = min(width, height * out_w / out_h) / scale
        window_h = window_w * out_h / out_w
        left = min(max(0.0, cx * width - window_w / 2), width - window_w)
        top = min(max(0.0, cy * height - window_h / 2), height - window_h)
        crop = image[int(top) : int(top + window_h), int(left) : int(left + window_w)]
        result.append(cv2.resize(crop, (out_w, out_h), interpolation=cv2.INTER_AREA))
    return result


def blank(seconds: float, fps: int, size: tuple[int, int]) -> list[Frame]:
    """Grey frames with no face."""
    return [np.full((size[1], size[0], 3), 128, np.uint8) for _ in range(round(seconds * fps))]


def h264(clip: list[Frame], fps: int, container: str = "mp4") -> bytes:
    """The frames as an H.264 video in an MP4 or MOV container."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.height, stream.width = clip[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for pixels in clip:
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def mpeg4_part2(clip: list[Frame], fps: int, path: Path) -> bytes:
    """The frames as MPEG-4 Part 2 ('mp4v', what OpenCV's VideoWriter can write here) in an MP4: not H.264."""
    height, width = clip[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    for pixels in clip:
        writer.write(np.ascontiguousarray(pixels[:, :, ::-1]))
    writer.release()
    return path.read_bytes()
