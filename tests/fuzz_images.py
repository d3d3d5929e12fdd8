"""Image.Bytes for fuzzing: small images of many kinds made once with Pillow, mutated, random, or not base64."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st
from PIL import Image

from tests.fuzzing import one_in


def _encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


class Images(dict[str, bytes]):
    """Named sample images; repr'd by name, so hypothesis' reports of strategies stay short."""

    def __repr__(self) -> str:
        return f"Images({', '.join(self)})"


def sample_images(face_jpeg: bytes) -> Images:
    """Small images of many kinds, made once: below and at the 80 px minimum, every PNG mode, CMYK and progressive
    JPEG, EXIF orientations, extreme aspect ratios, formats Rekognition refuses, a decompression bomb, a face."""
    grey = (128, 140, 150)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turn 90° clockwise to view
    exif[0x010F] = "fuzz"  # Make
    images = Images(
        {
            "png-8px": _encode(Image.new("RGB", (8, 8), grey), "PNG"),
            "jpeg-8px": _encode(Image.new("RGB", (8, 8), grey), "JPEG"),
            "png-80px": _encode(Image.new("RGB", (80, 80), grey), "PNG"),
            "png-79x200": _encode(Image.new("RGB", (79, 200), grey), "PNG"),
            "jpeg-96px": _encode(Image.new("RGB", (96, 96), grey), "JPEG", quality=70),
            "jpeg-progressive": _encode(Image.new("RGB", (96, 96), grey), "JPEG", progressive=True),
            "jpeg-cmyk": _encode(Image.new("CMYK", (96, 96), (10, 20, 30, 40)), "JPEG"),
            "jpeg-grey": _encode(Image.new("L", (96, 96), 99), "JPEG"),
            "jpeg-exif-rotated": _encode(Image.new("RGB", (120, 90), grey), "JPEG", exif=exif),
            "png-rgba-exif": _encode(Image.new("RGBA", (90, 90), (*grey, 10)), "PNG", exif=exif),
            "png-palette": _encode(Image.new("P", (90, 90), 3), "PNG", transparency=0),
            "png-la": _encode(Image.new("LA", (90, 90)), "PNG"),
            "png-1bit": _encode(Image.new("1", (90, 90)), "PNG"),
            "png-16bit": _encode(Image.new("I;16", (90, 90)), "PNG"),
            "png-80x2000": _encode(Image.new("RGB", (80, 2000), grey), "PNG"),
            "png-2000x80": _encode(Image.new("RGB", (2000, 80), grey), "PNG"),
            "gif": _encode(Image.new("RGB", (90, 90), grey), "GIF"),
            "bmp": _encode(Image.new("RGB", (90, 90), grey), "BMP"),
            "webp": _encode(Image.new("RGB", (90, 90), grey), "WEBP"),
            "tiff": _encode(Image.new("RGB", (90, 90), grey), "TIFF"),
            # 20000² pixels in about 50 kB: refused before any pixel is decoded.
            "png-bomb": _encode(Image.new("1", (20_000, 20_000)), "PNG", optimize=True),
            "jpeg-face": face_jpeg,
        }
    )
    return images


@st.composite
def mutated(draw: st.DrawFn, images: Mapping[str, bytes]) -> bytes:
    """One of ``images``, usually with bytes replaced, inserted or cut: the classic file-format fuzz."""
    data = bytearray(images[draw(st.sampled_from(sorted(images)))])
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        kind = draw(st.sampled_from(["flip", "flip", "flip", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        else:
            del data[at:]
    return bytes(data)


class Blob(str):
    """Base64 text that hypothesis reports by size, digest and first bytes rather than in full (images run to
    hundreds of kB); JSON encodes it as the plain string it is."""

    def __repr__(self) -> str:
        digest = hashlib.sha256(self.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        try:
            head = base64.b64decode(self[:16], validate=True)[:8]
        except (binascii.Error, ValueError):
            head = self[:16].encode("utf-8", "surrogatepass")
        return f"Blob({len(self)} chars, sha256 {digest}, starts {head!r})"


def _bogus_base64(valid: str) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [
            valid[:-1],  # bad padding
            valid.rstrip("=") + "===",
            valid[:10] + " " + valid[10:],
            valid[:10] + "\n" + valid[10:],
            valid.replace("+", "-").replace("/", "_") + "-_",  # url-safe alphabet
            "data:image/png;base64," + valid,
            valid + "é",
            "=",
            "====",
            "!!!!",
            "\x00",
        ]
    )


def image_bytes(images: Mapping[str, bytes], face_share: int = 12) -> st.SearchStrategy[str]:
    """Image.Bytes values: base64 of sample or mutated images, of random bytes with or without a magic number,
    and strings that are not base64. About one in ``face_share`` is the face photo, unmutated, so operations
    that need a face get one (each costs the models some 20 ms)."""
    face = base64.b64encode(images["jpeg-face"]).decode()
    magic = st.sampled_from([b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"])
    raw = st.one_of(
        st.sampled_from(sorted(images)).map(images.__getitem__),
        mutated(images),
        mutated(images),
        st.tuples(magic, st.binary(max_size=512)).map(lambda parts: parts[0] + parts[1]),
    )
    encoded = raw.map(lambda data: Blob(base64.b64encode(data).decode()))
    bogus = encoded.filter(lambda text: len(text) > 12).flatmap(_bogus_base64).map(Blob)
    return one_in(face_share, st.just(Blob(face)), st.one_of(encoded, encoded, encoded, bogus))
