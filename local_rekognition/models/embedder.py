"""128-d SFace embeddings of faces aligned from the full-resolution photo."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from local_rekognition.models.detector import BGRImage, FaceCandidate
from local_rekognition.models.threads import PerThread
from local_rekognition.models.weights import sface_path

EMBEDDING_SIZE = 128
# The packaged int8 graph keeps its weights as graph inputs too, so OpenCV 5 needs the image input named
# (FaceRecognizerSF.feature leaves it unnamed and fails) and ONNX Runtime rejects the graph outright.
_INPUT = "data"


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


def embed(aligned: BGRImage) -> npt.NDArray[np.float32]:
    """The unit-norm 128-d embedding of an aligned BGR face."""
    # The input FaceRecognizerSF.feature builds: RGB, raw 0-255 values, NCHW.
    blob = cv2.dnn.blobFromImage(aligned, 1.0, (112, 112), (0.0, 0.0, 0.0), swapRB=True, crop=False)
    net = _net.get()
    net.setInput(blob, _INPUT)
    feature = np.asarray(net.forward(), dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(feature))
    if norm == 0.0:
        raise ValueError("SFace returned a zero embedding")
    unit: npt.NDArray[np.float32] = feature / norm
    return unit
