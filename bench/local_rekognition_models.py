"""Benchmark: local_rekognition's face models against face_recognition (dlib HOG + ResNet) on one core.

Both libraries see the same photos, shrunk to 640 px on the long side, in the same run, pinned to one CPU.
Prints photos/s and latency p50/p99 for DetectFaces DEFAULT and ALL and for embedding (what IndexFaces and
SearchFacesByImage pay), then same/different-person verification at each library's own threshold.
The last line carries the headline ratio.

Then small faces (bench/small_faces.py): same/different-person similarity of faces 40-60 px wide and IndexFaces
counts, for the engine's embedder and the one before it, from the same run.

    python bench/local_rekognition_models.py [--photos N] [--repeat R] [--cpu C]
        [--people-photos DIR] [--group-photos DIR] [--no-small-faces]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED_IMAGES = ROOT.parent / "shared" / "images"
LONG_SIDE = 640
from local_rekognition.faces import ATTRIBUTE_MEMBERS  # noqa: E402 - needs ROOT on sys.path first

ALL_ATTRIBUTES = frozenset(ATTRIBUTE_MEMBERS)
# The members issue 23 added (glasses, facial hair, occlusion): ALL without them is what ALL cost before, timed in
# the same run.
NEWER_MEMBERS = frozenset({"EYEGLASSES", "SUNGLASSES", "BEARD", "MUSTACHE", "FACE_OCCLUDED"})
# face_recognition's own default: two encodings closer than 0.6 are the same person.
PEER_TOLERANCE = 0.6
OURS_THRESHOLD = 80.0


@dataclass(frozen=True)
class Photo:
    name: str
    image: np.ndarray
    person: str | None
    """Who the photo shows, when it shows one person (for verification pairs)."""


@dataclass(frozen=True)
class Timing:
    operation: str
    library: str
    latencies_ms: list[float]

    @property
    def photos_per_s(self) -> float:
        return 1000.0 / statistics.fmean(self.latencies_ms)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q))


def _person(name: str) -> str | None:
    if name.startswith(("two_people", "obama_and_biden")):
        return None
    if name.startswith("biden"):
        return "biden"
    if name.startswith("obama") or name == "32bit.png":
        return "obama"
    if name == "grace_hopper.jpg":
        return "hopper"
    return None


def load_photos(limit: int | None) -> list[Photo]:
    """The shared photos (when present) and Grace Hopper, each shrunk to 640 px on its long side."""
    import matplotlib

    paths = sorted(SHARED_IMAGES.glob("*.jpg")) + sorted(SHARED_IMAGES.glob("*.png")) if SHARED_IMAGES.is_dir() else []
    paths.append(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    photos = []
    for path in paths[:limit]:
        with Image.open(path) as opened:
            rgb = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
        scale = LONG_SIDE / max(rgb.shape[:2])
        if scale < 1:
            size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        photos.append(Photo(path.name, np.ascontiguousarray(rgb), _person(path.name)))
    return photos


def measure(
    operations: Sequence[tuple[str, str, Callable[[np.ndarray], Any]]], photos: Sequence[Photo], repeat: int
) -> list[Timing]:
    """Latency of every (operation, library, call) on every photo, ``repeat`` times, after one warm-up pass.

    The calls are interleaved photo by photo, so that load from other processes on the machine falls on
    both libraries alike instead of on whichever happened to run at the time.
    """
    for _, _, call in operations:
        for photo in photos:
            call(photo.image)
    latencies: list[list[float]] = [[] for _ in operations]
    for _ in range(repeat):
        for photo in photos:
            for samples, (_, _, call) in zip(latencies, operations, strict=True):
                start = time.perf_counter()
                call(photo.image)
                samples.append((time.perf_counter() - start) * 1000.0)
    return [
        Timing(operation, library, samples)
        for (operation, library, _), samples in zip(operations, latencies, strict=True)
    ]


def verification(
    embeddings: dict[str, Any], photos: Sequence[Photo], same: Callable[[Any, Any], bool]
) -> tuple[int, int]:
    """(correct, total) over every pair of one-person photos; a photo with no face fails its pairs."""
    people = [photo for photo in photos if photo.person]
    correct = total = 0
    for a, b in itertools.combinations(people, 2):
        total += 1
        ea, eb = embeddings.get(a.name), embeddings.get(b.name)
        if ea is not None and eb is not None and same(ea, eb) == (a.person == b.person):
            correct += 1
    return correct, total


class Ours:
    name = "local_rekognition"

    def __init__(self) -> None:
        from local_rekognition.models import load_engine

        self.engine = load_engine()

    def detect_default(self, image: np.ndarray) -> Any:
        return self.engine.analyze(image)

    def detect_all(self, image: np.ndarray) -> Any:
        return self.engine.analyze(image, attributes=ALL_ATTRIBUTES)

    def detect_all_older(self, image: np.ndarray) -> Any:
        return self.engine.analyze(image, attributes=ALL_ATTRIBUTES - NEWER_MEMBERS)

    def embed(self, image: np.ndarray) -> Any:
        faces = self.engine.analyze(image, want_embeddings=True)
        return faces[0].embedding if faces else None

    def embed_before(self, image: np.ndarray) -> Any:
        """The same call with the embedder before the mesh alignment (SFace on YuNet's points only): the baseline."""
        from local_rekognition.models import pipeline
        from local_rekognition.models.embedder import aligned_face, embed

        current = pipeline.face_embedding
        pipeline.face_embedding = lambda bgr, face, mesh: embed(aligned_face(bgr, face))
        try:
            return self.embed(image)
        finally:
            pipeline.face_embedding = current

    def same(self, a: Any, b: Any) -> bool:
        return self.engine.similarity(a, b) >= OURS_THRESHOLD


class Peer:
    """face_recognition 1.3.0 with its defaults: HOG upsampled once, 5-point shape, ResNet, 1 jitter."""

    name = "face_recognition"

    def __init__(self) -> None:
        try:
            import face_recognition  # type: ignore[import-not-found]

            self.api: Any = face_recognition
            self.label = "face_recognition"
        except ImportError:
            # face_recognition needs the `dlib` distribution, which has no wheel here; with dlib-bin
            # installed, its api.py is reproduced call for call on dlib and face_recognition_models.
            import dlib  # type: ignore[import-untyped]
            import face_recognition_models  # type: ignore[import-untyped]

            self.api = None
            self.label = "face_recognition via dlib-bin"
            self.detector = dlib.get_frontal_face_detector()
            self.shape = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
            self.encoder = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())

    def _locations(self, image: np.ndarray) -> Any:
        if self.api is not None:
            return self.api.face_locations(image)
        return self.detector(image, 1)

    def detect_default(self, image: np.ndarray) -> Any:
        if self.api is not None:
            locations = self.api.face_locations(image)
            return self.api.face_landmarks(image, locations, model="small")
        return [self.shape(image, rect) for rect in self.detector(image, 1)]

    def embed(self, image: np.ndarray) -> Any:
        if self.api is not None:
            locations = self.api.face_locations(image)
            encodings = self.api.face_encodings(image, locations)
            if not encodings:
                return None
            areas = [(bottom - top) * (right - left) for top, right, bottom, left in locations]
            return encodings[int(np.argmax(areas))]
        rects = list(self.detector(image, 1))
        if not rects:
            return None
        largest = max(rects, key=lambda rect: rect.area())
        return np.asarray(self.encoder.compute_face_descriptor(image, self.shape(image, largest), 1))

    def same(self, a: Any, b: Any) -> bool:
        return float(np.linalg.norm(np.asarray(a) - np.asarray(b))) <= PEER_TOLERANCE


