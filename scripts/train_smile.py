"""Fit the Smile classifier: python scripts/train_smile.py [--mirrors DIR].

Smile was the blendshape model's mouthSmile score at 0.5 (86.5 % of the development set). The classifier here
reads what the engine already computes for every ALL face: the 52 blendshape scores and the emotion network's
seven probabilities (as logits), in one logistic regression. Training faces: CelebA's aligned photos
002001–005000 with CelebA's own Smiling label (the development set takes its CelebA faces from 000001–002000, so no
face is in both; the pool is scripts/train_face_details.py's). Printed: 5-fold cross-validated accuracy on the
training faces, then the accuracy on the development faces (tests/data/dev_faces.csv, never fitted on). The
coefficients go to local_rekognition/models/smile_model.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import dev_faces  # noqa: E402 - needs scripts/ on sys.path first
import train_face_details  # noqa: E402

from local_rekognition.models import emotions, expressions  # noqa: E402
from local_rekognition.models.detector import detect_faces  # noqa: E402
from local_rekognition.models.mesh import face_mesh  # noqa: E402

POOL = range(2001, 5001)
MODEL = ROOT / "local_rekognition" / "models" / "smile_model.json"
# C = 0.1 and 1 were tried: 5-fold CV 90.9 % and 90.4 % on the pool.
C = 0.1


def _measure(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64] | None:
    faces = detect_faces(np.ascontiguousarray(image[:, :, ::-1]))
    if not faces:
        return None
    points = face_mesh(image, faces[0]).points
    gray = np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
    raw = emotions.emotion_probabilities(emotions.face_chip(gray, points))
    return expressions.smile_features(expressions.blendshape_scores(points), raw)


def _table(photos: Iterator[tuple[str, npt.NDArray[np.uint8]]]) -> tuple[list[str], npt.NDArray[np.float64]]:
    names, rows = [], []
    for name, image in photos:
        row = _measure(image)
        if row is not None:
            names.append(name)
            rows.append(row)
    return names, np.asarray(rows)


def _fit(x: npt.NDArray[np.float64], y: npt.NDArray[np.bool_]) -> tuple[StandardScaler, LogisticRegression]:
    scaler = StandardScaler().fit(x)
    return scaler, LogisticRegression(C=C, max_iter=5000).fit(scaler.transform(x), y)


def _cross_validated(x: npt.NDArray[np.float64], y: npt.NDArray[np.bool_]) -> float:
    right = 0
    for train, test in StratifiedKFold(5, shuffle=True, random_state=23).split(x, y):
        scaler, model = _fit(x[train], y[train])
        right += int((model.predict(scaler.transform(x[test])) == y[test]).sum())
    return right / len(y)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirrors", type=Path, default=dev_faces.DEFAULT_MIRRORS, help="folder holding the clones")
    args = parser.parse_args(argv)

    attributes = train_face_details._attributes(args.mirrors)
    train_face_details.POOL = POOL
    names, x = _table(train_face_details._pool_photos(args.mirrors))
    y = np.asarray([attributes[name]["Smiling"] for name in names])
    cv_accuracy = _cross_validated(x, y)
    scaler, model = _fit(x, y)

    labels = {face.face: face.labels["smiling"] for face in dev_faces.dev_faces()}
    dev_names, dev_x = _table(train_face_details._dev_photos())
    scored = [i for i, name in enumerate(dev_names) if labels[name] in ("true", "false")]
    truth = np.asarray([labels[dev_names[i]] == "true" for i in scored])
    dev_accuracy = float((model.predict(scaler.transform(dev_x[scored])) == truth).mean())

    spec: dict[str, Any] = {
        "what": "Smile: logistic regression on 52 blendshape scores and 7 emotion logits (scripts/train_smile.py)",
        "training_faces": len(y),
        "cross_validated_accuracy": round(cv_accuracy, 4),
        "dev_faces": len(truth),
        "dev_accuracy": round(dev_accuracy, 4),
        "mean": [round(float(v), 6) for v in scaler.mean_],
        "scale": [round(float(v), 6) for v in scaler.scale_],
        "coef": [round(float(v), 6) for v in model.coef_[0]],
        "intercept": round(float(model.intercept_[0]), 6),
    }
    MODEL.write_text(json.dumps(spec, indent=1) + "\n")
    print(
        f"Smile: {len(y)} training faces, 5-fold CV {cv_accuracy:.1%}; development set {dev_accuracy:.1%} of "
        f"{len(truth)}; written to {MODEL.relative_to(ROOT)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
