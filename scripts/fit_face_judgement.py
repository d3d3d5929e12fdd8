"""Fit local_rekognition's judgement constants and report their accuracy by 5-fold cross-validation.

    python scripts/fit_face_judgement.py            # measure and print; --write also rewrites the constants module

What it fits (local_rekognition/models/judgement_fit.py, docs/face-judgement.md):
- AgeRange: a centre and half-width in log(1 + age) around the age network's mean, on the age set (840 UTKFace
  faces, tests/data/age_faces.csv), so that AGE_COVERAGE of held-out faces fall inside.
- Gender: temperature scaling of the gender network's logit on the age set's faces aged 13 and over; accuracy is
  reported on the development set (260 CelebA faces, tests/data/dev_faces.csv), which the fit never sees.
- MouthOpen: a logistic on the inner-lip gap and the smile score, on the development set's mouth labels.
- Emotions: a CALM prior and a smile weight, on the development set's HAPPY / CALM labels.

Photos come from clones of their repositories (scripts/dev_faces.py lays out the development set; the age set is
read with ``git show`` from its clone). Nothing is fitted on the wheel portraits or ../shared/images: they are
printed at the end as a check.
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import dev_faces  # noqa: E402 - scripts/ on sys.path first

from local_rekognition.models import attributes, emotions, expressions  # noqa: E402
from local_rekognition.models.detector import detect_faces  # noqa: E402
from local_rekognition.models.mesh import face_mesh  # noqa: E402
from local_rekognition.models.shape import five_point_shape  # noqa: E402

AGE_FACES = ROOT / "tests" / "data" / "age_faces.csv"
AGE_SOURCES = ROOT / "tests" / "data" / "age_faces_sources.toml"
CONSTANTS = ROOT / "local_rekognition" / "models" / "judgement_fit.py"
FOLDS = 5
SEED = 23
AGE_TARGET = 0.70
"""The share of training faces each fold's half-width factor is chosen to hold (held-out coverage comes out above)."""
AGE_BANDS = ((0, 3), (4, 7), (8, 12), (13, 17), (18, 24), (25, 34), (35, 44), (45, 54), (55, 64), (65, 74), (75, 84))
AGE_MIN_ERROR = 0.05
AGE_MIN_WIDTH_YEARS = 2
AGE_MAX_YEARS = 100
"""High never goes past this: the widest old-age ranges would otherwise reach 115, which no photo needs."""


@dataclass
class Face:
    """What the fit needs of one labelled face, measured by the engine's own functions."""

    name: str
    labels: dict[str, str]
    age_mean: float
    age_spread: float
    male: float
    gap: float
    smile: float
    emotion: npt.NDArray[np.float64]


def _rgb(data: bytes) -> npt.NDArray[np.uint8]:
    with Image.open(io.BytesIO(data)) as image:
        return np.ascontiguousarray(np.asarray(ImageOps.exif_transpose(image).convert("RGB")))


def measure(name: str, rgb: npt.NDArray[np.uint8], labels: dict[str, str]) -> Face | None:
    """The engine's measurements of the largest face, or None when no face is found."""
    candidates = detect_faces(np.ascontiguousarray(rgb[:, :, ::-1]))
    if not candidates:
        return None
    face = candidates[0]
    mesh = face_mesh(rgb, face)
    shape = five_point_shape(rgb, face)
    scores = expressions.blendshape_scores(mesh.points)
    mean, spread = attributes.age_estimate(rgb, shape)
    raw = emotions.emotion_probabilities(emotions.face_chip(rgb, mesh.points)).astype(np.float64)
    return Face(
        name=name,
        labels=labels,
        age_mean=mean,
        age_spread=spread,
        male=attributes.male_probability(rgb, shape),
        gap=expressions.mouth_gap_ratio(mesh.points),
        smile=expressions.smile_score(scores),
        emotion=raw / (raw.sum() or 1.0),
    )


def _git_show(clone: Path, commit: str, path: str) -> bytes:
    return subprocess.run(["git", "-C", str(clone), "show", f"{commit}:{path}"], capture_output=True, check=True).stdout


