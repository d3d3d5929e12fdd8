"""User jobs: Rekognition's rules at submit time, and requests the service model accepts."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from local_rekognition.validation import validate_input
from producer import jobs
from producer.contract import TASK_NAMES, AssociateFacesJob, Operation, SearchUsersJob, parse_job

FACE = str(uuid.uuid4())


@pytest.mark.parametrize("user_id", ["", "has space", "slash/no", "x" * 129, "ünïcode"])
def test_user_ids_follow_rekognitions_pattern(user_id: str) -> None:
    with pytest.raises(ValidationError, match="user_id"):
        jobs.create_user("c", user_id)


def test_associate_faces_takes_1_to_100_face_ids() -> None:
    with pytest.raises(ValidationError, match="face_ids"):
        jobs.associate_faces("c", "u", [])
    with pytest.raises(ValidationError, match="face_ids"):
        jobs.associate_faces("c", "u", [str(uuid.uuid4()) for _ in range(101)])
    with pytest.raises(ValidationError, match="face_ids"):
        jobs.associate_faces("c", "u", ["not-a-face-id"])
    with pytest.raises(ValidationError, match="user_match_threshold"):
        jobs.associate_faces("c", "u", [FACE], user_match_threshold=101)


def test_search_users_needs_exactly_one_of_user_and_face() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        jobs.search_users("c")
    with pytest.raises(ValidationError, match="exactly one"):
        SearchUsersJob(collection_id="c", user_id="u", face_id=FACE)


def test_changing_jobs_send_their_job_id_as_client_request_token() -> None:
    # A redelivered job repeats its call with the same token, so Rekognition answers it once
    for prepared in (
        jobs.create_user("c", "u"),
        jobs.delete_user("c", "u"),
        jobs.associate_faces("c", "u", [FACE]),
        jobs.disassociate_faces("c", "u", [FACE]),
    ):
        assert prepared.job.request()["ClientRequestToken"] == prepared.job.job_id
    again = parse_job(jobs.create_user("c", "u").job.model_dump(mode="json"))
    assert again.request()["ClientRequestToken"] == again.job_id


def test_every_user_job_sends_what_the_service_model_accepts() -> None:
    image = {"Bytes": "aGVsbG8="}
    built: list[tuple[Any, dict[str, Any]]] = [
        (jobs.create_user("c", "grace.hopper:1906"), {}),
        (jobs.delete_user("c", "u"), {}),
        (jobs.associate_faces("c", "u", [FACE], user_match_threshold=0), {}),
        (jobs.disassociate_faces("c", "u", [FACE]), {}),
        (jobs.list_users("c", max_results=500, next_token="t"), {}),
        (jobs.search_users("c", user_id="u", max_users=500), {}),
        (jobs.search_users("c", face_id=FACE), {}),
        (jobs.search_users_by_image(b"\xff\xd8jpeg", "c", quality_filter="HIGH"), {"Image": image}),
    ]
    for prepared, extra in built:
        validate_input(prepared.job.operation.value, {**prepared.job.request(), **extra})
    assert {p.job.operation for p, _ in built} == {
        Operation.CREATE_USER,
        Operation.DELETE_USER,
        Operation.ASSOCIATE_FACES,
        Operation.DISASSOCIATE_FACES,
        Operation.LIST_USERS,
        Operation.SEARCH_USERS,
        Operation.SEARCH_USERS_BY_IMAGE,
    }
    assert all(operation in TASK_NAMES for operation in Operation)
    assert isinstance(parse_job(built[2][0].job.model_dump(mode="json")), AssociateFacesJob)
