"""Fetch images (Redis blob, S3), and validate and normalise them into something Rekognition accepts."""

from __future__ import annotations

import asyncio
import hashlib
import io
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from producer.contract import (
    IMAGE_BYTES_MAX,
    IMAGE_SIDE_MIN_PX,
    S3_IMAGE_BYTES_MAX,
    BlobImage,
    ImageSource,
    S3Image,
)
from worker.errors import PermanentError, TransientError

BYTES_LIMIT = IMAGE_BYTES_MAX
"""Rekognition's limit for images passed as Bytes."""
S3_LIMIT = S3_IMAGE_BYTES_MAX
"""Rekognition's limit for images passed as S3Object."""
HEADER_BYTES = 128 * 1024
"""Enough of a JPEG or PNG to read its format, size, mode and EXIF orientation without the pixels."""

_ACCEPTED_FORMATS = {"JPEG", "PNG"}
_ACCEPTED_MODES = {"RGB", "L"}


@dataclass(frozen=True)
class ImageFacts:
    """What the header says about an image."""

    format: str | None
    width: int
    height: int
    mode: str
    orientation: int

    def usable_as_is(self) -> bool:
        """True when Rekognition takes the image unchanged and its boxes match the photo as a person sees it."""
        return self.format in _ACCEPTED_FORMATS and self.mode in _ACCEPTED_MODES and self.orientation in (0, 1)


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Pillow warns (not raises) between 1× and 2× its own limit; we enforce ours below instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise PermanentError("ImageTooLargeException", f"refused as a decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise PermanentError(
            "InvalidImageFormatException", "the file is not an image Pillow can read (expected JPEG or PNG)"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PermanentError("InvalidImageFormatException", f"the image is damaged or truncated: {exc}") from None
    width, height = img.size
    if width * height > max_pixels:
        raise PermanentError(
            "ImageTooLargeException",
            f"the image is {width}×{height} ({width * height} pixels); the limit is "
            f"{max_pixels / 1e6:.0f} MP (FACEQUEUE_MAX_IMAGE_PIXELS)",
        )
    if min(width, height) < IMAGE_SIDE_MIN_PX:
        # What Rekognition would answer, without paying a call to hear it.
        raise PermanentError(
            "InvalidParameterException",
            f"the image is {width}×{height} px; Rekognition needs at least {IMAGE_SIDE_MIN_PX} pixels on each side",
        )
    return img


def inspect(data: bytes, max_pixels: int) -> ImageFacts:
    """Read an image's header (the first HEADER_BYTES suffice) without decoding its pixels."""
    img = _open(data, max_pixels)
    try:
        orientation = _orientation(img)
    except Exception:  # a damaged EXIF block is not worth failing the job over: treat as unrotated
        orientation = 0
    return ImageFacts(img.format, img.width, img.height, img.mode, orientation)


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation of a JPEG or PNG, read from the header only (0 for other formats: they are converted)."""
    if img.format == "JPEG":
        return int(img.getexif().get(0x0112, 0) or 0)
    if img.format == "PNG":
        # Pillow's PNG getexif() decodes the whole image to look for an eXIf chunk after the pixels (a 9990×9990
        # PNG: 381 MB and 0.4 s of blocked loop). One before them is in img.info already; one after them is rare
        # and read as unrotated.
        raw = img.info.get("exif")
        if not raw:
            return 0
        exif = Image.Exif()
        exif.load(raw)
        return int(exif.get(0x0112, 0) or 0)
    return 0


def _jpeg_scan_start(data: bytes) -> int:
    """Offset of the main image's first scan (SOS marker), walking the segments so an EXIF thumbnail's own markers
    are skipped; -1 when the data ends before it, or the segments do not parse (then Pillow has the last word)."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return -2
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
        elif marker == 0xDA:
            return i
        else:
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return -1


def check_complete(data: bytes, fmt: str | None) -> None:
    """Refuse a JPEG or PNG whose end is missing (a cut-off upload or copy) before anyone pays Rekognition to say so.

    A JPEG must have an end-of-image marker after its first scan, a PNG an IEND chunk; bytes after them (camera
    trailers) are fine. Checks bytes only, no decoding: a search from the end, microseconds even for 5 MB.
    """
    if fmt == "JPEG":
        scan = _jpeg_scan_start(data)
        if scan == -1 or (scan >= 0 and data.find(b"\xff\xd9", scan) == -1):
            raise PermanentError(
                "InvalidImageFormatException", "the JPEG is truncated: its end-of-image marker is missing"
            )
    elif fmt == "PNG" and data.rfind(b"IEND") == -1:
        raise PermanentError("InvalidImageFormatException", "the PNG is truncated: its IEND chunk is missing")


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in _ACCEPTED_MODES:
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits rather than clip, or most of the photo turns white.
        return img.point(lambda v: v / 256).convert("L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def _encode(img: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "PNG":
        img.save(out, "PNG", optimize=False)
    else:
        img.save(out, "JPEG", quality=92)
    return out.getvalue()


def normalise(data: bytes, max_pixels: int, limit_bytes: int = BYTES_LIMIT) -> bytes:
    """Return JPEG or PNG bytes ≤ limit_bytes, EXIF orientation applied, 8-bit RGB or greyscale.

    Untouched when the image already qualifies, so the common case costs one header read.
    """
    facts = inspect(data, max_pixels)
    if facts.usable_as_is() and len(data) <= limit_bytes:
        return data
    img = _open(data, max_pixels)
    try:
        img.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise PermanentError("InvalidImageFormatException", f"the image is damaged or truncated: {exc}") from None
    img = _to_rgb(ImageOps.exif_transpose(img) or img)
    # Keep PNG for PNG input (line art, screenshots); everything else becomes JPEG.
    fmt = "PNG" if facts.format == "PNG" else "JPEG"
    encoded = _encode(img, fmt)
    while len(encoded) > limit_bytes:
        # Downscale by the area ratio with a margin: JPEG size is roughly proportional to pixel count.
        scale = (limit_bytes / len(encoded)) ** 0.5 * 0.9
        img = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))), Image.Resampling.LANCZOS)
        fmt = "JPEG"
        encoded = _encode(img, fmt)
    return encoded


