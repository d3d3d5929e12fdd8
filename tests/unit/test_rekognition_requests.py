"""Every job kind's wire JSON and Rekognition request body, byte for byte as recorded in tests/data.

The wire JSON is the job's own (``model_dump_json``) and the argument a producer puts in a task message.

The request is what the worker sends: the job's parameters (``job.request()``), then its images in request order,
serialised by botocore's own JSON serialiser for the operation (body bytes follow the parameters' order). The images
are S3 objects here: the worker puts them after the parameters whatever their kind. Regenerate the record only for a
deliberate change: ``FACEQUEUE_RECORD_REQUESTS=1 pytest tests/unit/test_rekognition_requests.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.serialize import create_serializer

from producer.contract import Operation, job_images, parse_job

RECORD = Path(__file__).resolve().parents[1] / "data" / "rekognition_requests.json"
F1, F2 = "11111111-2222-4333-8444-555555555555", "66666666-7777-4888-9999-aaaaaaaaaaaa"
S3 = {"kind": "s3", "bucket": "photos", "key": "a/b.jpg"}
S3_VERSIONED = {"kind": "s3", "bucket": "photos", "key": "a/c.png", "version": "v1"}
BLOB = {"kind": "blob", "sha256": "ab" * 32, "size_bytes": 1234}
VIDEO = {"kind": "s3", "bucket": "videos", "key": "clip.mp4"}

# (case name, the job's own fields): every kind with its defaults, and with every optional field set.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("detect-defaults", {"operation": "DetectFaces", "image": BLOB}),
    ("detect-all", {"operation": "DetectFaces", "image": S3_VERSIONED, "attributes": "age_range,EMOTIONS"}),
    ("compare-defaults", {"operation": "CompareFaces", "source": BLOB, "target": S3}),
    (
        "compare-all",
        {
            "operation": "CompareFaces",
            "source": S3,
            "target": S3_VERSIONED,
            "similarity_threshold": 91.5,
            "quality_filter": "HIGH",
        },
    ),
    ("index-defaults", {"operation": "IndexFaces", "image": BLOB, "collection_id": "staff"}),
    (
        "index-all",
        {
            "operation": "IndexFaces",
            "image": S3,
            "collection_id": "staff",
            "external_image_id": "a:b.c-d_e",
            "max_faces": 3,
            "quality_filter": "LOW",
            "detection_attributes": ["ALL"],
        },
    ),
    ("search-image-defaults", {"operation": "SearchFacesByImage", "image": BLOB, "collection_id": "staff"}),
    (
        "search-image-all",
        {
            "operation": "SearchFacesByImage",
            "image": S3,
            "collection_id": "staff",
            "face_match_threshold": 99,
            "max_faces": 7,
            "quality_filter": "MEDIUM",
        },
    ),
    ("create-collection", {"operation": "CreateCollection", "collection_id": "staff"}),
    ("delete-collection", {"operation": "DeleteCollection", "collection_id": "staff"}),
    ("list-faces-defaults", {"operation": "ListFaces", "collection_id": "staff"}),
    (
        "list-faces-all",
        {"operation": "ListFaces", "collection_id": "staff", "max_results": 0, "next_token": "page-2"},
    ),
    ("delete-faces", {"operation": "DeleteFaces", "collection_id": "staff", "face_ids": [F1, F2]}),
    ("create-user", {"operation": "CreateUser", "collection_id": "staff", "user_id": "ada"}),
    ("delete-user", {"operation": "DeleteUser", "collection_id": "staff", "user_id": "ada"}),
    (
        "associate-defaults",
        {"operation": "AssociateFaces", "collection_id": "staff", "user_id": "ada", "face_ids": [F1]},
    ),
    (
        "associate-all",
        {
            "operation": "AssociateFaces",
            "collection_id": "staff",
            "user_id": "ada",
            "face_ids": [F1, F2],
            "user_match_threshold": 60.25,
        },
    ),
    ("disassociate", {"operation": "DisassociateFaces", "collection_id": "staff", "user_id": "ada", "face_ids": [F2]}),
    ("list-users-defaults", {"operation": "ListUsers", "collection_id": "staff"}),
    ("list-users-all", {"operation": "ListUsers", "collection_id": "staff", "max_results": 5, "next_token": "t"}),
    ("search-users-by-user", {"operation": "SearchUsers", "collection_id": "staff", "user_id": "ada"}),
    (
        "search-users-by-face",
        {
            "operation": "SearchUsers",
            "collection_id": "staff",
            "face_id": F1,
            "user_match_threshold": 70,
            "max_users": 3,
        },
    ),
    ("search-users-image-defaults", {"operation": "SearchUsersByImage", "image": BLOB, "collection_id": "staff"}),
    (
        "search-users-image-all",
        {
            "operation": "SearchUsersByImage",
            "image": S3_VERSIONED,
            "collection_id": "staff",
            "user_match_threshold": 88.5,
            "max_users": 2,
            "quality_filter": "AUTO",
        },
    ),
    ("recognize-celebrities", {"operation": "RecognizeCelebrities", "image": BLOB}),
    ("recognize-celebrities-s3", {"operation": "RecognizeCelebrities", "image": S3_VERSIONED, "use_cache": False}),
    ("video-detection-defaults", {"operation": "StartFaceDetection", "video": VIDEO}),
    (
        "video-detection-all",
        {"operation": "StartFaceDetection", "video": {**VIDEO, "version": "7"}, "face_attributes": "ALL"},
    ),
    ("video-search", {"operation": "StartFaceSearch", "video": VIDEO, "collection_id": "staff"}),
    (
        "video-search-all",
        {"operation": "StartFaceSearch", "video": VIDEO, "collection_id": "staff", "face_match_threshold": 55.5},
    ),
]

COMMON = {"job_id": "job-1", "batch_id": "batch-1", "submitted_at": "2026-12-01T10:00:00+00:00", "label": "x.jpg"}
IMAGE_PARAMETERS = {"image": "Image", "source": "SourceImage", "target": "TargetImage"}

_rekognition = botocore.session.get_session().get_service_model("rekognition")
_serializer = create_serializer("json", include_validation=True)


def _s3_object(image: dict[str, Any]) -> dict[str, Any]:
    s3_object = {"Bucket": image["bucket"], "Name": image["key"]}
    if "version" in image:
        s3_object["Version"] = image["version"]
    return {"S3Object": s3_object}


def _record(fields: dict[str, Any]) -> dict[str, str]:
    job = parse_job({**COMMON, **fields})
    params = job.request()
    # The worker's images follow the parameters, in request order (an S3 object stands for any image here).
    for name, parameter in IMAGE_PARAMETERS.items():
        if name in fields:
            image = fields[name]
            params[parameter] = _s3_object(image if image["kind"] == "s3" else S3)
    assert len(job_images(job)) == sum(name in fields for name in IMAGE_PARAMETERS)
    request = _serializer.serialize_to_request(params, _rekognition.operation_model(job.operation.value))
    message = json.dumps(job.model_dump(mode="json", exclude_none=True))  # what producer/messages.py sends
    return {"wire": job.model_dump_json(), "message": message, "body": request["body"].decode()}


def test_the_record_covers_every_operation() -> None:
    """Every kind of job the contract knows has a case (a new kind without one fails here)."""
    assert {fields["operation"] for _, fields in CASES} == {op.value for op in Operation}


@pytest.mark.parametrize(("name", "fields"), CASES, ids=[name for name, _ in CASES])
def test_a_job_keeps_its_wire_json_and_its_request_body(name: str, fields: dict[str, Any]) -> None:
    """The job's JSON and the body botocore builds from its request are the recorded bytes."""
    recorded = json.loads(RECORD.read_text())
    assert _record(fields) == recorded[name]


