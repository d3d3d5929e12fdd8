"""Users in the producer's outputs: the table's summary, CSV rows, annotated faces and the enrolment's steps."""

from __future__ import annotations

from typing import Any

from PIL import Image

from producer import people
from producer.cli.show.annotate import MATCH, NO_MATCH, annotate, pixel_box
from producer.cli.show.export import COLUMNS, rows
from producer.cli.show.render import summary
from producer.contract import JobError
from tests.unit.test_annotate import BOX, edge_pixels
from tests.unit.test_export import envelope

FOUND = {
    "UserMatches": [
        {"Similarity": 97.25, "User": {"UserId": "grace", "UserStatus": "ACTIVE"}},
        {"Similarity": 81.0, "User": {"UserId": "ada", "UserStatus": "ACTIVE"}},
    ],
    "SearchedFace": {"FaceDetail": {"BoundingBox": BOX, "Confidence": 99.0}},
    "UnsearchedFaces": [],
    "FaceModelVersion": "7.0",
}
F1, F2 = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"
UNKNOWN = {**FOUND, "UserMatches": []}
NO_FACE = {"UserMatches": [], "UnsearchedFaces": [], "FaceModelVersion": "7.0"}


def test_identify_results_read_as_a_person_or_unknown() -> None:
    assert summary(envelope("SearchUsersByImage", FOUND)) == "grace 97.2"
    assert summary(envelope("SearchUsersByImage", UNKNOWN)) == "unknown"
    assert summary(envelope("SearchUsersByImage", NO_FACE)) == "no face found"
    assert people.identity(envelope("SearchUsersByImage", FOUND)) == ("grace", 97.25)
    assert people.identity(envelope("SearchUsersByImage", UNKNOWN)) == ("unknown", None)
    assert people.identity(envelope("SearchUsersByImage", NO_FACE)) == (None, None)
    assert summary(envelope("ListUsers", {"Users": [{"UserId": "a", "UserStatus": "CREATED"}]})) == "1 users"
    associated = {"AssociatedFaces": [{"FaceId": F1}], "UnsuccessfulFaceAssociations": [{}], "UserStatus": "ACTIVE"}
    assert summary(envelope("AssociateFaces", associated)) == "associated 1 face(s), 1 left out; user ACTIVE"
    assert summary(envelope("CreateUser", {})).startswith("created")


def test_identify_rows_carry_user_and_similarity_per_match() -> None:
    found = rows(envelope("SearchUsersByImage", FOUND))
    assert [(r["user_id"], r["similarity"], r["face_index"]) for r in found] == [("grace", 97.25, 0), ("ada", 81.0, 1)]
    assert found[0]["bbox_width"] == BOX["Width"]
    [unknown] = rows(envelope("SearchUsersByImage", UNKNOWN))
    assert "user_id" not in unknown and unknown["confidence"] == 99.0
    [nothing] = rows(envelope("SearchUsersByImage", NO_FACE))
    assert "face_index" not in nothing
    listed = rows(envelope("ListUsers", {"Users": [{"UserId": "a"}, {"UserId": "b"}]}))
    assert [r["user_id"] for r in listed] == ["a", "b"]
    for row in found + listed:
        assert set(row) <= set(COLUMNS)


def test_identified_faces_are_drawn_green_unknown_red() -> None:
    grey = Image.new("RGB", (400, 300), (128, 128, 128))
    assert set(edge_pixels(annotate(grey.copy(), envelope("SearchUsersByImage", FOUND)), BOX)) == {MATCH}
    assert set(edge_pixels(annotate(grey.copy(), envelope("SearchUsersByImage", UNKNOWN)), BOX)) == {NO_MATCH}
    left, top, right, bottom = pixel_box(BOX, grey.size)
    assert right > left and bottom > top


def test_enrolment_steps() -> None:
    enrolment = people.Enrolment("grace")
    indexed: dict[str, Any] = {
        "a.jpg": envelope("IndexFaces", {"FaceRecords": [{"Face": {"FaceId": F1}}], "UnindexedFaces": []}),
        "b.jpg": envelope("IndexFaces", {"FaceRecords": [{"Face": {"FaceId": F2}}], "UnindexedFaces": []}),
        "c.jpg": envelope("IndexFaces", {"FaceRecords": [], "UnindexedFaces": [{"Reasons": ["LOW_SHARPNESS"]}]}),
        "d.jpg": envelope(
            "IndexFaces", None, JobError(code="InvalidImageFormatException", message="no", retryable=False)
        ),
        "e.jpg": None,
    }
    people.read_indexed(enrolment, indexed)
    assert enrolment.faces == {F1: "a.jpg", F2: "b.jpg"}
    assert enrolment.left_out["c.jpg"] == "face not indexed: LOW_SHARPNESS"
    assert enrolment.left_out["d.jpg"].startswith("InvalidImageFormatException")
    assert "did not finish" in enrolment.left_out["e.jpg"]
    [job] = people.association_jobs(enrolment, "c", 75.0)
    assert job.job.request()["FaceIds"] == [F1, F2]  # type: ignore[union-attr]
    refused = {"FaceId": F2, "UserId": "grace", "Confidence": 12.5, "Reasons": ["LOW_MATCH_CONFIDENCE"]}
    response = {
        "AssociatedFaces": [{"FaceId": F1}],
        "UnsuccessfulFaceAssociations": [refused],
        "UserStatus": "ACTIVE",
    }
    people.read_associated(enrolment, envelope("AssociateFaces", response), [F1, F2])
    assert enrolment.associated == {"a.jpg": F1}
    assert enrolment.left_out["b.jpg"] == "too unlike the person's other faces (similarity 12.5)"
    assert people.stray_faces(enrolment) == [F2]
    conflict = envelope("CreateUser", None, JobError(code="ConflictException", message="exists", retryable=False))
    assert people.user_created(conflict) is None
    denied = envelope("CreateUser", None, JobError(code="AccessDeniedException", message="no", retryable=False))
    assert people.user_created(denied) == "AccessDeniedException: no"
