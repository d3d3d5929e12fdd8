"""A Rekognition answer is checked before it is believed: a 2xx whose body is not the operation's JSON is retried.

botocore parses a 200 answer whose body is not JSON (a proxy's error page, a body cut off mid-stream) as an empty
result without a word, so DetectFaces would read "no faces", and the response cache would keep saying so for that
photo. Two cheap checks catch it: the raw body must look like one JSON object (first and last bytes, not a second
parse: the worker's loop is its bottleneck), and the parsed answer must carry the member Rekognition always sends for
the operation (so a `{}` or a body cut just after an inner object is caught too).
"""

from __future__ import annotations

from typing import Any

from worker.errors import TransientError

REQUIRED_MEMBERS = {
    "DetectFaces": "FaceDetails",
    "CompareFaces": "FaceMatches",
    "IndexFaces": "FaceRecords",
    "SearchFacesByImage": "FaceMatches",
    "SearchFaces": "FaceMatches",
    "CreateCollection": "StatusCode",
    "DeleteCollection": "StatusCode",
    "ListFaces": "Faces",
    "DeleteFaces": "DeletedFaces",
    # Sent as [] for a photo of nobody known, as FaceDetails is for a photo without a face (local_rekognition does;
    # not yet seen from AWS for a photo without any face: if AWS left it out, such jobs would fail MalformedResponse).
    "RecognizeCelebrities": "CelebrityFaces",
}
"""The member every successful answer of an operation carries, even when there is nothing to report ([])."""


def malformed(operation: str, detail: str) -> TransientError:
    """The error for an answer that is not what Rekognition sends: retryable, and never cached."""
    return TransientError(
        "MalformedResponse",
        f"the endpoint answered {operation} with {detail}, not Rekognition's JSON; retried, never cached",
    )


def _check_body(response_dict: dict[str, Any], operation_model: Any, **_: Any) -> None:
    if int(response_dict.get("status_code") or 0) >= 300:
        return  # error answers have their own parsing and classification
    body = response_dict.get("body") or b""
    # Only the ends are looked at (no copy of a body that can be tens of KB, on every call).
    if not (body[:64].lstrip().startswith(b"{") and body[-64:].rstrip().endswith(b"}")):
        raise malformed(operation_model.name, f"a {len(body)}-byte body that is not a JSON object")


def check_members(operation: str, response: dict[str, Any]) -> None:
    """Raise MalformedResponse when a parsed answer lacks the member the operation always returns."""
    member = REQUIRED_MEMBERS.get(operation)
    if member is not None and member not in response:
        raise malformed(operation, f"an answer without {member}")


def install(client: Any) -> None:
    """Make a Rekognition client raise MalformedResponse for a 2xx answer whose body is not a JSON object."""
    client.meta.events.register("before-parse.rekognition", _check_body, unique_id="facequeue-check-json-body")
