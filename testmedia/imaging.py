"""Small images made on the fly for format, size and orientation tests (never the shared photos)."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps


def encode(image: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    """``image`` encoded as ``fmt`` bytes."""
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def plain(width: int, height: int, fmt: str = "JPEG", colour: tuple[int, int, int] = (128, 140, 150)) -> bytes:
    """A face-free single-colour image."""
    return encode(Image.new("RGB", (width, height), colour), fmt)


def rotated_with_exif(path: Path) -> bytes:
    """The photo stored turned 90° anticlockwise, with EXIF Orientation 6 ("turn 90° clockwise to view").

    A reader honouring EXIF sees exactly the original photo, so faces must be found where they are in it.
    """
    with Image.open(path) as original:
        stored = original.convert("RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    return encode(stored, "JPEG", exif=exif, quality=95)


def decompression_bomb_png(side: int = 20_000) -> bytes:
    """A tiny PNG file that decodes to ``side``² pixels: a few kilobytes on the wire, gigabytes in memory."""
    return encode(Image.new("1", (side, side)), "PNG", optimize=True)


def big_and_small(path: Path, small_width: int = 140) -> bytes:
    """One photo pasted twice on a grey canvas: at full size on the left, ``small_width`` wide on the right.

    Two faces of one person, of clearly different sizes (about 170 and 50 pixels wide for grace_hopper()).
    """
    with Image.open(path) as original:
        photo = original.convert("RGB")
    canvas = Image.new("RGB", (photo.width * 2 + 300, photo.height + 100), (200, 200, 200))
    canvas.paste(photo, (0, 0))
    small = photo.resize((small_width, round(small_width * photo.height / photo.width)))
    canvas.paste(small, (photo.width + 200, 100))
    return encode(canvas, "JPEG", quality=92)


def views(path: Path) -> dict[str, bytes]:
    """Extra photos of the one face in ``path``: mirrored, cropped closer, darker and brighter (JPEG each)."""
    with Image.open(path) as original:
        photo = original.convert("RGB")
    width, height = photo.size
    inset = (round(width * 0.1), round(height * 0.08), round(width * 0.9), round(height * 0.95))
    return {
        "flipped": encode(ImageOps.mirror(photo), "JPEG", quality=92),
        "cropped": encode(photo.crop(inset).resize((width, height)), "JPEG", quality=92),
        "darker": encode(ImageEnhance.Brightness(photo).enhance(0.6), "JPEG", quality=92),
        "brighter": encode(
            ImageEnhance.Contrast(ImageEnhance.Brightness(photo).enhance(1.3)).enhance(0.8), "JPEG", quality=92
        ),
    }


def distinct_jpegs(
    source: Path, count: int, *, scale: float = 2.5, quality: int = 95, seed: int = 0
) -> Iterator[bytes]:
    """``count`` JPEGs of one portrait, each with one random pixel changed and recompressed: distinct content hashes.

    The grace_hopper portrait scaled 2.5× at quality 95 is about 440 KB, the size of a phone photo resized for the
    web; each costs ~10 ms to make, so thousands are cheap.
    """
    rng = random.Random(seed)
    with Image.open(source) as original:
        base = original.convert("RGB")
    base = base.resize((int(base.width * scale), int(base.height * scale)))
    for _ in range(count):
        img = base.copy()
        img.putpixel((rng.randrange(img.width), rng.randrange(img.height)), tuple(rng.randrange(256) for _ in "rgb"))
        yield encode(img, "JPEG", quality=quality)
