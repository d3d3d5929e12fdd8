"""Following faces across sampled frames, so one person walking through is one track (a PersonIndex).

Each frame's faces are matched greedily to live tracks, best pair first: by box overlap (IoU) when the face
barely moved, else by embedding similarity when it moved or was hidden for a while. A track not seen for
``max_gap_ms`` ends; a face matching no live track starts a new one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from local_rekognition.models.engine import Box, DetectedFace, Embedding

MIN_IOU = 0.3
"""Boxes overlapping this much in consecutive samples are the same face (faces move little in 200 ms)."""

MIN_COSINE = 0.45
"""Embeddings this close are the same person even where the boxes do not overlap (SFace's threshold is ~0.36)."""

MAX_GAP_MS = 2000
"""A track unseen for longer than this has left the picture."""


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two pixel boxes."""
    left, top = max(a.left, b.left), max(a.top, b.top)
    right = min(a.left + a.width, b.left + b.width)
    bottom = min(a.top + a.height, b.top + b.height)
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


def _cosine(a: Embedding | None, b: Embedding | None) -> float:
    if a is None or b is None:
        return -1.0
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b)) / norm if norm > 0 else -1.0


@dataclass
class Track:
    """One person followed across frames."""

    index: int
    box: Box
    embedding: Embedding | None
    last_ms: int


class FaceTracker:
    """Assigns each detected face a stable person index, frame after frame (timestamps must not go back)."""

    def __init__(self, max_gap_ms: int = MAX_GAP_MS) -> None:
        self._tracks: list[Track] = []
        self._next_index = 0
        self._max_gap_ms = max_gap_ms

    def update(self, timestamp_ms: int, faces: list[DetectedFace]) -> list[int]:
        """The person index of each face in ``faces`` (same order)."""
        live = [track for track in self._tracks if timestamp_ms - track.last_ms <= self._max_gap_ms]
        pairs: list[tuple[float, int, int]] = []
        for f, face in enumerate(faces):
            for t, track in enumerate(live):
                overlap = iou(face.box, track.box)
                cosine = _cosine(face.embedding, track.embedding)
                if overlap >= MIN_IOU or cosine >= MIN_COSINE:
                    # Overlap decides between near neighbours; identity decides after a jump.
                    pairs.append((overlap + max(cosine, 0.0), f, t))
        assigned: dict[int, int] = {}
        used: set[int] = set()
        for _, f, t in sorted(pairs, reverse=True):
            if f in assigned or t in used:
                continue
            assigned[f] = t
            used.add(t)
        indices: list[int] = []
        for f, face in enumerate(faces):
            if f in assigned:
                track = live[assigned[f]]
            else:
                track = Track(self._next_index, face.box, face.embedding, timestamp_ms)
                self._next_index += 1
                self._tracks.append(track)
            track.box, track.last_ms = face.box, timestamp_ms
            if face.embedding is not None:
                track.embedding = face.embedding
            indices.append(track.index)
        self._tracks = [track for track in self._tracks if timestamp_ms - track.last_ms <= self._max_gap_ms]
        return indices
