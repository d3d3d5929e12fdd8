"""Collections outlive the server process, and no collection id can reach outside the data directory."""

from __future__ import annotations

import re
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from testmedia.imaging import big_and_small
from testmedia.photos import grace_hopper
from tests.fixtures.aws import LocalRekognitionProcess, StartLocalRekognition, rekognition_client


def files_under(directory: Path) -> set[Path]:
    return {path for path in directory.rglob("*")}


def test_collections_survive_a_restart(start_local_rekognition: StartLocalRekognition, tmp_path: Path) -> None:
    data_dir = tmp_path / "shared-data"
    # Given a server that created a collection and indexed faces into it
    first = start_local_rekognition(data_dir)
    client = rekognition_client(first.url)
    client.create_collection(CollectionId="kept")
    client.create_collection(CollectionId="dropped")
    indexed = client.index_faces(
        CollectionId="kept", Image={"Bytes": big_and_small(grace_hopper())}, ExternalImageId="group"
    )
    removed = indexed["FaceRecords"][1]["Face"]["FaceId"]
    client.delete_faces(CollectionId="kept", FaceIds=[removed])
    client.delete_collection(CollectionId="dropped")
    before = client.describe_collection(CollectionId="kept")
    faces_before = client.list_faces(CollectionId="kept")["Faces"]
    # When it stops and a new process starts on the same data directory
    assert first.stop() == 0
    second = start_local_rekognition(data_dir)
    client = rekognition_client(second.url)
    # Then collections, faces and their embeddings are all there
    assert client.list_collections()["CollectionIds"] == ["kept"]
    after = client.describe_collection(CollectionId="kept")
    assert (after["FaceCount"], after["CreationTimestamp"]) == (1, before["CreationTimestamp"])
    assert client.list_faces(CollectionId="kept")["Faces"] == faces_before
    matches = client.search_faces_by_image(CollectionId="kept", Image={"Bytes": grace_hopper().read_bytes()})
    assert [match["Face"]["FaceId"] for match in matches["FaceMatches"]] == [faces_before[0]["FaceId"]]


def test_a_killed_server_leaves_a_readable_store(
    start_local_rekognition: StartLocalRekognition, tmp_path: Path
) -> None:
    data_dir = tmp_path / "crash"
    first = start_local_rekognition(data_dir)
    client = rekognition_client(first.url)
    client.create_collection(CollectionId="crash")
    client.index_faces(CollectionId="crash", Image={"Bytes": grace_hopper().read_bytes()})
    # When the process dies without any chance to clean up
    first.stop(signal.SIGKILL)
    second = start_local_rekognition(data_dir)
    assert rekognition_client(second.url).describe_collection(CollectionId="crash")["FaceCount"] == 1


def test_two_servers_cannot_share_a_data_dir(
    start_local_rekognition: StartLocalRekognition, moto_s3_url: str, tmp_path: Path
) -> None:
    from tests.fixtures.aws import local_rekognition_environment

    start_local_rekognition(tmp_path / "one-owner")
    intruder = LocalRekognitionProcess(
        data_dir=tmp_path / "one-owner", log=tmp_path / "intruder.log", env=local_rekognition_environment(moto_s3_url)
    )
    with pytest.raises(pytest.fail.Exception, match="exited"):
        intruder.start()
    assert "another server is using" in intruder.output()


@pytest.mark.parametrize("collection_id", [".", "..", "...", "-", "_", "x" * 255, ".git", "con.aux"])
def test_every_valid_id_stays_inside_the_data_dir(
    local_rekognition_server: LocalRekognitionProcess, rekognition: Any, collection_id: str
) -> None:
    data_dir = local_rekognition_server.data_dir
    outside_before = files_under(data_dir.parent) - files_under(data_dir)
    # Given ids that the service model allows but a file system would read as paths
    rekognition.create_collection(CollectionId=collection_id)
    try:
        rekognition.index_faces(CollectionId=collection_id, Image={"Bytes": grace_hopper().read_bytes()})
        assert rekognition.describe_collection(CollectionId=collection_id)["FaceCount"] == 1
        assert collection_id in rekognition.list_collections()["CollectionIds"]
        # Then nothing appeared outside the data dir, and each collection has one hashed directory
        assert files_under(data_dir.parent) - files_under(data_dir) == outside_before
        for directory in (data_dir / "collections").iterdir():
            assert re.fullmatch(r"[0-9a-f]{64}", directory.name), directory
    finally:
        rekognition.delete_collection(CollectionId=collection_id)
    assert collection_id not in rekognition.list_collections()["CollectionIds"]


def test_a_disk_fault_is_an_internal_server_error(
    start_local_rekognition: StartLocalRekognition, tmp_path: Path
) -> None:
    server = start_local_rekognition(tmp_path / "faulty")
    client = rekognition_client(server.url, retries={"mode": "standard", "max_attempts": 1})
    client.create_collection(CollectionId="doomed")
    # Given the collection's directory vanishing behind the server's back
    for directory in (tmp_path / "faulty" / "collections").iterdir():
        shutil.rmtree(directory)
    # When a write to it fails, the caller gets Rekognition's 500, and the server log has the traceback
    with pytest.raises(ClientError) as caught:
        client.index_faces(CollectionId="doomed", Image={"Bytes": grace_hopper().read_bytes()})
    assert caught.value.response["Error"]["Code"] == "InternalServerError"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "IndexFaces failed" in server.output()
    # Then the server goes on serving
    assert len(client.detect_faces(Image={"Bytes": grace_hopper().read_bytes()})["FaceDetails"]) == 1
