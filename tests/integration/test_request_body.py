"""The worker's Rekognition requests carry exactly the body botocore would have built, image bytes spliced in."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aioboto3
import pytest

from testmedia.photos import grace_hopper
from tests.fixtures.aws import FAKE_CREDENTIALS, REGION
from worker import request_body


async def _calls(
    url: str, splice: bool, calls: list[tuple[str, dict[str, Any]]], serialised: list[int] | None = None
) -> list[tuple[bytes, Any]]:
    """Make each call with a fresh aioboto3 client; return each request body as sent, and the answer.

    ``serialised`` collects the size of each image botocore's serialiser was handed."""
    session = aioboto3.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
    sent: list[bytes] = []
    async with session.client("rekognition", endpoint_url=url) as client:
        if splice:
            request_body.install(client)
        client.meta.events.register("before-send.rekognition", lambda request, **_: sent.append(bytes(request.body)))
        client.meta.events.register_last(
            "before-parameter-build.rekognition",
            lambda params, **_: (serialised if serialised is not None else []).extend(
                len(params[name]["Bytes"]) for name in request_body.IMAGE_PARAMETERS if name in params
            ),
        )
        answers = []
        for method, params in calls:
            answer = await getattr(client, method)(**params)
            answer.pop("ResponseMetadata")
            answers.append(answer)
    return list(zip(sent, answers, strict=True))


def test_spliced_requests_are_byte_for_byte_what_botocore_builds(local_rekognition_url: str) -> None:
    photo = grace_hopper().read_bytes()
    image = {"Bytes": photo}
    calls = [
        ("detect_faces", {"Image": image, "Attributes": ["DEFAULT"]}),
        ("compare_faces", {"SourceImage": image, "TargetImage": {"Bytes": photo + b"\0"}}),
        ("detect_faces", {"Image": {"Bytes": photo[:1000]}}),  # under MIN_BYTES: left to botocore
    ]
    # Given the same calls made with botocore's own serialisation, then with the splice installed
    plain_sizes: list[int] = []
    spliced_sizes: list[int] = []
    plain = asyncio.run(_calls(local_rekognition_url, False, calls[:2], plain_sizes))
    spliced = asyncio.run(_calls(local_rekognition_url, True, calls[:2], spliced_sizes))
    # Then botocore's serialiser was handed the photos in the first run, only short tokens in the second
    assert min(plain_sizes) >= len(photo) and max(spliced_sizes) < 64 and len(spliced_sizes) == 3
    # And every body sent is identical, carries the image, and gets the same answer
    assert [body for body, _ in spliced] == [body for body, _ in plain]
    assert [answer for _, answer in spliced] == [answer for _, answer in plain]
    assert len(spliced[0][1]["FaceDetails"]) == 1 and spliced[1][1]["FaceMatches"][0]["Similarity"] > 99
    assert json.loads(spliced[1][0])["TargetImage"]["Bytes"] != json.loads(spliced[1][0])["SourceImage"]["Bytes"]
    # And the caller's parameters are left as they were (a retry sends the same image again)
    assert image == {"Bytes": photo}
    # And a small image, not spliced, is refused as botocore would send it (truncated JPEG)
    with pytest.raises(Exception, match="InvalidImageFormat"):
        asyncio.run(_calls(local_rekognition_url, True, calls[2:]))
