"""Head pose (Roll, Yaw, Pitch) from landmarks, by fitting a generic 3D face with solvePnP."""

from __future__ import annotations

import math
from collections.abc import Mapping

import cv2
import numpy as np

from local_rekognition.models.canonical import MESH_POINTS, canonical_face
from local_rekognition.models.landmarks import as_array

# A generic adult face in millimetres, camera-style axes (x to the image's right, y down, z away from the
# camera), nose tip at the origin: 64 mm between the eyes, 52 mm mouth width, eyes 35 mm above and mouth
# 30 mm below the nose tip, eyes and mouth corners set back from it as in average anthropometric data.
MODEL_POINTS: dict[str, tuple[float, float, float]] = {
    "eyeLeft": (-32.0, -35.0, 26.0),
    "eyeRight": (32.0, -35.0, 26.0),
    "nose": (0.0, 0.0, 0.0),
    "mouthLeft": (-26.0, 30.0, 22.0),
    "mouthRight": (26.0, 30.0, 22.0),
}
_NAMES = tuple(MODEL_POINTS)
_MODEL = np.asarray([MODEL_POINTS[name] for name in _NAMES], dtype=np.float64)
_INTEROCULAR_MM = 64.0


def estimate_pose(landmarks: Mapping[str, tuple[float, float]], width: int, height: int) -> dict[str, float]:
    """Return {"Roll", "Yaw", "Pitch"} in degrees for a face's five landmarks in a photo of this size.

    Roll is positive when the face tilts clockwise in the image, Yaw positive when the subject turns
    towards the image's left (their right), Pitch positive when the face looks up.
    """
    image_points = as_array(landmarks, _NAMES)
    focal = float(max(width, height))
    camera = np.asarray([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], dtype=np.float64)
    # Without a starting point the 5-point fit can land on the mirrored solution (roll ±180°); start
    # from a frontal face at the distance the eye spacing implies.
    eye_px = float(np.linalg.norm(image_points[1] - image_points[0])) or 1.0
    depth = focal * _INTEROCULAR_MM / eye_px
    nose = image_points[2]
    guess_t = np.asarray([nose[0] - width / 2, nose[1] - height / 2, focal]) * (depth / focal)
    ok, rvec, _ = cv2.solvePnP(
        _MODEL,
        image_points,
        camera,
        None,
        np.zeros((3, 1), dtype=np.float64),
        guess_t.reshape(3, 1),
        useExtrinsicGuess=True,
        flags=cv2.SOLVEPNP_ITERATIVE,
    )
    if not ok:
        return _roll_only(image_points)
    rotation, _ = cv2.Rodrigues(rvec)
    return _euler(rotation)


def mesh_pose(points: np.ndarray, width: int, height: int) -> dict[str, float]:
    """{"Roll", "Yaw", "Pitch"} from a face mesh (its first 468 points, pixels), as ``estimate_pose`` reports them.

    Fits MediaPipe's canonical face to all 468 points at once (SQPnP, which needs no starting guess and has no
    mirrored solution to fall into), so one misplaced point on a small or turned face barely moves the answer.
    """
    image_points = np.ascontiguousarray(points[:MESH_POINTS, :2], dtype=np.float64)
    focal = float(max(width, height))
    camera = np.asarray([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], dtype=np.float64)
    ok, rvec, _ = cv2.solvePnP(canonical_face(), image_points, camera, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return _roll_only(image_points[[33, 263]])
    rotation, _ = cv2.Rodrigues(rvec)
    return _euler(rotation)


def _euler(rotation: np.ndarray) -> dict[str, float]:
    # R = Rz(roll) · Ry(yaw) · Rx(pitch) in camera axes (x right, y down, z forward).
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -float(rotation[2, 0])))))
    pitch = math.degrees(math.atan2(float(rotation[2, 1]), float(rotation[2, 2])))
    roll = math.degrees(math.atan2(float(rotation[1, 0]), float(rotation[0, 0])))
    # With y pointing down, a positive rotation about x tips the chin towards the camera (looking down).
    return {"Roll": _wrap(roll), "Yaw": _wrap(yaw), "Pitch": _wrap(-pitch)}


def _roll_only(points: np.ndarray) -> dict[str, float]:
    dx, dy = points[1] - points[0]
    return {"Roll": math.degrees(math.atan2(float(dy), float(dx))), "Yaw": 0.0, "Pitch": 0.0}


def _wrap(degrees: float) -> float:
    return (degrees + 180.0) % 360.0 - 180.0
