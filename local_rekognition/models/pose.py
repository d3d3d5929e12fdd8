"""Head pose (Roll, Yaw, Pitch) from the face mesh, by fitting MediaPipe's canonical face with solvePnP."""

from __future__ import annotations

import math

import cv2
import numpy as np

from local_rekognition.models.canonical import MESH_POINTS, canonical_face

# Mesh points at the outer corners of the image-left and image-right eye.
_EYE_CORNERS = [33, 263]


def mesh_pose(points: np.ndarray, width: int, height: int) -> dict[str, float]:
    """Return {"Roll", "Yaw", "Pitch"} in degrees for a face mesh (its first 468 points, pixels) in a photo of
    this size.

    Roll is positive when the face tilts clockwise in the image, Yaw positive when the subject turns towards the
    image's left (their right), Pitch positive when the face looks up. The canonical face is fitted to all 468
    points at once (SQPnP, which needs no starting guess and has no mirrored solution to fall into), so a few
    misplaced points on a small or turned face barely move the answer; a 5-point fit read a frontal 40-px face
    as Roll −75, Yaw −88, Pitch −82.
    """
    image_points = np.ascontiguousarray(points[:MESH_POINTS, :2], dtype=np.float64)
    focal = float(max(width, height))
    camera = np.asarray([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], dtype=np.float64)
    ok, rvec, tvec = cv2.solvePnP(canonical_face(), image_points, camera, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return _roll_only(image_points[_EYE_CORNERS])
    rotation, _ = cv2.Rodrigues(rvec)
    # Pose is the head's turn from the line of sight to it, as a person judges it from the face's look: a face
    # looking into the camera from the edge of a wide group photo is frontal, not turned by the camera's angle to
    # it (measured from the optical axis, such faces read up to 20° of yaw, and portraits framed low -14° pitch).
    return _euler(_line_of_sight(tvec.reshape(3)).T @ rotation)


def _line_of_sight(translation: np.ndarray) -> np.ndarray:
    """The rotation (yaw about y, then pitch about x, no roll) taking the optical axis onto the ray to the face."""
    direction = translation / (float(np.linalg.norm(translation)) or 1.0)
    turn = math.atan2(float(direction[0]), float(direction[2]))
    tilt = -math.asin(max(-1.0, min(1.0, float(direction[1]))))
    about_y = np.asarray([[math.cos(turn), 0, math.sin(turn)], [0, 1, 0], [-math.sin(turn), 0, math.cos(turn)]])
    about_x = np.asarray([[1, 0, 0], [0, math.cos(tilt), -math.sin(tilt)], [0, math.sin(tilt), math.cos(tilt)]])
    combined: np.ndarray = about_y @ about_x
    return combined


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
