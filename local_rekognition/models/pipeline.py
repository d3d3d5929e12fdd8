"""The offline FaceEngine: detection, landmarks, pose, quality, attributes and embeddings per face."""

from __future__ import annotations

import cv2
import numpy as np

from local_rekognition.models import appearance, expressions, occlusion
from local_rekognition.models import attributes as face_attributes
from local_rekognition.models.calibration import cosine, similarity_from_cosine
from local_rekognition.models.confidence import MIN_FACE_CONFIDENCE, face_confidence
from local_rekognition.models.detector import FaceCandidate, detect_faces
from local_rekognition.models.embedder import face_embedding
from local_rekognition.models.engine import Box, DetectedFace, Embedding, RGBImage
from local_rekognition.models.landmarks import DEFAULT_TYPES, mesh_landmarks
from local_rekognition.models.mesh import FaceMesh, face_mesh
from local_rekognition.models.pose import mesh_pose
from local_rekognition.models.quality import measure_quality
from local_rekognition.models.shape import five_point_shape
from local_rekognition.models.weights import FACE_MODEL_VERSION

# Rekognition attribute name → the FaceDetail member appearance.py fills.
APPEARANCE = {"EYEGLASSES": "Eyeglasses", "SUNGLASSES": "Sunglasses", "BEARD": "Beard", "MUSTACHE": "Mustache"}


class OfflineFaceEngine:
    """Rekognition's face analysis on CPU models that ship inside wheels; safe to call from many threads."""

    face_model_version: str = FACE_MODEL_VERSION

    def analyze(
        self,
        image: RGBImage,
        *,
        attributes: frozenset[str] = frozenset(),
        want_embeddings: bool = False,
        max_faces: int = 100,
    ) -> list[DetectedFace]:
        """Return up to ``max_faces`` faces, largest first (see FaceEngine.analyze)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image.dtype} {image.shape}")
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        # The mesh runs for every candidate: Landmarks and Pose are DEFAULT members, and its presence score decides,
        # with YuNet's, whether a candidate is a face at all (confidence.py). Largest first, up to max_faces.
        faces: list[tuple[FaceCandidate, FaceMesh, float]] = []
        for candidate in detect_faces(bgr):
            if len(faces) >= max_faces:
                break
            mesh = face_mesh(image, candidate)
            confidence = face_confidence(candidate.score, mesh.presence_logit)
            if confidence >= MIN_FACE_CONFIDENCE:
                faces.append((candidate, mesh, confidence))
        if not faces:
            return []
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        return [
            self._describe(image, bgr, gray, face, mesh, confidence, attributes, want_embeddings)
            for face, mesh, confidence in faces
        ]

    def similarity(self, a: Embedding, b: Embedding) -> float:
        """Calibrated similarity 0-100; 80 is SFace's published same-person threshold."""
        return similarity_from_cosine(cosine(a, b))

    def _describe(
        self,
        image: RGBImage,
        bgr: np.ndarray,
        gray: np.ndarray,
        face: FaceCandidate,
        mesh: FaceMesh,
        confidence: float,
        attributes: frozenset[str],
        want_embeddings: bool,
    ) -> DetectedFace:
        height, width = image.shape[:2]
        # The 468-point fit keeps Pose sane on small and turned faces, where the 5-point fit swung wildly.
        landmarks = mesh_landmarks(mesh.points)
        if not attributes:
            landmarks = {name: landmarks[name] for name in DEFAULT_TYPES}
        described: dict[str, object] = {}
        if attributes & face_attributes.SUPPORTED or "ALL" in attributes:
            described.update(face_attributes.describe(image, five_point_shape(image, face), attributes))
        if attributes:
            described.update(expressions.describe(image, mesh, attributes, gray))
        wanted = {member for name, member in APPEARANCE.items() if name in attributes or "ALL" in attributes}
        if wanted:
            described.update({k: v for k, v in appearance.describe(image, mesh.points).items() if k in wanted})
        if "FACE_OCCLUDED" in attributes or "ALL" in attributes:
            described["FaceOccluded"] = occlusion.face_occluded(image, face.box, mesh.points)
        return DetectedFace(
            box=Box(*face.box),
            confidence=confidence,
            landmarks=landmarks,
            pose=mesh_pose(mesh.points, width, height),
            quality=measure_quality(gray, face.box),
            attributes=described,
            embedding=face_embedding(bgr, face, mesh) if want_embeddings else None,
        )
