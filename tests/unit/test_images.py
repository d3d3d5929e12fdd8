"""The worker's image checks and conversions, on images made here (no network)."""

from __future__ import annotations

import io
import random
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from testmedia.photos import grace_hopper
from worker.errors import PermanentError
from worker.images import BYTES_LIMIT, inspect, normalise

MAX_PIXELS = 100_000_000


def _save(img: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def _portrait(mode: str = "RGB") -> Image.Image:
    return Image.open(grace_hopper()).convert(mode)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width×height: all a decompression bomb needs is the header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _decoded(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_a_plain_jpeg_passes_untouched() -> None:
    data = grace_hopper().read_bytes()
    assert normalise(data, MAX_PIXELS) is data


@pytest.mark.parametrize(
    ("fmt", "mode", "expected_format"),
    [
        ("WEBP", "RGB", "JPEG"),
        ("TIFF", "RGB", "JPEG"),
        ("BMP", "RGB", "JPEG"),
        ("GIF", "P", "JPEG"),
        ("JPEG", "CMYK", "JPEG"),
        ("PNG", "RGBA", "PNG"),
        ("PNG", "I;16", "PNG"),
    ],
)
def test_formats_and_modes_rekognition_refuses_are_converted(fmt: str, mode: str, expected_format: str) -> None:
    if mode == "I;16":
        source = _portrait("L").convert("I").point(lambda v: v * 257).convert("I;16")
    else:
        source = _portrait("RGB").convert(mode)
    out = _decoded(normalise(_save(source, fmt), MAX_PIXELS))
    assert out.format == expected_format
    assert out.mode in ("RGB", "L")
    assert out.size == source.size


def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    grey = _portrait("L")
    sixteen = grey.convert("I").point(lambda v: v * 257).convert("I;16")
    out = _decoded(normalise(_save(sixteen, "PNG"), MAX_PIXELS))
    # A clip to 8 bits would turn nearly every pixel white; scaling keeps the photo's histogram.
    assert abs(ImageStat.Stat(out).mean[0] - ImageStat.Stat(grey).mean[0]) < 2


def test_exif_orientation_is_applied() -> None:
    img = _portrait()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90° clockwise: a person sees it upright after transposing
    data = _save(img, "JPEG", exif=exif.tobytes())
    assert inspect(data, MAX_PIXELS).orientation == 6
    out = normalise(data, MAX_PIXELS)
    assert _decoded(out).size == (img.height, img.width)
    assert inspect(out, MAX_PIXELS).orientation in (0, 1)


def test_photos_over_the_bytes_limit_are_downscaled_to_fit() -> None:
    rng = random.Random(7)
    noise = Image.frombytes("RGB", (2200, 1600), rng.randbytes(2200 * 1600 * 3))
    data = _save(noise, "JPEG", quality=100)
    assert len(data) > 6 * 2**20 - 2**20
    out = normalise(data, MAX_PIXELS)
    assert len(out) <= BYTES_LIMIT
    assert _decoded(out).format == "JPEG"


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(PermanentError) as caught:
        normalise(_png_header_only(30000, 30000), MAX_PIXELS)
    assert caught.value.code == "ImageTooLargeException"
    assert "900000000 pixels" in caught.value.message


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n"])
def test_non_images_are_refused(data: bytes) -> None:
    with pytest.raises(PermanentError) as caught:
        normalise(data, MAX_PIXELS)
    assert caught.value.code == "InvalidImageFormatException"


def test_a_truncated_image_that_must_be_converted_is_refused() -> None:
    data = _save(_portrait(), "WEBP")[:2000]
    with pytest.raises(PermanentError) as caught:
        normalise(data, MAX_PIXELS)
    assert caught.value.code == "InvalidImageFormatException"


def _grey_png(width: int, height: int) -> bytes:
    """A valid, highly compressible greyscale PNG, written row by row so this process never holds its pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(9)
    row = b"\0" + bytes([128]) * width
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_the_header_check_of_a_huge_png_does_not_decode_its_pixels(tmp_path: Path) -> None:
    # Given a 9990×9990 PNG that compresses to ~100 KB (an outside tester's 291 KB one cost 381 MB and 416 ms)
    path = tmp_path / "huge.png"
    path.write_bytes(_grey_png(9990, 9990))
    # When a fresh process reads its header, as the worker does on its event loop for every blob
    probe = (
        "import resource, sys\n"
        "from worker.images import inspect\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "facts = inspect(data, 200_000_000)\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(facts.width, facts.height, facts.orientation, (after - before) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True)
    width, height, orientation, grown_mib = map(int, out.stdout.split())
    # Then it learns the size and orientation without decoding 100 MB of pixels
    assert (width, height, orientation) == (9990, 9990, 0)
    assert grown_mib < 32, f"the header check grew the process by {grown_mib} MiB: it decoded the pixels"


def test_a_png_exif_orientation_before_the_pixels_is_read_without_decoding() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _save(Image.new("RGB", (160, 80), "red"), "PNG", exif=exif.tobytes())
    facts = inspect(data, MAX_PIXELS)
    assert facts.orientation == 6 and not facts.usable_as_is()