def load_peer() -> Peer | None:
    try:
        return Peer()
    except ImportError:
        return None


def _row(operation: str, library: str, throughput: str, p50: str, p99: str) -> None:
    print(f"| {operation:24} | {library:48} | {throughput:>8} | {p50:>7} | {p99:>7} |")


def pin_to_one_cpu(cpu: int | None) -> int:
    """Run this process on one CPU, as one server worker thread would; returns the CPU used."""
    allowed = sorted(os.sched_getaffinity(0))
    chosen = cpu if cpu is not None and cpu in allowed else allowed[0]
    os.sched_setaffinity(0, {chosen})
    cv2.setNumThreads(1)
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=None, help="use only the first N photos")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes over the photos")
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the first allowed)")
    parser.add_argument("--people-photos", type=Path, help="labelled photos of bench/small_face_photos.json")
    parser.add_argument("--group-photos", type=Path, help="dlib's examples/faces (photos and box XML)")
    parser.add_argument("--no-small-faces", action="store_true", help="skip the small-face figures")
    args = parser.parse_args(argv)

    cpu = pin_to_one_cpu(args.cpu)
    photos = load_photos(args.photos)
    print(f"{len(photos)} photos at {LONG_SIDE} px long side, {args.repeat} timed passes, pinned to CPU {cpu}")

    ours = Ours()
    peer = load_peer()
    if peer is None:
        print("face_recognition is NOT installed: peer columns are skipped (see bench/README.md).")

    operations: list[tuple[str, str, Callable[[np.ndarray], Any]]] = [
        ("DetectFaces DEFAULT", ours.name, ours.detect_default),
        ("DetectFaces ALL", ours.name, ours.detect_all),
        ("ALL less glasses/hair/occl.", ours.name, ours.detect_all_older),
        ("embedding (IndexFaces)", ours.name, ours.embed),
        ("embedding (IndexFaces)", f"{ours.name}, YuNet-only embedder (before)", ours.embed_before),
    ]
    if peer is not None:
        operations.insert(1, ("DetectFaces DEFAULT", peer.label, peer.detect_default))
        operations.append(("embedding (IndexFaces)", peer.label, peer.embed))
    timings = measure(operations, photos, args.repeat)

    print()
    _row("operation", "library", "photos/s", "p50 ms", "p99 ms")
    print(f"|{'-' * 26}|{'-' * 50}|{'-' * 10}|{'-' * 9}|{'-' * 9}|")
    for timing in timings:
        _row(
            timing.operation,
            timing.library,
            f"{timing.photos_per_s:.1f}",
            f"{timing.percentile(50):.1f}",
            f"{timing.percentile(99):.1f}",
        )

    default = timings[0]
    faces = sum(len(ours.detect_default(photo.image)) for photo in photos)
    default_per_face_ms = sum(default.latencies_ms) / (faces * args.repeat)
    for operation, label in (("ALL less glasses/hair/occl.", "ALL before issue 23"), ("DetectFaces ALL", "ALL")):
        timing = next(t for t in timings if t.operation == operation)
        per_face_ms = default_per_face_ms + (sum(timing.latencies_ms) - sum(default.latencies_ms)) / (
            faces * args.repeat
        )
        print(
            f"per face ({faces} faces): DEFAULT {default_per_face_ms:.1f} ms, {label} {per_face_ms:.1f} ms "
            f"({label} = {per_face_ms / default_per_face_ms:.2f}x DEFAULT; budget 2x)"
        )
    ours_ok, pairs = verification({p.name: ours.embed(p.image) for p in photos if p.person}, photos, ours.same)
    _row("verification (pairs ok)", f"{ours.name} (similarity >= 80)", f"{ours_ok}/{pairs}", "", "")
    before_ok, _ = verification({p.name: ours.embed_before(p.image) for p in photos if p.person}, photos, ours.same)
    _row("verification (pairs ok)", "YuNet-only embedder (before)", f"{before_ok}/{pairs}", "", "")
    peer_ok = 0
    if peer is not None:
        peer_ok, _ = verification({p.name: peer.embed(p.image) for p in photos if p.person}, photos, peer.same)
        _row("verification (pairs ok)", f"{peer.label} (distance <= 0.6)", f"{peer_ok}/{pairs}", "", "")
    if not args.no_small_faces:
        from bench.small_faces import report

        for line in report(SHARED_IMAGES, args.people_photos, args.group_photos):
            print(line)
    if peer is None:
        print(
            "headline: face_recognition absent, no ratio; DetectFaces DEFAULT "
            f"{default.photos_per_s:.1f} photos/s, p50 {default.percentile(50):.1f} ms"
        )
        return 0
    ratio = default.photos_per_s / timings[1].photos_per_s
    print(
        f"headline: DetectFaces DEFAULT {ratio:.1f}x face_recognition's throughput "
        f"({default.photos_per_s:.1f} vs {timings[1].photos_per_s:.1f} photos/s, "
        f"p50 {default.percentile(50):.1f} ms), verification {ours_ok}/{pairs} vs {peer_ok}/{pairs}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
