"""Benchmark: who is this? A person's centroid (SearchUsersByImage) against their best single face (SearchFacesByImage).

Each person is enrolled from three photos through local_rekognition's real API (IndexFaces, CreateUser,
AssociateFaces); held-back photos, clean and degraded (blurred, shrunk, shrunk and JPEG-crushed, noisy), are
then identified two ways in the same run:

  person  SearchUsersByImage: the query against the mean of each user's unit face embeddings (user_scoring.py)
  best    SearchFacesByImage: the query against every face; a user scores the best similarity of its faces

A probe is named when its top user scores at least the threshold (Rekognition's default, 80), else "unknown".
Closed set: the probe's person is enrolled (correct, wrong person, unknown). Open set: the same scores with the
probe's own person removed, as if a stranger walked in, plus a person never enrolled (scikit-image's cameraman):
any name is a false match. Photos: the wheel portraits (Grace Hopper from matplotlib, Eileen Collins from
scikit-image, extra views by flipping, cropping and relighting) and, when present, the shared set's Obama and Biden.

Three enrolments, each in its own collection: three good photos; the third photo noisy (s=40); the third photo
shrunk to 160 px. A poor enrolment photo is where one face can go wrong: its embedding sits nearer to everyone.

    python bench/user_identification.py [--threshold 80] [--sweep 50,60,70,80,90]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._stack import wait  # noqa: E402 - needs ROOT on sys.path first

SHARED_IMAGES = ROOT.parent / "shared" / "images"
_LISTENING = "local_rekognition listening on "


def _jpeg(img: Image.Image, quality: int = 92) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def _open(data: bytes) -> Image.Image:
    return ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")


def views(data: bytes) -> dict[str, bytes]:
    """The same extra views as testmedia/imaging.py: mirrored, cropped closer, darker, brighter."""
    photo = _open(data)
    width, height = photo.size
    inset = (round(width * 0.1), round(height * 0.08), round(width * 0.9), round(height * 0.95))
    return {
        "flipped": _jpeg(ImageOps.mirror(photo)),
        "cropped": _jpeg(photo.crop(inset).resize((width, height))),
        "darker": _jpeg(ImageEnhance.Brightness(photo).enhance(0.6)),
        "brighter": _jpeg(ImageEnhance.Contrast(ImageEnhance.Brightness(photo).enhance(1.3)).enhance(0.8)),
    }


def _shrink(data: bytes, long_side: int, quality: int = 92) -> bytes:
    photo = _open(data)
    scale = long_side / max(photo.size)
    size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
    return _jpeg(photo.resize(size, Image.Resampling.BILINEAR), quality)


def _noisy(data: bytes, sigma: float) -> bytes:
    pixels = np.asarray(_open(data), dtype=np.float32)
    noise = np.random.default_rng(0).normal(0, sigma, pixels.shape)
    return _jpeg(Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8)))


DEGRADATIONS: dict[str, Callable[[bytes], bytes]] = {
    "clean": lambda data: data,
    "blur r=4": lambda data: _jpeg(_open(data).filter(ImageFilter.GaussianBlur(4))),
    "long side 160": lambda data: _shrink(data, 160),
    "long side 110, q=25": lambda data: _shrink(data, 110, quality=25),
    "noise s=40": lambda data: _noisy(data, 40.0),
}


@dataclass(frozen=True)
class Person:
    name: str
    enrol: dict[str, bytes]
    held_back: dict[str, bytes]


def stranger() -> Person:
    """scikit-image's cameraman: never enrolled, so every name given to his photos is a false match."""
    import skimage

    original = (Path(skimage.__file__).parent / "data" / "camera.png").read_bytes()
    return Person("cameraman", {}, {"cameraman": original, **views(original)})


ENROLMENTS: dict[str, Callable[[bytes], bytes] | None] = {
    "three good photos": None,
    "third photo noisy": DEGRADATIONS["noise s=40"],
    "third photo 160 px": DEGRADATIONS["long side 160"],
}
"""How the third enrolment photo of each person is spoiled, per scenario."""


