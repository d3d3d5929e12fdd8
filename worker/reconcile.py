"""After an IndexFaces answer is lost: find the faces the lost call indexed and adopt them, never index twice.

IndexFaces takes no ClientRequestToken, so an answer cut off after Rekognition acted (a dropped connection, a
timeout, a body cut in half) used to be retried blindly and the collection got a second copy of the face. An
IndexFaces job that sets no ExternalImageId is therefore indexed under its job mark, ``facequeue:job:<job id>``
(contract.job_mark): no other job can carry it (the contract refuses the prefix), so the faces under it are this
job's and no one else's. When an attempt may have been lost, the worker lists the collection (ListFaces, every page)
for faces under the mark before it calls again:

- faces found: they are the answer, adopted without a second IndexFaces (FaceRecords built from ListFaces: each
  Face as listed, a FaceDetail of only BoundingBox and Confidence, no UnindexedFaces: ListFaces knows no more);
  copies under more than one ImageId (two lost calls that both acted) keep one image's (the least ImageId, so
  every run picks the same) and delete the rest;
- no face found: the lost call did nothing (or found no face), and IndexFaces is called again.

"May have been lost" is a failure without an answer from Rekognition (EndpointConnectionError, Timeout,
MalformedResponse) and, on a later run, a journal entry still "pending" (journal.py). An answered error (throttle,
4xx, 5xx) changed nothing. After a success that followed a lost attempt, the faces under the mark that the answer
does not hold are deleted: a timed-out call that reached Rekognition after the check.

A job that sets its own ExternalImageId is not marked (its id is the user's, and faces other jobs indexed may share
it): a lost answer is retried as before, and may leave a copy. docs/reliability.md holds the trade-offs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from producer.contract import IndexFacesJob, Job, job_mark
from worker import metrics
from worker.calls import Call, CallOutcome, classify, timed
from worker.deps import Deps
from worker.errors import JobFailure
from worker.responses import check_members

log = logging.getLogger("facequeue.worker")

UNANSWERED = frozenset({"EndpointConnectionError", "Timeout", "MalformedResponse"})
"""Failures after which Rekognition may have acted without the worker hearing its answer."""
PAGE = 4096
"""ListFaces's largest page (MaxResults, botocore's PageSize): the fewest calls to scan a collection."""
Answer = dict[str, Any]


def marked(job: Job, params: dict[str, Any]) -> dict[str, Any]:
    """IndexFaces parameters with the job's mark as ExternalImageId when the job sets none (else unchanged)."""
    if isinstance(job, IndexFacesJob) and "ExternalImageId" not in params:
        return {**params, "ExternalImageId": job_mark(job.job_id)}
    return params


def guard(
    deps: Deps, outcome: CallOutcome, job: Job, params: dict[str, Any], pending: bool
) -> Callable[[Call[Answer]], Call[Answer]]:
    """The layer, inside the retries, that adopts a lost IndexFaces call's faces instead of calling again.

    ``pending``: an earlier run of the job may have called and stopped before recording the answer.
    """
    mark = params.get("ExternalImageId")
    if not isinstance(job, IndexFacesJob) or mark != job_mark(job.job_id):
        return lambda call: call
    collection = job.collection_id
    lost = pending  # whether an earlier attempt may have acted unheard

    def layer(call: Call[Answer]) -> Call[Answer]:
        async def attempt() -> Answer:
            nonlocal lost
            if lost:
                # Checked again before each attempt: a timed-out call may reach Rekognition after the last check.
                found = await _adopt(deps, outcome, collection, mark)
                if found is not None:
                    return found
            try:
                answer = await call()
            except JobFailure as failure:
                if failure.code not in UNANSWERED:
                    raise
                lost = True
                # At once, too: this may be the last attempt the retries allow, and its faces are then the answer.
                try:
                    found = await _adopt(deps, outcome, collection, mark)
                except JobFailure:
                    raise failure from None
                if found is None:
                    raise
                return found
            if lost:
                await _sweep(deps, outcome, collection, mark, answer)
            return answer

        return attempt

    return layer


