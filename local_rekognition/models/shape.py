"""dlib's 5-point shape (eye corners and nose base) for a face YuNet found."""

from __future__ import annotations

import dlib  # type: ignore[import-untyped]
import numpy as np

from local_rekognition.models.detector import FaceCandidate
from local_rekognition.models.engine import RGBImage
from local_rekognition.models.threads import PerThread
from local_rekognition.models.weights import five_point_predictor_path

# dlib's predictor was trained on the square boxes of its HOG detector, which sit lower and tighter than
# YuNet's. Rebuilt from YuNet's eyes and mouth: a square 2.3 eye-to-mouth distances wide, centred 0.6 of
# that distance below the eyes (fitted on HOG and YuNet boxes of the same faces).
_BOX_SIZE = 2.3
_BOX_DROP = 0.6


def _new_predictor() -> dlib.shape_predictor:
    return dlib.shape_predictor(str(five_point_predictor_path()))


_predictor: PerThread[dlib.shape_predictor] = PerThread(_new_predictor)


def dlib_box(face: FaceCandidate) -> dlib.rectangle:
    """The square box, in dlib's HOG convention, for this face."""
    eyes = face.points[0:2].mean(axis=0)
    mouth = face.points[3:5].mean(axis=0)
    span = max(1.0, float(np.linalg.norm(mouth - eyes)))
    centre_x = float(eyes[0] + mouth[0]) / 2
    centre_y = float(eyes[1]) + _BOX_DROP * span
    half = _BOX_SIZE * span / 2
    return dlib.rectangle(
        round(centre_x - half), round(centre_y - half), round(centre_x + half), round(centre_y + half)
    )


def five_point_shape(image: RGBImage, face: FaceCandidate) -> dlib.full_object_detection:
    """dlib's five points for the face: outer and inner corner of each eye, then the base of the nose."""
    box = dlib_box(face)
    # dlib copies the whole photo into its own image on every call (1.5 ms for a 640-px photo); the predictor only
    # reads pixels near its box, so it gets the box and one box width around it, and the points are moved back.
    pad = box.width()
    left, top = max(0, box.left() - pad), max(0, box.top() - pad)
    crop = np.ascontiguousarray(image[top : max(top, box.bottom() + pad + 1), left : max(left, box.right() + pad + 1)])
    moved = dlib.rectangle(box.left() - left, box.top() - top, box.right() - left, box.bottom() - top)
    found = _predictor.get()(crop, moved)
    points = [dlib.point(part.x + left, part.y + top) for part in found.parts()]
    return dlib.full_object_detection(box, points)
