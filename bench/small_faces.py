"""Small faces for bench/local_rekognition_models.py: same/different-person similarity and IndexFaces counts.

Three sources, none of them a held-out photo:

* scenes made from the shared and wheel portraits, each face shrunk to 40-60 px wide with blur, motion streaks,
  roll and JPEG loss (testmedia/small_faces.py, the same scenes the integration tests use);
* ``--people-photos DIR``: labelled photos of several people from public repositories' test images, each shrunk
  until its faces are 44 and 56 px tall and pasted into a 1440×1080 frame (labels in small_face_photos.json);
* ``--group-photos DIR``: group photos with every face boxed by hand, pasted unscaled (faces 37-110 px) into a
  1920×1080 frame, for IndexFaces counts at QualityFilter AUTO against the boxes.

Photos are never committed: small_face_photos.json names each one's repository, commit and path.
Each embedder is scored on the same detections: the engine's (SFace on YuNet's and the mesh's alignments,
averaged) beside SFace on YuNet's points alone, the embedder before this change, as the baseline, and, when
face_recognition_models is installed, dlib's ResNet (its 0.6 distance tolerance mapped to 80).
"""

from __future__ import annotations

import io
import itertools
import json
import math
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from local_rekognition.faces import quality_reasons
from local_rekognition.models.calibration import cosine, similarity_from_cosine
from local_rekognition.models.detector import FaceCandidate, detect_faces
from local_rekognition.models.embedder import aligned_face, embed, face_embedding
from local_rekognition.models.mesh import face_mesh
from local_rekognition.models.pipeline import OfflineFaceEngine
from testmedia.small_faces import (
    CONDITIONS,
    HARSH_CONDITIONS,
    Condition,
    Portrait,
    nearest,
    scenes,
    shared_portraits,
    wheel_portraits,
)

LABELS = Path(__file__).resolve().parent / "small_face_photos.json"
THRESHOLD = 80.0
Embedder = Callable[[np.ndarray, FaceCandidate], np.ndarray]


def engine_embedding(rgb: np.ndarray, face: FaceCandidate) -> np.ndarray:
    """What IndexFaces stores now: SFace on YuNet's and the mesh's alignments, averaged."""
    return face_embedding(np.ascontiguousarray(rgb[:, :, ::-1]), face, face_mesh(rgb, face))


def yunet_only_embedding(rgb: np.ndarray, face: FaceCandidate) -> np.ndarray:
    """The baseline: SFace on the crop YuNet's five points align (the embedder before the mesh was used)."""
    return embed(aligned_face(np.ascontiguousarray(rgb[:, :, ::-1]), face))


def sface_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """The engine's calibrated similarity (SFace's LFW threshold at 80)."""
    return similarity_from_cosine(cosine(a, b))


# dlib's own same-person tolerance (face distance 0.6) mapped to 80 by the same logistic form as SFace's cosine.
_DLIB_TOLERANCE = 0.6


def dlib_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """dlib ResNet's face distance on a 0-100 scale, its 0.6 tolerance at exactly 80."""
    distance = float(np.linalg.norm(a - b))
    return 100.0 / (1.0 + 0.25 * math.exp(-20.0 * (_DLIB_TOLERANCE - distance)))


def _dlib_embedder() -> Embedder | None:
    """dlib's ResNet (face_recognition_models, when installed) on dlib's 5-point shape of YuNet's face."""
    try:
        import dlib  # type: ignore[import-untyped]
        import face_recognition_models  # type: ignore[import-untyped]
    except ImportError:
        return None
    from local_rekognition.models.shape import five_point_shape

    encoder = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())

    def embed_dlib(rgb: np.ndarray, face: FaceCandidate) -> np.ndarray:
        # face_recognition's defaults: a 150-px chip with 0.25 padding, no jitter.
        return np.asarray(encoder.compute_face_descriptor(rgb, five_point_shape(rgb, face), 0, 0.25))

    return embed_dlib


EMBEDDERS: dict[str, tuple[Embedder, Callable[[np.ndarray, np.ndarray], float]]] = {
    "mesh+YuNet (now)": (engine_embedding, sface_similarity),
    "YuNet only (before)": (yunet_only_embedding, sface_similarity),
}
_dlib = _dlib_embedder()
if _dlib is not None:
    EMBEDDERS["dlib ResNet"] = (_dlib, dlib_similarity)


@dataclass
class Sample:
    """One face: who, from which photo, how large, and its embedding by each embedder."""

    person: str
    photo: str
    small: bool
    embeddings: dict[str, np.ndarray]


