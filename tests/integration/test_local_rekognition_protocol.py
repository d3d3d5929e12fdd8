"""local_rekognition speaks AWS JSON 1.1 as Rekognition does: targets, errors, limits, regions, health."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import urllib.error
import urllib.request
from typing import Any

import aioboto3
import pytest
from botocore.exceptions import ClientError

from testmedia.photos import grace_hopper
from tests.fixtures.aws import FAKE_CREDENTIALS, LocalRekognitionProcess, rekognition_client, wait_for

JSON_11 = "application/x-amz-json-1.1"


def post(url: str, body: bytes, target: str | None = "RekognitionService.DetectFaces") -> tuple[int, Any]:
    """POST a raw body the way an SDK would, without signing; returns (status, parsed JSON body)."""
    headers = {"Content-Type": JSON_11}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_health_reports_the_face_model_version(local_rekognition_server: LocalRekognitionProcess) -> None:
    health = local_rekognition_server.health()
    assert health is not None
    assert health["Status"] == "ok"
    assert isinstance(health["FaceModelVersion"], str) and health["FaceModelVersion"]


def test_unknown_operation_is_refused_like_aws(local_rekognition_url: str) -> None:
    status, body = post(local_rekognition_url, b"{}", target="RekognitionService.DetectSomethingElse")
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    status, body = post(local_rekognition_url, b"{}", target=None)
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    status, body = post(local_rekognition_url, b"{}", target="DynamoDB_20120810.ListTables")
    assert (status, body["__type"]) == (400, "UnknownOperationException")


def test_a_real_operation_this_server_lacks_is_unknown_to_boto3_too(rekognition: Any) -> None:
    with pytest.raises(ClientError) as caught:
        rekognition.list_stream_processors()
    assert caught.value.response["Error"]["Code"] == "UnknownOperationException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"Image": NaN}', b"\xff\xfe"])
def test_malformed_json_is_a_serialization_error(local_rekognition_url: str, body: bytes) -> None:
    status, answer = post(local_rekognition_url, body)
    assert (status, answer["__type"]) == (400, "SerializationException")
    assert answer["Message"]


def test_wrong_member_types_are_serialization_errors(local_rekognition_url: str) -> None:
    status, answer = post(local_rekognition_url, b'{"MaxResults": "ten"}', target="RekognitionService.ListCollections")
    assert (status, answer["__type"]) == (400, "SerializationException")


def test_an_oversized_body_gets_a_clear_error(local_rekognition_url: str) -> None:
    # Given a body past the server's limit (two 5 MB images base64-encoded plus overhead, about 14.2 MB)
    body = b'{"Image": {"Bytes": "' + b"A" * (15 * 1024 * 1024) + b'"}}'
    # Then the server answers with a JSON error naming the limit rather than dropping the connection
    status, answer = post(local_rekognition_url, body)
    assert status == 413
    assert answer["__type"] == "ImageTooLargeException"
    assert "limit" in answer["Message"]


def test_errors_carry_rekognition_codes_and_request_ids(rekognition: Any) -> None:
    with pytest.raises(ClientError) as caught:
        rekognition.describe_collection(CollectionId="no-such-collection")
    response = caught.value.response
    assert response["Error"]["Code"] == "ResourceNotFoundException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["ResponseMetadata"]["RequestId"]
    assert type(caught.value).__name__ == "ResourceNotFoundException"  # botocore's modeled exception class


def test_the_arn_region_comes_from_the_sigv4_credential_scope(local_rekognition_url: str) -> None:
    client = rekognition_client(local_rekognition_url, region="ap-southeast-2")
    try:
        created = client.create_collection(CollectionId="region-scope")
        described = client.describe_collection(CollectionId="region-scope")
        expected = "arn:aws:rekognition:ap-southeast-2:000000000000:collection/region-scope"
        assert created["CollectionArn"] == expected
        assert described["CollectionARN"] == expected
    finally:
        client.delete_collection(CollectionId="region-scope")


def test_unsigned_requests_are_served_with_the_default_region(local_rekognition_url: str) -> None:
    status, body = post(
        local_rekognition_url, b'{"CollectionId": "unsigned"}', target="RekognitionService.CreateCollection"
    )
    try:
        assert status == 200
        assert body["CollectionArn"] == "arn:aws:rekognition:us-east-1:000000000000:collection/unsigned"
    finally:
        post(
            local_rekognition_url,
            b'{"CollectionId": "unsigned"}',
            target="RekognitionService.DeleteCollection",
        )


def test_aioboto3_clients_work_unchanged(local_rekognition_url: str) -> None:
    asyncio.run(_aioboto3_round_trip(local_rekognition_url))


async def _aioboto3_round_trip(local_rekognition_url: str) -> None:
    session = aioboto3.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    async with session.client("rekognition", endpoint_url=local_rekognition_url) as client:
        detected = await client.detect_faces(Image={"Bytes": grace_hopper().read_bytes()})
        assert len(detected["FaceDetails"]) == 1
        with pytest.raises(ClientError) as caught:
            await client.delete_collection(CollectionId="absent")
        assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_the_endpoint_comes_from_the_standard_environment_variable(
    local_rekognition_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    # Given only AWS_ENDPOINT_URL_REKOGNITION, as the workers are configured
    monkeypatch.setenv("AWS_ENDPOINT_URL_REKOGNITION", local_rekognition_url)
    client = boto3.client("rekognition")
    # Then an unmodified client reaches the local server
    assert client.list_collections()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_health_answers_while_the_models_are_busy(local_rekognition_server: LocalRekognitionProcess) -> None:
    """Inference runs in a thread pool: the event loop keeps serving /health under a burst of work."""
    busy, results = asyncio.run(_burst_with_health_checks(local_rekognition_server))
    # Then it answered during the burst, and every request still succeeded
    assert max(busy) > 0
    assert all(len(result["FaceDetails"]) == 1 for result in results)


async def _burst_with_health_checks(server: LocalRekognitionProcess) -> tuple[list[int], list[Any]]:
    photo = grace_hopper().read_bytes()
    session = aioboto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    async with session.client("rekognition", endpoint_url=server.url) as client:
        burst = [asyncio.create_task(client.detect_faces(Image={"Bytes": photo})) for _ in range(12)]
        # When /health is asked while requests are still pending in the pool
        busy: list[int] = []
        while not all(task.done() for task in burst):
            health = await asyncio.to_thread(server.health)
            assert health is not None
            busy.append(health["PendingRequests"])
        return busy, list(await asyncio.gather(*burst))


def test_overload_answers_throttling(start_local_rekognition: Any) -> None:
    server = start_local_rekognition(None, FACEQUEUE_LOCAL_MAX_PENDING_REQUESTS="1")
    body = json.dumps({"Image": {"Bytes": base64.b64encode(grace_hopper().read_bytes()).decode()}}).encode()
    host, port = server.url.removeprefix("http://").split(":")
    slow = http.client.HTTPConnection(host, int(port), timeout=60)
    # Given a request that holds the only admission slot, its body still being uploaded
    slow.putrequest("POST", "/")
    for name, value in (("Content-Type", JSON_11), ("X-Amz-Target", "RekognitionService.DetectFaces")):
        slow.putheader(name, value)
    slow.putheader("Content-Length", str(len(body)))
    slow.endheaders()
    slow.send(body[:1000])
    wait_for(lambda: (server.health() or {}).get("PendingRequests") == 1, 30, "the slow request to be admitted")
    # When another request arrives, it is refused at once with Rekognition's throttling error
    client = rekognition_client(server.url, retries={"mode": "standard", "max_attempts": 1})
    with pytest.raises(ClientError) as caught:
        client.detect_faces(Image={"Bytes": grace_hopper().read_bytes()})
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    # Then the admitted request still completes, and the slot is free again
    slow.send(body[1000:])
    response = slow.getresponse()
    assert response.status == 200 and len(json.loads(response.read())["FaceDetails"]) == 1
    slow.close()
    assert len(client.detect_faces(Image={"Bytes": grace_hopper().read_bytes()})["FaceDetails"]) == 1
