"""Video jobs on disk: one JSON file per job under ``<data_dir>/video_jobs/``, written whole and swapped in.

A record holds what the job was asked (so it can be re-run), its status and, once SUCCEEDED, its results. A
server that stops mid-job leaves the record IN_PROGRESS; the next server runs the job again from the start
(the video is still in S3), so a JobId handed out before a restart still ends SUCCEEDED or FAILED.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IN_PROGRESS, SUCCEEDED, FAILED = "IN_PROGRESS", "SUCCEEDED", "FAILED"


@dataclass
class VideoJob:
    """One StartFaceDetection or StartFaceSearch job; mutated only on the server's event loop."""

    job_id: str
    kind: str
    """"FaceDetection" or "FaceSearch": which Get* operation reads it."""
    request: dict[str, Any]
    status: str = IN_PROGRESS
    status_message: str | None = None
    metadata: dict[str, Any] | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    frames_analysed: int = 0
    created_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        """The record as stored."""
        return {
            "JobId": self.job_id,
            "Kind": self.kind,
            "Request": self.request,
            "Status": self.status,
            "StatusMessage": self.status_message,
            "VideoMetadata": self.metadata,
            "Results": self.results,
            "FramesAnalysed": self.frames_analysed,
            "CreatedAt": self.created_at,
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> VideoJob:
        """Read a record written by to_json."""
        return cls(
            job_id=record["JobId"],
            kind=record["Kind"],
            request=record["Request"],
            status=record["Status"],
            status_message=record.get("StatusMessage"),
            metadata=record.get("VideoMetadata"),
            results=record.get("Results") or [],
            frames_analysed=record.get("FramesAnalysed", 0),
            created_at=record.get("CreatedAt", time.time()),
        )


class VideoJobStore:
    """Every video job this server knows, in memory and on disk."""

    def __init__(self, data_dir: Path) -> None:
        # Created on the first job: a server that never runs one leaves its data dir as it was.
        self.directory = data_dir / "video_jobs"
        self.scratch = self.directory / "scratch"
        self._lock = threading.Lock()
        self.closing = False
        """Set when the server stops: jobs cut short then stay IN_PROGRESS for the next server."""
        self.tasks: set[Any] = set()
        """The asyncio tasks running jobs, held so the loop does not collect them mid-run."""
        self.jobs: dict[str, VideoJob] = {}
        for path in sorted(self.directory.glob("*.json")):
            try:
                job = VideoJob.from_json(json.loads(path.read_text("utf-8")))
            except (ValueError, KeyError, TypeError):
                continue  # a file someone else put there; never one of ours (they are swapped in whole)
            self.jobs[job.job_id] = job
        for leftover in self.scratch.glob("*"):
            leftover.unlink(missing_ok=True)

    def new(self, kind: str, request: dict[str, Any]) -> VideoJob:
        """A fresh IN_PROGRESS job (not yet saved)."""
        job = VideoJob(job_id=uuid.uuid4().hex, kind=kind, request=request)
        self.jobs[job.job_id] = job
        return job

    def by_token(self, kind: str, token: str) -> VideoJob | None:
        """The job a ClientRequestToken started for this kind of job, if any."""
        for job in self.jobs.values():
            if job.kind == kind and job.request.get("ClientRequestToken") == token:
                return job
        return None

    def in_progress(self) -> list[VideoJob]:
        """Jobs not finished yet."""
        return [job for job in self.jobs.values() if job.status == IN_PROGRESS]

    def save(self, record: dict[str, Any]) -> None:
        """Write one job record atomically (blocking: call from the I/O pool)."""
        with self._lock:
            self.scratch.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(record, handle, separators=(",", ":"))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp, self.directory / f"{record['JobId']}.json")
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