def people() -> list[Person]:
    """Who is enrolled from what, and which photos are held back."""
    import matplotlib
    import skimage

    found: list[Person] = []
    wheel = {
        "grace": Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
        "eileen": Path(skimage.__file__).parent / "data" / "astronaut.png",
    }
    for name, path in wheel.items():
        original = path.read_bytes()
        extra = views(original)
        found.append(
            Person(
                name,
                {f"{name}": original, f"{name}-flipped": extra["flipped"], f"{name}-darker": extra["darker"]},
                {f"{name}-cropped": extra["cropped"], f"{name}-brighter": extra["brighter"]},
            )
        )
    if SHARED_IMAGES.is_dir():

        def read(*names: str) -> dict[str, bytes]:
            return {name: (SHARED_IMAGES / f"{name}.jpg").read_bytes() for name in names}

        found.append(
            Person(
                "obama",
                read("obama", "obama1", "obama2"),
                read("obama3", "obama-240p", "obama-1080p", "obama_partial_face"),
            )
        )
        biden = read("biden2")["biden2"]
        biden_views = views(biden)
        found.append(
            Person(
                "biden",
                {"biden2": biden, "biden2-flipped": biden_views["flipped"], "biden2-darker": biden_views["darker"]},
                read("biden"),
            )
        )
    else:
        print(f"note: {SHARED_IMAGES} is absent: the wheel portraits only", file=sys.stderr)
    return found


@contextlib.contextmanager
def local_rekognition(data_dir: Path) -> Iterator[str]:
    """A local_rekognition process on a free port; yields its URL."""
    log = data_dir / "server.log"
    data = str(data_dir / "data")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "local_rekognition", "--host", "127.0.0.1", "--port", "0", "--data-dir", data],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url: list[str] = []

    def listening() -> bool:
        if process.poll() is not None:
            raise SystemExit(f"local_rekognition exited:\n{log.read_text()[-2000:]}")
        url.extend(
            line[len(_LISTENING) :].strip() for line in log.read_text().splitlines() if line.startswith(_LISTENING)
        )
        return bool(url)

    try:
        wait(listening, 120, "local_rekognition to listen")
        yield url[0]
    finally:
        process.terminate()
        process.wait(timeout=30)


