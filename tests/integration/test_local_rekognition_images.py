"""DetectFaces and CompareFaces over Bytes: geometry in Rekognition's conventions, and every image error."""

from __future__ import annotations

import math
from typing import Any

import pytest
from botocore.exceptions import ClientError
from PIL import Image

from local_rekognition.faces import ATTRIBUTE_MEMBERS
from testmedia.imaging import decompression_bomb_png, encode, plain, rotated_with_exif
from testmedia.photos import grace_hopper
from tests.fixtures.aws import rekognition_client


def error_code(call: Any, **params: Any) -> str:
    """The Rekognition error code ``call(**params)`` fails with."""
    with pytest.raises(ClientError) as caught:
        call(**params)
    code: str = caught.value.response["Error"]["Code"]
    return code


def face_centre_px(face: dict[str, Any], width: int, height: int) -> tuple[float, float]:
    box = face["BoundingBox"]
    return (box["Left"] + box["Width"] / 2) * width, (box["Top"] + box["Height"] / 2) * height


def test_detect_faces_returns_ratios_and_default_members(rekognition: Any) -> None:
    details = rekognition.detect_faces(Image={"Bytes": grace_hopper().read_bytes()})["FaceDetails"]
    assert len(details) == 1
    face = details[0]
    assert {"BoundingBox", "Landmarks", "Pose", "Quality", "Confidence"} <= face.keys()
    box = face["BoundingBox"]
    # Ratios of the image, and a portrait's face fills a good part of it
    assert 0 <= box["Left"] < 1 and 0 <= box["Top"] < 1
    assert 0.15 < box["Width"] < 1 and 0.15 < box["Height"] < 1
    for landmark in face["Landmarks"]:
        assert box["Left"] <= landmark["X"] <= box["Left"] + box["Width"]
        assert box["Top"] <= landmark["Y"] <= box["Top"] + box["Height"]
    assert {mark["Type"] for mark in face["Landmarks"]} >= {
        "eyeLeft",
        "eyeRight",
        "nose",
        "mouthLeft",
        "mouthRight",
    }
    assert 50 < face["Confidence"] <= 100
    # DEFAULT asks for nothing beyond the default members
    assert not face.keys() - {"BoundingBox", "Landmarks", "Pose", "Quality", "Confidence"}


DEFAULT_MEMBERS = frozenset({"BoundingBox", "Landmarks", "Pose", "Quality", "Confidence"})
# What each attribute asks for, among those the engine measures on every face (docs/face-judgement.md).
MEASURED = {
    "AGE_RANGE": "AgeRange",
    "EMOTIONS": "Emotions",
    "EYE_DIRECTION": "EyeDirection",
    "EYES_OPEN": "EyesOpen",
    "GENDER": "Gender",
    "MOUTH_OPEN": "MouthOpen",
    "SMILE": "Smile",
}


def test_all_attributes_add_what_the_engine_measures_and_only_facedetail_members(rekognition: Any) -> None:
    photo = grace_hopper().read_bytes()
    default = rekognition.detect_faces(Image={"Bytes": photo}, Attributes=["DEFAULT"])["FaceDetails"][0]
    everything = rekognition.detect_faces(Image={"Bytes": photo}, Attributes=["ALL"])["FaceDetails"][0]
    assert default["BoundingBox"] == everything["BoundingBox"]
    extra = everything.keys() - default.keys()
    # Every measured member is there (an engine that stopped filling one fails here) and nothing outside
    # Rekognition's FaceDetail members is added.
    assert set(MEASURED.values()) <= extra <= set(ATTRIBUTE_MEMBERS.values()), extra


@pytest.mark.parametrize("attribute", sorted(MEASURED))
def test_one_attribute_adds_exactly_its_member_to_the_default_ones(rekognition: Any, attribute: str) -> None:
    photo = {"Bytes": grace_hopper().read_bytes()}
    face = rekognition.detect_faces(Image=photo, Attributes=[attribute])["FaceDetails"][0]

    assert face.keys() - DEFAULT_MEMBERS == {MEASURED[attribute]}
    assert DEFAULT_MEMBERS <= face.keys()


def test_png_works_like_jpeg(rekognition: Any) -> None:
    with Image.open(grace_hopper()) as photo:
        png = encode(photo.convert("RGBA"), "PNG")
    details = rekognition.detect_faces(Image={"Bytes": png})["FaceDetails"]
    assert len(details) == 1


def test_boxes_are_relative_to_the_exif_upright_image(rekognition: Any) -> None:
    # Given the same portrait stored sideways with an EXIF Orientation tag
    upright = rekognition.detect_faces(Image={"Bytes": grace_hopper().read_bytes()})["FaceDetails"][0]
    turned = rekognition.detect_faces(Image={"Bytes": rotated_with_exif(grace_hopper())})["FaceDetails"]
    # Then the face is found in the same place of the upright picture (512x600)
    assert len(turned) == 1
    x0, y0 = face_centre_px(upright, 512, 600)
    x1, y1 = face_centre_px(turned[0], 512, 600)
    assert abs(x0 - x1) < 20 and abs(y0 - y1) < 20


