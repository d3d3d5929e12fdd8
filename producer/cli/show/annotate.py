"""Draw results on the photos: face boxes, landmarks and a short label, so a person checks a batch at a glance.

Rekognition's boxes and landmarks are ratios of the photo *as a person sees it*: the worker applies the EXIF
orientation before Rekognition sees the pixels. So every photo here is turned upright (``ImageOps.exif_transpose``)
before anything is drawn, and the ratios then hold at any size, which lets large photos be shrunk first.

Pillow only (a producer-only install has no numpy or OpenCV). s3:// photos are fetched with boto3 when it is
importable; without it they are skipped with a reason, never an error.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from producer import celebrities
from producer.cli.show.export import top_emotion
from producer.contract import JobStatus, ResultEnvelope

Colour = tuple[int, int, int]

FACE: Colour = (255, 190, 0)
"""Amber: a face DetectFaces found, or one IndexFaces indexed."""
MATCH: Colour = (0, 200, 83)
"""Green: a face matched above the threshold (search, compare), or a celebrity recognised."""
NO_MATCH: Colour = (235, 50, 50)
"""Red: a face without a match, one IndexFaces left out, or a face no celebrity's."""
SOURCE: Colour = (41, 121, 255)
"""Blue: the face of the source photo a comparison used."""
LANDMARK: Colour = (0, 229, 255)
"""Cyan: landmark points (eyes, nose, mouth corners)."""

MAX_SIDE_PX = 2048
"""Annotated pictures are shrunk to this size: they are for looking at, and 12-megapixel PNGs are slow to open."""
MIN_SIDE_PX = 800
"""Small photos are enlarged to this size, so labels stay legible next to the faces."""
COMPARE_HEIGHT_PX = 720
_BACKGROUND: Colour = (32, 32, 32)


class AnnotationSkipped(Exception):
    """A photo cannot be annotated here; the message says why (shown once per reason, never a failure)."""


@dataclass(frozen=True)
class Face:
    """One thing to draw: a box in ratios of the photo, a colour, a label and landmark points (ratios too)."""

    box: dict[str, float]
    colour: Colour
    label: str
    landmarks: Sequence[tuple[float, float]] = ()
    outline: Sequence[Sequence[tuple[float, float]]] = ()
    """Polylines through the landmarks (jaw, brows, eyes, nose, lips), in ratios of the photo."""


# --- Loading photos. ---


def _s3_bytes(url: str) -> bytes:
    try:
        import boto3
    except ImportError:
        raise AnnotationSkipped("s3:// photos need boto3 to be fetched here (pip install boto3)") from None
    bucket, _, rest = url.removeprefix("s3://").partition("/")
    key, _, query = rest.partition("?versionId=")
    extra = {"VersionId": query} if query else {}
    try:
        body: bytes = boto3.client("s3").get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
    except Exception as exc:  # any S3 trouble only costs the picture, never the results
        raise AnnotationSkipped(f"could not fetch s3:// photos ({type(exc).__name__})") from None
    return body


def load_upright(
    ref: str | os.PathLike[str], max_side_px: int = MAX_SIDE_PX, min_side_px: int = MIN_SIDE_PX
) -> Image.Image:
    """Open a local photo or s3:// URL as an RGB image the way a person sees it, its longest side brought
    between ``min_side_px`` and ``max_side_px``."""
    ref = str(ref)
    try:
        data = _s3_bytes(ref) if ref.startswith("s3://") else Path(ref).read_bytes()
        img: Image.Image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    except OSError as exc:
        if isinstance(exc, UnidentifiedImageError):
            raise AnnotationSkipped("not a photo Pillow can open") from None
        raise AnnotationSkipped(f"cannot read the photo ({type(exc).__name__})") from None
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        flat = Image.new("RGB", img.size, (255, 255, 255))
        flat.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        img = flat
    else:
        img = img.convert("RGB")
    longest = max(img.size)
    if longest > max_side_px:
        img.thumbnail((max_side_px, max_side_px), Image.Resampling.LANCZOS)
    elif longest < min_side_px:
        scale = min_side_px / longest
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
    return img