def age_set(mirrors: Path) -> Iterator[Face]:
    """The age set's faces, read from a clone of their repository."""
    with AGE_SOURCES.open("rb") as handle:
        sources = tomllib.load(handle)["source"]
    with AGE_FACES.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        spec = sources[row["source"]]
        clone = dev_faces._clone(mirrors, spec["repo"])
        if clone is None:
            raise SystemExit(f"no clone of {spec['repo']} under {mirrors}: git clone https://github.com/{spec['repo']}")
        face = measure(row["face"], _rgb(_git_show(clone, spec["commit"], row["path"])), row)
        if face is not None:
            yield face


def check_disjoint() -> None:
    """Refuse to fit when a face of the age set is also in the development set, which must stay held out."""
    with AGE_FACES.open(newline="") as handle:
        fitted = {(row["source"], row["path"]) for row in csv.DictReader(handle)}
    shared = [face.face for face in dev_faces.dev_faces() if (face.source, face.path) in fitted]
    if shared:
        raise SystemExit(f"{len(shared)} development faces are in the age set too, e.g. {shared[:3]}")


def development_set() -> Iterator[Face]:
    """The development set's faces, from the photos scripts/dev_faces.py laid out."""
    for item in dev_faces.dev_faces():
        if item.source == "wheel-portraits":
            continue  # the wheel portraits are the check, never fitted on
        if not item.photo.is_file():
            raise SystemExit(f"{item.photo} missing: run python scripts/dev_faces.py first")
        face = measure(item.face, _rgb(item.photo.read_bytes()), item.labels)
        if face is not None:
            yield face


def folds(count: int) -> npt.NDArray[np.int64]:
    """A fixed assignment of ``count`` faces to FOLDS folds."""
    return np.asarray(np.random.default_rng(SEED).permutation(count) % FOLDS, dtype=np.int64)


def logistic(
    features: npt.NDArray[np.float64], target: npt.NDArray[np.float64], ridge: float
) -> npt.NDArray[np.float64]:
    """Weights (intercept first) of an L2-regularised logistic regression, by Newton's method."""
    design = np.column_stack([np.ones(len(features)), features])
    weights = np.zeros(design.shape[1])
    penalty = ridge * np.diag([0.0] + [1.0] * features.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ weights, -30, 30)))
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hessian, design.T @ (p - target) + penalty @ weights)
        weights -= step
        if float(np.abs(step).max()) < 1e-10:
            break
    return np.asarray(weights, dtype=np.float64)


def predict(weights: npt.NDArray[np.float64], features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Probabilities of a logistic regression's weights on ``features``."""
    design = np.column_stack([np.ones(len(features)), features])
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(design @ weights, -30, 30))), dtype=np.float64)


# --- AgeRange ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgeFit:
    centre: tuple[float, float, float]
    error: tuple[float, float, float]
    factor: float


def _age_design(mean: npt.NDArray[np.float64], spread: npt.NDArray[np.float64]) -> tuple[np.ndarray, np.ndarray]:
    x = np.log1p(mean)
    return np.column_stack([np.ones_like(x), x, x * x]), np.column_stack([np.ones_like(x), x, spread])


def fit_age(mean: np.ndarray, spread: np.ndarray, age: np.ndarray, target: float) -> AgeFit:
    """Least-squares centre, least-squares expected |error|, and the factor that holds ``target`` of the faces."""
    centre_design, error_design = _age_design(mean, spread)
    truth = np.log1p(age)
    centre = np.linalg.lstsq(centre_design, truth, rcond=None)[0]
    residual = np.abs(truth - centre_design @ centre)
    error = np.linalg.lstsq(error_design, residual, rcond=None)[0]
    expected = np.maximum(error_design @ error, AGE_MIN_ERROR)
    factor = float(np.quantile(residual / expected, target))
    return AgeFit(tuple(map(float, centre)), tuple(map(float, error)), factor)  # type: ignore[arg-type]