def client(url: str) -> Any:
    """A boto3 Rekognition client for the local server (fake credentials)."""
    import boto3

    return boto3.client(
        "rekognition", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def enrol(rekognition: Any, collection: str, person: Person, spoil: Callable[[bytes], bytes] | None) -> int:
    """Index the person's largest face in each enrolment photo (the last one spoiled) and associate them with the
    user; the number of faces associated."""
    faces = []
    photos = list(person.enrol.items())
    for number, (name, original) in enumerate(photos, start=1):
        data = spoil(original) if spoil is not None and number == len(photos) else original
        indexed = rekognition.index_faces(
            CollectionId=collection, Image={"Bytes": data}, MaxFaces=1, ExternalImageId=name
        )
        faces += [record["Face"]["FaceId"] for record in indexed["FaceRecords"]]
    rekognition.create_user(CollectionId=collection, UserId=person.name)
    associated = rekognition.associate_faces(
        CollectionId=collection, UserId=person.name, FaceIds=faces, UserMatchThreshold=0
    )
    return len(associated["AssociatedFaces"])


def scores(rekognition: Any, collection: str, image: bytes) -> tuple[dict[str, float], dict[str, float]] | None:
    """Per user: the person-level similarity and the best single-face similarity; None when no face is found."""
    try:
        person = rekognition.search_users_by_image(
            CollectionId=collection, Image={"Bytes": image}, UserMatchThreshold=0, MaxUsers=500
        )
        faces = rekognition.search_faces_by_image(
            CollectionId=collection, Image={"Bytes": image}, FaceMatchThreshold=0, MaxFaces=4096
        )
    except rekognition.exceptions.InvalidParameterException:
        return None  # SearchFacesByImage: no face in the image
    if "SearchedFace" not in person:
        return None
    by_person = {match["User"]["UserId"]: match["Similarity"] for match in person["UserMatches"]}
    best: dict[str, float] = {}
    for match in faces["FaceMatches"]:
        user = match["Face"].get("UserId")
        if user is not None:
            best[user] = max(best.get(user, 0.0), match["Similarity"])
    return by_person, best


@dataclass
class Tally:
    probes: int = 0
    correct: int = 0
    wrong: int = 0
    unknown: int = 0
    no_face: int = 0
    strangers_named: int = 0
    genuine: list[float] | None = None
    impostor: list[float] | None = None

    def add(self, truth: str, by_user: dict[str, float] | None, threshold: float) -> None:
        self.probes += 1
        self.genuine = self.genuine if self.genuine is not None else []
        self.impostor = self.impostor if self.impostor is not None else []
        if by_user is None:
            self.no_face += truth != "cameraman"  # a stranger without a face cannot be named anyway
            return
        others = {user: score for user, score in by_user.items() if user != truth}
        self.impostor.append(max(others.values(), default=0.0))
        # Open set: the same probe when its own person is not enrolled
        if others and max(others.values()) >= threshold:
            self.strangers_named += 1
        if truth == "cameraman":
            return  # never enrolled: only the open set counts
        self.genuine.append(by_user.get(truth, 0.0))
        top = max(by_user, key=lambda user: by_user[user])
        if by_user[top] < threshold:
            self.unknown += 1
        elif top == truth:
            self.correct += 1
        else:
            self.wrong += 1


Scored = list[tuple[str, str, dict[str, float] | None, dict[str, float] | None]]
"""(condition, who the probe shows, person-level scores by user, best-single-face scores by user) per probe."""


def run_scenario(url: str, collection: str, everyone: list[Person], spoil: Callable[[bytes], bytes] | None) -> Scored:
    """Enrol everyone in a fresh collection, then score every held-back photo (and the stranger's) per condition."""
    rekognition = client(url)
    rekognition.create_collection(CollectionId=collection)
    for person in everyone:
        enrol(rekognition, collection, person, spoil)
    scored: Scored = []
    for level, degrade in DEGRADATIONS.items():
        for person in [*everyone, stranger()]:
            for data in person.held_back.values():
                found = scores(rekognition, collection, degrade(data))
                scored.append((level, person.name, found[0] if found else None, found[1] if found else None))
    return scored


def tally(scored: Scored, method: str, threshold: float, level: str = "all") -> Tally:
    """The tally of one method over the probes of one condition (or all)."""
    column = 2 if method == "person" else 3
    result = Tally()
    for row in scored:
        if level in ("all", row[0]):
            result.add(row[1], row[column], threshold)  # type: ignore[arg-type]
    return result


def report(name: str, scored: Scored, threshold: float, sweep: list[float]) -> tuple[Tally, Tally]:
    """Print one scenario's tables; its person-level and best-single-face tallies over all probes."""
    known = sum(1 for row in scored if row[1] != "cameraman")
    print(f"\n== {name}: {known} probes of enrolled people, {len(scored) - known} of the stranger")
    header = (
        f"{'condition':20} {'method':7} {'correct':>8} {'wrong':>6} {'unknown':>8} {'no face':>8} {'strangers':>10}"
    )
    print(header + f" {'min genuine':>12} {'max impostor':>13} {'mean impostor':>14}")
    for level in [*DEGRADATIONS, "all"]:
        for method in ("person", "best"):
            t = tally(scored, method, threshold, level)
            print(
                f"{level:20} {method:7} {t.correct:>8} {t.wrong:>6} {t.unknown:>8} {t.no_face:>8}"
                f" {t.strangers_named:>10} {min(t.genuine or [0.0]):>12.1f} {max(t.impostor or [0.0]):>13.1f}"
                f" {float(np.mean(t.impostor or [0.0])):>14.2f}"
            )
    print("threshold sweep: correct / strangers named, person-level | best single face")
    for value in sweep:
        person, best = tally(scored, "person", value), tally(scored, "best", value)
        print(
            f"  {value:>5g}  person {person.correct:>3}/{known} {person.strangers_named:>3}"
            f"   best {best.correct:>3}/{known} {best.strangers_named:>3}"
        )
    return tally(scored, "person", threshold), tally(scored, "best", threshold)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--threshold", type=float, default=80.0)
    parser.add_argument("--sweep", default="20,30,40,50,60,80", help="thresholds for the sweep table")
    args = parser.parse_args()
    everyone = people()
    sweep = [float(value) for value in args.sweep.split(",") if value]
    for member in everyone:
        print(f"{member.name}: enrolled from {', '.join(member.enrol)}; held back {', '.join(member.held_back)}")
    print(f"conditions of the held-back photos: {', '.join(DEGRADATIONS)}")
    headline = []
    with tempfile.TemporaryDirectory() as directory, local_rekognition(Path(directory)) as url:
        for number, (name, spoil) in enumerate(ENROLMENTS.items()):
            scored = run_scenario(url, f"bench-users-{number}", everyone, spoil)
            person, best = report(name, scored, args.threshold, sweep)
            known = sum(1 for row in scored if row[1] != "cameraman")
            headline.append(
                f"{name}: person {person.correct}/{known} correct, {person.wrong + person.strangers_named} false,"
                f" max impostor {max(person.impostor or [0.0]):.1f} | best {best.correct}/{known} correct,"
                f" {best.wrong + best.strangers_named} false, max impostor {max(best.impostor or [0.0]):.1f}"
            )
    print(f"\nheadline at threshold {args.threshold:g} (false = wrong person + strangers named):")
    for line in headline:
        print(f"  {line}")


if __name__ == "__main__":
    main()
