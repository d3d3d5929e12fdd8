"""Pure parts of local_rekognition: image decoding, pagination tokens, FaceDetail shaping, QualityFilter."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from local_rekognition import pagination
from local_rekognition.__main__ import parse_settings
from local_rekognition.errors import (
    ImageTooLarge,
    InvalidImageFormat,
    InvalidPaginationToken,
    InvalidParameter,
    Validation,
)
from local_rekognition.faces import face_detail, quality_reasons, requested_attributes
from local_rekognition.images import decode, image_bytes
from local_rekognition.models.engine import Box, DetectedFace
from local_rekognition.settings import LocalRekognitionSettings
from testmedia.imaging import decompression_bomb_png, encode, plain


def detected(width: float = 100, confidence: float = 99, yaw: float = 0, **attributes: object) -> DetectedFace:
    return DetectedFace(
        box=Box(left=10, top=20, width=width, height=width * 1.2),
        confidence=confidence,
        landmarks={"nose": (60.0, 80.0), "thirdEye": (1.0, 1.0)},
        pose={"Roll": 0.0, "Yaw": yaw, "Pitch": 0.0},
        quality={"Brightness": 50.0, "Sharpness": 80.0},
        attributes=attributes,
    )


def test_decode_gives_rgb_pixels_for_any_png_mode() -> None:
    for mode in ("RGBA", "L", "P", "I;16", "1"):
        decoded = decode(encode(Image.new(mode, (120, 90)), "PNG"), max_pixels=10**6)
        assert decoded.pixels.shape == (90, 120, 3) and decoded.pixels.dtype == np.uint8
        assert (decoded.width, decoded.height) == (120, 90)


def test_decode_checks_size_before_pixels() -> None:
    with pytest.raises(ImageTooLarge):
        decode(plain(1000, 1000), max_pixels=999_999)
    with pytest.raises(ImageTooLarge):
        decode(decompression_bomb_png(), max_pixels=50_000_000)
    with pytest.raises(InvalidParameter):
        decode(plain(80, 79), max_pixels=10**6)
    with pytest.raises(InvalidImageFormat):
        decode(b"GIF89a...", max_pixels=10**6)


def test_image_bytes_limits() -> None:
    assert image_bytes({"Bytes": base64.b64encode(b"abc").decode()}, path="Image") == b"abc"
    assert image_bytes({"S3Object": {"Bucket": "b", "Name": "n"}}, path="Image") is None
    with pytest.raises(InvalidImageFormat):
        image_bytes({"Bytes": "not base64!"}, path="Image")
    with pytest.raises(Validation):
        image_bytes({"Bytes": ""}, path="Image")
    with pytest.raises(ImageTooLarge):
        image_bytes({"Bytes": base64.b64encode(b"x" * (5 * 1024 * 1024 + 1)).decode()}, path="Image")
    with pytest.raises(InvalidParameter):
        image_bytes({}, path="Image")


def test_tokens_round_trip_and_stay_in_their_listing() -> None:
    token = pagination.encode("ListFaces", "a", "00000000-0000-4000-8000-000000000001")
    assert len(token) <= 255
    assert pagination.decode(token, "ListFaces", "a") == "00000000-0000-4000-8000-000000000001"
    for listing, collection in (("ListFaces", "b"), ("ListCollections", None)):
        with pytest.raises(InvalidPaginationToken):
            pagination.decode(token, listing, collection)
    for garbage in ("", "!!!", base64.urlsafe_b64encode(b"[1]").decode(), base64.b64encode(b"\xff").decode()):
        with pytest.raises(InvalidPaginationToken):
            pagination.decode(garbage, "ListFaces", "a")


def test_attribute_requests() -> None:
    assert requested_attributes(None) == frozenset()
    assert requested_attributes(["DEFAULT"]) == frozenset()
    assert requested_attributes(["DEFAULT", "SMILE"]) == {"SMILE"}
    assert len(requested_attributes(["ALL", "DEFAULT"])) == 12


def test_face_detail_uses_ratios_and_never_invents_attributes() -> None:
    face = detected(AgeRange={"Low": 30, "High": 40}, Smile={"Value": True, "Confidence": 90.0})
    detail = face_detail(face, 200, 400, frozenset({"AGE_RANGE", "GENDER"}))
    assert detail["BoundingBox"] == {"Width": 0.5, "Height": 0.3, "Left": 0.05, "Top": 0.05}
    assert detail["Landmarks"] == [{"Type": "nose", "X": 0.3, "Y": 0.2}]  # no type outside the model's enum
    assert detail["AgeRange"] == {"Low": 30, "High": 40}
    assert "Gender" not in detail  # asked for, but the engine did not return it
    assert "Smile" not in detail  # returned, but not asked for


def test_quality_filter_levels_name_their_reasons() -> None:
    assert quality_reasons(detected(width=10, confidence=1, yaw=90), "NONE") == []
    assert quality_reasons(detected(width=50), "AUTO") == []
    assert quality_reasons(detected(width=50), "HIGH") == ["SMALL_BOUNDING_BOX"]
    assert quality_reasons(detected(confidence=60), "MEDIUM") == ["LOW_CONFIDENCE"]
    assert quality_reasons(detected(yaw=70), "MEDIUM") == ["EXTREME_POSE"]
    assert quality_reasons(detected(yaw=70), "LOW") == []


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEQUEUE_LOCAL_PORT", "9001")
    monkeypatch.setenv("FACEQUEUE_LOCAL_INFERENCE_THREADS", "3")
    settings = LocalRekognitionSettings()
    assert (settings.port, settings.inference_threads) == (9001, 3)
    assert LocalRekognitionSettings(port=0).port == 0
    # Two 5 MB images, base64-encoded, must fit in one CompareFaces body
    assert settings.max_request_bytes > 2 * 5 * 1024 * 1024 * 4 / 3


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FACEQUEUE_LOCAL_PORT", "9001")
    monkeypatch.setenv("FACEQUEUE_LOCAL_MAX_PENDING_REQUESTS", "5")
    settings = parse_settings(["--port", "0", "--data-dir", str(tmp_path)])
    assert (settings.port, settings.data_dir, settings.max_pending_requests) == (0, tmp_path, 5)
    with pytest.raises(SystemExit):
        parse_settings(["--port", "70000"])


def test_small_bounding_box_is_relative_to_the_photo_as_well() -> None:
    # A face 30 px wide: Rekognition's 40-px face in a 1920x1080 photo measures about that in YuNet's box.
    face = detected(width=30)

    assert quality_reasons(face, "AUTO", (1920, 1080)) == []
    assert quality_reasons(face, "AUTO", (1280, 720)) == []
    # The same face in a 4K photo is a quarter as large relative to it: too small.
    assert quality_reasons(face, "AUTO", (3840, 2160)) == ["SMALL_BOUNDING_BOX"]
    assert quality_reasons(detected(width=20), "AUTO", (1920, 1080)) == ["SMALL_BOUNDING_BOX"]
    assert quality_reasons(detected(width=20), "LOW", (1920, 1080)) == []
