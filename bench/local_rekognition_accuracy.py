"""Benchmark: how often each FaceDetail field agrees with a person, on the labelled development set.

The faces are tests/data/dev_faces.csv's, as far as scripts/dev_faces.py has laid their photos out (the two wheel
portraits are there on every clone). Each photo goes through the engine as DetectFaces ALL would send it, the
largest face is compared with the labels, and a label a person marked "unsure" is not scored. Printed per field:
faces scored, accuracy, the confusion counts, and the mean Confidence when right and when wrong (a field whose
Confidence means something is surer when right). The timing per face, ALL beside DEFAULT, is measured on the same
photos in the same run.

    python bench/local_rekognition_accuracy.py [--source celeba-thumbs] [--limit N] [--mirrors DIR]

It first lays out what it can (scripts/dev_faces.py: the wheel portraits always, the rest from clones found under
--mirrors).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import dev_faces  # noqa: E402 - needs scripts/ on sys.path first

from local_rekognition.faces import ATTRIBUTE_MEMBERS  # noqa: E402
from local_rekognition.models import load_engine  # noqa: E402
from local_rekognition.models.engine import DetectedFace  # noqa: E402

ALL = frozenset(ATTRIBUTE_MEMBERS)


def _boolean(member: str) -> Callable[[dict[str, Any]], tuple[bool, float]]:
    def read(attributes: dict[str, Any]) -> tuple[bool, float]:
        return bool(attributes[member]["Value"]), float(attributes[member]["Confidence"])

    return read


def _gender(attributes: dict[str, Any]) -> tuple[str, float]:
    return str(attributes["Gender"]["Value"]), float(attributes["Gender"]["Confidence"])


def _emotion(attributes: dict[str, Any]) -> tuple[str, float]:
    top = attributes["Emotions"][0]
    return str(top["Type"]), float(top["Confidence"])


def _age(attributes: dict[str, Any]) -> tuple[tuple[int, int], float]:
    age = attributes["AgeRange"]
    return (int(age["Low"]), int(age["High"])), 100.0


# Label column → how to read the engine's answer; booleans score true/false, the rest compare values.
FIELDS: dict[str, Callable[[dict[str, Any]], tuple[Any, float]]] = {
    "eyeglasses": _boolean("Eyeglasses"),
    "sunglasses": _boolean("Sunglasses"),
    "beard": _boolean("Beard"),
    "mustache": _boolean("Mustache"),
    "occluded": _boolean("FaceOccluded"),
    "smiling": _boolean("Smile"),
    "mouth_open": _boolean("MouthOpen"),
    "eyes_open": _boolean("EyesOpen"),
    "gender": _gender,
    "emotion": _emotion,
    "age": _age,
}
BOOLEAN = ("eyeglasses", "sunglasses", "beard", "mustache", "occluded", "smiling", "mouth_open", "eyes_open")


@dataclass
class Score:
    """One field's tally."""

    counts: dict[str, int] = field(default_factory=lambda: {"TP": 0, "FP": 0, "TN": 0, "FN": 0})
    right: list[float] = field(default_factory=list)
    wrong: list[float] = field(default_factory=list)
    missed: int = 0
    """Labelled faces on which no face was detected (counted as wrong)."""

    @property
    def faces(self) -> int:
        return len(self.right) + len(self.wrong)

    @property
    def accuracy(self) -> float:
        return len(self.right) / self.faces if self.faces else float("nan")


def _judge(name: str, label: str, answer: tuple[Any, float], score: Score) -> None:
    value, confidence = answer
    if name in BOOLEAN:
        truth = label == "true"
        correct = value == truth
        score.counts[("T" if correct else "F") + ("P" if value else "N")] += 1
    elif name == "age":
        low, high = value
        correct = low <= int(label) <= high
    else:
        correct = value.upper() == label.upper()
    (score.right if correct else score.wrong).append(confidence)


def _scoreable(name: str, label: str) -> bool:
    if name in BOOLEAN:
        return label in ("true", "false")
    return bool(label) and label != "unsure"


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.ascontiguousarray(np.asarray(ImageOps.exif_transpose(image).convert("RGB")))


def _largest(faces: Sequence[DetectedFace]) -> DetectedFace | None:
    return max(faces, key=lambda face: face.box.width * face.box.height, default=None)


def _row(*cells: str) -> None:
    print("| " + " | ".join(cells) + " |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=None, help="score only this source of tests/data/dev_faces_sources.toml")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N present faces")
    parser.add_argument("--mirrors", type=Path, default=dev_faces.DEFAULT_MIRRORS, help="where clones are looked for")
    args = parser.parse_args(argv)

    # One core, as one server worker thread has (bench/local_rekognition_models.py pins the same way).
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cv2.setNumThreads(1)
    # The wheel portraits are copied from their packages on any clone; the rest need clones (scripts/dev_faces.py).
    dev_faces.lay_out(args.mirrors)
    present = [face for face in dev_faces.dev_faces() if face.photo.is_file()]
    present = [face for face in present if args.source in (None, face.source)][: args.limit]
    total = len(dev_faces.dev_faces())
    print(f"{len(present)} of {total} development faces present (python scripts/dev_faces.py lays them out)")
    engine = load_engine()
    scores = {name: Score() for name in FIELDS}
    all_ms: list[float] = []
    default_ms: list[float] = []
    for face in present:
        image = _rgb(face.photo)
        start = time.perf_counter()
        engine.analyze(image)
        default_ms.append((time.perf_counter() - start) * 1000.0)
        start = time.perf_counter()
        found = _largest(engine.analyze(image, attributes=ALL))
        all_ms.append((time.perf_counter() - start) * 1000.0)
        for name, read in FIELDS.items():
            label = face.labels.get(name, "")
            if not _scoreable(name, label):
                continue
            if found is None:
                scores[name].missed += 1
                scores[name].wrong.append(0.0)
                continue
            _judge(name, label, read(dict(found.attributes)), scores[name])

    print()
    _row("field", "faces", "accuracy", "TP", "FP", "TN", "FN", "no face", "conf. right", "conf. wrong")
    print("|" + "---|" * 10)
    for name, score in scores.items():
        counts = [str(score.counts[key]) if name in BOOLEAN else "" for key in ("TP", "FP", "TN", "FN")]
        right = f"{statistics.fmean(score.right):.1f}" if score.right else ""
        wrong = f"{statistics.fmean(score.wrong):.1f}" if score.wrong else ""
        _row(name, str(score.faces), f"{score.accuracy:.1%}", *counts, str(score.missed), right, wrong)
    if all_ms:
        per_default, per_all = statistics.median(default_ms), statistics.median(all_ms)
        print(
            f"\ntime per face (median over {len(all_ms)} one-face photos, one core): "
            f"DEFAULT {per_default:.1f} ms, ALL {per_all:.1f} ms (ALL = {per_all / per_default:.2f}x DEFAULT)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
