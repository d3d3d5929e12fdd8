"""`facequeue watch SOURCE`: faces in a live source, through the queue, as track events.

SOURCE is a camera index (``0``), an RTSP or HTTP (MJPEG) URL, or a video file played in real time. Frames are
sampled at ``fps``, sent as DetectFaces jobs (JPEG blobs), and their boxes joined into tracks (live_tracks.py), so
one person walking through is one track. With ``search`` each new track's face is cropped and sent once as a
SearchFacesByImage job. Events: ``appeared``, ``identified``, ``left``, ``dropped``, ``error``, each with the time
in the source and, for results, the delay from frame capture to the event.

Backpressure: at most ``max_pending`` frames wait for results; a sampled frame arriving while that many wait is
dropped and counted (a ``dropped`` event at most once a second), never queued without bound.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from producer import jobs
from producer.cli.show.live_tracks import Box, Track, Tracker, box_of
from producer.client import FaceQueue
from producer.contract import JobStatus, ResultEnvelope, result_key

Event = dict[str, Any]

SEARCH_SIDE_MIN_PX = 160
"""A face crop sent to SearchFacesByImage is scaled up to at least this on its short side (Rekognition needs 80)."""


class SourceUnavailable(RuntimeError):
    """The source does not open (no camera, bad URL, unreadable file); the message names it."""


@dataclass
class _Pending:
    job_id: str
    at_s: float
    captured: float
    frame: Any = None


@dataclass
class WatchStats:
    """What a watch did, for its last line."""

    sampled: int = 0
    submitted: int = 0
    dropped: int = 0
    tracks: int = 0
    delays_ms: list[float] = field(default_factory=list)


def open_source(source: str) -> tuple[Any, bool]:
    """An OpenCV capture for SOURCE and whether it is a file (played in real time)."""
    try:
        import cv2
    except ImportError:
        raise SourceUnavailable("watch needs OpenCV: pip install 'facequeue[cli]'") from None
    is_file = not source.isdigit() and "://" not in source
    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not capture.isOpened():
        raise SourceUnavailable(f"{source}: cannot open it as a camera, stream or video file")
    return capture, is_file


def _crop(frame: Any, box: Box) -> bytes:
    import cv2

    height, width = frame.shape[:2]
    left, top, w, h = box[0] * width, box[1] * height, box[2] * width, box[3] * height
    # Half a face of margin each side: the detector behind SearchFacesByImage needs context around the face.
    x0, y0 = max(0, int(left - w / 2)), max(0, int(top - h / 2))
    x1, y1 = min(width, int(left + w * 1.5)), min(height, int(top + h * 1.5))
    crop = frame[y0:y1, x0:x1]
    scale = max(1.0, SEARCH_SIDE_MIN_PX / max(1, min(crop.shape[:2])))
    if scale > 1.0:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    ok, jpeg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return bytes(jpeg.tobytes()) if ok else b""


class Watcher:
    """Samples a source, submits frames, follows results and emits track events."""

    def __init__(
        self,
        fq: FaceQueue,
        emit: Callable[[Event], None],
        *,
        fps: float = 2.0,
        max_pending: int = 8,
        search: str | None = None,
        threshold: float = 80.0,
    ) -> None:
        self.fq, self.emit = fq, emit
        self.fps, self.max_pending = fps, max_pending
        self.search, self.threshold = search, threshold
        self.tracker = Tracker(gap_s=max(1.5, 3 / fps))
        self.stats = WatchStats()
        self._pending: deque[_Pending] = deque()
        self._identifying: dict[str, tuple[Track, float]] = {}
        self._reported_drops = 0
        self._last_drop_report = 0.0
        self._drops_lock = threading.Lock()

    def run(self, source: str, *, duration_s: float | None = None, result_timeout_s: float = 60.0) -> WatchStats:
        """Watch until the source ends, ``duration_s`` passes or Ctrl-C; then end every track.

        Results still pending at the end are waited for up to ``result_timeout_s``, then reported as errors.
        """
        capture, is_file = open_source(source)
        samples: queue.Queue[tuple[Any, float] | None] = queue.Queue(maxsize=self.max_pending)
        stop = threading.Event()
        started = time.monotonic()
        # A reader thread takes frames as the source delivers them, so results are handled as they land (the
        # main loop waits on the samples for 10 ms at most), not once per source frame.
        reader = threading.Thread(
            target=self._read, args=(capture, is_file, started, samples, stop), name="watch-reader", daemon=True
        )
        reader.start()
        try:
            while duration_s is None or time.monotonic() - started < duration_s:
                self._collect()
                try:
                    sample = samples.get(timeout=0.01)
                except queue.Empty:
                    continue
                if sample is None:
                    break
                self.stats.sampled += 1
                self._submit(*sample)
        except KeyboardInterrupt:
            self.emit({"event": "stopped", "at_s": round(time.monotonic() - started, 3)})
        finally:
            stop.set()
            reader.join(timeout=5)
            capture.release()
        self._drain(timeout_s=result_timeout_s)
        for track in self.tracker.finish():
            self._left(track)
        return self.stats

    def _read(
        self,
        capture: Any,
        is_file: bool,
        started: float,
        samples: queue.Queue[tuple[Any, float] | None],
        stop: threading.Event,
    ) -> None:
        import cv2

        next_sample_s = 0.0
        while not stop.is_set():
            ok, frame = capture.read()
            if not ok:
                break
            now_s = time.monotonic() - started
            at_s = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000 if is_file else now_s
            if is_file and at_s > now_s:
                stop.wait(at_s - now_s)  # a file plays in real time, as a camera would deliver it
            if at_s + 1e-6 < next_sample_s:
                continue
            next_sample_s = max(next_sample_s + 1 / self.fps, at_s)
            try:
                samples.put_nowait((frame, at_s))
            except queue.Full:
                self.stats.sampled += 1
                self._count_drop(at_s)  # the main loop is behind too: the same backpressure
        with contextlib.suppress(queue.Full):
            samples.put(None, timeout=1)

    def _submit(self, frame: Any, at_s: float) -> None:
        import cv2

        if len(self._pending) >= self.max_pending:
            self._count_drop(at_s)
            return
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            return
        handle = self.fq.submit(jobs.detect_faces(bytes(jpeg.tobytes()), label=f"frame at {at_s:.2f} s"))
        self.stats.submitted += 1
        self._pending.append(_Pending(handle.job_id, at_s, time.monotonic(), frame if self.search else None))

    def _count_drop(self, at_s: float) -> None:
        with self._drops_lock:
            self.stats.dropped += 1
            now = time.monotonic()
            if now - self._last_drop_report < 1.0:
                return
            frames = self.stats.dropped - self._reported_drops
            self._reported_drops, self._last_drop_report = self.stats.dropped, now
        self.emit({"event": "dropped", "at_s": round(at_s, 3), "frames": frames, "total": self.stats.dropped})

    def _collect(self) -> None:
        """Handle every result that has landed, frames in order (the tracker needs time order)."""
        ids = [p.job_id for p in self._pending] + list(self._identifying)
        if not ids:
            return
        landed: dict[str, bytes | str] = {
            job_id: value
            for job_id, value in zip(ids, self.fq.redis.mget([result_key(i) for i in ids]), strict=True)
            if value is not None
        }
        while self._pending and self._pending[0].job_id in landed:
            pending = self._pending.popleft()
            self._frame_result(pending, ResultEnvelope.model_validate_json(landed[pending.job_id]))
        for job_id in [i for i in self._identifying if i in landed]:
            track, captured = self._identifying.pop(job_id)
            self._identified(track, captured, ResultEnvelope.model_validate_json(landed[job_id]))

    def _drain(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while (self._pending or self._identifying) and time.monotonic() < deadline:
            self._collect()
            if self._pending or self._identifying:
                time.sleep(0.02)  # results land in Redis; poll it gently
        for pending in self._pending:
            self.emit({"event": "error", "at_s": round(pending.at_s, 3), "code": "NoResult", "job_id": pending.job_id})

    def _frame_result(self, pending: _Pending, envelope: ResultEnvelope) -> None:
        delay_ms = round((time.monotonic() - pending.captured) * 1000, 1)
        if envelope.status is JobStatus.FAILED:
            assert envelope.error is not None
            self.emit(
                {
                    "event": "error",
                    "at_s": round(pending.at_s, 3),
                    "code": envelope.error.code,
                    "message": envelope.error.message,
                }
            )
            return
        self.stats.delays_ms.append(delay_ms)
        boxes = [box_of(face["BoundingBox"]) for face in (envelope.response or {}).get("FaceDetails", [])]
        update = self.tracker.update(pending.at_s, boxes)
        for track in update.left:
            self._left(track)
        for track in update.appeared:
            self.stats.tracks += 1
            self.emit(
                {
                    "event": "appeared",
                    "track": track.track_id,
                    "at_s": round(pending.at_s, 3),
                    "box": dict(zip(("Left", "Top", "Width", "Height"), track.box, strict=True)),
                    "delay_ms": delay_ms,
                }
            )
            if self.search and pending.frame is not None:
                crop = _crop(pending.frame, track.box)
                if crop:
                    job = jobs.search_faces_by_image(crop, self.search, face_match_threshold=self.threshold)
                    self._identifying[self.fq.submit(job).job_id] = (track, pending.captured)

    def _identified(self, track: Track, captured: float, envelope: ResultEnvelope) -> None:
        matches = (envelope.response or {}).get("FaceMatches", [])
        event: Event = {"event": "identified", "track": track.track_id, "at_s": round(track.last_s, 3)}
        if envelope.status is JobStatus.FAILED:
            assert envelope.error is not None
            event.update({"as": None, "code": envelope.error.code})
        elif matches:
            face = matches[0]["Face"]
            track.identity = face.get("ExternalImageId") or face["FaceId"]
            event.update({"as": track.identity, "similarity": round(float(matches[0]["Similarity"]), 1)})
        else:
            event["as"] = None
        event["delay_ms"] = round((time.monotonic() - captured) * 1000, 1)
        self.emit(event)

    def _left(self, track: Track) -> None:
        self.emit(
            {
                "event": "left",
                "track": track.track_id,
                "at_s": round(track.last_s, 3),
                "seen_s": round(track.last_s - track.first_s, 3),
                "frames": track.frames,
                **({"as": track.identity} if track.identity else {}),
            }
        )


def describe(event: Event) -> str:
    """One human line for an event."""
    at = f"{event.get('at_s', 0.0):7.2f} s"
    kind = event["event"]
    if kind == "appeared":
        return f"{at}  track {event['track']} appeared ({event['delay_ms']:.0f} ms after the frame)"
    if kind == "identified":
        who = event.get("as") or "no match"
        return f"{at}  track {event['track']} identified as {who}"
    if kind == "left":
        who = f" ({event['as']})" if event.get("as") else ""
        return f"{at}  track {event['track']}{who} left after {event['seen_s']:.1f} s, {event['frames']} frames"
    if kind == "dropped":
        return f"{at}  dropped {event['frames']} frame(s): results are behind ({event['total']} in all)"
    if kind == "error":
        return f"{at}  error {event.get('code')}: {event.get('message', '')}"
    return f"{at}  {kind}"