def age_ranges(fit: AgeFit, mean: np.ndarray, spread: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Low and High for each face under ``fit``, computed as local_rekognition does (attributes.age_range_from)."""
    x = np.log1p(mean)
    centre = fit.centre[0] + fit.centre[1] * x + fit.centre[2] * x * x
    half = fit.factor * np.maximum(AGE_MIN_ERROR, fit.error[0] + fit.error[1] * x + fit.error[2] * spread)
    low = np.maximum(0, np.floor(np.expm1(centre - half)))
    high = np.maximum(low + AGE_MIN_WIDTH_YEARS, np.minimum(AGE_MAX_YEARS, np.ceil(np.expm1(centre + half))))
    return low, high


def report_age(faces: list[Face]) -> tuple[AgeFit, dict[str, float]]:
    """Cross-validated coverage of the age fit, by band; the fit on every face."""
    mean = np.asarray([face.age_mean for face in faces])
    spread = np.asarray([face.age_spread for face in faces])
    age = np.asarray([float(face.labels["age"]) for face in faces])
    assignment = folds(len(faces))
    low, high = np.zeros_like(age), np.zeros_like(age)
    for fold in range(FOLDS):
        train, test = assignment != fold, assignment == fold
        fit = fit_age(mean[train], spread[train], age[train], AGE_TARGET)
        low[test], high[test] = age_ranges(fit, mean[test], spread[test])
    inside = (low <= age) & (age <= high)
    print(
        f"AgeRange, {len(faces)} age-set faces, {FOLDS}-fold CV: {inside.mean():.1%} hold the labelled age, "
        f"mean width {np.mean(high - low):.1f} years, Low == High {int(np.sum(low == high))}"
    )
    for first, last in (*AGE_BANDS, (85, 200)):
        band = (age >= first) & (age <= last)
        print(
            f"  ages {first:>2}-{last if last < 200 else '':<3} {int(band.sum()):>3} faces: "
            f"{inside[band].mean():.0%} inside, mean width {np.mean(high[band] - low[band]):.1f}"
        )
    adults = (age >= 18) & (age <= 70)
    figures = {
        "coverage": float(inside.mean()),
        "width": float(np.mean(high - low)),
        "adult_coverage": float(inside[adults].mean()),
        "adult_width": float(np.mean((high - low)[adults])),
        "faces": len(faces),
    }
    return fit_age(mean, spread, age, AGE_TARGET), figures


def report_age_held_out(fit: AgeFit, development: list[Face]) -> None:
    """The fit on the whole age set, measured on the development set's faces with a labelled age."""
    aged = [face for face in development if face.labels.get("age")]
    if not aged:
        return
    mean = np.asarray([face.age_mean for face in aged])
    spread = np.asarray([face.age_spread for face in aged])
    age = np.asarray([float(face.labels["age"]) for face in aged])
    low, high = age_ranges(fit, mean, spread)
    inside = (low <= age) & (age <= high)
    print(
        f"  held out: {len(aged)} development faces with an age, {inside.mean():.1%} inside, "
        f"mean width {np.mean(high - low):.1f} years"
    )


# --- Gender, MouthOpen, Emotions ---------------------------------------------------------------------------------


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.asarray(np.log(p / (1 - p)), dtype=np.float64)


def report_gender(age_faces: list[Face], development: list[Face]) -> tuple[tuple[float, float], dict[str, float]]:
    """Temperature scaling fitted on the age set (13 and over), measured on the development set."""
    train = [face for face in age_faces if int(face.labels["age"]) >= 13]
    x = _logit(np.asarray([face.male for face in train]))[:, None]
    y = np.asarray([face.labels["gender"] == "Male" for face in train], dtype=np.float64)
    # Temperature scaling: a slope on the logit and no offset, so that the network's decision stays as it is (an
    # offset fitted on UTKFace moved it towards Male and cost the development set 0.3 %) and only its Confidence is
    # made to match how often it is right.
    slope = 1.0
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(slope * x[:, 0], -30, 30)))
        step = float(np.sum((p - y) * x[:, 0])) / float(np.sum(p * (1 - p) * x[:, 0] ** 2))
        slope -= step
        if abs(step) < 1e-10:
            break
    offset = 0.0
    weights = np.asarray([offset, slope])
    scored = [face for face in development if face.labels["gender"] in ("Male", "Female")]
    truth = np.asarray([face.labels["gender"] == "Male" for face in scored])
    raw = np.asarray([face.male for face in scored])
    calibrated = predict(weights, _logit(raw)[:, None])
    accuracy = float(np.mean((calibrated >= 0.5) == truth))
    brier = float(np.mean((calibrated - truth) ** 2))
    print(
        f"Gender: temperature slope {slope:.3f} on {len(train)} age-set faces aged 13+; "
        f"development set {len(scored)} faces: {accuracy:.1%} right "
        f"(network alone {np.mean((raw >= 0.5) == truth):.1%}), "
        f"Brier {brier:.3f} (network alone {np.mean((raw - truth) ** 2):.3f})"
    )
    grown = np.asarray([not face.labels.get("age") or int(face.labels["age"]) >= 13 for face in scored])
    grown_accuracy = float(np.mean(((calibrated >= 0.5) == truth)[grown]))
    print(f"  of them {int(grown.sum())} aged 13 or more (CelebA's are adults): {grown_accuracy:.1%} right")
    return (slope, offset), {"accuracy": accuracy, "faces": len(scored), "brier": brier, "grown": grown_accuracy}


