"""Every FaceDetail member on every Attributes=["ALL"] face, over HTTP, as a client written against Rekognition
reads them: the seed article's own snippets, botocore's output shapes, and what a person sees on the portraits.

The wheel portraits run on every clone; the shared photos where ../shared is present (and must be under CI).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path
from typing import Any

import aioboto3
import pytest
from PIL import Image

from local_rekognition.validation import service_model
from testmedia.imaging import encode
from testmedia.photos import astronaut, grace_hopper, shared_images
from tests.botocore_shapes import assert_output_conforms
from tests.fixtures.aws import FAKE_CREDENTIALS

FACE_DETAIL_MEMBERS = frozenset(service_model().shape_for("FaceDetail").members)
DETECT_FACES = service_model().operation_model("DetectFaces")
SHARED = (
    "biden.jpg",
    "biden2.jpg",
    "obama.jpg",
    "obama1.jpg",
    "obama2.jpg",
    "obama3.jpg",
    "obama_and_biden.jpg",
    "obama_partial_face.jpg",
    "two_people.jpg",
)
# Men without glasses, beard, moustache or mask (looked at by eye), each the largest face of its photo.
BARE_FACES = ("biden.jpg", "biden2.jpg", "obama.jpg", "obama1.jpg", "obama2.jpg", "obama3.jpg")


def _photo(where: str, name: str) -> bytes:
    if where == "wheel":
        return {"grace_hopper.jpg": grace_hopper, "astronaut.png": astronaut}[name]().read_bytes()
    return (shared_images() / name).read_bytes()


PHOTOS = [("wheel", "grace_hopper.jpg"), ("wheel", "astronaut.png")] + [("shared", name) for name in SHARED]


def _largest(details: list[dict[str, Any]]) -> dict[str, Any]:
    return max(details, key=lambda face: face["BoundingBox"]["Width"] * face["BoundingBox"]["Height"])


def _eyeglasses_snippet(response: dict[str, Any]) -> str:
    """The article's Face Details snippet, verbatim, with its printout captured."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for faceDetail in response["FaceDetails"]:
            print(faceDetail["Eyeglasses"])
    return printed.getvalue()


