"""Images as S3Object, read by local_rekognition through the S3 endpoint in its AWS_ENDPOINT_URL_S3 (moto)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from testmedia.imaging import plain
from testmedia.photos import grace_hopper
from tests.fixtures.aws import s3_client


def error_code(call: Any, **params: Any) -> str:
    """The Rekognition error code ``call(**params)`` fails with."""
    with pytest.raises(ClientError) as caught:
        call(**params)
    code: str = caught.value.response["Error"]["Code"]
    return code


def test_detect_faces_reads_the_object_from_s3(rekognition: Any, moto_s3_url: str, s3_bucket: str) -> None:
    s3_client(moto_s3_url).put_object(Bucket=s3_bucket, Key="people/grace.jpg", Body=grace_hopper().read_bytes())
    by_s3 = rekognition.detect_faces(Image={"S3Object": {"Bucket": s3_bucket, "Name": "people/grace.jpg"}})
    by_bytes = rekognition.detect_faces(Image={"Bytes": grace_hopper().read_bytes()})
    assert len(by_s3["FaceDetails"]) == 1
    assert by_s3["FaceDetails"][0]["BoundingBox"] == by_bytes["FaceDetails"][0]["BoundingBox"]


def test_a_given_version_is_the_one_read(rekognition: Any, moto_s3_url: str, s3_bucket: str) -> None:
    s3 = s3_client(moto_s3_url)
    s3.put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    # Given an object whose first version has a face and whose latest has none
    first = s3.put_object(Bucket=s3_bucket, Key="photo.jpg", Body=grace_hopper().read_bytes())["VersionId"]
    s3.put_object(Bucket=s3_bucket, Key="photo.jpg", Body=plain(200, 200))
    latest = rekognition.detect_faces(Image={"S3Object": {"Bucket": s3_bucket, "Name": "photo.jpg"}})
    pinned = rekognition.detect_faces(Image={"S3Object": {"Bucket": s3_bucket, "Name": "photo.jpg", "Version": first}})
    assert latest["FaceDetails"] == []
    assert len(pinned["FaceDetails"]) == 1


def test_missing_objects_and_buckets_are_invalid_s3_objects(rekognition: Any, s3_bucket: str) -> None:
    missing_key = {"S3Object": {"Bucket": s3_bucket, "Name": "absent.jpg"}}
    missing_bucket = {"S3Object": {"Bucket": "no-such-bucket-anywhere", "Name": "a.jpg"}}
    assert error_code(rekognition.detect_faces, Image=missing_key) == "InvalidS3ObjectException"
    assert error_code(rekognition.detect_faces, Image=missing_bucket) == "InvalidS3ObjectException"
    assert (
        error_code(rekognition.compare_faces, SourceImage=missing_key, TargetImage=missing_bucket)
        == "InvalidS3ObjectException"
    )


def test_a_missing_version_is_an_invalid_s3_object(rekognition: Any, moto_s3_url: str, s3_bucket: str) -> None:
    s3 = s3_client(moto_s3_url)
    s3.put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=s3_bucket, Key="photo.jpg", Body=grace_hopper().read_bytes())
    image = {"S3Object": {"Bucket": s3_bucket, "Name": "photo.jpg", "Version": "not-a-real-version-id"}}
    assert error_code(rekognition.detect_faces, Image=image) == "InvalidS3ObjectException"


def test_s3_objects_follow_the_same_image_rules(rekognition: Any, moto_s3_url: str, s3_bucket: str) -> None:
    s3 = s3_client(moto_s3_url)
    s3.put_object(Bucket=s3_bucket, Key="notes.txt", Body=b"not an image at all")
    s3.put_object(Bucket=s3_bucket, Key="empty.jpg", Body=b"")
    for key in ("notes.txt", "empty.jpg"):
        image = {"S3Object": {"Bucket": s3_bucket, "Name": key}}
        assert error_code(rekognition.detect_faces, Image=image) == "InvalidImageFormatException"


def test_s3_objects_may_exceed_5_mb_but_not_15(rekognition: Any, moto_s3_url: str, s3_bucket: str) -> None:
    s3 = s3_client(moto_s3_url)
    # Trailing bytes after a JPEG's end marker are ignored by decoders: a valid 6 MB and a 16 MB image.
    photo = grace_hopper().read_bytes()
    s3.put_object(Bucket=s3_bucket, Key="six.jpg", Body=photo + b"\0" * (6 * 1024 * 1024))
    s3.put_object(Bucket=s3_bucket, Key="sixteen.jpg", Body=photo + b"\0" * (16 * 1024 * 1024))
    six = rekognition.detect_faces(Image={"S3Object": {"Bucket": s3_bucket, "Name": "six.jpg"}})
    assert len(six["FaceDetails"]) == 1
    sixteen = {"S3Object": {"Bucket": s3_bucket, "Name": "sixteen.jpg"}}
    assert error_code(rekognition.detect_faces, Image=sixteen) == "ImageTooLargeException"