@dataclass(frozen=True)
class PairFigures:
    same: list[float]
    different: list[float]

    def row(self) -> str:
        same, different = np.asarray(self.same), np.asarray(self.different)
        auc = float(np.mean(same[:, None] > different[None, :])) if len(same) and len(different) else float("nan")
        return (
            f"same n={len(same)} min {same.min():.1f} p10 {np.percentile(same, 10):.1f} "
            f"median {np.median(same):.1f} >=80 {np.mean(same >= THRESHOLD):.1%} | "
            f"different n={len(different)} max {different.max():.1f} p99 {np.percentile(different, 99):.1f} "
            f">=80 {np.mean(different >= THRESHOLD):.1%} | AUC {auc:.4f}"
        )


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def _decode(jpeg: bytes) -> np.ndarray:
    return _rgb_from(io.BytesIO(jpeg))


def _rgb_from(stream: io.BytesIO) -> np.ndarray:
    with Image.open(stream) as image:
        return np.asarray(image.convert("RGB"))


def _embed(rgb: np.ndarray, face: FaceCandidate) -> dict[str, np.ndarray]:
    return {name: embedder(rgb, face) for name, (embedder, _) in EMBEDDERS.items()}


def pairs(samples: Sequence[Sample], embedder: str, kinds: tuple[bool, bool]) -> PairFigures:
    """Similarities of every pair from two different photos whose (small, small) flags match ``kinds``."""
    same, different = [], []
    for a, b in itertools.combinations(samples, 2):
        if a.photo == b.photo or tuple(sorted((a.small, b.small))) != tuple(sorted(kinds)):
            continue
        similarity = EMBEDDERS[embedder][1](a.embeddings[embedder], b.embeddings[embedder])
        (same if a.person == b.person else different).append(similarity)
    return PairFigures(same, different)


@dataclass
class Counts:
    placed: int = 0
    found: int = 0
    indexed: int = 0
    unindexed_reasons: dict[str, int] | None = None

    def add_reasons(self, reasons: Sequence[str]) -> None:
        self.unindexed_reasons = self.unindexed_reasons or {}
        for reason in reasons:
            self.unindexed_reasons[reason] = self.unindexed_reasons.get(reason, 0) + 1


def scene_samples(
    portraits: Sequence[Portrait],
    engine: OfflineFaceEngine,
    counts: Counts,
    conditions: Sequence[Condition] = CONDITIONS,
) -> list[Sample]:
    """Faces of the pasted scenes, matched to where each portrait went, and what IndexFaces AUTO would keep."""
    samples = []
    for scene in scenes(portraits, "scene", conditions):
        rgb = _decode(scene.jpeg)
        counts.placed += len(scene.faces)
        detected = engine.analyze(rgb)
        for face in detected:
            reasons = quality_reasons(face, "AUTO", scene.size)
            centre = (face.box.left + face.box.width / 2, face.box.top + face.box.height / 2)
            if nearest(scene.faces, centre) is None:
                continue
            counts.found += 1
            if reasons:
                counts.add_reasons(reasons)
            else:
                counts.indexed += 1
        for candidate in detect_faces(np.ascontiguousarray(rgb[:, :, ::-1])):
            placed = nearest(
                scene.faces, (candidate.box[0] + candidate.box[2] / 2, candidate.box[1] + candidate.box[3] / 2)
            )
            if placed is not None:
                samples.append(Sample(placed.person, scene.name, True, _embed(rgb, candidate)))
    for portrait in portraits:
        largest = detect_faces(np.ascontiguousarray(portrait.image[:, :, ::-1]))[0]
        samples.append(Sample(portrait.person, portrait.name, False, _embed(portrait.image, largest)))
    return samples


def _labels() -> dict[str, object]:
    loaded: dict[str, object] = json.loads(LABELS.read_text("utf-8"))
    return loaded


def people_samples(directory: Path) -> list[Sample]:
    """Labelled photos at full size and shrunk so their faces are 44 and 56 px tall, pasted into 1440×1080."""
    labels = _labels()["people"]
    assert isinstance(labels, dict)
    samples = []
    for name, entry in labels.items():
        if name == "source":
            continue
        people = list(entry["people_left_to_right"])
        rgb = _rgb(directory / name)
        faces = sorted(detect_faces(np.ascontiguousarray(rgb[:, :, ::-1]))[: len(people)], key=lambda f: f.box[0])
        for face, person in zip(faces, people, strict=True):
            samples.append(Sample(person, name, False, _embed(rgb, face)))
        for target_px, quality in ((44, 80), (56, 70)):
            scale = target_px / max(face.box[3] for face in faces)
            size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
            small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            canvas = np.full((1080, 1440, 3), 120, np.uint8)
            height, width = min(small.shape[0], 980), min(small.shape[1], 1240)
            canvas[100 : 100 + height, 200 : 200 + width] = small[:height, :width]
            out = io.BytesIO()
            Image.fromarray(canvas).save(out, "JPEG", quality=quality)
            frame = _decode(out.getvalue())
            found = [f for f in detect_faces(np.ascontiguousarray(frame[:, :, ::-1])) if f.box[3] > 0.6 * target_px]
            found = sorted(found[: len(people)], key=lambda f: f.box[0])
            if len(found) != len(people):
                continue  # reported as a miss by the count below
            for face, person in zip(found, people, strict=True):
                samples.append(Sample(person, f"{name}@{target_px}", True, _embed(frame, face)))
    return samples


