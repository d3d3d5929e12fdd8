"""Rekognition's landmark types for the points our models really locate.

Rekognition names left and right from the viewer's side: in its own responses ``eyeLeft`` has the smaller
X, so it is the subject's right eye. YuNet orders its points the same way (its "right eye" is the subject's
right, which lies on the image's left).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

YUNET_TYPES = ("eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight")
"""Rekognition types of YuNet's five points, in YuNet's order."""


def five_point_landmarks(points: npt.NDArray[np.float32]) -> dict[str, tuple[float, float]]:
    """Name YuNet's five points (5x2, pixels) with Rekognition's landmark types."""
    return {name: (float(x), float(y)) for name, (x, y) in zip(YUNET_TYPES, points, strict=True)}


def as_array(landmarks: Mapping[str, tuple[float, float]], names: tuple[str, ...]) -> npt.NDArray[np.float64]:
    """The named landmarks as an Nx2 float64 array, in the order given."""
    return np.asarray([landmarks[name] for name in names], dtype=np.float64)


# dlib's 5-point model: 0 and 1 are the outer and inner corners of the eye on the image's right, 2 and 3
# the outer and inner corners of the eye on the image's left, 4 the base of the nose (not Rekognition's
# "nose", which is the tip, so it is not reported).
DLIB_EYE_CORNER_TYPES = {0: "rightEyeRight", 1: "rightEyeLeft", 2: "leftEyeLeft", 3: "leftEyeRight"}


def eye_corner_landmarks(points: npt.NDArray[np.float64]) -> dict[str, tuple[float, float]]:
    """Name the eye corners of dlib's 5-point shape (5x2, pixels) with Rekognition's landmark types."""
    return {name: (float(points[i][0]), float(points[i][1])) for i, name in DLIB_EYE_CORNER_TYPES.items()}


# MediaPipe face-mesh indices for Rekognition's types. Like YuNet's, the mesh's point 33 (the outer corner of the
# subject's right eye) always lies on the image's left, so names from the viewer's side follow from the index.
# Indices checked by drawing them on the shared photos (brows, lids, nostrils, jaw, chin).
MESH_TYPES: dict[str, int] = {
    "leftEyeLeft": 33,
    "leftEyeRight": 133,
    "leftEyeUp": 159,
    "leftEyeDown": 145,
    "rightEyeLeft": 362,
    "rightEyeRight": 263,
    "rightEyeUp": 386,
    "rightEyeDown": 374,
    "leftEyeBrowLeft": 70,
    "leftEyeBrowRight": 107,
    "leftEyeBrowUp": 105,
    "rightEyeBrowLeft": 336,
    "rightEyeBrowRight": 300,
    "rightEyeBrowUp": 334,
    "nose": 1,
    "noseLeft": 129,
    "noseRight": 358,
    "mouthLeft": 61,
    "mouthRight": 291,
    "mouthUp": 0,
    "mouthDown": 17,
    # The iris model's centres: 468 in the image-left eye, 473 in the image-right one.
    "leftPupil": 468,
    "rightPupil": 473,
    "upperJawlineLeft": 127,
    "midJawlineLeft": 172,
    "chinBottom": 152,
    "midJawlineRight": 397,
    "upperJawlineRight": 356,
}
# Rekognition's eyeLeft/eyeRight: the middle of each eye's four contour points (corners and lids).
MESH_EYES: dict[str, tuple[int, ...]] = {"eyeLeft": (33, 133, 159, 145), "eyeRight": (362, 263, 386, 374)}

DEFAULT_TYPES = (
    "eyeLeft",
    "eyeRight",
    "nose",
    "mouthLeft",
    "mouthRight",
    "leftEyeLeft",
    "leftEyeRight",
    "rightEyeLeft",
    "rightEyeRight",
)
"""The types DetectFaces returns without attributes; Rekognition gives its full 30 only with ALL."""


def mesh_landmarks(points: npt.NDArray[np.float64]) -> dict[str, tuple[float, float]]:
    """All 30 Rekognition landmark types from a 478-point mesh (pixels), eyes first as Rekognition lists them."""
    named = {
        name: (float(points[indices, 0].mean()), float(points[indices, 1].mean()))
        for name, indices in MESH_EYES.items()
    }
    named.update({name: (float(points[i, 0]), float(points[i, 1])) for name, i in MESH_TYPES.items()})
    return named
