"""Result envelopes on the way out: a table for people, JSON lines or CSV for programs.

Data goes to stdout (or ``--output FILE``) and nothing else does: JSON lines and CSV rows are written as plain text,
one flush per envelope so a pipe sees each result when it lands, never through rich (whose markup and emoji codes
would rewrite a label like ``:smile:.jpg``).
"""

from __future__ import annotations

import os
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from producer import celebrities
from producer.cli.show.export import CsvWriter
from producer.contract import JobStatus, ResultEnvelope
from producer.people import UNKNOWN

FORMATS = ("table", "jsonl", "csv")


def summary(envelope: ResultEnvelope) -> str:
    """One cell of rich markup: the result of a job at a glance."""
    if envelope.status is JobStatus.FAILED:
        assert envelope.error is not None
        return f"[red]{escape(envelope.error.code)}[/]: {escape(envelope.error.message)}"
    response = envelope.response or {}
    if envelope.operation.endswith("User") or "UserMatches" in response or "Users" in response:
        return _user_summary(envelope, response)
    if "AssociatedFaces" in response or "DisassociatedFaces" in response:
        return _association_summary(response)
    if "CelebrityFaces" in response:
        return _celebrity_summary(envelope)
    if "FaceMatches" in response and "SourceImageFace" in response:
        sims = [f"{m['Similarity']:.1f}" for m in response["FaceMatches"]]
        return f"match {', '.join(sims)}" if sims else "no match"
    if "FaceMatches" in response:
        return (
            ", ".join(
                f"{escape(m['Face'].get('ExternalImageId', m['Face']['FaceId']))} {m['Similarity']:.1f}"
                for m in response["FaceMatches"]
            )
            or "no match"
        )
    if "CollectionArn" in response:
        return escape(str(response["CollectionArn"]))
    if "Faces" in response:
        return f"{len(response['Faces'])} faces"
    return f"{envelope.face_count()} face(s)"


def _user_summary(envelope: ResultEnvelope, response: dict[str, Any]) -> str:
    if "UserMatches" in response:
        matches = response["UserMatches"]
        if matches:
            best = matches[0]
            return f"{escape(best['User']['UserId'])} {best['Similarity']:.1f}"
        return UNKNOWN if "SearchedFace" in response or "SearchedUser" in response else "no face found"
    if "Users" in response:
        return f"{len(response['Users'])} users"
    done = {"CreateUser": "created", "DeleteUser": "deleted"}.get(envelope.operation, "done")
    return f"{done} {escape(envelope.label or '')}".strip()


def _celebrity_summary(envelope: ResultEnvelope) -> str:
    """Each celebrity with their MatchConfidence, then how many faces are nobody known."""
    named = ", ".join(f"{escape(s.name)} {s.match_confidence:.1f}" for s in celebrities.sightings(envelope))
    strangers = len(celebrities.unrecognized(envelope))
    if not named and not strangers:
        return "no face found"
    return f"{named or 'nobody recognized'}" + (f" · {strangers} unrecognized" if strangers else "")


def _association_summary(response: dict[str, Any]) -> str:
    verb, member, refused = (
        ("associated", "AssociatedFaces", "UnsuccessfulFaceAssociations")
        if "AssociatedFaces" in response
        else ("disassociated", "DisassociatedFaces", "UnsuccessfulFaceDisassociations")
    )
    text = f"{verb} {len(response[member])} face(s)"
    if response.get(refused):
        text += f", {len(response[refused])} left out"
    return f"{text}; user {response.get('UserStatus', '?')}"


class Renderer:
    """Prints envelopes as a table at the end, or as JSON lines or CSV rows as they arrive."""

    def __init__(self, fmt: str, stream: IO[str]) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}")
        self.fmt = fmt
        self.stream = stream
        self.rows: list[ResultEnvelope] = []
        self._csv = CsvWriter(stream) if fmt == "csv" else None

    def add(self, envelope: ResultEnvelope) -> None:
        """Render or keep one envelope."""
        if self.fmt == "jsonl":
            self.stream.write(envelope.model_dump_json(exclude_none=True) + "\n")
            self.stream.flush()
        elif self._csv is not None:
            self._csv.write(envelope)
            self.stream.flush()
        else:
            self.rows.append(envelope)

    def finish(self) -> None:
        """Print the table, if that is the format."""
        if self.fmt != "table" or not self.rows:
            return
        console = Console(file=self.stream, soft_wrap=True)
        labels = [e.label or e.job_id for e in self.rows]
        # Long absolute paths hide the file name: show them relative to the folder they share.
        common = os.path.commonpath(labels) if len(labels) > 1 and all(os.path.isabs(x) for x in labels) else ""
        if common in labels:
            common = os.path.dirname(common)
        table = Table(header_style="bold")
        table.add_column("photo", overflow="fold")
        table.add_column("operation")
        table.add_column("result", overflow="fold")
        table.add_column("ms", justify="right")
        for label, e in sorted(zip(labels, self.rows, strict=True), key=lambda pair: pair[0]):
            shown = os.path.relpath(label, common) if common else label
            table.add_row(Text(shown), e.operation, summary(e), f"{e.rekognition_ms:.0f}")
        if common:
            console.print(f"in {common}", highlight=False, markup=False)
        console.print(table)