def _cross_validated(features: np.ndarray, target: np.ndarray, ridge: float) -> np.ndarray:
    assignment = folds(len(target))
    out = np.zeros_like(target)
    for fold in range(FOLDS):
        train, test = assignment != fold, assignment == fold
        out[test] = predict(logistic(features[train], target[train], ridge), features[test])
    return out


def report_mouth(development: list[Face]) -> tuple[tuple[float, float, float], dict[str, float]]:
    """The MouthOpen logistic on (gap, smile), cross-validated on the development set's firm labels."""
    scored = [face for face in development if face.labels["mouth_open"] in ("true", "false")]
    features = np.asarray([[face.gap, face.smile] for face in scored])
    target = np.asarray([face.labels["mouth_open"] == "true" for face in scored], dtype=np.float64)
    ridge = 1e-3
    held_out = _cross_validated(features, target, ridge)
    accuracy = float(np.mean((held_out >= 0.5) == target))
    confident = held_out[np.abs(held_out - 0.5) >= 0.4]
    confident_right = np.mean(((held_out >= 0.5) == target)[np.abs(held_out - 0.5) >= 0.4])
    old = float(np.mean(np.asarray([face.gap > 0.3 for face in scored]) == target))
    weights = logistic(features, target, ridge)
    print(
        f"MouthOpen: {len(scored)} development faces ({int(target.sum())} open), {FOLDS}-fold CV {accuracy:.1%} "
        f"right (gap > 0.3 before: {old:.1%}); {len(confident)} held-out faces at Confidence >= 90 are "
        f"{confident_right:.1%} right"
    )
    return (float(weights[0]), float(weights[1]), float(weights[2])), {
        "accuracy": accuracy,
        "faces": len(scored),
        "old": old,
        "confident_right": float(confident_right),
    }


EMOTION_GRID = [(prior, weight) for prior in np.arange(0.0, 3.01, 0.25) for weight in np.arange(0.0, 8.01, 1.0)]


def _emotion_accuracy(faces: list[Face], prior: float, weight: float) -> float:
    saved = emotions.EMOTION_CALM_PRIOR, emotions.EMOTION_SMILE_WEIGHT
    emotions.EMOTION_CALM_PRIOR, emotions.EMOTION_SMILE_WEIGHT = prior, weight
    try:
        right = [
            emotions.CLASSES[int(np.argmax(emotions.adjusted(f.emotion, f.smile)))] == f.labels["emotion"]
            for f in faces
        ]
    finally:
        emotions.EMOTION_CALM_PRIOR, emotions.EMOTION_SMILE_WEIGHT = saved
    return float(np.mean(right))


def _best(faces: list[Face]) -> tuple[float, float]:
    # Ties go to the smaller correction.
    return max(EMOTION_GRID, key=lambda pw: (_emotion_accuracy(faces, *pw), -pw[0] - pw[1] / 4))


def report_emotions(development: list[Face]) -> tuple[tuple[float, float], dict[str, float]]:
    """The CALM prior and smile weight, cross-validated on the development set's HAPPY / CALM faces."""
    scored = [face for face in development if face.labels["emotion"] in ("HAPPY", "CALM")]
    assignment = folds(len(scored))
    right = 0.0
    for fold in range(FOLDS):
        train = [face for face, f in zip(scored, assignment, strict=True) if f != fold]
        test = [face for face, f in zip(scored, assignment, strict=True) if f == fold]
        right += _emotion_accuracy(test, *_best(train)) * len(test)
    accuracy = right / len(scored)
    old = _emotion_accuracy(scored, 0.0, 0.0)
    prior, weight = _best(scored)
    print(
        f"Emotions: {len(scored)} development faces read HAPPY or CALM by a person; {FOLDS}-fold CV {accuracy:.1%} "
        f"top emotion right (network alone {old:.1%}); fit on all: CALM prior {prior}, smile weight {weight}"
    )
    return (float(prior), float(weight)), {"accuracy": accuracy, "faces": len(scored), "old": old}


