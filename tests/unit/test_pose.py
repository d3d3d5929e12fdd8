"""Head pose from the face mesh, checked on MediaPipe's canonical face projected at known angles."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from local_rekognition.models.canonical import canonical_face
from local_rekognition.models.pose import mesh_pose

WIDTH, HEIGHT = 1000, 800
NOSE_TIP, LEFT_EYE_OUTER, RIGHT_EYE_OUTER = 1, 33, 263


def _project(roll: float, yaw: float, pitch: float, across_cm: float = 0.0) -> np.ndarray:
    """The canonical face's 468 points turned by these angles (degrees), 60 cm in front of the camera and
    ``across_cm`` to the right of its axis, in pixels."""
    r, y, p = (math.radians(v) for v in (roll, yaw, pitch))
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    # Looking up is a negative rotation about x when y points down.
    rx = np.array([[1, 0, 0], [0, math.cos(-p), -math.sin(-p)], [0, math.sin(-p), math.cos(-p)]])
    rvec, _ = cv2.Rodrigues(rz @ ry @ rx)
    camera = np.array([[WIDTH, 0, WIDTH / 2], [0, WIDTH, HEIGHT / 2], [0, 0, 1]], dtype=np.float64)
    points, _ = cv2.projectPoints(canonical_face(), rvec, np.array([across_cm, 0.0, 60.0]), camera, None)
    return np.asarray(points.reshape(-1, 2))


@pytest.mark.parametrize(
    ("roll", "yaw", "pitch"),
    [(0, 0, 0), (20, 0, 0), (0, 40, 0), (0, -60, 0), (0, 0, 25), (0, 0, -25), (-15, 30, 10), (10, 75, -5)],
)
def test_known_angles_are_recovered_even_near_profile(roll: float, yaw: float, pitch: float) -> None:
    pose = mesh_pose(_project(roll, yaw, pitch), WIDTH, HEIGHT)

    assert pose["Roll"] == pytest.approx(roll, abs=0.5)
    assert pose["Yaw"] == pytest.approx(yaw, abs=0.5)
    assert pose["Pitch"] == pytest.approx(pitch, abs=0.5)


def test_a_face_looking_at_the_camera_from_the_edge_of_the_photo_reads_frontal() -> None:
    # Given a face 35 cm right of the camera's axis, turned so that it looks straight into the camera
    across_cm = 35.0
    towards_camera = math.degrees(math.atan2(across_cm, 60.0))
    points = _project(0, towards_camera, 0, across_cm=across_cm)

    # Then its pose is frontal: Pose is the head's turn from the line of sight to it, not from the camera's axis
    pose = mesh_pose(points, WIDTH, HEIGHT)

    assert points[:, 0].mean() > 0.75 * WIDTH
    assert pose["Yaw"] == pytest.approx(0, abs=1.5)
    assert pose["Roll"] == pytest.approx(0, abs=1.5) and pose["Pitch"] == pytest.approx(0, abs=1.5)


def test_a_few_misplaced_points_barely_move_the_answer() -> None:
    points = _project(5, 20, -10)
    # Ten points thrown 15 px off, as on a small face where the model misplaces some of them.
    points[::47] += 15.0

    pose = mesh_pose(points, WIDTH, HEIGHT)

    assert pose["Roll"] == pytest.approx(5, abs=2)
    assert pose["Yaw"] == pytest.approx(20, abs=2)
    assert pose["Pitch"] == pytest.approx(-10, abs=2)


def test_clockwise_tilt_is_positive_roll() -> None:
    points = _project(20, 0, 0)

    # The eye on the image's right sits lower: the face is tilted clockwise on screen.
    assert points[RIGHT_EYE_OUTER][1] > points[LEFT_EYE_OUTER][1]
    assert mesh_pose(points, WIDTH, HEIGHT)["Roll"] > 0


def test_mirroring_flips_roll_and_yaw_but_not_pitch() -> None:
    points = _project(10, 25, 10)
    # The mirror image of point i is the canonical face's point symmetric to it: the nearest one once x is negated.
    model = canonical_face()
    mirror_index = [int(np.argmin(np.linalg.norm(model - point * [-1, 1, 1], axis=1))) for point in model]
    mirrored = np.empty_like(points)
    mirrored[mirror_index] = np.column_stack([WIDTH - points[:, 0], points[:, 1]])

    pose, flipped = mesh_pose(points, WIDTH, HEIGHT), mesh_pose(mirrored, WIDTH, HEIGHT)

    assert flipped["Roll"] == pytest.approx(-pose["Roll"], abs=1.0)
    assert flipped["Yaw"] == pytest.approx(-pose["Yaw"], abs=1.0)
    assert flipped["Pitch"] == pytest.approx(pose["Pitch"], abs=1.0)


def test_turning_towards_the_image_left_is_positive_yaw_and_looking_up_positive_pitch() -> None:
    turned, raised = _project(0, 25, 0), _project(0, 0, 15)

    # The nose tip swings to the image's left of the eyes, and up towards them.
    assert turned[NOSE_TIP][0] < (turned[LEFT_EYE_OUTER][0] + turned[RIGHT_EYE_OUTER][0]) / 2
    assert mesh_pose(turned, WIDTH, HEIGHT)["Yaw"] > 0
    assert mesh_pose(raised, WIDTH, HEIGHT)["Pitch"] > 0
