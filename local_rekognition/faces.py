"""From the engine's pixel-space faces to Rekognition's FaceDetail, and which faces a QualityFilter keeps."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from local_rekognition.models.engine import Box, DetectedFace
from local_rekognition.validation import service_model

# Attribute name (request) → FaceDetail member (response) for everything beyond DEFAULT.
ATTRIBUTE_MEMBERS: Mapping[str, str] = {
    "AGE_RANGE": "AgeRange",
    "BEARD": "Beard",
    "EMOTIONS": "Emotions",
    "EYE_DIRECTION": "EyeDirection",
    "EYEGLASSES": "Eyeglasses",
    "EYES_OPEN": "EyesOpen",
    "GENDER": "Gender",
    "MOUTH_OPEN": "MouthOpen",
    "MUSTACHE": "Mustache",
    "FACE_OCCLUDED": "FaceOccluded",
    "SMILE": "Smile",
    "SUNGLASSES": "Sunglasses",
}

# The Landmark Types the service model allows; anything else an engine names is not sent.
LANDMARK_TYPES = frozenset(service_model().shape_for("LandmarkType").enum)

MAX_FACES_DETECTED = 100
"""Rekognition returns the 100 largest faces of an image."""


def requested_attributes(names: Sequence[str] | None) -> frozenset[str]:
    """The attributes beyond DEFAULT that a request's ``Attributes`` asks for (DEFAULT is always returned)."""
    wanted = set(names or ())
    if "ALL" in wanted:
        return frozenset(ATTRIBUTE_MEMBERS)
    return frozenset(wanted & ATTRIBUTE_MEMBERS.keys())


def bounding_box(box: Box, width: int, height: int) -> dict[str, float]:
    """A pixel box as Rekognition's ratios of the (upright) image's width and height."""
    return {
        "Width": box.width / width,
        "Height": box.height / height,
        "Left": box.left / width,
        "Top": box.top / height,
    }


def _percent(value: float) -> float:
    return min(100.0, max(0.0, float(value)))


def _degrees(value: float) -> float:
    return min(180.0, max(-180.0, float(value)))


def compared_face(face: DetectedFace, width: int, height: int) -> dict[str, Any]:
    """The DEFAULT members: BoundingBox, Confidence, Landmarks, Pose, Quality (CompareFaces' ComparedFace)."""
    return {
        "BoundingBox": bounding_box(face.box, width, height),
        "Confidence": _percent(face.confidence),
        "Landmarks": [
            {"Type": kind, "X": float(x) / width, "Y": float(y) / height}
            for kind, (x, y) in face.landmarks.items()
            if kind in LANDMARK_TYPES
        ],
        "Pose": {axis: _degrees(face.pose[axis]) for axis in ("Roll", "Yaw", "Pitch") if axis in face.pose},
        "Quality": {name: _percent(face.quality[name]) for name in ("Brightness", "Sharpness") if name in face.quality},
    }


def face_detail(face: DetectedFace, width: int, height: int, attributes: frozenset[str]) -> dict[str, Any]:
    """A FaceDetail: DEFAULT members plus those requested attributes the engine returned, nothing invented."""
    detail: dict[str, Any] = {"BoundingBox": bounding_box(face.box, width, height)}
    for name in sorted(attributes):
        member = ATTRIBUTE_MEMBERS[name]
        if member in face.attributes:
            detail[member] = face.attributes[member]
    default = compared_face(face, width, height)
    for key in ("Landmarks", "Pose", "Quality", "Confidence"):
        detail[key] = default[key]
    return detail


@dataclass(frozen=True)
class QualityBar:
    """The least a face needs to pass one QualityFilter level; each failed test names a Rekognition Reason."""

    min_confidence: float
    min_side_px: float
    """Smallest allowed box side in a photo of up to 1920×1080; larger photos scale it (see min_side_for)."""
    min_sharpness: float
    min_brightness: float
    max_abs_yaw: float
    max_abs_pitch: float


# Rekognition's guidance: a face must be at least 40×40 px in a 1920×1080 photo, and larger photos need
# proportionally larger faces; faces should be fairly frontal (yaw within ±45°, pitch ±30° for best results) and
# neither blurred nor dark. YuNet's box is narrower than tall (about 0.75), so a face 40 px tall has a smaller side
# of about 30 px: faces pasted at 40 px into a 1920×1080 photo measured 28–36 px. MEDIUM (and AUTO, which
# Rekognition describes as a medium bar) therefore asks 24 px, which keeps such faces with room for the box's
# jitter at that size; profile faces (|yaw| beyond 65°) are EXTREME_POSE.
QUALITY_BARS: Mapping[str, QualityBar] = {
    "LOW": QualityBar(
        min_confidence=50, min_side_px=16, min_sharpness=2, min_brightness=5, max_abs_yaw=80, max_abs_pitch=60
    ),
    "MEDIUM": QualityBar(
        min_confidence=70,
        min_side_px=24,
        min_sharpness=5,
        min_brightness=10,
        max_abs_yaw=65,
        max_abs_pitch=45,
    ),
    "HIGH": QualityBar(
        min_confidence=90,
        min_side_px=64,
        min_sharpness=15,
        min_brightness=20,
        max_abs_yaw=45,
        max_abs_pitch=30,
    ),
}
QUALITY_BARS = {**QUALITY_BARS, "AUTO": QUALITY_BARS["MEDIUM"]}
_REFERENCE_PIXELS = 1920 * 1080


def min_side_for(bar: QualityBar, image_size: tuple[int, int] | None) -> float:
    """The bar's smallest box side for a photo of ``image_size`` (width, height): scaled with the photo's linear
    size past 1920×1080, as Rekognition asks proportionally larger faces of larger photos."""
    if image_size is None:
        return bar.min_side_px
    width, height = image_size
    return bar.min_side_px * max(1.0, math.sqrt(width * height / _REFERENCE_PIXELS))


def quality_reasons(face: DetectedFace, quality_filter: str, image_size: tuple[int, int] | None = None) -> list[str]:
    """Why ``face`` fails the filter level (Rekognition Reasons); empty if it passes or the level is NONE.

    ``image_size`` (width, height) makes SMALL_BOUNDING_BOX relative to the photo as well; without it the bar is
    the absolute one of a 1920×1080 photo.
    """
    bar = QUALITY_BARS.get(quality_filter)
    if bar is None:
        return []
    reasons: list[str] = []
    if face.confidence < bar.min_confidence:
        reasons.append("LOW_CONFIDENCE")
    if min(face.box.width, face.box.height) < min_side_for(bar, image_size):
        reasons.append("SMALL_BOUNDING_BOX")
    if face.quality.get("Sharpness", 100.0) < bar.min_sharpness:
        reasons.append("LOW_SHARPNESS")
    if face.quality.get("Brightness", 100.0) < bar.min_brightness:
        reasons.append("LOW_BRIGHTNESS")
    if abs(face.pose.get("Yaw", 0.0)) > bar.max_abs_yaw or abs(face.pose.get("Pitch", 0.0)) > bar.max_abs_pitch:
        reasons.append("EXTREME_POSE")
    return reasons


def passing(
    faces: Iterable[DetectedFace], quality_filter: str, image_size: tuple[int, int] | None = None
) -> list[DetectedFace]:
    """The faces that pass a QualityFilter level in a photo of ``image_size``, order kept."""
    return [face for face in faces if not quality_reasons(face, quality_filter, image_size)]
