"""--annotate: pictures with the faces drawn where the worker found them, for analyze, search and compare."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from producer.cli.show.annotate import FACE, MATCH, SOURCE, annotate, describe_face, load_upright, pixel_box
from producer.contract import ResultEnvelope
from testmedia.photos import grace_hopper
from tests.fixtures.aws import s3_client
from tests.fixtures.workers import WorkerProcess
from tests.integration.clirun import blocked_modules, cli_env, json_lines, run_cli

pytestmark = pytest.mark.timeout(300)


def near(pixel: Any, colour: tuple[int, int, int], tolerance: int = 60) -> bool:
    return sum(abs(int(a) - b) for a, b in zip(pixel, colour, strict=True)) <= tolerance


def share_on_box_edge(picture: Path, box: dict[str, float], colour: tuple[int, int, int]) -> float:
    """The share of pixels along the middle of the box's left and bottom edges that have ``colour`` (JPEG-close)."""
    with Image.open(picture) as stored:
        img = stored.convert("RGB")
        left, top, right, bottom = pixel_box(box, img.size)
        ys = range(top + (bottom - top) // 3, bottom - (bottom - top) // 3)
        xs = range(left + (right - left) // 3, right - (right - left) // 3)
        pixels = [img.getpixel((left + 1, y)) for y in ys] + [img.getpixel((x, bottom - 1)) for x in xs]
    return sum(near(p, colour) for p in pixels) / len(pixels)


def sideways_copy(path: Path) -> Path:
    """Grace Hopper's pixels turned a quarter left, with EXIF orientation 6 saying 'turn right to view'."""
    with Image.open(grace_hopper()) as img:
        stored = img.convert("RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, "JPEG", exif=exif, quality=95)
    return path


@pytest.fixture
def env(redis_url: str, worker_queue: str, worker: WorkerProcess, moto_s3_url: str) -> dict[str, str]:
    return cli_env(redis_url, worker_queue, AWS_ENDPOINT_URL_S3=moto_s3_url)


def test_analyze_draws_each_face_on_the_upright_photo(env: dict[str, str], tmp_path: Path) -> None:
    # Given a photo and a sideways-stored copy of it (EXIF orientation), in two folders
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    (photos / "grace.jpg").write_bytes(grace_hopper().read_bytes())
    sideways_copy(photos / "sub" / "sideways.jpg")
    out = tmp_path / "annotated"
    # When they are analysed with --annotate
    done = run_cli("analyze", str(photos), "--annotate", str(out), "--format", "jsonl", env=env)
    assert done.returncode == 0, done.stderr
    assert f"annotated 2 photo(s) in {out}" in done.stderr
    envelopes = {Path(e["label"]).name: e for e in json_lines(done.stdout)}
    # Then each picture keeps its place in the folder layout, is upright (portrait, like the original)...
    for name, picture in (("grace.jpg", out / "grace.jpg"), ("sideways.jpg", out / "sub" / "sideways.jpg")):
        with Image.open(picture) as img:
            assert img.height > img.width, name
        # ...and has the face box drawn exactly where the envelope puts it
        [face] = envelopes[name]["response"]["FaceDetails"]
        assert share_on_box_edge(picture, face["BoundingBox"], FACE) > 0.9, name
    # The sideways copy's box is the same face, so (nearly) the same place
    boxes = [envelopes[n]["response"]["FaceDetails"][0]["BoundingBox"] for n in ("grace.jpg", "sideways.jpg")]
    assert abs(boxes[0]["Left"] - boxes[1]["Left"]) < 0.05 and abs(boxes[0]["Top"] - boxes[1]["Top"]) < 0.05


def test_an_all_analysis_draws_glasses_facial_hair_and_occlusion_beside_the_other_fields(
    env: dict[str, str], tmp_path: Path
) -> None:
    # Given Grace Hopper's portrait (she wears glasses), stored under a .png name so the picture is kept lossless
    photo = tmp_path / "grace.png"
    photo.write_bytes(grace_hopper().read_bytes())
    out = tmp_path / "annotated"
    # When it is analysed with every attribute and --annotate, as make demo does
    done = run_cli("analyze", str(photo), "--attributes", "ALL", "--annotate", str(out), "--format", "jsonl", env=env)
    assert done.returncode == 0, done.stderr
    [line] = json_lines(done.stdout)
    envelope = ResultEnvelope.model_validate(line)
    [detail] = (envelope.response or {})["FaceDetails"]
    # Then the real result's label lists her glasses next to today's fields (age, gender)...
    assert detail["Eyeglasses"]["Value"] is True
    label = describe_face(detail)
    assert "glasses" in label.split(" · ")
    assert "age " in label and str(detail["Gender"]["Value"]).lower() in label
    # ...and that label is what the picture shows: the stored picture is this result drawn, pixel for pixel, and
    # differs from the same result drawn without the five new members
    with Image.open(out / "grace.png") as stored:
        picture = stored.convert("RGB")
    upright = load_upright(photo)
    assert picture.tobytes() == annotate(upright, envelope).tobytes()
    newer = {"Eyeglasses", "Sunglasses", "Beard", "Mustache", "FaceOccluded"}
    older = {key: value for key, value in detail.items() if key not in newer}
    before = envelope.model_copy(update={"response": {**(envelope.response or {}), "FaceDetails": [older]}})
    assert picture.tobytes() != annotate(upright, before).tobytes()


def test_search_draws_the_match_and_compare_draws_both_photos(env: dict[str, str], tmp_path: Path) -> None:
    collection = f"annotate-{uuid.uuid4().hex[:8]}"
    assert run_cli("collection", "create", collection, env=env).returncode == 0
    assert run_cli("collection", "index", collection, str(grace_hopper()), env=env).returncode == 0
    out = tmp_path / "search"
    search = run_cli(
        "collection", "search", collection, str(grace_hopper()), "--annotate", str(out), "--format", "jsonl", env=env
    )
    assert search.returncode == 0, search.stderr
    [envelope] = json_lines(search.stdout)
    assert envelope["response"]["FaceMatches"][0]["Face"]["ExternalImageId"] == "grace_hopper.jpg"
    assert share_on_box_edge(out / "grace_hopper.jpg", envelope["response"]["SearchedFaceBoundingBox"], MATCH) > 0.9

    picture = tmp_path / "compare.png"
    compare = run_cli("compare", str(grace_hopper()), str(grace_hopper()), "--annotate", str(picture), env=env)
    assert compare.returncode == 0, compare.stderr
    with Image.open(picture) as stored:
        img = stored.convert("RGB")
        half = img.width // 2
        left = {img.getpixel((x, y)) for x in range(0, half, 2) for y in range(0, img.height, 2)}
        right = {img.getpixel((x, y)) for x in range(half, img.width, 2) for y in range(0, img.height, 2)}
    assert SOURCE in left and MATCH in right


def test_s3_photos_are_drawn_with_boto3_and_skipped_with_a_note_without(
    env: dict[str, str], moto_s3_url: str, s3_bucket: str, tmp_path: Path
) -> None:
    s3_client(moto_s3_url).put_object(Bucket=s3_bucket, Key="people/grace.jpg", Body=grace_hopper().read_bytes())
    url = f"s3://{s3_bucket}/people/grace.jpg"
    with_boto3 = run_cli("analyze", url, "--annotate", str(tmp_path / "a"), env=env)
    assert with_boto3.returncode == 0, with_boto3.stderr
    assert (tmp_path / "a" / s3_bucket / "people" / "grace.jpg").is_file()
    # A producer-only install: boto3 cannot be imported. The results are the same; the picture is skipped, said once.
    blocked = {**env, "PYTHONPATH": blocked_modules(tmp_path / "blocked", "boto3") + ":" + env["PYTHONPATH"]}
    without = run_cli("analyze", url, "--annotate", str(tmp_path / "b"), env=blocked)
    assert without.returncode == 0, without.stderr
    assert "annotate: skipped 1 photo(s): s3:// photos need boto3 to be fetched here (pip install boto3)" in (
        without.stderr
    )
    assert not (tmp_path / "b").exists()
