"""MediaPipe's 478-point face mesh (468 surface points + 2 × 5 iris points) for a face YuNet found."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
import numpy.typing as npt

from local_rekognition.models import wheel_weights
from local_rekognition.models.detector import FaceCandidate
from local_rekognition.models.engine import RGBImage
from local_rekognition.models.litert import TFLiteModel

MESH_INPUT_PX = 256
# The landmark model was trained on a square 1.5 times the face detector's box, levelled by the eye line
# (MediaPipe's face landmarker crops the same way from its own detector).
_CROP_SCALE = 1.5


@dataclass(frozen=True)
class FaceMesh:
    """One face's mesh in the photo's pixels."""

    points: npt.NDArray[np.float64]
    """478×3: x and y in image pixels, z the model's relative depth in the same pixel scale (smaller is nearer)."""
    presence: float
    """0–1: the model's own belief that the crop holds a face."""
    presence_logit: float
    """The same belief before its sigmoid: 1.0 in float saturates, and face confidence needs the margin."""


@cache
def _model() -> TFLiteModel:
    return TFLiteModel(wheel_weights.path("face_landmarks_detector.tflite"))


def crop_transform(face: FaceCandidate) -> tuple[npt.NDArray[np.float64], float]:
    """The 2×3 affine map from the photo to the model's 256-px input, and the crop's side in photo pixels."""
    left_eye, right_eye = face.points[0], face.points[1]
    roll = math.degrees(math.atan2(float(right_eye[1] - left_eye[1]), float(right_eye[0] - left_eye[0])))
    x, y, width, height = face.box
    centre = (x + width / 2, y + height / 2)
    side = _CROP_SCALE * max(width, height, 1.0)
    matrix = np.asarray(cv2.getRotationMatrix2D(centre, roll, MESH_INPUT_PX / side), dtype=np.float64)
    matrix[:, 2] += MESH_INPUT_PX / 2 - np.asarray(centre, dtype=np.float64)
    return matrix, side


def face_mesh(image: RGBImage, face: FaceCandidate) -> FaceMesh:
    """Run the landmark model on the face's levelled crop and map its 478 points back to the photo."""
    matrix, side = crop_transform(face)
    crop = cv2.warpAffine(
        image, matrix, (MESH_INPUT_PX, MESH_INPUT_PX), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    tensor = (np.asarray(crop, dtype=np.float32) / np.float32(255.0))[None]
    outputs = _model().run(tensor)
    raw = outputs[0].reshape(-1, 3).astype(np.float64)
    inverse = cv2.invertAffineTransform(matrix)
    xy = raw[:, :2] @ inverse[:, :2].T + inverse[:, 2]
    z = raw[:, 2] * side / MESH_INPUT_PX
    logit = float(outputs[1].reshape(-1)[0])
    presence = 1.0 / (1.0 + math.exp(-logit))
    return FaceMesh(points=np.column_stack([xy, z]), presence=presence, presence_logit=logit)