# --- Drawing. ---


def _font(size_px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow ships a scalable default font when it is built with FreeType (every wheel is); else a small bitmap one.
    return ImageFont.load_default(size=size_px)


def _sizes(img: Image.Image) -> tuple[int, int, int]:
    """Line width, landmark radius and font size for a photo of this size."""
    side = min(img.size)
    return max(2, round(side / 250)), max(2, round(side / 300)), max(12, min(36, round(max(img.size) / 45)))


def pixel_box(box: dict[str, float], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Turn a Rekognition BoundingBox (ratios) into pixel corners (left, top, right, bottom), clamped to the image."""
    width, height = size
    left = round(box.get("Left", 0.0) * width)
    top = round(box.get("Top", 0.0) * height)
    right = round((box.get("Left", 0.0) + box.get("Width", 0.0)) * width)
    bottom = round((box.get("Top", 0.0) + box.get("Height", 0.0)) * height)
    return _clamp(left, width), _clamp(top, height), _clamp(right, width), _clamp(bottom, height)


def _clamp(value: int, size: int) -> int:
    return max(0, min(size - 1, value))


def _text_colour(background: Colour) -> Colour:
    luminance = 0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2]
    return (0, 0, 0) if luminance > 140 else (255, 255, 255)


def _label(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, colour: Colour, font: Any, bounds: int) -> None:
    """Draw ``text`` on a filled tag at ``xy`` (its bottom-left corner), kept inside the picture's width."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = max(2, (bottom - top) // 5)
    width, height = right - left + 2 * pad, bottom - top + 2 * pad
    x = max(0, min(xy[0], bounds - width))
    y = xy[1] - height if xy[1] - height >= 0 else xy[1]
    draw.rectangle((x, y, x + width, y + height), fill=colour)
    draw.text((x + pad - left, y + pad - top), text, fill=_text_colour(colour), font=font)


def draw_faces(
    img: Image.Image, faces: Iterable[Face], banner: str | None = None, font_px: int | None = None
) -> Image.Image:
    """Draw each face's box, landmarks and label on a copy of ``img``; ``banner`` goes in the top-left corner."""
    out = img.copy()
    draw = ImageDraw.Draw(out)
    line, dot, default_font_px = _sizes(out)
    font = _font(font_px or default_font_px)
    faces = list(faces)
    for face in faces:
        left, top, right, bottom = pixel_box(face.box, out.size)
        draw.rectangle((left, top, right, bottom), outline=face.colour, width=line)
        for polyline in face.outline:
            draw.line([(x * out.width, y * out.height) for x, y in polyline], fill=LANDMARK, width=max(1, line // 2))
        for x, y in face.landmarks:
            cx, cy = x * out.width, y * out.height
            draw.ellipse((cx - dot, cy - dot, cx + dot, cy + dot), fill=LANDMARK)
    # Labels after every box, so a neighbour's box never covers a label.
    for face in faces:
        left, top, _right, bottom = pixel_box(face.box, out.size)
        if face.label:
            _label(draw, (left, top), face.label, face.colour, font, out.width)
    if banner:
        _label(draw, (0, 0), banner, NO_MATCH, font, out.width)
    return out


def _landmarks(detail: dict[str, Any]) -> list[tuple[float, float]]:
    return [(float(p["X"]), float(p["Y"])) for p in detail.get("Landmarks") or [] if "X" in p and "Y" in p]


# The face's outline as Rekognition's 30 landmark types draw it (DetectFaces with ALL): each polyline is drawn
# when all its points are in the response, so a DEFAULT response (9 types) shows its dots only.
OUTLINES: tuple[tuple[str, ...], ...] = (
    ("upperJawlineLeft", "midJawlineLeft", "chinBottom", "midJawlineRight", "upperJawlineRight"),
    ("leftEyeBrowLeft", "leftEyeBrowUp", "leftEyeBrowRight"),
    ("rightEyeBrowLeft", "rightEyeBrowUp", "rightEyeBrowRight"),
    ("leftEyeLeft", "leftEyeUp", "leftEyeRight", "leftEyeDown", "leftEyeLeft"),
    ("rightEyeLeft", "rightEyeUp", "rightEyeRight", "rightEyeDown", "rightEyeLeft"),
    ("noseLeft", "nose", "noseRight"),
    ("mouthLeft", "mouthUp", "mouthRight", "mouthDown", "mouthLeft"),
)


def _outline(detail: dict[str, Any]) -> list[list[tuple[float, float]]]:
    points = {
        str(p["Type"]): (float(p["X"]), float(p["Y"]))
        for p in detail.get("Landmarks") or []
        if "Type" in p and "X" in p and "Y" in p
    }
    return [[points[name] for name in polyline] for polyline in OUTLINES if all(name in points for name in polyline)]


def _states(detail: dict[str, Any]) -> list[str]:
    """What the face is doing, said only when the response has the field: smiling, eyes closed, mouth open."""
    states = []
    if (detail.get("Smile") or {}).get("Value") is True:
        states.append("smiling")
    if (detail.get("EyesOpen") or {}).get("Value") is False:
        states.append("eyes closed")
    if (detail.get("MouthOpen") or {}).get("Value") is True:
        states.append("mouth open")
    return states


def _is(detail: dict[str, Any], member: str) -> bool:
    return (detail.get(member) or {}).get("Value") is True


def _appearance(detail: dict[str, Any]) -> list[str]:
    """What the face wears or hides behind, said only when it is there: glasses, facial hair, occlusion."""
    # Rekognition's Eyeglasses is true for sunglasses too; the label names the darker of the two, once.
    eyewear = "sunglasses" if _is(detail, "Sunglasses") else "glasses" if _is(detail, "Eyeglasses") else None
    worn = [eyewear] if eyewear else []
    worn += [word for word, member in (("beard", "Beard"), ("mustache", "Mustache")) if _is(detail, member)]
    if _is(detail, "FaceOccluded"):
        worn.append("occluded")
    return worn


def describe_face(detail: dict[str, Any]) -> str:
    """A short label: top emotion, smile / eyes / mouth, glasses / facial hair / occlusion, age range, gender,
    when present; else the confidence."""
    parts = []
    emotion = top_emotion(detail)
    if emotion is not None:
        parts.append(emotion[0].lower())
    parts.extend(_states(detail))
    parts.extend(_appearance(detail))
    age = detail.get("AgeRange")
    if age:
        parts.append(f"age {age.get('Low')}-{age.get('High')}")
    gender = detail.get("Gender")
    if gender and gender.get("Value"):
        parts.append(str(gender["Value"]).lower())
    if not parts and "Confidence" in detail:
        parts.append(f"{float(detail['Confidence']):.0f}%")
    return " · ".join(parts)


def _match_name(face: dict[str, Any]) -> str:
    return str(face.get("ExternalImageId") or str(face.get("FaceId", "?"))[:8])


def faces_of(envelope: ResultEnvelope) -> tuple[list[Face], str | None]:
    """What to draw for an image job's result (faces detected, indexed, searched, identified or recognised as
    celebrities), and a banner when nothing is."""
    response = envelope.response or {}
    faces: list[Face] = []
    if "FaceDetails" in response:
        for number, detail in enumerate(response["FaceDetails"], start=1):
            label = " · ".join(part for part in (str(number), describe_face(detail)) if part)
            faces.append(Face(detail.get("BoundingBox", {}), FACE, label, _landmarks(detail), _outline(detail)))
        return faces, None if faces else "no face found"
    if "FaceRecords" in response:
        for number, record in enumerate(response["FaceRecords"], start=1):
            detail = record.get("FaceDetail") or {}
            face_id = str((record.get("Face") or {}).get("FaceId", ""))[:8]
            label = f"{number} · indexed {face_id}"
            faces.append(Face(detail.get("BoundingBox", {}), FACE, label, _landmarks(detail), _outline(detail)))
        for unindexed in response.get("UnindexedFaces", []):
            detail = unindexed.get("FaceDetail") or {}
            reasons = ",".join(unindexed.get("Reasons", [])).lower() or "left out"
            faces.append(Face(detail.get("BoundingBox", {}), NO_MATCH, f"not indexed: {reasons}"))
        return faces, None if faces else "no face indexed"
    if "UserMatches" in response:
        return _identified(response)
    if "CelebrityFaces" in response:
        return _celebrities(envelope)
    if "SearchedFaceBoundingBox" in response:
        matches = response.get("FaceMatches", [])
        if matches:
            best = matches[0]
            label = f"{_match_name(best.get('Face') or {})} {float(best.get('Similarity', 0)):.1f}%"
            if len(matches) > 1:
                label += f" (+{len(matches) - 1})"
            faces.append(Face(response["SearchedFaceBoundingBox"], MATCH, label))
        else:
            faces.append(Face(response["SearchedFaceBoundingBox"], NO_MATCH, "no match"))
        return faces, None
    return faces, None


def _identified(response: dict[str, Any]) -> tuple[list[Face], str | None]:
    """A SearchUsersByImage result: the person's name and similarity on the searched face, or "unknown"."""
    faces: list[Face] = []
    searched = (response.get("SearchedFace") or {}).get("FaceDetail")
    if searched is None:
        return faces, "no face found"
    matches = response.get("UserMatches", [])
    if matches:
        label = f"{matches[0]['User']['UserId']} {float(matches[0]['Similarity']):.1f}%"
        faces.append(Face(searched.get("BoundingBox", {}), MATCH, label, _landmarks(searched)))
    else:
        faces.append(Face(searched.get("BoundingBox", {}), NO_MATCH, "unknown", _landmarks(searched)))
    for unsearched in response.get("UnsearchedFaces", []):
        detail = unsearched.get("FaceDetails") or {}
        faces.append(Face(detail.get("BoundingBox", {}), FACE, "not searched"))
    return faces, None


def _celebrities(envelope: ResultEnvelope) -> tuple[list[Face], str | None]:
    """A RecognizeCelebrities result: each celebrity's name and MatchConfidence on their face, strangers in red."""
    faces = [
        Face(seen.box, MATCH, f"{seen.name} {seen.match_confidence:.1f}%", _landmarks(seen.face or {}))
        for seen in celebrities.sightings(envelope)
    ]
    faces += [
        Face(face.get("BoundingBox", {}), NO_MATCH, "unrecognized") for face in celebrities.unrecognized(envelope)
    ]
    return faces, None if faces else "no face found"


def annotate(img: Image.Image, envelope: ResultEnvelope) -> Image.Image:
    """Draw an image job's result (DetectFaces, IndexFaces, a search, RecognizeCelebrities) on its upright photo."""
    if envelope.status is JobStatus.FAILED:
        assert envelope.error is not None
        return draw_faces(img, [], banner=f"failed: {envelope.error.code}")
    faces, banner = faces_of(envelope)
    return draw_faces(img, faces, banner)


@dataclass(frozen=True)
class SideBySide:
    """Two photos on one canvas: where each landed, and at what size, so boxes can be drawn on either."""

    canvas: Image.Image
    left_origin: tuple[int, int]
    left_size: tuple[int, int]
    right_origin: tuple[int, int]
    right_size: tuple[int, int]


def side_by_side(left: Image.Image, right: Image.Image, height_px: int = COMPARE_HEIGHT_PX) -> SideBySide:
    """Put two photos next to each other at the same height, on a dark canvas with a band for a title."""
    gap = max(8, height_px // 50)
    band = max(24, height_px // 16)
    scaled = [img.resize((max(1, round(img.width * height_px / img.height)), height_px)) for img in (left, right)]
    canvas = Image.new("RGB", (scaled[0].width + gap + scaled[1].width, band + height_px), _BACKGROUND)
    canvas.paste(scaled[0], (0, band))
    canvas.paste(scaled[1], (scaled[0].width + gap, band))
    return SideBySide(canvas, (0, band), scaled[0].size, (scaled[0].width + gap, band), scaled[1].size)


def compare_picture(source: Image.Image, target: Image.Image, envelope: ResultEnvelope) -> Image.Image:
    """Draw a CompareFaces result: the source photo (its face in blue) beside the target (matches in green)."""
    layout = side_by_side(source, target)
    canvas = layout.canvas
    left = layout.canvas.crop((*layout.left_origin, *_corner(layout.left_origin, layout.left_size)))
    right = layout.canvas.crop((*layout.right_origin, *_corner(layout.right_origin, layout.right_size)))
    response = envelope.response or {}
    source_faces: list[Face] = []
    target_faces: list[Face] = []
    matches = response.get("FaceMatches", [])
    if "SourceImageFace" in response:
        source_faces.append(Face(response["SourceImageFace"].get("BoundingBox", {}), SOURCE, "source"))
    for match in matches:
        face = match.get("Face") or {}
        label = f"{float(match.get('Similarity', 0)):.1f}%"
        target_faces.append(Face(face.get("BoundingBox", {}), MATCH, label, _landmarks(face)))
    for face in response.get("UnmatchedFaces", []):
        target_faces.append(Face(face.get("BoundingBox", {}), NO_MATCH, "no match", _landmarks(face)))
    # One label size on both sides, whatever the shapes of the two photos.
    font_px = _sizes(canvas)[2]
    canvas.paste(draw_faces(left, source_faces, font_px=font_px), layout.left_origin)
    canvas.paste(draw_faces(right, target_faces, font_px=font_px), layout.right_origin)
    draw = ImageDraw.Draw(canvas)
    if envelope.status is JobStatus.FAILED:
        assert envelope.error is not None
        title, colour = f"failed: {envelope.error.code}", NO_MATCH
    elif matches:
        best = max(float(m.get("Similarity", 0)) for m in matches)
        title, colour = f"match: similarity {best:.1f}%", MATCH
    else:
        title, colour = "no match", NO_MATCH
    band = layout.left_origin[1]
    draw.text((8, band // 2), title, fill=colour, font=_font(max(12, band * 2 // 3)), anchor="lm")
    return canvas


def _corner(origin: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    return origin[0] + size[0], origin[1] + size[1]


# --- Writing the pictures of a batch. ---


def output_name(ref: str, common: str | None) -> Path:
    """Where a photo's picture goes under the output folder: its path below the inputs' common folder.

    JPEG and PNG keep their format; other formats become PNG (named ``photo.webp.png``, so names never clash).
    """
    if ref.startswith("s3://"):
        relative = Path(ref.removeprefix("s3://").partition("?")[0])
    elif common:
        relative = Path(os.path.relpath(os.path.abspath(ref), common))
    else:
        relative = Path(Path(ref).name)
    if relative.suffix.lower() in (".jpg", ".jpeg", ".png"):
        return relative
    return relative.with_name(relative.name + ".png")


def common_folder(refs: Iterable[str]) -> str | None:
    """The deepest folder holding every local photo, or None when there are none."""
    folders = [os.path.dirname(os.path.abspath(ref)) for ref in refs if not ref.startswith("s3://")]
    return os.path.commonpath(folders) if folders else None


def save(img: Image.Image, path: Path) -> Path:
    """Write a picture, creating folders; JPEG at quality 90, anything else as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        img.save(path, "JPEG", quality=90)
    else:
        img.save(path, "PNG")
    return path


@dataclass
class Annotator:
    """Annotates each result of a batch as it arrives; remembers what it wrote and why it skipped photos."""

    out_dir: Path
    refs: dict[str, str]
    """job id → the photo it ran on (a local path or an s3:// URL)."""
    written: list[Path] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    """reason → number of photos skipped for it."""

    def __post_init__(self) -> None:
        self._common = common_folder(self.refs.values())

    def add(self, envelope: ResultEnvelope) -> Path | None:
        """Write the picture for one image job's result; None when skipped."""
        ref = self.refs.get(envelope.job_id) or envelope.label
        if not ref:
            self._skip("the job names no photo")
            return None
        try:
            img = load_upright(ref)
        except AnnotationSkipped as why:
            self._skip(str(why))
            return None
        path = save(annotate(img, envelope), self.out_dir / output_name(ref, self._common))
        self.written.append(path)
        return path

    def _skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