async def _call(deps: Deps, outcome: CallOutcome, operation: str, **params: Any) -> Answer:
    """One ListFaces or DeleteFaces, timed with the job's calls; failures classified for the retry layer."""
    method = getattr(deps.rekognition, "list_faces" if operation == "ListFaces" else "delete_faces")

    async def call() -> Answer:
        answer: Answer = await method(**params)
        if operation == "ListFaces":  # DeleteFaces leaves DeletedFaces out when it deleted none
            check_members(operation, answer)
        answer.pop("ResponseMetadata", None)
        return answer

    try:
        return await timed(call, outcome, operation)()
    except Exception as exc:
        raise classify(exc) from None


async def _marked_faces(deps: Deps, outcome: CallOutcome, collection: str, mark: str) -> tuple[list[Answer], str]:
    """Every face of the collection under the mark, and the collection's FaceModelVersion: ListFaces, every page
    (Rekognition has no filter on ExternalImageId)."""
    faces: list[Answer] = []
    params: dict[str, Any] = {"CollectionId": collection, "MaxResults": PAGE}
    while True:
        page = await _call(deps, outcome, "ListFaces", **params)
        faces += [face for face in page["Faces"] if face.get("ExternalImageId") == mark]
        if not page.get("NextToken"):
            return faces, str(page.get("FaceModelVersion", ""))
        params["NextToken"] = page["NextToken"]


async def _delete(deps: Deps, outcome: CallOutcome, collection: str, mark: str, face_ids: list[str]) -> None:
    """Delete copies under the job's own mark (never anyone else's face), 4096 a call."""
    for start in range(0, len(face_ids), PAGE):
        chunk = face_ids[start : start + PAGE]
        await _call(deps, outcome, "DeleteFaces", CollectionId=collection, FaceIds=chunk)
        metrics.RECONCILED.labels("deleted").inc(len(chunk))
        log.warning("%s: deleted %d extra copies of its faces in %s", mark, len(chunk), collection)


async def _adopt(deps: Deps, outcome: CallOutcome, collection: str, mark: str) -> Answer | None:
    """The IndexFaces answer the faces under the mark make, or None when it holds none."""
    faces, version = await _marked_faces(deps, outcome, collection, mark)
    if not faces:
        metrics.RECONCILED.labels("none_found").inc()
        return None
    first = min(face["ImageId"] for face in faces)
    kept = [face for face in faces if face["ImageId"] == first]
    extra = [face["FaceId"] for face in faces if face["ImageId"] != first]
    if extra:
        await _delete(deps, outcome, collection, mark, extra)
    metrics.RECONCILED.labels("adopted").inc()
    log.warning("%s: adopting the %d face(s) a lost IndexFaces indexed in %s", mark, len(kept), collection)
    # Largest first, the order IndexFaces answers in.
    kept.sort(key=lambda face: -face["BoundingBox"]["Width"] * face["BoundingBox"]["Height"])
    records = [
        {
            "Face": {k: v for k, v in face.items() if k != "UserId"},
            "FaceDetail": {"BoundingBox": face["BoundingBox"], "Confidence": face["Confidence"]},
        }
        for face in kept
    ]
    answer: Answer = {"FaceRecords": records}
    if version:
        answer["FaceModelVersion"] = version
    return answer


async def _sweep(deps: Deps, outcome: CallOutcome, collection: str, mark: str, answer: Answer) -> None:
    """Delete faces under the mark that the answer does not hold: a lost call that landed after it was checked."""
    answered = {record["Face"]["FaceId"] for record in answer.get("FaceRecords", [])}
    try:
        faces, _ = await _marked_faces(deps, outcome, collection, mark)
        extra = [face["FaceId"] for face in faces if face["FaceId"] not in answered]
        if extra:
            await _delete(deps, outcome, collection, mark, extra)
    except JobFailure as failure:
        # The answer stands: an unswept copy is what a lost answer left before this module, not a failed job.
        log.warning("%s: could not look for extra copies in %s (%s)", mark, collection, failure.code)
