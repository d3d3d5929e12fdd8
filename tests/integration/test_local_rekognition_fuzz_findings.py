"""What fuzzing local_rekognition found, one small case each: each answered 500 InternalServerError, except the
router's 404/405, which answered in aiohttp's text/plain instead of Rekognition's JSON error shape.

The fuzzer itself is test_local_rekognition_fuzz.py; these pin what it found so a fix cannot quietly regress.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import io
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import ExifTags, Image

from local_rekognition import pagination
from local_rekognition.images import decode
from testmedia.imaging import encode
from testmedia.photos import grace_hopper

JSON_11 = "application/x-amz-json-1.1"


@dataclass(frozen=True)
class Finding:
    """One request the fuzzer found, and the answer it must get now."""

    operation: str
    body: bytes
    status: int
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def send(url: str, finding: Finding) -> tuple[int, dict[str, Any]]:
    """POST the finding's body on a fresh connection; (status, parsed JSON body)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        headers = {"Content-Type": JSON_11, "X-Amz-Target": f"RekognitionService.{finding.operation}"}
        connection.request("POST", "/", body=finding.body, headers={**headers, **finding.headers})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


FINDINGS = {
    # json's C scanner raises RecursionError, not ValueError, past about 1000 levels.
    "deeply nested JSON": Finding("DetectFaces", b"[" * 2000, 400, "SerializationException"),
    # Over its length limit, the list is echoed in the ValidationException message, two frames per level.
    "a long list holding a deeply nested list": Finding(
        "DeleteFaces",
        b'{"CollectionId": "a", "FaceIds": [' + b'"x", ' * 4096 + b"[" * 600 + b"]" * 600 + b"]}",
        400,
        "SerializationException",
    ),
    # Validation accepts integral floats for integer members; the page slice did not.
    "MaxResults as 3.0": Finding("ListCollections", b'{"MaxResults": 3.0}', 200),
    # A well-formed token for this listing whose position is a superscript two: isdigit() but not int().
    "NextToken at position ²": Finding(
        "ListCollections",
        json.dumps({"NextToken": pagination.encode("ListCollections", None, "\u00b2")}).encode(),
        400,
        "InvalidPaginationTokenException",
    ),
    # The server inflates no Content-Encoding (SDKs never compress Rekognition requests): what is sent is what is
    # parsed. aiohttp used to inflate, and answered 500 when bytes did not inflate (RequestPayloadError).
    "gzip body that is not gzip": Finding(
        "ListCollections", b"garbage", 400, "SerializationException", {"Content-Encoding": "gzip"}
    ),
    "deflate body that is not deflate": Finding(
        "ListCollections", b"garbage", 400, "SerializationException", {"Content-Encoding": "deflate"}
    ),
    "gzip body": Finding(
        "ListCollections", gzip.compress(b"{}"), 400, "SerializationException", {"Content-Encoding": "gzip"}
    ),
    "br body": Finding("ListCollections", b"{}", 200, None, {"Content-Encoding": "br"}),
}


@pytest.mark.parametrize("finding", FINDINGS.values(), ids=FINDINGS.keys())
def test_fuzz_findings_get_client_errors(local_rekognition_url: str, finding: Finding) -> None:
    status, body = send(local_rekognition_url, finding)
    assert status == finding.status, body
    if finding.code is not None:
        assert body["__type"] == finding.code
        assert body["Message"]


def test_list_faces_takes_an_integral_float_as_max_results(local_rekognition_url: str, rekognition: Any) -> None:
    # Given an existing collection (ListFaces reaches its page slice only then)
    collection_id = f"fuzz-finding-{uuid.uuid4().hex}"
    rekognition.create_collection(CollectionId=collection_id)
    try:
        # When MaxResults comes as 3.0, which JSON allows for an integer
        body = json.dumps({"CollectionId": collection_id, "MaxResults": 3.0}).encode()
        status, answer = send(local_rekognition_url, Finding("ListFaces", body, 200))
        # Then it is a page size like 3
        assert status == 200, answer
        assert answer["Faces"] == []
    finally:
        rekognition.delete_collection(CollectionId=collection_id)


