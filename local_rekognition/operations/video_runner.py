"""Running one video job in the background: fetch the clip, sample frames, find, track and search faces.

Each sampled frame is its own task on the inference pool, so other requests queue between two frames of a
video instead of behind the whole clip. The event loop owns the job record; the pools only compute.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path
from typing import Any

from local_rekognition.context import Services
from local_rekognition.errors import InvalidS3Object, RekognitionError, VideoTooLarge
from local_rekognition.faces import face_detail, requested_attributes
from local_rekognition.models.engine import DetectedFace
from local_rekognition.operations.celebrity_matching import video_result
from local_rekognition.operations.search import ranked_matches
from local_rekognition.store import Collection, CollectionNotFoundError
from local_rekognition.video.decode import FrameSampler, UnsupportedVideo
from local_rekognition.video.jobs import FAILED, SUCCEEDED, VideoJob
from local_rekognition.video.tracker import FaceTracker

log = logging.getLogger(__name__)

MAX_VIDEO_BYTES = 10 * 1024**3
"""Rekognition Video's limit for a stored video."""

MATCHES_PER_FACE = 100
"""FaceMatches kept per person per timestamp (SearchFacesByImage's default MaxFaces)."""

_S3_UNREADABLE = "Unable to get object metadata from S3. Check object key, region and/or access permissions."


def _object_kwargs(s3_object: dict[str, Any]) -> dict[str, Any]:
    if not s3_object.get("Bucket") or not s3_object.get("Name"):
        raise InvalidS3Object(_S3_UNREADABLE)
    kwargs: dict[str, Any] = {"Bucket": s3_object["Bucket"], "Key": s3_object["Name"]}
    if s3_object.get("Version"):
        kwargs["VersionId"] = s3_object["Version"]
    return kwargs


def check_video_object(services: Services, s3_object: dict[str, Any]) -> None:
    """Refuse, as StartFace* does, an object that cannot be read or is past the size limit (blocking)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        head = services.s3.client().head_object(**_object_kwargs(s3_object))
    except (ClientError, BotoCoreError) as exc:
        raise InvalidS3Object(_S3_UNREADABLE) from exc
    if int(head.get("ContentLength", 0)) > MAX_VIDEO_BYTES:
        raise VideoTooLarge(f"Video size is too large: the limit is {MAX_VIDEO_BYTES} bytes")


def download(services: Services, s3_object: dict[str, Any], target: Path) -> None:
    """Copy the video to ``target`` (blocking)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = services.s3.client().get_object(**_object_kwargs(s3_object))
        with target.open("wb") as out:
            for chunk in response["Body"].iter_chunks(1024 * 1024):
                out.write(chunk)
                if out.tell() > MAX_VIDEO_BYTES:
                    raise VideoTooLarge(f"Video size is too large: the limit is {MAX_VIDEO_BYTES} bytes")
    except (ClientError, BotoCoreError) as exc:
        raise InvalidS3Object(_S3_UNREADABLE) from exc


def _analyse(
    services: Services,
    sampler: FrameSampler,
    attributes: frozenset[str],
) -> tuple[int, list[DetectedFace]] | None:
    # Decoding and the models in one pool task: one frame's worth of CPU, then the pool serves others.
    frame = sampler.next_frame()
    if frame is None:
        return None
    timestamp_ms, pixels = frame
    faces = services.engine.analyze(pixels, attributes=attributes, want_embeddings=True, max_faces=100)
    return timestamp_ms, sorted(faces, key=lambda face: face.box.width * face.box.height, reverse=True)


def _search(services: Services, collection: Collection, face: DetectedFace, threshold: float) -> list[dict[str, Any]]:
    assert face.embedding is not None  # _analyse asks for embeddings
    return ranked_matches(services.engine, collection, face.embedding, threshold=threshold, max_faces=MATCHES_PER_FACE)


def _celebrities(
    services: Services, faces: list[DetectedFace], timestamp_ms: int, width: int, height: int
) -> list[dict[str, Any]]:
    found = (video_result(services, face, timestamp_ms, width, height) for face in faces)
    return [result for result in found if result is not None]


async def _results(services: Services, job: VideoJob, sampler: FrameSampler) -> list[dict[str, Any]]:
    """Every sampled frame's results for this kind of job: faces, matched persons, or celebrities."""
    info = sampler.info
    search = job.kind == "FaceSearch"
    collection = services.store.get(job.request["CollectionId"]) if search else None
    threshold = float(job.request.get("FaceMatchThreshold", 80.0))
    attributes = requested_attributes([job.request.get("FaceAttributes", "DEFAULT")])
    tracker = FaceTracker()
    results: list[dict[str, Any]] = []
    while (analysed := await services.compute(_analyse, services, sampler, attributes)) is not None:
        timestamp_ms, faces = analysed
        job.frames_analysed += 1
        if job.kind == "CelebrityRecognition":
            found = await services.compute(_celebrities, services, faces, timestamp_ms, info.width, info.height)
            results.extend(found)
            continue
        for face, index in zip(faces, tracker.update(timestamp_ms, faces), strict=True):
            detail = face_detail(face, info.width, info.height, attributes)
            if collection is None:
                results.append({"Timestamp": timestamp_ms, "Face": detail})
                continue
            matches = await services.compute(functools.partial(_search, services, collection, face, threshold))
            if matches:
                person = {"Index": index, "BoundingBox": detail["BoundingBox"], "Face": detail}
                results.append({"Timestamp": timestamp_ms, "Person": person, "FaceMatches": matches})
    return results


async def run_job(services: Services, job: VideoJob) -> None:
    """Run ``job`` to SUCCEEDED or FAILED and save it; a server shutting down leaves it IN_PROGRESS on disk."""
    store = services.video_jobs
    target = store.scratch / f"{job.job_id}.video"
    sampler: FrameSampler | None = None
    try:
        await services.run_io(download, services, job.request["Video"]["S3Object"], target)
        sampler = await services.compute(FrameSampler, target)
        info = sampler.info
        job.metadata = info.metadata()
        results = await _results(services, job, sampler)
        job.results = results
        job.status = SUCCEEDED
    except asyncio.CancelledError:
        raise
    except UnsupportedVideo as exc:
        job.status, job.status_message = FAILED, str(exc)
    except RekognitionError as exc:
        job.status, job.status_message = FAILED, exc.message
    except CollectionNotFoundError as exc:
        job.status, job.status_message = FAILED, f"The collection id: {exc.args[0]} does not exist"
    except Exception:
        if store.closing:
            return  # the pools are shutting down under us: the next server runs the job again
        log.exception("video job %s failed", job.job_id)
        job.status, job.status_message = FAILED, "Internal server error"
    finally:
        if sampler is not None:
            sampler.close()
        target.unlink(missing_ok=True)
    await services.run_io(store.save, job.to_json())
