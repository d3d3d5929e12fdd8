"""Rekognition Video's stored-video face jobs: StartFaceDetection/GetFaceDetection, StartFaceSearch/GetFaceSearch.

Start* checks the request and the S3 object, answers a JobId at once and runs the job in the background; Get*
answers IN_PROGRESS until it ends, then pages through its results (MaxResults up to 1000, opaque NextToken).
A ClientRequestToken reused with the same parameters answers the same JobId, with others
IdempotentParameterMismatchException, as Rekognition does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from local_rekognition import pagination
from local_rekognition.context import Call, Services
from local_rekognition.errors import (
    IdempotentParameterMismatch,
    InvalidPaginationToken,
    LimitExceeded,
    ResourceNotFound,
)
from local_rekognition.operations.common import Handler, require_compatible
from local_rekognition.operations.video_runner import check_video_object, run_job
from local_rekognition.video.jobs import FAILED, IN_PROGRESS, VideoJob

MAX_RESULTS = 1000
"""Get* return at most this many results per page, and that many when MaxResults is absent."""

MAX_JOBS_IN_PROGRESS = 20
"""Rekognition's default quota of concurrent stored-video jobs per account."""

# The request members that define a job: a token reused with other values for these is a mismatch.
_JOB_MEMBERS = ("Video", "FaceAttributes", "CollectionId", "FaceMatchThreshold", "JobTag", "NotificationChannel")


def launch(services: Services, job: VideoJob) -> None:
    """Run ``job`` in the background on the current event loop."""
    task = asyncio.get_running_loop().create_task(run_job(services, job), name=f"video-job-{job.job_id}")
    services.video_jobs.tasks.add(task)
    task.add_done_callback(services.video_jobs.tasks.discard)


def resume_jobs(services: Services) -> int:
    """Run again every job a previous server left IN_PROGRESS; how many."""
    jobs = services.video_jobs.in_progress()
    for job in jobs:
        job.results, job.frames_analysed = [], 0
        launch(services, job)
    return len(jobs)


async def start_job(call: Call, kind: str) -> dict[str, Any]:
    """Start* for any job kind: idempotent on ClientRequestToken, capped, the S3 object checked first."""
    services, params = call.services, call.params
    request = {name: params[name] for name in _JOB_MEMBERS if name in params}
    token = params.get("ClientRequestToken")
    if token is not None:
        request["ClientRequestToken"] = token
        earlier = services.video_jobs.by_token(kind, token)
        if earlier is not None:
            if {k: v for k, v in earlier.request.items() if k != "ClientRequestToken"} != {
                k: v for k, v in request.items() if k != "ClientRequestToken"
            }:
                raise IdempotentParameterMismatch(
                    f"ClientRequestToken {token} was used with other parameters for job {earlier.job_id}"
                )
            return {"JobId": earlier.job_id}
    if kind == "FaceSearch":
        require_compatible(call, services.store.get(params["CollectionId"]))
    if len(services.video_jobs.in_progress()) >= MAX_JOBS_IN_PROGRESS:
        raise LimitExceeded(
            f"Too many video jobs in progress: at most {MAX_JOBS_IN_PROGRESS} at once; wait for one to finish"
        )
    await services.run_io(check_video_object, services, params["Video"].get("S3Object") or {})
    job = services.video_jobs.new(kind, request)
    await services.run_io(services.video_jobs.save, job.to_json())
    launch(services, job)
    return {"JobId": job.job_id}


async def start_face_detection(call: Call) -> dict[str, Any]:
    """Start finding faces in a stored video; answers the JobId at once."""
    return await start_job(call, "FaceDetection")


async def start_face_search(call: Call) -> dict[str, Any]:
    """Start searching a stored video's faces in a collection; answers the JobId at once."""
    return await start_job(call, "FaceSearch")


def job_of(call: Call, kind: str) -> VideoJob:
    """The job a Get* call names, of this kind; ResourceNotFoundException otherwise."""
    job = call.services.video_jobs.jobs.get(call.params["JobId"])
    if job is None or job.kind != kind:
        raise ResourceNotFound(f"The job id: {call.params['JobId']} does not exist")
    return job


def page(call: Call, job: VideoJob, listing: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """A Get* answer: the job's status and, once SUCCEEDED, one page of ``results`` under ``listing``."""
    body: dict[str, Any] = {"JobStatus": job.status, "JobId": job.job_id, "Video": job.request["Video"]}
    if "JobTag" in job.request:
        body["JobTag"] = job.request["JobTag"]
    if job.status == FAILED:
        body["StatusMessage"] = job.status_message or "The job failed"
    if job.status == IN_PROGRESS or job.status == FAILED:
        return body
    start = 0
    if "NextToken" in call.params:
        position = pagination.decode(call.params["NextToken"], listing, job.job_id)
        start = int(position) if position.isdigit() else len(results) + 1
        if start > len(results):
            raise InvalidPaginationToken("Invalid pagination token")
    size = min(MAX_RESULTS, int(call.params.get("MaxResults") or MAX_RESULTS))
    end = start + size
    body["VideoMetadata"] = job.metadata
    body[listing] = results[start:end]
    if end < len(results):
        body["NextToken"] = pagination.encode(listing, job.job_id, str(end))
    return body


async def get_face_detection(call: Call) -> dict[str, Any]:
    """A face detection job's status and, once SUCCEEDED, one page of faces by timestamp."""
    job = job_of(call, "FaceDetection")
    return page(call, job, "Faces", job.results)


async def get_face_search(call: Call) -> dict[str, Any]:
    """A face search job's status and, once SUCCEEDED, one page of matched persons (SortBy TIMESTAMP or INDEX)."""
    job = job_of(call, "FaceSearch")
    results = job.results
    if call.params.get("SortBy") == "INDEX":
        results = sorted(results, key=lambda match: (match["Person"]["Index"], match["Timestamp"]))
    return page(call, job, "Persons", results)


OPERATIONS: Mapping[str, Handler] = {
    "StartFaceDetection": start_face_detection,
    "GetFaceDetection": get_face_detection,
    "StartFaceSearch": start_face_search,
    "GetFaceSearch": get_face_search,
}
