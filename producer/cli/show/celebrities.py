"""The roll of a celebrities batch: who was seen in which photo, how sure, and how many faces were nobody known.

Printed on stderr after the batch summary, like the summary itself, so ``--format jsonl`` keeps stdout pure data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from rich.table import Table
from rich.text import Text

from producer import celebrities
from producer.contract import JobStatus, Operation, ResultEnvelope


@dataclass
class CelebrityRoll:
    """Collects the sightings of a batch's RecognizeCelebrities results as they arrive."""

    seen: dict[tuple[str, str], list[tuple[str, float]]] = field(default_factory=dict)
    """(name, Id) → [(photo, MatchConfidence)], in arrival order."""
    photos: int = 0
    """Photos answered (failed jobs are counted in the batch summary, not here)."""
    photos_with_celebrities: int = 0
    unrecognized: int = 0
    photos_with_strangers: int = 0

    def add(self, envelope: ResultEnvelope) -> None:
        """Count one result; other operations and failed jobs are left out."""
        if envelope.operation != Operation.RECOGNIZE_CELEBRITIES or envelope.status is not JobStatus.SUCCEEDED:
            return
        photo = envelope.label or envelope.job_id
        self.photos += 1
        found = celebrities.sightings(envelope)
        self.photos_with_celebrities += bool(found)
        for seen in found:
            self.seen.setdefault((seen.name, seen.id), []).append((photo, seen.match_confidence))
        strangers = len(celebrities.unrecognized(envelope))
        self.unrecognized += strangers
        self.photos_with_strangers += bool(strangers)

    def table(self) -> Table:
        """One row per sighting: the celebrity, their Id, the photo and the MatchConfidence, by name."""
        photos = [photo for sightings in self.seen.values() for photo, _ in sightings]
        common = _common_folder(photos)
        table = Table(
            "celebrity", "Id", "photo", "match", title="celebrities", title_justify="left", header_style="bold"
        )
        for (name, celebrity_id), sightings in sorted(self.seen.items()):
            for photo, confidence in sorted(sightings, key=lambda pair: -pair[1]):
                shown = os.path.relpath(photo, common) if common else photo
                table.add_row(Text(name), Text(celebrity_id), Text(shown), f"{confidence:.1f}")
        return table

    def closing_line(self) -> str:
        """How many people were recognised in how many photos, and how many faces were nobody known."""
        people = len(self.seen)
        who = f"{people} {'celebrity' if people == 1 else 'celebrities'} recognized"
        return (
            f"{who} in {self.photos_with_celebrities} of {self.photos} photo(s); "
            f"{self.unrecognized} unrecognized face(s) in {self.photos_with_strangers} photo(s)"
        )


def _common_folder(photos: list[str]) -> str:
    """The folder local photos share, so long absolute paths show as names; '' when there is none to strip."""
    local = [photo for photo in photos if os.path.isabs(photo)]
    if len(local) != len(photos) or not local:
        return ""
    return os.path.dirname(local[0]) if len(set(local)) == 1 else os.path.commonpath(local)
