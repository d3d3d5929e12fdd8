"""People, not just faces: enrol a person from a few photos, and say who is in a photo.

Enrolling is three steps of jobs: IndexFaces on each photo (its largest face only), CreateUser (a user that exists
already is reused), AssociateFaces (100 faces a call). Faces indexed but left out of the user (too unlike the
person's other faces, or already someone else's) are deleted again, so the collection keeps no stray faces.
The steps are plain functions of result envelopes, so the CLI can show progress while the library simply waits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from producer import jobs
from producer.contract import MAX_FACES_PER_USER, JobStatus, ResultEnvelope

if TYPE_CHECKING:
    from producer.client import FaceQueue

UNKNOWN = "unknown"
"""What identify says for a face no user matches at the threshold."""


@dataclass
class Enrolment:
    """What enrolling one person did, photo by photo."""

    person: str
    faces: dict[str, str] = field(default_factory=dict)
    """FaceId → photo, for the faces indexed from the photos (largest face of each)."""
    associated: dict[str, str] = field(default_factory=dict)
    """photo → FaceId now associated with the person."""
    left_out: dict[str, str] = field(default_factory=dict)
    """photo → why it adds nothing to the person (no face, a failed job, too unlike the person, ...)."""
    user_status: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The enrolment as plain JSON."""
        return {
            "person": self.person,
            "associated": self.associated,
            "left_out": self.left_out,
            "user_status": self.user_status,
        }


def enrolment_index_job(collection_id: str, photo: jobs.ImageInput) -> jobs.PreparedJob:
    """The IndexFaces job keeping a photo's largest face."""
    return jobs.index_faces(photo, collection_id, max_faces=1)


def enrolment_index_jobs(collection_id: str, photos: Sequence[jobs.ImageInput]) -> list[jobs.PreparedJob]:
    """IndexFaces jobs keeping each photo's largest face."""
    return [enrolment_index_job(collection_id, photo) for photo in photos]


def read_indexed(enrolment: Enrolment, indexed: Mapping[str, ResultEnvelope | None]) -> None:
    """Record the faces IndexFaces found (photo → its envelope, None when it left no result)."""
    for photo, envelope in indexed.items():
        if envelope is None:
            enrolment.left_out[photo] = "no result (the job did not finish)"
        elif envelope.status is JobStatus.FAILED:
            assert envelope.error is not None
            enrolment.left_out[photo] = f"{envelope.error.code}: {envelope.error.message}"
        else:
            records = (envelope.response or {}).get("FaceRecords", [])
            if records:
                enrolment.faces[records[0]["Face"]["FaceId"]] = photo
            else:
                unindexed = (envelope.response or {}).get("UnindexedFaces", [])
                reasons = ",".join(unindexed[0].get("Reasons", [])) if unindexed else ""
                enrolment.left_out[photo] = f"face not indexed: {reasons}" if reasons else "no face found"


def user_created(envelope: ResultEnvelope) -> str | None:
    """None when the user exists now (created, or there already); else why it could not be created."""
    if envelope.status is JobStatus.SUCCEEDED:
        return None
    assert envelope.error is not None
    if envelope.error.code == "ConflictException":
        return None  # enrolling more photos of someone already enrolled
    return f"{envelope.error.code}: {envelope.error.message}"


def association_jobs(enrolment: Enrolment, collection_id: str, threshold: float) -> list[jobs.PreparedJob]:
    """AssociateFaces jobs for the indexed faces, 100 a job (Rekognition's limit per call)."""
    face_ids = list(enrolment.faces)
    return [
        jobs.associate_faces(
            collection_id,
            enrolment.person,
            face_ids[start : start + MAX_FACES_PER_USER],
            user_match_threshold=threshold,
        )
        for start in range(0, len(face_ids), MAX_FACES_PER_USER)
    ]


def read_associated(enrolment: Enrolment, envelope: ResultEnvelope, face_ids: Iterable[str]) -> None:
    """Record an AssociateFaces result for ``face_ids``."""
    asked = list(face_ids)
    if envelope.status is JobStatus.FAILED:
        assert envelope.error is not None
        for face_id in asked:
            enrolment.left_out[enrolment.faces[face_id]] = f"{envelope.error.code}: {envelope.error.message}"
        return
    response = envelope.response or {}
    enrolment.user_status = response.get("UserStatus", enrolment.user_status)
    refused = {item["FaceId"]: item for item in response.get("UnsuccessfulFaceAssociations", [])}
    for face_id in asked:
        photo = enrolment.faces[face_id]
        if face_id in refused:
            enrolment.left_out[photo] = _refusal(refused[face_id])
        else:
            # Associated now, or already this person's (AWS leaves those out of AssociatedFaces)
            enrolment.associated[photo] = face_id


def _refusal(item: Mapping[str, Any]) -> str:
    reasons = item.get("Reasons", [])
    if "LOW_MATCH_CONFIDENCE" in reasons:
        return f"too unlike the person's other faces (similarity {float(item.get('Confidence', 0)):.1f})"
    if "ASSOCIATED_TO_A_DIFFERENT_USER" in reasons:
        return f"already enrolled as {item.get('UserId', 'another user')}"
    return ",".join(reasons) or "not associated"


def stray_faces(enrolment: Enrolment) -> list[str]:
    """Faces indexed for the enrolment but not associated with the person: to delete again."""
    kept = set(enrolment.associated.values())
    return [face_id for face_id in enrolment.faces if face_id not in kept]


def identity(envelope: ResultEnvelope) -> tuple[str | None, float | None]:
    """Who a SearchUsersByImage result names: (UserId, similarity), (UNKNOWN, None) below the threshold, or
    (None, None) when the photo had no face to search (or the job failed)."""
    if envelope.status is JobStatus.FAILED:
        return None, None
    response = envelope.response or {}
    matches = response.get("UserMatches", [])
    if matches:
        return str(matches[0]["User"]["UserId"]), float(matches[0]["Similarity"])
    if "SearchedFace" in response:
        return UNKNOWN, None
    return None, None


def enrol(
    fq: FaceQueue,
    collection_id: str,
    person: str,
    photos: Sequence[str],
    *,
    threshold: float = 75.0,
    timeout_s: float | None = 300.0,
) -> Enrolment:
    """Enrol ``person`` in ``collection_id`` from local photo paths or s3:// URLs, waiting for every job."""
    enrolment = Enrolment(person)
    batch = fq.submit_many(enrolment_index_jobs(collection_id, photos))
    fq.wait(batch.batch_id, timeout_s=timeout_s)
    read_indexed(enrolment, {photo: fq.get_result(job_id) for photo, job_id in zip(photos, batch.job_ids, strict=True)})
    if not enrolment.faces:
        return enrolment
    problem = user_created(fq.result(fq.submit(jobs.create_user(collection_id, person)), timeout_s=timeout_s))
    if problem is not None:
        enrolment.left_out.update({photo: problem for photo in enrolment.faces.values()})
    else:
        for prepared in association_jobs(enrolment, collection_id, threshold):
            envelope = fq.result(fq.submit(prepared), timeout_s=timeout_s)
            read_associated(enrolment, envelope, prepared.job.face_ids)  # type: ignore[union-attr]
    stray = stray_faces(enrolment)
    if stray:
        fq.result(fq.submit(jobs.delete_faces(collection_id, stray)), timeout_s=timeout_s)
    return enrolment