def _emotions_snippet(response: dict[str, Any]) -> str:
    """The article's Emotions snippet; the article loses the inner loop's indentation, restored here."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for faceDetail in response["FaceDetails"]:
            print("Emotions: \t Confidence\n")
            for emotion in faceDetail["Emotions"]:
                print(str(emotion["Type"]) + "\t\t" + str(emotion["Confidence"]))
            print("\n")
    return printed.getvalue()


@pytest.mark.parametrize(("where", "name"), PHOTOS)
def test_the_articles_snippets_run_unchanged(rekognition: Any, where: str, name: str) -> None:
    response = rekognition.detect_faces(Image={"Bytes": _photo(where, name)}, Attributes=["ALL"])

    glasses = _eyeglasses_snippet(response).splitlines()
    assert len(glasses) == len(response["FaceDetails"]) >= 1
    for line in glasses:
        assert line.startswith("{'Value': ") and "'Confidence': " in line, line
    emotions = [line for line in _emotions_snippet(response).splitlines() if "\t\t" in line]
    assert len(emotions) == 8 * len(response["FaceDetails"])


@pytest.mark.parametrize(("where", "name"), PHOTOS)
def test_every_all_face_has_every_member_and_conforms(rekognition: Any, where: str, name: str) -> None:
    response = rekognition.detect_faces(Image={"Bytes": _photo(where, name)}, Attributes=["ALL"])

    assert_output_conforms(DETECT_FACES, response)
    for face in response["FaceDetails"]:
        assert face.keys() >= FACE_DETAIL_MEMBERS, sorted(FACE_DETAIL_MEMBERS - face.keys())
        for member in ("Eyeglasses", "Sunglasses", "Beard", "Mustache", "FaceOccluded"):
            assert isinstance(face[member]["Value"], bool)
            assert 50.0 <= face[member]["Confidence"] <= 100.0, (member, face[member])


def test_single_attributes_ask_for_one_member_each(rekognition: Any) -> None:
    photo = grace_hopper().read_bytes()
    for attribute, member in (
        ("EYEGLASSES", "Eyeglasses"),
        ("SUNGLASSES", "Sunglasses"),
        ("BEARD", "Beard"),
        ("MUSTACHE", "Mustache"),
        ("FACE_OCCLUDED", "FaceOccluded"),
    ):
        face = rekognition.detect_faces(Image={"Bytes": photo}, Attributes=[attribute])["FaceDetails"][0]
        extra = face.keys() - {"BoundingBox", "Landmarks", "Pose", "Quality", "Confidence"}
        assert extra == {member}, (attribute, extra)


def test_grace_hopper_wears_eyeglasses_not_sunglasses(rekognition: Any) -> None:
    face = rekognition.detect_faces(Image={"Bytes": grace_hopper().read_bytes()}, Attributes=["ALL"])
    detail = face["FaceDetails"][0]

    assert detail["Eyeglasses"]["Value"] is True
    assert detail["Sunglasses"]["Value"] is False
    assert detail["Beard"]["Value"] is False and detail["Mustache"]["Value"] is False
    assert detail["FaceOccluded"]["Value"] is False


@pytest.mark.parametrize("name", BARE_FACES)
def test_bare_faces_read_no_glasses_no_facial_hair_not_occluded(rekognition: Any, name: str) -> None:
    details = rekognition.detect_faces(Image={"Bytes": _photo("shared", name)}, Attributes=["ALL"])["FaceDetails"]
    face = _largest(details)

    for member in ("Eyeglasses", "Sunglasses", "Beard", "Mustache", "FaceOccluded"):
        assert face[member]["Value"] is False, (member, face[member])


def _cut_at(path: Path, keep_fraction_of_face: float) -> bytes:
    """The portrait cropped so that the frame's lower edge runs across its face (Grace Hopper's face spans
    rows 120–333 of 600)."""
    with Image.open(path) as photo:
        bottom = round(120 + keep_fraction_of_face * 213)
        return encode(photo.convert("RGB").crop((0, 0, photo.width, bottom)), "PNG")


def test_a_face_cut_by_the_frame_edge_reads_occluded(rekognition: Any) -> None:
    # Given the portrait cut just below the nose: the mouth and chin are outside the photo
    cut = rekognition.detect_faces(Image={"Bytes": _cut_at(grace_hopper(), 0.7)}, Attributes=["FACE_OCCLUDED"])
    whole = rekognition.detect_faces(Image={"Bytes": grace_hopper().read_bytes()}, Attributes=["FACE_OCCLUDED"])

    assert whole["FaceDetails"][0]["FaceOccluded"]["Value"] is False
    assert len(cut["FaceDetails"]) == 1
    assert cut["FaceDetails"][0]["FaceOccluded"]["Value"] is True


def test_the_shared_partial_face_reads_occluded(rekognition: Any) -> None:
    # obama_partial_face.jpg: the portrait cut at the frame's left edge, through the face
    details = rekognition.detect_faces(Image={"Bytes": _photo("shared", "obama_partial_face.jpg")}, Attributes=["ALL"])

    assert _largest(details["FaceDetails"])["FaceOccluded"]["Value"] is True


@pytest.mark.parametrize("height_in_face", [0.35, 0.5, 0.65])
def test_a_real_hand_over_the_face_reads_occluded(rekognition: Any, height_in_face: float) -> None:
    # Given Biden's raised right hand, photographed in obama_and_biden.jpg, pasted (with the stage behind it) over
    # Grace Hopper's face at three heights, from the nose down
    with Image.open(shared_images() / "obama_and_biden.jpg") as photo:
        hand = photo.convert("RGB").crop((120, 110, 330, 400))
    with Image.open(grace_hopper()) as portrait:
        covered = portrait.convert("RGB")
    covered.paste(hand, (183 + 85 - hand.width // 2, round(120 + height_in_face * 213)))

    details = rekognition.detect_faces(Image={"Bytes": encode(covered, "PNG")}, Attributes=["FACE_OCCLUDED"])

    assert len(details["FaceDetails"]) == 1
    assert details["FaceDetails"][0]["FaceOccluded"]["Value"] is True


def test_aioboto3_reads_the_article_fields_too(local_rekognition_url: str) -> None:
    response = asyncio.run(_aioboto3_detect(local_rekognition_url, grace_hopper().read_bytes()))

    assert_output_conforms(DETECT_FACES, response)
    assert "'Value': True" in _eyeglasses_snippet(response)


async def _aioboto3_detect(url: str, photo: bytes) -> dict[str, Any]:
    session = aioboto3.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    async with session.client("rekognition", endpoint_url=url) as client:
        response: dict[str, Any] = await client.detect_faces(Image={"Bytes": photo}, Attributes=["ALL"])
        return response