async def read_blob(redis: Any, source: BlobImage, reads: JobReads) -> bytes:
    """Return a blob's bytes from Redis (or the job's prefetch), checked against its content hash."""
    data = await reads.redis_get(redis, source.key)
    if data is None:
        raise PermanentError(
            "ImageBlobMissing",
            f"the image bytes ({source.describe()}) are no longer in Redis: they expire after FACEQUEUE_BLOB_TTL_S;"
            " submit the job again",
        )
    if hashlib.sha256(data).hexdigest() != source.sha256:
        raise PermanentError("ImageBlobCorrupt", f"the bytes stored for {source.describe()} do not match their hash")
    return bytes(data)


def _s3_params(source: S3Image) -> dict[str, str]:
    params = {"Bucket": source.bucket, "Key": source.key}
    if source.version:
        params["VersionId"] = source.version
    return params


def _s3_failure(exc: Exception, source: S3Image) -> Exception:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return TransientError("S3ConnectionError", f"{source.describe()}: {exc}")
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in ("NoSuchKey", "NoSuchBucket", "NoSuchVersion", "404", "NotFound", "InvalidArgument") or status == 404:
        what = "bucket" if code == "NoSuchBucket" else "object"
        return PermanentError("InvalidS3ObjectException", f"{source.describe()}: no such {what} ({code or status})")
    if code in ("AccessDenied", "403", "AllAccessDisabled") or status == 403:
        return PermanentError("AccessDeniedException", f"{source.describe()}: access denied by S3 ({code})")
    if status >= 500 or code in ("SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"):
        return TransientError(f"S3{code or status}", f"{source.describe()}: S3 answered {code or status}")
    return PermanentError("InvalidS3ObjectException", f"{source.describe()}: S3 refused the read ({code or status})")


async def _s3_get(s3: Any, source: S3Image, max_bytes: int, header_only: bool) -> tuple[bytes, int, str]:
    params = _s3_params(source)
    if header_only:
        params["Range"] = f"bytes=0-{HEADER_BYTES - 1}"
    try:
        response = await s3.get_object(**params)
        async with response["Body"] as body:
            total = int(str(response.get("ContentRange", "")).rpartition("/")[2] or response["ContentLength"])
            if not header_only and total > max_bytes:
                raise PermanentError(
                    "ImageTooLargeException",
                    f"{source.describe()} is {total / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.0f} MiB",
                )
            return await body.read(), total, str(response.get("ETag", ""))
    except (PermanentError, TransientError):
        raise
    except Exception as exc:
        raise _s3_failure(exc, source) from None


