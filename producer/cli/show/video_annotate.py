"""`facequeue video --annotate out.mp4`: the clip with each face's box and name drawn where the result put it.

The video is read from S3 (boto3) and re-encoded with OpenCV (the opencv-python-headless wheel, in the `local`
extra). That wheel has no H.264 encoder: the copy is MPEG-4 Part 2 ('mp4v'), which common players show.
Each sampled face stays drawn until the next sample (Rekognition reports faces every ~200 ms, not every frame).
"""

from __future__ import annotations

import bisect
import tempfile
from pathlib import Path
from typing import Any

from producer.contract import ResultEnvelope
from producer.jobs import parse_s3_url
from producer.video import FaceRow, face_rows

HOLD_MS = 400
"""A face is drawn for this long after its sample unless a newer sample replaces it."""


BOX_BGR = (255, 0, 255)
"""Magenta: a colour faces and most scenes lack, so the boxes stand out (and tests can find them)."""


class AnnotationUnavailable(RuntimeError):
    """Annotating needs boto3 and OpenCV; the message says what to install."""


def _label(row: FaceRow) -> str:
    if row.external_image_id or row.face_id:
        name = row.external_image_id or (row.face_id or "")[:8]
        return f"{name} {row.similarity:.0f}%" if row.similarity is not None else name
    return f"person {row.person}" if row.person is not None else f"{row.confidence:.0f}%"


def annotate_video(video_url: str, envelope: ResultEnvelope, target: Path) -> Path:
    """Download ``video_url``, draw ``envelope``'s faces on every frame, write ``target``; return it."""
    try:
        import boto3
        import cv2
    except ImportError as missing:
        raise AnnotationUnavailable(
            f"--annotate needs boto3 and OpenCV ({missing.name} is missing): pip install 'facequeue[all]'"
        ) from None
    source = parse_s3_url(video_url)
    rows = sorted(face_rows(envelope), key=lambda row: row.timestamp_ms)
    times = sorted({row.timestamp_ms for row in rows})
    by_time: dict[int, list[FaceRow]] = {}
    for row in rows:
        by_time.setdefault(row.timestamp_ms, []).append(row)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(suffix=Path(source.key).suffix or ".mp4") as local:
        extra: dict[str, Any] = {"ExtraArgs": {"VersionId": source.version}} if source.version else {}
        boto3.client("s3").download_fileobj(source.bucket, source.key, local, **extra)
        local.flush()
        capture = cv2.VideoCapture(local.name)
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        writer = cv2.VideoWriter(str(target), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
        index = 0
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                now_ms = index * 1000.0 / fps
                index += 1
                at = bisect.bisect_right(times, now_ms) - 1
                if at >= 0 and now_ms - times[at] <= HOLD_MS:
                    for row in by_time[times[at]]:
                        left, top = int(row.left * width), int(row.top * height)
                        right, bottom = int((row.left + row.width) * width), int((row.top + row.height) * height)
                        cv2.rectangle(frame, (left, top), (right, bottom), BOX_BGR, 2)
                        cv2.putText(
                            frame,
                            _label(row),
                            (left, max(12, top - 4)),
                            cv2.FONT_HERSHEY_SIMPLEX,
                            0.45,
                            BOX_BGR,
                            1,
                            cv2.LINE_AA,
                        )
                writer.write(frame)
        finally:
            capture.release()
            writer.release()
    return target
