"""128-d SFace embeddings of faces aligned from the full-resolution photo, by YuNet's points and by the mesh's."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from local_rekognition.models.detector import BGRImage, FaceCandidate
from local_rekognition.models.mesh import FaceMesh
from local_rekognition.models.threads import PerThread
from local_rekognition.models.weights import sface_path

EMBEDDING_SIZE = 128
# The packaged int8 graph keeps its weights as graph inputs too, so OpenCV 5 needs the image input named
# (FaceRecognizerSF.feature leaves it unnamed and fails) and ONNX Runtime rejects the graph outright.
_INPUT = "data"
# The mesh points that stand for YuNet's five: each eye's centre (its corners and lids), the nose tip, and the
# mouth corners, in YuNet's order (image-left eye first).
_MESH_EYES = ((33, 133, 159, 145), (362, 263, 386, 374))
_MESH_NOSE_AND_MOUTH = (1, 61, 291)
# Below this presence the mesh has not found a face in its crop (a streak of 9 px across a 40 px face measured
# 0.0-0.34, while faces with streaks up to 6 px measured 0.62 and above), and its points would misalign the face.
_MIN_MESH_PRESENCE = 0.5


def _new_aligner() -> cv2.FaceRecognizerSF:
    return cv2.FaceRecognizerSF.create(str(sface_path()), "")


def _new_net() -> cv2.dnn.Net:
    return cv2.dnn.readNetFromONNX(str(sface_path()))


_aligner: PerThread[cv2.FaceRecognizerSF] = PerThread(_new_aligner)
_net: PerThread[cv2.dnn.Net] = PerThread(_new_net)


def aligned_face(image: BGRImage, face: FaceCandidate) -> BGRImage:
    """The 112x112 face SFace expects, warped by the five landmarks straight from the full-size photo."""
    crop: BGRImage = np.asarray(_aligner.get().alignCrop(image, face.yunet_row()), dtype=np.uint8)
    return crop


def with_mesh_points(face: FaceCandidate, mesh: FaceMesh) -> FaceCandidate:
    """The same detection with its five points taken from the face mesh instead of YuNet."""
    points = mesh.points[:, :2]
    five = [points[list(eye)].mean(axis=0) for eye in _MESH_EYES] + [points[i] for i in _MESH_NOSE_AND_MOUTH]
    return FaceCandidate(box=face.box, score=face.score, points=np.asarray(five, dtype=np.float32))


def _features(aligned: list[BGRImage]) -> npt.NDArray[np.float32]:
    # The input FaceRecognizerSF.feature builds: RGB, raw 0-255 values, NCHW; one forward pass for all crops.
    blob = cv2.dnn.blobFromImages(aligned, 1.0, (112, 112), (0.0, 0.0, 0.0), swapRB=True, crop=False)
    net = _net.get()
    net.setInput(blob, _INPUT)
    return np.asarray(net.forward(), dtype=np.float32).reshape(len(aligned), -1)


def _unit(feature: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norm = float(np.linalg.norm(feature))
    if norm == 0.0:
        raise ValueError("SFace returned a zero embedding")
    unit: npt.NDArray[np.float32] = feature / norm
    return unit


def embed(aligned: BGRImage) -> npt.NDArray[np.float32]:
    """The unit-norm 128-d embedding of an aligned BGR face."""
    return _unit(_features([aligned])[0])


def face_embedding(image: BGRImage, face: FaceCandidate, mesh: FaceMesh) -> npt.NDArray[np.float32]:
    """The unit-norm embedding of a face: the mean of SFace on the face aligned by YuNet's points and by the mesh's.

    On a face 40-60 px wide YuNet's five points are off by a pixel or two, and so is the crop they align; the mesh,
    fitted to the whole face, errs differently. Averaging the two embeddings raised the lowest same-person
    similarity of small faces in motion from 59 to 84 with no different-person pair reaching 80, and the median
    same-person cosine of large portraits from 0.74 to 0.80 (bench/README.md, small faces).
    """
    crops = [aligned_face(image, face)]
    if mesh.presence >= _MIN_MESH_PRESENCE:
        crops.append(aligned_face(image, with_mesh_points(face, mesh)))
    features = _features(crops)
    return _unit(np.sum([_unit(feature) for feature in features], axis=0, dtype=np.float32))