def jpeg_with_mistyped_exif() -> bytes:
    """A 100x80 JPEG with EXIF Orientation 6 and RowsPerStrip (a number) holding the text "cam"."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "cam"
    data = encode(Image.new("RGB", (100, 80), (90, 120, 150)), "JPEG", exif=exif)
    # Retag Make (0x010F, type ASCII) as RowsPerStrip (0x0116): one bit flip the fuzzer made.
    make, rows_per_strip = b"\x01\x0f\x00\x02", b"\x01\x16\x00\x02"
    if make not in data:  # little-endian EXIF
        make, rows_per_strip = b"\x0f\x01\x02\x00", b"\x16\x01\x02\x00"
    assert data.count(make) == 1
    return data.replace(make, rows_per_strip)


def test_an_image_with_a_mistyped_exif_tag_is_decoded_upright(local_rekognition_url: str) -> None:
    # Given a JPEG whose EXIF block Pillow can read but not write back (exif_transpose rewrote it: struct.error)
    data = jpeg_with_mistyped_exif()
    # Then it decodes, turned upright by its Orientation tag
    decoded = decode(data, max_pixels=10_000_000)
    assert (decoded.width, decoded.height) == (80, 100)
    # And the server analyses it like any other image
    body = json.dumps({"Image": {"Bytes": base64.b64encode(data).decode()}}).encode()
    status, answer = send(local_rekognition_url, Finding("DetectFaces", body, 200))
    assert status == 200, answer
    assert answer == {"FaceDetails": []}


def test_a_palette_png_without_its_palette_still_decodes() -> None:
    # Given a palette PNG with a transparent index whose PLTE chunk is gone (converting that very image trips
    # an assertion inside Pillow; the copy exif_transpose used to make, and _upright makes now, does not)
    buffer = io.BytesIO()
    Image.new("P", (90, 90)).save(buffer, "PNG", transparency=0)
    data = buffer.getvalue()
    start = data.index(b"PLTE") - 4
    length = int.from_bytes(data[start : start + 4], "big")
    without_palette = data[:start] + data[start + 12 + length :]
    # Then it decodes rather than crashing
    decoded = decode(without_palette, max_pixels=10_000_000)
    assert (decoded.width, decoded.height) == (90, 90)


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/", 405, "POST"),
        ("PUT", "/", 405, "POST"),
        ("DELETE", "/health", 405, "GET"),
        ("POST", "/nope", 404, None),
        ("GET", "/..", 404, None),
    ],
)
def test_other_methods_and_paths_get_json_errors(
    local_rekognition_url: str, method: str, path: str, status: int, allow: str | None
) -> None:
    # Found by fuzzing: the router answered these in aiohttp's text/plain ("405: Method Not Allowed")
    parts = urlsplit(local_rekognition_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        connection.request(method, path, body=b"{}", headers={"Content-Type": JSON_11})
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == status
    assert body["__type"] == "UnknownOperationException"
    assert f"{method} " in body["Message"]
    assert response.getheader("x-amzn-ErrorType") == "UnknownOperationException"
    if allow is not None:
        assert allow in (response.getheader("Allow") or "").split(",")


def test_null_members_are_absent_members(local_rekognition_url: str, rekognition: Any) -> None:
    # Found by fuzzing: validation reads null as absent (as AWS does), but handlers took params.get(name, default)
    # and got None: float(None) and int(None) answered 500
    face = base64.b64encode(grace_hopper().read_bytes()).decode()
    collection_id = f"fuzz-finding-{uuid.uuid4().hex}"
    rekognition.create_collection(CollectionId=collection_id)
    try:
        indexed = json.dumps({"CollectionId": collection_id, "Image": {"Bytes": face}, "QualityFilter": None})
        status, answer = send(local_rekognition_url, Finding("IndexFaces", indexed.encode(), 200))
        assert status == 200, answer
        assert len(answer["FaceRecords"]) == 1  # QualityFilter null is the default AUTO
        face_id = answer["FaceRecords"][0]["Face"]["FaceId"]
        nulls = {"FaceMatchThreshold": None, "MaxFaces": None}
        calls = {
            "SearchFaces": {"CollectionId": collection_id, "FaceId": face_id, **nulls},
            "SearchFacesByImage": {"CollectionId": collection_id, "Image": {"Bytes": face}, **nulls},
            "CompareFaces": {
                "SourceImage": {"Bytes": face},
                "TargetImage": {"Bytes": face},
                "SimilarityThreshold": None,
                "QualityFilter": None,
            },
            "ListFaces": {"CollectionId": collection_id, "MaxResults": None, "NextToken": None},
        }
        for operation, params in calls.items():
            status, answer = send(local_rekognition_url, Finding(operation, json.dumps(params).encode(), 200))
            assert status == 200, (operation, answer)
        assert len(answer["Faces"]) == 1
    finally:
        rekognition.delete_collection(CollectionId=collection_id)


def test_a_body_that_does_not_inflate_gets_a_json_answer_at_once(local_rekognition_url: str) -> None:
    # Found by fuzzing: aiohttp's parser refused these bytes as deflate itself, in text/plain, and only after
    # waiting out its 10 s lingering time
    finding = Finding("ListCollections", b"\xbb\xa0\xac", 400, headers={"Content-Encoding": "deflate"})
    started = time.monotonic()
    status, body = send(local_rekognition_url, finding)
    assert (status, body["__type"]) == (400, "SerializationException")
    assert time.monotonic() - started < 5
