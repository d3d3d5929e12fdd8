"""Rekognition's landmark types for the points of MediaPipe's face mesh.

Rekognition names left and right from the viewer's side: in its own responses ``eyeLeft`` has the smaller
X, so it is the subject's right eye.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

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