def test_an_image_without_faces_has_no_face_details(rekognition: Any) -> None:
    assert rekognition.detect_faces(Image={"Bytes": plain(200, 200)})["FaceDetails"] == []


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (encode(Image.new("RGB", (100, 100)), "GIF"), "InvalidImageFormatException"),
        (encode(Image.new("RGB", (100, 100)), "BMP"), "InvalidImageFormatException"),
        (encode(Image.new("RGB", (100, 100)), "WEBP"), "InvalidImageFormatException"),
        (b"\xff\xd8\xff\xe0 this is not really a JPEG", "InvalidImageFormatException"),
        (plain(400, 400)[:300], "InvalidImageFormatException"),
        (b"\x89PNG\r\n\x1a\n truncated", "InvalidImageFormatException"),
        (plain(79, 200), "InvalidParameterException"),
        (plain(200, 79, "PNG"), "InvalidParameterException"),
        (decompression_bomb_png(), "ImageTooLargeException"),
        (decompression_bomb_png(9_000), "ImageTooLargeException"),
    ],
    ids=[
        "gif",
        "bmp",
        "webp",
        "jpeg-magic-garbage",
        "truncated-jpeg",
        "png-garbage",
        "narrow",
        "short",
        "bomb-400mpx",
        "81mpx",
    ],
)
def test_bad_images_get_rekognition_errors(rekognition: Any, data: bytes, code: str) -> None:
    assert error_code(rekognition.detect_faces, Image={"Bytes": data}) == code


def test_80_pixels_a_side_is_enough(rekognition: Any) -> None:
    assert rekognition.detect_faces(Image={"Bytes": plain(80, 80)})["FaceDetails"] == []


def test_bytes_past_5_mb_are_too_large(rekognition: Any) -> None:
    # A valid JPEG header followed by padding: the size check must come before any decoding.
    data = plain(100, 100) + b"\0" * (5 * 1024 * 1024)
    assert error_code(rekognition.detect_faces, Image={"Bytes": data}) == "ImageTooLargeException"


def test_image_needs_exactly_one_source(local_rekognition_url: str) -> None:
    client = rekognition_client(local_rekognition_url, parameter_validation=False)
    both = {"Bytes": plain(100, 100), "S3Object": {"Bucket": "abc", "Name": "x.jpg"}}
    assert error_code(client.detect_faces, Image=both) == "InvalidParameterException"
    assert error_code(client.detect_faces, Image={}) == "InvalidParameterException"
    assert error_code(client.detect_faces) == "ValidationException"


def test_compare_faces_matches_the_same_photo(rekognition: Any) -> None:
    photo = grace_hopper().read_bytes()
    result = rekognition.compare_faces(SourceImage={"Bytes": photo}, TargetImage={"Bytes": photo})
    assert result["SourceImageFace"]["Confidence"] > 50
    assert len(result["FaceMatches"]) == 1 and result["UnmatchedFaces"] == []
    match = result["FaceMatches"][0]
    assert match["Similarity"] > 99
    assert match["Face"]["BoundingBox"] == pytest.approx(result["SourceImageFace"]["BoundingBox"])
    assert {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality"} <= match["Face"].keys()


def test_the_similarity_threshold_splits_matches_from_unmatched(rekognition: Any) -> None:
    photo = {"Bytes": grace_hopper().read_bytes()}
    # A re-encoded, EXIF-rotated copy: the same face, not bit-identical
    turned = {"Bytes": rotated_with_exif(grace_hopper())}
    similarity = rekognition.compare_faces(SourceImage=photo, TargetImage=turned, SimilarityThreshold=0)["FaceMatches"][
        0
    ]["Similarity"]
    # The threshold is inclusive
    at = rekognition.compare_faces(SourceImage=photo, TargetImage=turned, SimilarityThreshold=similarity)
    assert len(at["FaceMatches"]) == 1 and at["UnmatchedFaces"] == []
    above = rekognition.compare_faces(
        SourceImage=photo, TargetImage=turned, SimilarityThreshold=math.nextafter(similarity, 101)
    )
    if similarity < 100:
        assert above["FaceMatches"] == [] and len(above["UnmatchedFaces"]) == 1


def test_compare_faces_needs_a_face_in_the_source(rekognition: Any) -> None:
    code = error_code(
        rekognition.compare_faces,
        SourceImage={"Bytes": plain(200, 200)},
        TargetImage={"Bytes": grace_hopper().read_bytes()},
    )
    assert code == "InvalidParameterException"


def test_a_target_without_faces_matches_nothing(rekognition: Any) -> None:
    result = rekognition.compare_faces(
        SourceImage={"Bytes": grace_hopper().read_bytes()}, TargetImage={"Bytes": plain(200, 200)}
    )
    assert result["FaceMatches"] == [] and result["UnmatchedFaces"] == []


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"SimilarityThreshold": 100.5}, "ValidationException"),
        ({"SimilarityThreshold": -1}, "ValidationException"),
        ({"QualityFilter": "BEST"}, "ValidationException"),
    ],
)
def test_compare_faces_parameter_ranges(local_rekognition_url: str, params: dict[str, Any], code: str) -> None:
    client = rekognition_client(local_rekognition_url, parameter_validation=False)
    photo = {"Bytes": grace_hopper().read_bytes()}
    assert error_code(client.compare_faces, SourceImage=photo, TargetImage=photo, **params) == code


@pytest.mark.parametrize("attributes", [["SMELL"], ["DEFAULT", "all"]])
def test_unknown_attributes_are_refused(local_rekognition_url: str, attributes: list[str]) -> None:
    client = rekognition_client(local_rekognition_url, parameter_validation=False)
    image = {"Bytes": grace_hopper().read_bytes()}
    assert error_code(client.detect_faces, Image=image, Attributes=attributes) == "ValidationException"
