"""Image bytes placed into a Rekognition request body after botocore serialises it, not run through json.dumps.

botocore's JSON serialiser base64-encodes an image into a str, then `json.dumps` escapes that str character by
character and the body is encoded to UTF-8 again: for a 60 KB photo, ~12% of the worker's event loop, and the
base64 itself another ~4% (bench/README.md). Base64's alphabet needs no JSON escaping, so the same body is the
serialised request with a short token where the image goes and the image's base64 put in its place. Two handlers
on botocore's own events do it: one swaps large `Bytes` parameters for tokens before serialisation, the other
splices the base64 in before the request is signed, so the signature, Content-Length and every other step see the
final body.
"""

from __future__ import annotations

import base64
import itertools
import os
from typing import Any

import pybase64

from producer import contract

IMAGE_PARAMETERS = tuple(contract.IMAGE_PARAMETERS.values())
"""The Rekognition parameters whose `Bytes` member carries a photo."""
MIN_BYTES = 4096
"""Smaller images go through botocore unchanged: the saving would not pay for the splice."""

_CONTEXT_KEY = "facequeue_image_bytes"
# A process-wide random prefix and a counter: a token cannot be guessed by, nor collide with, anything in a request.
_PREFIX = b"facequeue-image:" + os.urandom(9)
_counter = itertools.count()


def _stash(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """before-parameter-build: swap each large image for a token, and remember the token's bytes."""
    for name in IMAGE_PARAMETERS:
        image = params.get(name)
        data = image.get("Bytes") if isinstance(image, dict) else None
        if isinstance(data, bytes | bytearray | memoryview) and len(data) >= MIN_BYTES:
            token = _PREFIX + next(_counter).to_bytes(6, "big")
            # A new dict: the caller's parameters are reused when a call is retried.
            params[name] = {**image, "Bytes": token}  # type: ignore[dict-item]
            context.setdefault(_CONTEXT_KEY, []).append((b'"' + base64.b64encode(token) + b'"', data))


def _splice(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """before-call: put each image's base64 where its token was serialised."""
    swapped = context.pop(_CONTEXT_KEY, None)
    if not swapped:
        return
    body: bytes = params["body"]
    for quoted_token, data in swapped:
        at = body.find(quoted_token)
        if at < 0:  # another handler rewrote the body: never send a request without its image
            raise RuntimeError("facequeue could not place an image into the Rekognition request body")
        # pybase64 (SIMD) writes the same bytes as base64.b64encode, ~40× faster on a photo.
        body = b"".join((body[: at + 1], pybase64.b64encode(data), body[at + len(quoted_token) - 1 :]))
    params["body"] = body


def install(client: Any) -> None:
    """Make a Rekognition client (boto3 or aioboto3) place large image bytes by splicing instead of json.dumps."""
    events = client.meta.events
    events.register_first("before-parameter-build.rekognition", _stash, unique_id="facequeue-stash-image-bytes")
    events.register_first("before-call.rekognition", _splice, unique_id="facequeue-splice-image-bytes")
