"""Face detection with YuNet, at scales chosen so that small faces in large photos are still found."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from local_rekognition.models.threads import PerThread
from local_rekognition.models.weights import yunet_path

BGRImage = npt.NDArray[np.uint8]

# Rekognition finds faces down to 40 px in a 1920-px photo, 1/48 of the long side. YuNet misses most faces
# under about 25 px: pasted into a 1920x1080 photo, faces 40 px tall were found 1 time in 6 at 960 px and
# 6 in 6 at 1280 px (27 px there), for about 100 ms on one core. Photos up to 1280 px run at full size.
FINE_LONG_SIDE = 1280
# A face that fills the photo is larger than YuNet's largest anchors at the fine scale; a cheap pass at
# this size sees it whole.
COARSE_LONG_SIDE = 320
SCORE_THRESHOLD = 0.7
NMS_IOU = 0.3
# YuNet keeps this many candidates before NMS per pass; well above Rekognition's 100 faces.
TOP_K = 5000


@dataclass(frozen=True)
class FaceCandidate:
    """One detection in full-resolution pixel coordinates, as YuNet reports it."""

    box: tuple[float, float, float, float]
    """left, top, width, height."""
    score: float
    """0-1."""
    points: npt.NDArray[np.float32]
    """5x2: the image-left eye, image-right eye, nose tip, image-left and image-right mouth corners."""

    @property
    def area(self) -> float:
        """Box area in pixels."""
        return self.box[2] * self.box[3]

    def yunet_row(self) -> npt.NDArray[np.float32]:
        """The 15-float row OpenCV's FaceRecognizerSF.alignCrop expects."""
        row = [*self.box, *self.points.reshape(-1).tolist(), self.score]
        return np.asarray(row, dtype=np.float32)


def _new_yunet() -> cv2.FaceDetectorYN:
    return cv2.FaceDetectorYN.create(str(yunet_path()), "", (320, 320), SCORE_THRESHOLD, NMS_IOU, TOP_K)


_yunet: PerThread[cv2.FaceDetectorYN] = PerThread(_new_yunet)


def detection_scales(height: int, width: int) -> list[float]:
    """Resize factors at which to run YuNet on a photo of this size, never enlarging it."""
    long_side = max(height, width)
    scales = [min(1.0, FINE_LONG_SIDE / long_side)]
    if long_side > 2 * COARSE_LONG_SIDE:
        scales.append(COARSE_LONG_SIDE / long_side)
    return scales


def _detect_at(image: BGRImage, scale: float) -> npt.NDArray[np.float32]:
    if scale != 1.0:
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    detector = _yunet.get()
    detector.setInputSize((image.shape[1], image.shape[0]))
    _, rows = detector.detect(image)
    if rows is None:
        return np.zeros((0, 15), np.float32)
    rows = np.asarray(rows, np.float32).copy()
    rows[:, :14] /= scale
    return rows


def detect_faces(image: BGRImage) -> list[FaceCandidate]:
    """Return every face YuNet finds in a BGR photo, largest first."""
    rows = np.concatenate([_detect_at(image, scale) for scale in detection_scales(*image.shape[:2])])
    if len(rows) == 0:
        return []
    keep = cv2.dnn.NMSBoxes(rows[:, :4].tolist(), rows[:, 14].tolist(), SCORE_THRESHOLD, NMS_IOU)
    faces = [
        FaceCandidate(
            box=(float(row[0]), float(row[1]), float(row[2]), float(row[3])),
            score=float(row[14]),
            points=row[4:14].reshape(5, 2).copy(),
        )
        for row in rows[np.asarray(keep, dtype=np.int64).reshape(-1)]
    ]
    faces.sort(key=lambda face: face.area, reverse=True)
    return faces
