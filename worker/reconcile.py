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
4xx, 5xx) changed nothing. A timed-out call may still be on its way (held in the network, a slow endpoint): before
the job's answer stands, it is given one FACEQUEUE_REKOGNITION_READ_TIMEOUT_S more to land, then the faces under the
mark that the answer does not hold are deleted.

A job that sets its own ExternalImageId is not marked (its id is the user's, and faces other jobs indexed may share
it): a lost answer is retried as before, and may leave a copy. docs/reliability.md holds the trade-offs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from producer.contract import IndexFacesJob, Job, job_mark
from worker import metrics
from worker.calls import Call, CallOutcome, rate_limited, timed, wait_uncounted
from worker.deps import Deps
from worker.errors import JobFailure
from worker.responses import check_members

log = logging.getLogger("facequeue.worker")

UNANSWERED = frozenset({"EndpointConnectionError", "Timeout", "MalformedResponse"})
"""Failures after which Rekognition may have acted without the worker hearing its answer."""
PAGE = 4096
"""ListFaces's largest page (MaxResults, botocore's PageSize): the fewest calls to scan a collection."""
Answer = dict[str, Any]


def marked(job: Job, params: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """IndexFaces parameters with the job's mark as ExternalImageId when the job sets none (else unchanged), and the
    mark (None: the job is not marked, and its calls are not guarded)."""
    if isinstance(job, IndexFacesJob) and "ExternalImageId" not in params:
        mark = job_mark(job.job_id)
        return {**params, "ExternalImageId": mark}, mark
    return params, None


def guard(
    deps: Deps, outcome: CallOutcome, mark: str, params: dict[str, Any], pending: bool
) -> Callable[[Call[Answer]], Call[Answer]]:
    """The layer, inside the retries, that adopts a lost IndexFaces call's faces instead of calling again.

    ``mark`` and ``params``: what ``marked`` gave the job; ``pending``: an earlier run of the job may have called and
    stopped before recording the answer.
    """
    return _Guard(deps, outcome, params["CollectionId"], mark, lost=pending).layer


@dataclass
class _Guard:
    """One job's IndexFaces attempts, and what the lost ones may have left under its mark."""

    deps: Deps
    outcome: CallOutcome
    collection: str
    mark: str
    lost: bool
    """Whether an earlier attempt (or run) may have acted unheard."""
    timed_out_at: float | None = None
    """When an attempt last timed out: its call may still be on its way to Rekognition."""

    def layer(self, call: Call[Answer]) -> Call[Answer]:
        """The call, each attempt of it guarded."""
        return lambda: self.attempt(call)

    async def attempt(self, call: Call[Answer]) -> Answer:
        """One attempt: the lost calls' faces if there are any, else IndexFaces."""
        if self.lost:
            # Looked for again before each attempt: a timed-out call may have landed since the last look.
            found = await _adopt(self.deps, self.outcome, self.collection, self.mark)
            if found is not None:
                return await self.finish(found, adopted=True)
        try:
            answer = await call()
        except JobFailure as failure:
            if failure.code not in UNANSWERED:
                raise
            return await self.after_lost(failure)
        return await self.finish(answer, adopted=False) if self.lost else answer

    async def after_lost(self, failure: JobFailure) -> Answer:
        """Look at once for what an unanswered attempt indexed: this may be the last attempt the retries allow, and
        its faces are then the answer. Raise the failure when it indexed nothing (yet)."""
        self.lost = True
        if failure.code == "Timeout":
            self.timed_out_at = time.monotonic()
            if self.outcome.attempts >= self.deps.settings.max_attempts:
                await self.settled()  # the retries are spent: what this call indexed is the only answer left
        try:
            found = await _adopt(self.deps, self.outcome, self.collection, self.mark)
        except JobFailure:
            raise failure from None
        if found is None:
            raise failure
        return await self.finish(found, adopted=True)

    async def settled(self) -> None:
        """Give a timed-out call one read timeout more to land (a stall in the network, a slow endpoint)."""
        if self.timed_out_at is not None:
            left = self.timed_out_at + self.deps.settings.rekognition_read_timeout_s - time.monotonic()
            if left > 0:
                await wait_uncounted(self.deps, left)

    async def finish(self, answer: Answer, adopted: bool) -> Answer:
        """The answer, once faces under the mark that it does not hold are deleted."""
        # An adopted answer kept one image's faces and deleted the rest: only a call still on its way adds more.
        if self.lost and (self.timed_out_at is not None or not adopted):
            await self.settled()
            await _sweep(self.deps, self.outcome, self.collection, self.mark, answer)
        return answer


async def _call(deps: Deps, outcome: CallOutcome, operation: str, **params: Any) -> Answer:
    """One ListFaces or DeleteFaces, after a slot of its shared rate (a throttle slows every worker, as for any
    call) and timed with the job's calls; not one of the job's attempts, which stay IndexFaces's own."""
    method = getattr(deps.rekognition, "list_faces" if operation == "ListFaces" else "delete_faces")

    async def call() -> Answer:
        answer: Answer = await method(**params)
        if operation == "ListFaces":  # DeleteFaces leaves DeletedFaces out when it deleted none
            check_members(operation, answer)
        answer.pop("ResponseMetadata", None)
        return answer

    attempts = outcome.attempts
    try:
        return await rate_limited(timed(call, outcome, operation), deps, operation, outcome)()
    finally:
        outcome.attempts = attempts


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
