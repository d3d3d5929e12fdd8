"""Images in: base64 Bytes or an S3 object, checked against Rekognition's limits, decoded to RGB pixels."""

from __future__ import annotations

import base64
import binascii
import io
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from local_rekognition.errors import (
    ImageTooLarge,
    InvalidImageFormat,
    InvalidParameter,
    InvalidS3Object,
    Validation,
)
from local_rekognition.models.engine import RGBImage
from local_rekognition.settings import IMAGE_BYTES_MAX
from producer.contract import IMAGE_SIDE_MIN_PX, S3_IMAGE_BYTES_MAX

S3_OBJECT_BYTES_MAX = S3_IMAGE_BYTES_MAX
"""Rekognition's limit for an image read from S3 (the worker's, too: producer/contract.py)."""

IMAGE_SIDE_MIN = IMAGE_SIDE_MIN_PX
"""Rekognition needs at least 80 pixels on each side (the worker refuses smaller ones before calling)."""

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_S3_UNREADABLE = "Unable to get object metadata from S3. Check object key, region and/or access permissions."


@dataclass(frozen=True)
class DecodedImage:
    """Pixels as the engine wants them, EXIF orientation applied; width and height of that upright image."""

    pixels: RGBImage
    width: int
    height: int


def image_bytes(image: dict[str, Any], *, path: str) -> bytes | None:
    """Decode ``Image.Bytes`` (base64 on the wire), or None when the image is an S3Object."""
    has_bytes, has_s3 = image.get("Bytes") is not None, image.get("S3Object") is not None
    if has_bytes == has_s3:
        raise InvalidParameter(f"Request has invalid parameters: {path} needs exactly one of Bytes or S3Object")
    if not has_bytes:
        return None
    try:
        data = base64.b64decode(image["Bytes"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImageFormat(f"Request has invalid image format: {path}.Bytes is not valid base64") from exc
    if not data:
        raise Validation(
            f"1 validation error detected: Value at '{path[:1].lower()}{path[1:]}.bytes' failed to satisfy "
            "constraint: Member must have length greater than or equal to 1"
        )
    if len(data) > IMAGE_BYTES_MAX:
        raise ImageTooLarge(f"Image size is too large: {len(data)} bytes, the limit for Bytes is {IMAGE_BYTES_MAX}")
    return data


class S3Reader:
    """Reads objects with boto3, which finds its endpoint (AWS_ENDPOINT_URL_S3), region and credentials."""

    def __init__(self) -> None:
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        """The process's boto3 S3 client (thread-safe), for callers that read objects their own way."""
        return self._s3()

    def _s3(self) -> Any:
        # One client per process: creating one costs tens of milliseconds; boto3 clients are thread-safe.
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                session = boto3.session.Session()
                self._client = session.client(
                    "s3",
                    region_name=session.region_name or "us-east-1",
                    config=Config(retries={"mode": "standard", "max_attempts": 3}),
                )
            return self._client

    def read(self, s3_object: dict[str, Any]) -> bytes:
        """Return the object's bytes; blocking, so call it from a worker thread."""
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, name = s3_object.get("Bucket"), s3_object.get("Name")
        if not bucket or not name:
            raise InvalidS3Object(_S3_UNREADABLE)
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": name}
        if s3_object.get("Version"):
            kwargs["VersionId"] = s3_object["Version"]
        try:
            response = self._s3().get_object(**kwargs)
            length = int(response.get("ContentLength", 0))
            body = response["Body"]
            try:
                if length > S3_OBJECT_BYTES_MAX:
                    raise ImageTooLarge(
                        f"Image size is too large: the S3 object has {length} bytes, the limit is {S3_OBJECT_BYTES_MAX}"
                    )
                # Read one byte past the limit so a wrong Content-Length cannot make us buffer more.
                data: bytes = body.read(S3_OBJECT_BYTES_MAX + 1)
            finally:
                body.close()
        except (ClientError, BotoCoreError) as exc:
            raise InvalidS3Object(_S3_UNREADABLE) from exc
        if len(data) > S3_OBJECT_BYTES_MAX:
            raise ImageTooLarge(f"Image size is too large: the limit for S3 objects is {S3_OBJECT_BYTES_MAX}")
        if not data:
            raise InvalidImageFormat("Request has invalid image format: the S3 object is empty")
        return data


# EXIF Orientation → the turn or flip that shows the image upright. ImageOps.exif_transpose does the same but
# also rewrites the EXIF block, and that fails (struct.error) on a tag whose value does not fit its type.
_TRANSPOSE_TO_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _upright(image: Image.Image, orientation: object) -> Image.Image:
    # A new image either way, as exif_transpose gives: a copy of a palette image whose PLTE chunk is missing
    # gets a default palette, where converting the original would trip an assertion inside Pillow.
    method = _TRANSPOSE_TO_UPRIGHT.get(orientation) if isinstance(orientation, int) else None
    return image.transpose(method) if method is not None else image.copy()


def decode(data: bytes, *, max_pixels: int) -> DecodedImage:
    """Decode a JPEG or PNG (by magic bytes) to upright RGB pixels; CPU-bound: run it in a worker thread."""
    if data.startswith(_JPEG_MAGIC):
        fmt = "JPEG"
    elif data.startswith(_PNG_MAGIC):
        fmt = "PNG"
    else:
        raise InvalidImageFormat("Request has invalid image format: only JPEG and PNG are supported")
    try:
        # Image.open reads only the header: the size check below runs before any pixel is decoded.
        with Image.open(io.BytesIO(data), formats=[fmt]) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise ImageTooLarge(
                    f"Image resolution is too large: {width}x{height} pixels, the limit is {max_pixels}"
                )
            img.load()
            upright = _upright(img, img.getexif().get(ExifTags.Base.Orientation))
            pixels = np.asarray(upright.convert("RGB"), dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"Image resolution is too large: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImageFormat(f"Request has invalid image format: the {fmt} does not decode") from exc
    height, width = pixels.shape[:2]
    if width < IMAGE_SIDE_MIN or height < IMAGE_SIDE_MIN:
        raise InvalidParameter(
            f"Request has invalid parameters: the image is {width}x{height} px, Rekognition needs at least "
            f"{IMAGE_SIDE_MIN} pixels on each side"
        )
    return DecodedImage(pixels=np.ascontiguousarray(pixels), width=width, height=height)
