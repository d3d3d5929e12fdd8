"""What fuzzing local_rekognition found, one request each: every one used to answer 500 InternalServerError.

Each case is the smallest request that showed the bug; the fuzzer (test_local_rekognition_fuzz.py) keeps
looking for new ones.
"""

from __future__ import annotations

import gzip
import http.client
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

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
    # aiohttp inflates gzip/deflate bodies itself and raises RequestPayloadError on bytes that do not inflate.
    "gzip body that is not gzip": Finding(
        "ListCollections", b"garbage", 400, "SerializationException", {"Content-Encoding": "gzip"}
    ),
    "deflate body that is not deflate": Finding(
        "ListCollections", b"garbage", 400, "SerializationException", {"Content-Encoding": "deflate"}
    ),
    "gzip body that inflates fine": Finding(
        "ListCollections", gzip.compress(b"{}"), 200, None, {"Content-Encoding": "gzip"}
    ),
}


@pytest.mark.parametrize("finding", FINDINGS.values(), ids=FINDINGS.keys())
def test_fuzz_findings_get_client_errors(local_rekognition_url: str, finding: Finding) -> None:
    status, body = send(local_rekognition_url, finding)
    assert status == finding.status, body
    if finding.code is not None:
        assert body["__type"] == finding.code
        assert body["Message"]
