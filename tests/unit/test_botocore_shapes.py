"""The shape walker flags each kind of violation of a botocore output shape."""

from __future__ import annotations

import botocore.session

from tests.botocore_shapes import shape_problems


def test_the_walker_catches_what_it_should() -> None:
    # The conformance test is only as good as the walker.
    model = botocore.session.get_session().get_service_model("rekognition")
    detect = model.operation_model("DetectFaces").output_shape
    describe = model.operation_model("DescribeCollection").output_shape
    delete = model.operation_model("DeleteFaces").output_shape
    search = model.operation_model("SearchFaces").output_shape
    assert shape_problems({"FaceDetails": []}, detect, wire=True) == []
    cases = [
        ({"FaceDetails": [{"Confidence": 100.5}]}, detect, "above the maximum"),
        ({"FaceDetails": [{"Pose": {"Yaw": -181}}]}, detect, "below the minimum"),
        ({"FaceDetails": [{"Gender": {"Value": "Other"}}]}, detect, "is not one of"),
        ({"FaceDetails": [{"Landmarks": [{"Type": "eyeLeft", "X": "0.5"}]}]}, detect, "expected a number"),
        ({"FaceDetails": [{"Smile": {"Value": 1}}]}, detect, "expected a boolean"),
        ({"FaceDetails": [{"Invented": True}]}, detect, "not a member"),
        ({"FaceDetails": {}}, detect, "expected a list"),
        ({"FaceCount": 1.5}, describe, "expected an integer"),
        ({"CreationTimestamp": "yesterday"}, describe, "expected epoch seconds"),
        ({"DeletedFaces": []}, delete, "below the minimum"),
        ({"SearchedFaceId": "ABC"}, search, "does not match"),
        ({"FaceModelVersion": None}, search, "null"),
    ]
    for value, shape, expected in cases:
        problems = shape_problems(value, shape, wire=True)
        assert any(expected in problem for problem in problems), (value, problems)
    assert shape_problems({"CreationTimestamp": 1.5}, describe) != []  # parsed output wants a datetime
