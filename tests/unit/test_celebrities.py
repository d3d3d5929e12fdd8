"""Celebrities in the producer's outputs: who is where, the table's summary, the batch roll, CSV rows, pictures."""

from __future__ import annotations

from PIL import Image

from producer import celebrities, jobs
from producer.cli.show.annotate import MATCH, NO_MATCH, annotate
from producer.cli.show.celebrities import CelebrityRoll
from producer.cli.show.export import COLUMNS, rows
from producer.cli.show.progress import Tally
from producer.cli.show.render import summary
from producer.contract import JobError, Operation, RecognizeCelebritiesJob, parse_job
from tests.unit.test_annotate import BOX, edge_pixels
from tests.unit.test_export import envelope

OTHER_BOX = {"Left": 0.05, "Top": 0.1, "Width": 0.15, "Height": 0.2}
GRACE = {
    "Urls": ["www.wikidata.org/wiki/Q11641"],
    "Name": "Grace Hopper",
    "Id": "Q11641",
    "KnownGender": {"Type": "Female"},
    "MatchConfidence": 99.25,
    "Face": {"BoundingBox": BOX, "Confidence": 99.9, "Landmarks": [{"Type": "nose", "X": 0.5, "Y": 0.4}]},
}
STRANGER = {"BoundingBox": OTHER_BOX, "Confidence": 98.0}
BOTH = {"CelebrityFaces": [GRACE], "UnrecognizedFaces": [STRANGER]}
NOBODY = {"CelebrityFaces": [], "UnrecognizedFaces": [STRANGER]}
EMPTY = {"CelebrityFaces": [], "UnrecognizedFaces": []}


def test_the_job_sends_only_the_image_and_is_a_job_of_its_own_operation() -> None:
    prepared = jobs.recognize_celebrities(b"\xff\xd8jpeg", label="party.jpg")
    job = prepared.job
    assert isinstance(job, RecognizeCelebritiesJob) and job.operation is Operation.RECOGNIZE_CELEBRITIES
    assert job.request() == {} and job.label == "party.jpg"
    assert list(prepared.blobs.values()) == [b"\xff\xd8jpeg"]
    assert parse_job(job.model_dump(mode="json")) == job


def test_who_is_where_reads_the_celebrities_and_counts_the_rest() -> None:
    [seen] = celebrities.sightings(envelope("RecognizeCelebrities", BOTH))
    assert (seen.name, seen.id, seen.match_confidence, seen.box) == ("Grace Hopper", "Q11641", 99.25, BOX)
    assert seen.urls == ("www.wikidata.org/wiki/Q11641",) and seen.known_gender == "Female"
    assert celebrities.unrecognized(envelope("RecognizeCelebrities", BOTH)) == [STRANGER]
    failed = envelope("RecognizeCelebrities", None, JobError(code="X", message="y", retryable=False))
    assert celebrities.sightings(failed) == [] and celebrities.unrecognized(failed) == []
    assert envelope("RecognizeCelebrities", BOTH).face_count() == 2


def test_the_table_cell_names_each_celebrity_with_confidence_and_counts_strangers() -> None:
    assert summary(envelope("RecognizeCelebrities", BOTH)) == "Grace Hopper 99.2 · 1 unrecognized"
    assert summary(envelope("RecognizeCelebrities", NOBODY)) == "nobody recognized · 1 unrecognized"
    assert summary(envelope("RecognizeCelebrities", EMPTY)) == "no face found"


def test_the_batch_roll_says_who_was_seen_in_which_photo() -> None:
    roll = CelebrityRoll()
    first = envelope("RecognizeCelebrities", BOTH).model_copy(update={"label": "/p/a.jpg", "job_id": "a"})
    second = envelope("RecognizeCelebrities", NOBODY).model_copy(update={"label": "/p/b.jpg", "job_id": "b"})
    roll.add(first)
    roll.add(second)
    assert roll.seen == {("Grace Hopper", "Q11641"): [("/p/a.jpg", 99.25)]}
    assert (roll.unrecognized, roll.photos_with_strangers) == (2, 2)
    assert roll.closing_line() == "1 celebrity recognized in 1 of 2 photo(s); 2 unrecognized face(s) in 2 photo(s)"
    tally = Tally()
    tally.add(first)
    tally.add(envelope("RecognizeCelebrities", EMPTY))
    assert (tally.faces, tally.without_face) == (2, 1)


def test_csv_rows_carry_name_id_and_match_confidence() -> None:
    named, stranger = rows(envelope("RecognizeCelebrities", BOTH))
    assert (named["celebrity_name"], named["celebrity_id"], named["match_confidence"]) == (
        "Grace Hopper",
        "Q11641",
        99.25,
    )
    assert named["bbox_width"] == BOX["Width"] and named["confidence"] == 99.9
    assert "celebrity_name" not in stranger and stranger["bbox_width"] == OTHER_BOX["Width"]
    assert (named["face_index"], stranger["face_index"]) == (0, 1)
    assert set(named) <= set(COLUMNS) and set(stranger) <= set(COLUMNS)
    [nothing] = rows(envelope("RecognizeCelebrities", EMPTY))
    assert "face_index" not in nothing


def test_celebrities_are_drawn_green_with_their_names_strangers_red() -> None:
    grey = Image.new("RGB", (400, 300), (128, 128, 128))
    picture = annotate(grey.copy(), envelope("RecognizeCelebrities", BOTH))
    assert set(edge_pixels(picture, BOX)) == {MATCH}
    assert set(edge_pixels(picture, OTHER_BOX)) == {NO_MATCH}