def group_counts(directory: Path, engine: OfflineFaceEngine) -> Counts:
    """Hand-boxed faces of group photos pasted into 1920×1080: how many IndexFaces AUTO finds and keeps."""
    counts = Counts()
    entry = _labels()["groups"]
    assert isinstance(entry, dict)
    for xml_name in entry["box_files"]:
        for image in ElementTree.parse(directory / xml_name).getroot().iter("image"):
            boxes = [box for box in image.iter("box") if box.get("ignore") != "1"]
            rgb = _rgb(directory / str(image.get("file")))
            canvas = np.full((1080, 1920, 3), 128, np.uint8)
            canvas[300 : 300 + rgb.shape[0], 700 : 700 + rgb.shape[1]] = rgb
            counts.placed += len(boxes)
            for face in engine.analyze(canvas):
                centre = (face.box.left + face.box.width / 2 - 700, face.box.top + face.box.height / 2 - 300)
                hit = any(
                    abs(centre[0] - (int(b.get("left", 0)) + int(b.get("width", 0)) / 2)) < int(b.get("width", 0)) / 2
                    and abs(centre[1] - (int(b.get("top", 0)) + int(b.get("height", 0)) / 2))
                    < int(b.get("height", 0)) / 2
                    for b in boxes
                )
                if not hit:
                    continue
                counts.found += 1
                reasons = quality_reasons(face, "AUTO", (1920, 1080))
                if reasons:
                    counts.add_reasons(reasons)
                else:
                    counts.indexed += 1
    return counts


def report(shared: Path | None, people_photos: Path | None, group_photos: Path | None) -> list[str]:
    """The small-face lines of the models benchmark."""
    engine = OfflineFaceEngine()
    lines = []
    portraits = wheel_portraits() + (shared_portraits(shared) if shared is not None and shared.is_dir() else [])
    counts = Counts()
    samples = scene_samples(portraits, engine, counts)
    lines.append(
        f"small faces, pasted scenes ({len(portraits)} portraits x 3 scenes, faces 40-60 px wide): IndexFaces AUTO "
        f"indexed {counts.indexed}/{counts.placed} (found {counts.found}; "
        f"not indexed: {counts.unindexed_reasons or {}})"
    )
    for embedder in EMBEDDERS:
        lines.append(f"  {embedder:20} small-small  {pairs(samples, embedder, (True, True)).row()}")
        lines.append(f"  {embedder:20} small-large  {pairs(samples, embedder, (True, False)).row()}")
        lines.append(f"  {embedder:20} large-large  {pairs(samples, embedder, (False, False)).row()}")
    harsh = Counts()
    harsh_samples = scene_samples(portraits, engine, harsh, HARSH_CONDITIONS)
    lines.append(
        "small faces, harsh scenes (faces 36-44 px, streaks 7-9 px, JPEG 50-60; no test expects these): IndexFaces "
        f"AUTO indexed {harsh.indexed}/{harsh.placed} (found {harsh.found}; "
        f"not indexed: {harsh.unindexed_reasons or {}})"
    )
    for embedder in EMBEDDERS:
        lines.append(f"  {embedder:20} small-small  {pairs(harsh_samples, embedder, (True, True)).row()}")
        lines.append(f"  {embedder:20} small-large  {pairs(harsh_samples, embedder, (True, False)).row()}")
    if people_photos is not None:
        people = people_samples(people_photos)
        small = sum(sample.small for sample in people)
        lines.append(f"small faces, labelled photos of several people ({people_photos}): {small} small faces matched")
        for embedder in EMBEDDERS:
            lines.append(f"  {embedder:20} small-small  {pairs(people, embedder, (True, True)).row()}")
            lines.append(f"  {embedder:20} small-large  {pairs(people, embedder, (True, False)).row()}")
            lines.append(f"  {embedder:20} large-large  {pairs(people, embedder, (False, False)).row()}")
    if group_photos is not None:
        groups = group_counts(group_photos, engine)
        lines.append(
            f"group photos ({group_photos}): IndexFaces AUTO indexed {groups.indexed}/{groups.placed} hand-boxed faces "
            f"(found {groups.found}; not indexed: {groups.unindexed_reasons or {}})"
        )
    return lines
