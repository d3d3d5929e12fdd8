"""FaceOccluded's geometry: how much of a face outline lies outside the photo, and when a hand is on the face."""

from __future__ import annotations

import math

import numpy as np
import pytest

from local_rekognition.models import hands, wheel_weights
from local_rekognition.models.hands import Hand
from local_rekognition.models.litert import TFLiteModel
from local_rekognition.models.occlusion import EDGE_SHARE, FACE_OVAL, Occlusion, hand_over_face, outside_share


def _mesh_with_outline(centre: tuple[float, float], radius: float) -> np.ndarray:
    """A 478-point mesh whose face outline (FACE_OVAL) is a circle; the other points sit at the centre."""
    points = np.zeros((478, 3))
    points[:, 0], points[:, 1] = centre
    for index, point in enumerate(FACE_OVAL):
        angle = 2 * math.pi * index / len(FACE_OVAL)
        points[point, :2] = centre[0] + radius * math.cos(angle), centre[1] + radius * math.sin(angle)
    return points


def test_a_whole_face_has_nothing_outside() -> None:
    assert outside_share(_mesh_with_outline((100, 100), 40), 200, 200) == pytest.approx(0.0, abs=1e-6)


def test_a_face_centred_on_the_left_edge_is_half_outside() -> None:
    assert outside_share(_mesh_with_outline((0, 100), 40), 200, 200) == pytest.approx(0.5, abs=0.01)


def test_a_face_cut_through_its_chin_is_partially_captured() -> None:
    # The frame's bottom edge at 80 % of the face's height: 14 % of the outline's area is outside
    share = outside_share(_mesh_with_outline((100, 100), 50), 200, 130)
    occlusion = Occlusion(mask=0.0, hand=0.0, outside=share)

    assert share == pytest.approx(0.142, abs=0.01) and share > EDGE_SHARE
    assert occlusion.probability > 0.5


def test_the_edge_probability_is_low_for_a_whole_face() -> None:
    assert Occlusion(mask=0.0, hand=0.0, outside=0.0).probability < 0.06


def _hand(xs: list[float], ys: list[float], presence: float = 0.99) -> Hand:
    return Hand(landmarks=np.column_stack([xs, ys]).astype(np.float64), presence=presence)


def test_a_hand_counts_only_with_five_landmarks_on_the_face_and_a_real_presence() -> None:
    box = (100.0, 100.0, 100.0, 100.0)
    on_face = _hand([150.0] * 5 + [300.0] * 16, [150.0] * 5 + [300.0] * 16)
    beside = _hand([150.0] * 4 + [300.0] * 17, [150.0] * 4 + [300.0] * 17)
    doubtful = _hand([150.0] * 21, [150.0] * 21, presence=0.92)

    assert hand_over_face([on_face], box) == pytest.approx(0.99)
    assert hand_over_face([beside], box) == 0.0
    assert hand_over_face([doubtful], box) == 0.0
    assert hand_over_face([beside, on_face], box) == pytest.approx(0.99)


def test_a_mask_counts_only_from_its_calibrated_threshold() -> None:
    # Bare thumbnails reached 0.89; real masks 0.97 and above
    assert Occlusion(mask=0.89, hand=0.0, outside=0.0).probability < 0.5
    assert Occlusion(mask=0.97, hand=0.0, outside=0.0).probability > 0.8
    assert Occlusion(mask=0.2, hand=0.0, outside=0.0).probability < Occlusion(mask=0.5, hand=0, outside=0).probability


def test_the_palm_graph_runs_at_160_px_with_its_pyramid_rescaled() -> None:
    # Given the palm detector's own graph (upsampling to 24×24 and 12×12 for its 192-px input)
    path = wheel_weights.path("palm_detection_full.tflite")
    data = path.read_bytes()
    edited = hands.palm_graph(data, 160)

    # Then only the two 8-byte sizes change, and the graph runs at 160 px with one output per anchor
    assert len(edited) == len(data) and sum(a != b for a, b in zip(data, edited, strict=True)) <= 8
    model = TFLiteModel(path, content=edited, input_shape=(1, 160, 160, 3))
    boxes, scores = model.run(np.zeros((1, 160, 160, 3), np.float32))
    assert boxes.shape == (1, len(hands._anchors()), 18) and scores.shape == (1, len(hands._anchors()), 1)
