"""Annotated pictures: boxes land where the envelope says, on the photo as a person sees it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from producer.cli.show.annotate import (
    COMPARE_HEIGHT_PX,
    FACE,
    LANDMARK,
    MATCH,
    NO_MATCH,
    SOURCE,
    Face,
    annotate,
    compare_picture,
    describe_face,
    draw_faces,
    load_upright,
    output_name,
    pixel_box,
)
from producer.contract import JobError, JobStatus, ResultEnvelope

BOX = {"Left": 0.25, "Top": 0.2, "Width": 0.5, "Height": 0.4}


def envelope(operation: str, response: dict[str, Any] | None, error: JobError | None = None) -> ResultEnvelope:
    now = datetime.now(UTC)
    status = JobStatus.FAILED if error else JobStatus.SUCCEEDED
    return ResultEnvelope(
        job_id="j1", operation=operation, status=status, response=response, error=error, started_at=now, finished_at=now
    )


def edge_pixels(img: Image.Image, box: dict[str, float]) -> list[Any]:
    """The pixels along the middle third of the box's left and bottom edges (labels sit on the top edge)."""
    left, top, right, bottom = pixel_box(box, img.size)
    ys = range(top + (bottom - top) // 3, bottom - (bottom - top) // 3)
    xs = range(left + (right - left) // 3, right - (right - left) // 3)
    return [img.getpixel((left, y)) for y in ys] + [img.getpixel((x, bottom)) for x in xs]


def test_a_box_is_drawn_at_the_envelope_coordinates_and_nowhere_else() -> None:
    grey = Image.new("RGB", (400, 300), (128, 128, 128))
    out = annotate(grey, envelope("DetectFaces", {"FaceDetails": [{"BoundingBox": BOX, "Confidence": 99.0}]}))
    assert set(edge_pixels(out, BOX)) == {FACE}
    # The middle of the face is untouched, and so is a corner far from the box
    assert out.getpixel((200, 150)) == (128, 128, 128)
    assert out.getpixel((5, 295)) == (128, 128, 128)


def test_landmarks_are_dots_at_their_ratios() -> None:
    grey = Image.new("RGB", (400, 300), (128, 128, 128))
    detail = {"BoundingBox": BOX, "Landmarks": [{"Type": "nose", "X": 0.5, "Y": 0.4}]}
    out = annotate(grey, envelope("DetectFaces", {"FaceDetails": [detail]}))
    assert out.getpixel((200, 120)) == LANDMARK


def test_a_full_landmark_set_draws_the_outline_between_its_points() -> None:
    # Given the mouth's four landmarks, as DetectFaces with ALL returns them
    grey = Image.new("RGB", (400, 300), (128, 128, 128))
    mouth = {"mouthLeft": (0.4, 0.5), "mouthUp": (0.5, 0.45), "mouthRight": (0.6, 0.5), "mouthDown": (0.5, 0.55)}
    detail = {"BoundingBox": BOX, "Landmarks": [{"Type": k, "X": x, "Y": y} for k, (x, y) in mouth.items()]}
    out = annotate(grey, envelope("DetectFaces", {"FaceDetails": [detail]}))
    # Then the line from the left corner to the upper lip is drawn at its midpoint, and the mouth's inside is not
    assert LANDMARK in {out.getpixel((180 + dx, 142 + dy)) for dx in (-1, 0, 1) for dy in (-1, 0, 1)}
    assert out.getpixel((200, 150)) == (128, 128, 128)


def test_a_photo_without_faces_gets_a_banner_and_a_failure_names_its_code() -> None:
    grey = Image.new("RGB", (400, 300), (128, 128, 128))
    empty = annotate(grey, envelope("DetectFaces", {"FaceDetails": []}))
    failed = annotate(grey, envelope("DetectFaces", None, JobError(code="X", message="m", retryable=False)))
    for out in (empty, failed):
        assert out.getpixel((1, 1)) == NO_MATCH


@pytest.mark.parametrize(
    ("detail", "label"),
    [
        (
            {
                "Emotions": [{"Type": "CALM", "Confidence": 20.0}, {"Type": "HAPPY", "Confidence": 75.0}],
                "AgeRange": {"Low": 25, "High": 33},
                "Gender": {"Value": "Female", "Confidence": 99.0},
            },
            "happy · age 25-33 · female",
        ),
        ({"Confidence": 99.4}, "99%"),
        (
            {
                "Emotions": [{"Type": "HAPPY", "Confidence": 99.0}],
                "Smile": {"Value": True, "Confidence": 95.0},
                "EyesOpen": {"Value": False, "Confidence": 80.0},
                "MouthOpen": {"Value": True, "Confidence": 90.0},
            },
            "happy · smiling · eyes closed · mouth open",
        ),
        (
            {"Smile": {"Value": False, "Confidence": 95.0}, "EyesOpen": {"Value": True, "Confidence": 90.0}},
            "",
        ),
        (
            {
                "Emotions": [{"Type": "CALM", "Confidence": 90.0}],
                "Eyeglasses": {"Value": True, "Confidence": 97.0},
                "Sunglasses": {"Value": False, "Confidence": 99.0},
                "Beard": {"Value": True, "Confidence": 80.0},
                "Mustache": {"Value": True, "Confidence": 70.0},
                "FaceOccluded": {"Value": True, "Confidence": 60.0},
                "AgeRange": {"Low": 40, "High": 52},
                "Gender": {"Value": "Male", "Confidence": 99.0},
            },
            "calm · glasses · beard · mustache · occluded · age 40-52 · male",
        ),
        (
            # Sunglasses are glasses too (Eyeglasses true as well): the label names the darker of the two once.
            {"Eyeglasses": {"Value": True, "Confidence": 99.0}, "Sunglasses": {"Value": True, "Confidence": 98.0}},
            "sunglasses",
        ),
        (
            {
                "Eyeglasses": {"Value": False, "Confidence": 99.0},
                "Sunglasses": {"Value": False, "Confidence": 99.0},
                "Beard": {"Value": False, "Confidence": 99.0},
                "Mustache": {"Value": False, "Confidence": 99.0},
                "FaceOccluded": {"Value": False, "Confidence": 95.0},
            },
            "",
        ),
    ],
)
def test_labels_say_emotion_states_eyewear_facial_hair_occlusion_age_gender_or_the_confidence(
    detail: dict[str, Any], label: str
) -> None:
    assert describe_face(detail) == label


def test_search_boxes_are_green_with_a_match_and_red_without() -> None:
    grey = Image.new("RGB", (400, 300), (128, 128, 128))
    match = {"Similarity": 99.0, "Face": {"FaceId": "f" * 8, "ExternalImageId": "grace.jpg"}}
    found = annotate(grey, envelope("SearchFacesByImage", {"SearchedFaceBoundingBox": BOX, "FaceMatches": [match]}))
    missed = annotate(grey, envelope("SearchFacesByImage", {"SearchedFaceBoundingBox": BOX, "FaceMatches": []}))
    assert set(edge_pixels(found, BOX)) == {MATCH}
    assert set(edge_pixels(missed, BOX)) == {NO_MATCH}


def test_exif_orientation_is_applied_before_drawing(tmp_path: Path) -> None:
    # Given a 200×100 photo stored sideways: pixels 100 wide and 200 high, EXIF orientation 6 (turn 90° clockwise)
    upright = Image.new("RGB", (200, 100), (0, 0, 255))
    upright.paste((255, 255, 255), (0, 0, 100, 100))  # the left half is white
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "sideways.jpg"
    stored.save(path, "JPEG", exif=exif, quality=95)
    # When it is loaded for annotation
    img = load_upright(path, min_side_px=1)
    # Then it is the upright photo: wide, white on the left, blue on the right
    assert img.size == (200, 100)
    assert min(img.getpixel((20, 50))) > 230  # type: ignore[arg-type]
    assert img.getpixel((180, 50))[2] > 230 and img.getpixel((180, 50))[0] < 30  # type: ignore[index]


def test_transparent_pixels_become_white_and_small_photos_are_enlarged(tmp_path: Path) -> None:
    path = tmp_path / "alpha.png"
    Image.new("RGBA", (80, 40), (255, 0, 0, 0)).save(path)
    img = load_upright(path)
    assert img.mode == "RGB" and img.size == (800, 400)
    assert img.getpixel((10, 10)) == (255, 255, 255)


def test_compare_draws_the_source_face_left_and_the_match_right() -> None:
    source = Image.new("RGB", (300, 300), (128, 128, 128))
    target = Image.new("RGB", (600, 300), (128, 128, 128))
    response = {
        "SourceImageFace": {"BoundingBox": BOX, "Confidence": 99.0},
        "FaceMatches": [
            {"Similarity": 97.5, "Face": {"BoundingBox": {"Left": 0.6, "Top": 0.3, "Width": 0.2, "Height": 0.4}}}
        ],
        "UnmatchedFaces": [{"BoundingBox": {"Left": 0.1, "Top": 0.3, "Width": 0.2, "Height": 0.4}}],
    }
    out = compare_picture(source, target, envelope("CompareFaces", response))
    # Both photos scaled to one height below the title band: the source takes the left third
    split = out.width * 300 // 900
    photos = range(out.height - COMPARE_HEIGHT_PX, out.height, 3)
    colours_left = {out.getpixel((x, y)) for x in range(0, split) for y in photos}
    colours_right = {out.getpixel((x, y)) for x in range(split, out.width) for y in photos}
    assert SOURCE in colours_left and MATCH not in colours_left
    assert MATCH in colours_right and NO_MATCH in colours_right and SOURCE not in colours_right


def test_draw_faces_leaves_the_input_untouched() -> None:
    grey = Image.new("RGB", (100, 100), (128, 128, 128))
    draw_faces(grey, [Face(BOX, FACE, "1")])
    assert grey.getcolors() == [(100 * 100, (128, 128, 128))]


@pytest.mark.parametrize(
    ("ref", "common", "name"),
    [
        ("/photos/sub/a.jpg", "/photos", "sub/a.jpg"),
        ("/photos/b.webp", "/photos", "b.webp.png"),
        ("s3://bucket/people/c.png", None, "bucket/people/c.png"),
        ("s3://bucket/d.jpg?versionId=3", None, "bucket/d.jpg"),
    ],
)
def test_pictures_keep_the_layout_of_their_inputs(ref: str, common: str | None, name: str) -> None:
    assert output_name(ref, common) == Path(name)