def check_allowed(sources: Iterable[S3Image], allowed: list[str]) -> None:
    """Refuse, before any S3 or Rekognition call, an S3 object (image or video) outside FACEQUEUE_S3_ALLOWED.

    An entry is a bucket or ``bucket/key-prefix``; an empty list allows whatever the credentials can read.
    """
    if not allowed:
        return
    for source in sources:
        if not any(
            source.bucket == entry.partition("/")[0] and source.key.startswith(entry.partition("/")[2])
            for entry in allowed
        ):
            raise PermanentError(
                "AccessDeniedException",
                f"{source.describe()} is outside the buckets this worker may read (FACEQUEUE_S3_ALLOWED)",
            )


class JobReads:
    """One job's reads, each made once: its S3 objects' ranged heads (the cache key needs the ETag, the format check
    the bytes), and the Redis values read for it in one MGET before it ran (pipeline.py's load stage)."""

    def __init__(self, s3: Any, max_bytes: int, redis_values: Mapping[str, bytes | None] | None = None) -> None:
        self._s3 = s3
        self._max_bytes = max_bytes
        self._heads: dict[tuple[str, str, str | None], tuple[bytes, int, str]] = {}
        self._values = dict(redis_values or {})

    async def head(self, source: S3Image) -> tuple[bytes, int, str]:
        """The first HEADER_BYTES of an object, its full size and its ETag."""
        key = (source.bucket, source.key, source.version)
        if key not in self._heads:
            self._heads[key] = await _s3_get(self._s3, source, self._max_bytes, header_only=True)
        return self._heads[key]

    async def redis_get(self, redis: Any, key: str) -> bytes | None:
        """A Redis value: the prefetched one the first time (None: the key did not exist), then Redis again."""
        if key in self._values:
            return self._values.pop(key)
        return await redis.get(key)  # type: ignore[no-any-return]


async def rekognition_image(
    source: ImageSource, *, redis: Any, s3: Any, reads: JobReads, max_pixels: int, max_bytes: int
) -> dict[str, Any]:
    """Return the Rekognition ``Image`` parameter for a source: S3Object when usable as is, else Bytes."""
    if isinstance(source, BlobImage):
        data = await read_blob(redis, source, reads)
        # A header read is tens of microseconds: do it on the loop, and leave the thread pool to real decoding.
        blob_facts = inspect(data, max_pixels)
        if blob_facts.usable_as_is() and len(data) <= BYTES_LIMIT:
            check_complete(data, blob_facts.format)  # sent as is, so nobody else looks at its end before Rekognition
            return {"Bytes": data}
        return {"Bytes": await asyncio.to_thread(normalise, data, max_pixels)}
    head, total, _etag = await reads.head(source)
    try:
        facts: ImageFacts | None = inspect(head, max_pixels)
    except PermanentError:
        facts = None  # a header larger than the range read (huge EXIF blocks): judge the whole file instead
    if facts is not None and facts.usable_as_is() and total <= S3_LIMIT:
        if total <= len(head):  # the ranged read holds the whole object: its end can be checked for free
            check_complete(head, facts.format)
        return {"S3Object": source.s3_object()}
    data, _, _ = await _s3_get(s3, source, max_bytes, header_only=False)
    return {"Bytes": await asyncio.to_thread(normalise, data, max_pixels)}


async def etags(sources: Sequence[ImageSource], reads: JobReads) -> list[str]:
    """Each image's S3 ETag where its cache name needs one (an S3 object without a version), else '': from the
    ranged read the format check needs anyway."""
    return [
        (await reads.head(source))[2] if isinstance(source, S3Image) and not source.version else ""
        for source in sources
    ]


async def request(
    sources: Sequence[ImageSource],
    parameters: Sequence[str],
    params: Mapping[str, Any],
    *,
    redis: Any,
    s3: Any,
    values: Mapping[str, bytes | None],
    max_pixels: int,
    max_bytes: int,
    reads: JobReads | None = None,
) -> dict[str, Any]:
    """A job's Rekognition request: ``params`` and each image fetched and normalised under its parameter, in order.

    ``values`` are the Redis values the job read before it ran (its blobs); ``reads`` holds S3 heads already read
    for the job's cache key, if any, so each object's ranged read is made once.
    """
    reads = reads if reads is not None else JobReads(s3, max_bytes, values)
    fetch = dict(redis=redis, s3=s3, reads=reads, max_pixels=max_pixels, max_bytes=max_bytes)
    built = dict(params)
    if len(sources) == 1:  # the common case: no task to gather
        built[parameters[0]] = await rekognition_image(sources[0], **fetch)
    else:
        found = await asyncio.gather(*(rekognition_image(source, **fetch) for source in sources))
        built.update(zip(parameters, found, strict=True))
    return built