def write_constants(
    age: AgeFit,
    age_figures: dict[str, float],
    gender: tuple[float, float],
    gender_figures: dict[str, float],
    mouth: tuple[float, float, float],
    mouth_figures: dict[str, float],
    emotion: tuple[float, float],
    emotion_figures: dict[str, float],
) -> None:
    """Rewrite judgement_fit.py with the constants and the measurements they rest on."""
    af, gf, mf, ef = age_figures, gender_figures, mouth_figures, emotion_figures
    text = f'''"""Constants fitted by scripts/fit_face_judgement.py: do not edit by hand, rerun it with --write.

Each block cites the cross-validated measurement behind it (docs/face-judgement.md has the method).
"""

# AgeRange, in log(1 + age) around the age network's mean m (x = log(1 + m)): centre c0 + c1 x + c2 x²,
# half-width FACTOR × max(MIN_ERROR, e0 + e1 x + e2 × spread). Fitted on {af["faces"]} UTKFace faces
# (tests/data/age_faces.csv): {FOLDS}-fold CV {af["coverage"]:.1%} hold the labelled age, mean width
# {af["width"]:.1f} years; adults 18-70 {af["adult_coverage"]:.1%}, width {af["adult_width"]:.1f}.
AGE_CENTRE = ({age.centre[0]:.6f}, {age.centre[1]:.6f}, {age.centre[2]:.6f})
AGE_ERROR = ({age.error[0]:.6f}, {age.error[1]:.6f}, {age.error[2]:.6f})
AGE_HALF_WIDTH_FACTOR = {age.factor:.6f}
AGE_MIN_ERROR = {AGE_MIN_ERROR}
AGE_MIN_WIDTH_YEARS = {AGE_MIN_WIDTH_YEARS}
AGE_MAX_YEARS = {AGE_MAX_YEARS}
AGE_COVERAGE = {af["coverage"]:.3f}

# Gender: temperature scaling (a slope, no offset) of the network's logit, fitted on the age set's faces aged
# 13 and over; on the {gf["faces"]} development faces {gf["accuracy"]:.1%} right ({gf["grown"]:.1%} of those aged 13+),
# Brier score {gf["brier"]:.3f}.
GENDER_SLOPE = {gender[0]:.6f}
GENDER_OFFSET = {gender[1]:.6f}

# MouthOpen: logit = w0 + w1 × gap + w2 × smile (gap: inner-lip gap over mouth width; smile: blendshape
# score). {mf["faces"]} development faces, {FOLDS}-fold CV {mf["accuracy"]:.1%} right (gap > 0.3 before:
# {mf["old"]:.1%}).
MOUTH_OPEN_WEIGHTS = ({mouth[0]:.6f}, {mouth[1]:.6f}, {mouth[2]:.6f})

# Emotions: added to CALM's log-probability, and weight × (smile − 0.5) to HAPPY's. {ef["faces"]} development
# faces a person reads HAPPY or CALM: {FOLDS}-fold CV {ef["accuracy"]:.1%} right (network alone {ef["old"]:.1%}).
EMOTION_CALM_PRIOR = {emotion[0]}
EMOTION_SMILE_WEIGHT = {emotion[1]}
'''
    CONSTANTS.write_text(text)
    print(f"wrote {CONSTANTS.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    """Command line: measure, report, and with --write rewrite the constants module."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirrors", type=Path, default=dev_faces.DEFAULT_MIRRORS, help="folder holding the clones")
    parser.add_argument("--write", action="store_true", help="rewrite local_rekognition/models/judgement_fit.py")
    args = parser.parse_args(argv)
    check_disjoint()
    age_faces = list(age_set(args.mirrors))
    development = list(development_set())
    print(f"measured {len(age_faces)} age-set and {len(development)} development faces")
    age, age_figures = report_age(age_faces)
    report_age_held_out(age, development)
    gender, gender_figures = report_gender(age_faces, development)
    mouth, mouth_figures = report_mouth(development)
    emotion, emotion_figures = report_emotions(development)
    if args.write:
        write_constants(age, age_figures, gender, gender_figures, mouth, mouth_figures, emotion, emotion_figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
