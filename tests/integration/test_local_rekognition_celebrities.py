"""RecognizeCelebrities, GetCelebrityInfo and the stored-video celebrity job on local_rekognition, answered from its
celebrity gallery: the public-domain portraits wheels carry, plus the people an operator adds with a command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_rekognition.validation import service_model
from testmedia.photos import astronaut, grace_hopper, shared_images
from testmedia.small_faces import Condition, make_scene, nearest, scenes, shared_portraits, wheel_portraits
from tests.botocore_shapes import assert_output_conforms
from tests.fixtures.aws import ROOT, StartLocalRekognition, rekognition_client, s3_client
from tests.integration.test_local_rekognition_video import every_page, finished
from tests.video_jobs import video_clip_in_s3

HOPPER_URL = "www.wikidata.org/wiki/Q11641"
_COMMAND = [sys.executable, "-m", "local_rekognition", "celebrities"]


def _conforms(operation: str, answer: dict[str, Any]) -> None:
    assert_output_conforms(service_model().operation_model(operation), answer)


def _error_code(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**params)
    code: str = caught.value.response["Error"]["Code"]
    return code


def test_grace_hopper_is_named_in_matplotlibs_portrait(rekognition: Any) -> None:
    answer = rekognition.recognize_celebrities(Image={"Bytes": grace_hopper().read_bytes()})

    _conforms("RecognizeCelebrities", answer)
    assert answer["UnrecognizedFaces"] == []
    [celebrity] = answer["CelebrityFaces"]
    assert celebrity["Name"] == "Grace Hopper"
    assert HOPPER_URL in celebrity["Urls"]
    assert celebrity["KnownGender"] == {"Type": "Female"}
    assert celebrity["MatchConfidence"] >= 80
    box = celebrity["Face"]["BoundingBox"]
    assert 0 < box["Width"] < 1 and 0 < box["Height"] < 1
    assert {landmark["Type"] for landmark in celebrity["Face"]["Landmarks"]} == {
        "eyeLeft",
        "eyeRight",
        "nose",
        "mouthLeft",
        "mouthRight",
    }


def test_in_a_group_photo_the_celebrities_are_named_and_strangers_left_unrecognized(rekognition: Any) -> None:
    # Given a 1280x720 photo of Grace Hopper, Eileen Collins and three strangers (Obama twice, Biden)
    shared_images()
    strangers = [
        portrait for portrait in shared_portraits() if portrait.name in {"obama.jpg", "biden2.jpg", "obama1.jpg"}
    ]
    portraits = [wheel_portraits()[0], *strangers, wheel_portraits()[1]]
    condition = Condition((1280, 720), (90,), blur_sigma=0, motion_px=0, motion_deg=0, roll_deg=0, jpeg_quality=90)
    scene = make_scene("celebrities", portraits, condition, seed=3)

    # When it is sent to RecognizeCelebrities
    answer = rekognition.recognize_celebrities(Image={"Bytes": scene.jpeg})

    # Then Hopper and Collins are named where they stand, and the three strangers are unrecognized faces
    _conforms("RecognizeCelebrities", answer)
    width, height = scene.size
    named = {}
    for celebrity in answer["CelebrityFaces"]:
        box = celebrity["Face"]["BoundingBox"]
        centre = ((box["Left"] + box["Width"] / 2) * width, (box["Top"] + box["Height"] / 2) * height)
        placed = nearest(scene.faces, centre)
        assert placed is not None, celebrity["Name"]
        named[celebrity["Name"]] = placed.person
    assert named == {"Grace Hopper": "hopper", "Eileen Collins": "collins"}
    assert len(answer["UnrecognizedFaces"]) == len(strangers)


def test_get_celebrity_info_answers_what_recognize_celebrities_named(rekognition: Any) -> None:
    recognized = rekognition.recognize_celebrities(Image={"Bytes": astronaut().read_bytes()})
    [collins] = recognized["CelebrityFaces"]

    info = rekognition.get_celebrity_info(Id=collins["Id"])

    _conforms("GetCelebrityInfo", info)
    assert info["Name"] == collins["Name"] == "Eileen Collins"
    assert info["Urls"] == collins["Urls"]
    assert info["KnownGender"] == {"Type": "Female"}
    assert _error_code(rekognition.get_celebrity_info, Id="NoSuchPerson0") == "ResourceNotFoundException"


def test_bad_input_gets_rekognitions_error_codes(rekognition: Any) -> None:
    assert _error_code(rekognition.recognize_celebrities, Image={"Bytes": b"not an image"}) == (
        "InvalidImageFormatException"
    )
    assert _error_code(rekognition.get_celebrity_recognition, JobId="0" * 32) == "ResourceNotFoundException"


def test_an_operator_adds_a_person_with_a_command(
    start_local_rekognition: StartLocalRekognition, tmp_path: Path
) -> None:
    # Given Barack Obama added to a server's gallery from one portrait, with the command
    photos = shared_images()
    data_dir = tmp_path / "data"
    command = _COMMAND
    added = subprocess.run(
        [
            *command,
            "add",
            "--data-dir",
            str(data_dir),
            "--name",
            "Barack Obama",
            "--id",
            "Q76",
            "--url",
            "www.wikidata.org/wiki/Q76",
            "--known-gender",
            "Male",
            str(photos / "obama.jpg"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=180,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    listed = subprocess.run(
        [*command, "list", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    assert "Q76" in listed.stdout and "Barack Obama" in listed.stdout and "Grace Hopper" in listed.stdout

    # When another photo of him is sent to a server on that data dir
    server = start_local_rekognition(data_dir)
    client = rekognition_client(server.url, retries={"mode": "standard", "max_attempts": 1})
    answer = client.recognize_celebrities(Image={"Bytes": (photos / "obama2.jpg").read_bytes()})

    # Then he is named, with the id and URL he was given
    _conforms("RecognizeCelebrities", answer)
    names = {celebrity["Name"]: celebrity for celebrity in answer["CelebrityFaces"]}
    assert names["Barack Obama"]["Id"] == "Q76"
    assert names["Barack Obama"]["Urls"] == ["www.wikidata.org/wiki/Q76"]
    assert client.get_celebrity_info(Id="Q76")["Name"] == "Barack Obama"


def test_a_portrait_without_a_face_is_refused_by_the_command(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("RGB", (200, 200), (128, 128, 128)).save(blank)
    completed = subprocess.run(
        [*_COMMAND, "add", "--data-dir", str(tmp_path / "d"), "--name", "Nobody", str(blank)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=180,
        check=False,
    )
    assert completed.returncode != 0
    assert "no face" in completed.stderr


def test_celebrity_recognition_in_a_stored_video(rekognition: Any, moto_s3_url: str, s3_bucket: str) -> None:
    # Given a one-second clip panning over Grace Hopper's portrait in S3
    video = video_clip_in_s3(s3_client(moto_s3_url), s3_bucket)

    # When a celebrity recognition job runs on it
    job_id = rekognition.start_celebrity_recognition(Video=video, JobTag="hopper-clip")["JobId"]
    answer = finished(rekognition, "get_celebrity_recognition", job_id)

    # Then she is named at sampled timestamps, in time order, and every page conforms
    _conforms("GetCelebrityRecognition", answer)
    assert answer["JobStatus"] == "SUCCEEDED"
    assert answer["JobTag"] == "hopper-clip"
    recognitions = answer["Celebrities"]
    assert len(recognitions) >= 3
    assert {item["Celebrity"]["Name"] for item in recognitions} == {"Grace Hopper"}
    timestamps = [item["Timestamp"] for item in recognitions]
    assert timestamps == sorted(timestamps)
    assert all(item["Celebrity"]["Confidence"] >= 80 for item in recognitions)
    assert every_page(rekognition, "get_celebrity_recognition", "Celebrities", job_id, MaxResults=2) == recognitions
    by_id = rekognition.get_celebrity_recognition(JobId=job_id, SortBy="ID")
    assert [item["Celebrity"]["Id"] for item in by_id["Celebrities"]] == sorted(
        item["Celebrity"]["Id"] for item in recognitions
    )


def test_celebrities_are_named_among_small_faces_in_motion(rekognition: Any) -> None:
    # Given the small-face scenes (faces 40-60 px wide, blurred, streaked, compressed) with Hopper and Collins
    # among Obama and Biden
    shared_images()
    for scene in scenes(wheel_portraits() + shared_portraits(), "celebrities-small"):
        # When each is sent to RecognizeCelebrities
        answer = rekognition.recognize_celebrities(Image={"Bytes": scene.jpeg})
        _conforms("RecognizeCelebrities", answer)
        # Then every Hopper and Collins face is named, and no one else
        width, height = scene.size
        named = []
        for celebrity in answer["CelebrityFaces"]:
            box = celebrity["Face"]["BoundingBox"]
            placed = nearest(
                scene.faces, ((box["Left"] + box["Width"] / 2) * width, (box["Top"] + box["Height"] / 2) * height)
            )
            assert placed is not None
            named.append((placed.portrait, celebrity["Name"]))
        expected = {"hopper": "Grace Hopper", "collins": "Eileen Collins"}
        assert sorted(named) == sorted(
            (face.portrait, expected[face.person]) for face in scene.faces if face.person in expected
        ), scene.name
        assert len(answer["UnrecognizedFaces"]) == sum(face.person not in expected for face in scene.faces)
