"""Face tracks for `facequeue watch`: DetectFaces boxes of successive frames joined by overlap into tracks.

DetectFaces returns no embeddings, so a face continues the live track whose last box it overlaps most (IoU ≥
``min_iou``, best pairs first); a face overlapping none starts a track; a track unseen for ``gap_s`` has left.
At a few frames per second a walking face overlaps its previous box, so one person is one track.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Box = tuple[float, float, float, float]
"""(left, top, width, height) as ratios of the frame, Rekognition's BoundingBox."""


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def box_of(bounding_box: dict[str, Any]) -> Box:
    """A Rekognition BoundingBox as a tuple."""
    return (
        float(bounding_box.get("Left", 0.0)),
        float(bounding_box.get("Top", 0.0)),
        float(bounding_box.get("Width", 0.0)),
        float(bounding_box.get("Height", 0.0)),
    )


@dataclass
class Track:
    """One face followed across frames."""

    track_id: int
    box: Box
    first_s: float
    last_s: float
    frames: int = 1
    identity: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Update:
    """What one frame changed: tracks that appeared, tracks it continued, tracks that left before it."""

    appeared: list[Track]
    continued: list[Track]
    left: list[Track]


class Tracker:
    """Joins each frame's boxes to live tracks; frames must come in time order."""

    def __init__(self, *, min_iou: float = 0.2, gap_s: float = 1.5) -> None:
        self.min_iou, self.gap_s = min_iou, gap_s
        self.live: list[Track] = []
        self._next = 0

    def update(self, at_s: float, boxes: list[Box]) -> Update:
        """Assign ``boxes`` (one frame, taken at ``at_s``) to tracks."""
        left = [track for track in self.live if at_s - track.last_s > self.gap_s]
        self.live = [track for track in self.live if at_s - track.last_s <= self.gap_s]
        pairs = sorted(
            ((iou(box, track.box), b, t) for b, box in enumerate(boxes) for t, track in enumerate(self.live)),
            reverse=True,
        )
        taken_boxes: set[int] = set()
        taken_tracks: set[int] = set()
        continued: list[Track] = []
        for overlap, b, t in pairs:
            if overlap < self.min_iou:
                break
            if b in taken_boxes or t in taken_tracks:
                continue
            taken_boxes.add(b)
            taken_tracks.add(t)
            track = self.live[t]
            track.box, track.last_s, track.frames = boxes[b], at_s, track.frames + 1
            continued.append(track)
        appeared = []
        for b, box in enumerate(boxes):
            if b not in taken_boxes:
                track = Track(self._next, box, at_s, at_s)
                self._next += 1
                self.live.append(track)
                appeared.append(track)
        return Update(appeared, continued, left)

    def finish(self) -> list[Track]:
        """End every live track (the source ended or the user stopped)."""
        ended, self.live = self.live, []
        return ended