def test_the_record_holds_exactly_the_cases() -> None:
    """No stale entry hides among the recorded ones; FACEQUEUE_RECORD_REQUESTS=1 writes the record anew."""
    if os.environ.get("FACEQUEUE_RECORD_REQUESTS") == "1":
        RECORD.write_text(json.dumps({name: _record(f) for name, f in CASES}, indent=1, ensure_ascii=False) + "\n")
    assert list(json.loads(RECORD.read_text())) == [name for name, _ in CASES]


def test_the_contract_imports_only_pydantic_and_the_standard_library() -> None:
    """Any service can import the contract: loaded on its own, it brings in nothing but pydantic and the stdlib."""
    path = Path(__file__).resolve().parents[2] / "producer" / "contract.py"
    code = (
        "import importlib.util, json, sys\n"
        "before = set(sys.modules)\n"
        f"spec = importlib.util.spec_from_file_location('contract', {str(path)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before} - set(sys.stdlib_module_names))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # pydantic's own dependencies come with it; sysconfig's data module is the stdlib's, under a platform's name
    allowed = {"pydantic", "pydantic_core", "typing_extensions", "annotated_types", "typing_inspection"}
    loaded = {m for m in json.loads(done.stdout) if not m.startswith("_sysconfigdata_")}
    assert "pydantic" in loaded and loaded <= allowed, loaded
