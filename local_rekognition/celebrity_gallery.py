"""The celebrity gallery behind RecognizeCelebrities: named people, each with portraits, an id and URLs.

Two sources. Built in: the public-domain portraits that pinned wheels carry (Grace Hopper in matplotlib's,
Eileen Collins in scikit-image's), taken out and sha256-checked by ``make install`` (models/wheel_weights.py), with
their public identifiers. Added by an operator
(``local-rekognition celebrities add``): one directory per person under ``<data_dir>/celebrities/<Id>/``, holding
``celebrity.json`` (Id, Name, Urls, KnownGender) and the portraits, written whole and renamed into place so a
running server never reads half a person. The server embeds every portrait once per change of the directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from local_rekognition.models import wheel_weights
from local_rekognition.models.engine import Embedding, FaceEngine

ID_PATTERN = re.compile(r"[0-9A-Za-z]{1,64}")
"""RekognitionUniqueId's pattern in the service model, with a length we can keep on disk."""
KNOWN_GENDERS = ("Male", "Female", "Nonbinary", "Unlisted")
"""KnownGenderType's values."""
MAX_URLS = 255
MAX_URL_CHARS = 255
MANIFEST = "celebrity.json"
PORTRAIT_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Celebrity:
    """One person the gallery can name."""

    celebrity_id: str
    name: str
    urls: tuple[str, ...]
    known_gender: str | None
    portraits: tuple[Path, ...]

    def info(self) -> dict[str, Any]:
        """Name, Urls and KnownGender, as GetCelebrityInfo answers them."""
        answer: dict[str, Any] = {"Urls": list(self.urls), "Name": self.name}
        if self.known_gender is not None:
            answer["KnownGender"] = {"Type": self.known_gender}
        return answer


class GalleryError(ValueError):
    """A person cannot be added as asked; the message says why."""


# (Id, Name, Urls, KnownGender, portrait file in wheel_weights). The Id is the Wikidata item where one was checked.
_BUILT_IN: tuple[tuple[str, str, tuple[str, ...], str, str], ...] = (
    (
        "Q11641",
        "Grace Hopper",
        ("www.wikidata.org/wiki/Q11641", "en.wikipedia.org/wiki/Grace_Hopper"),
        "Female",
        "grace_hopper.jpg",
    ),
    ("EileenCollins", "Eileen Collins", ("en.wikipedia.org/wiki/Eileen_Collins",), "Female", "astronaut.png"),
)


def built_in() -> list[Celebrity]:
    """The people whose public-domain portraits ship in pinned wheels (matplotlib's and scikit-image's sample data).

    Raises WeightsMissing, naming the command that restores them, when a portrait is absent or altered.
    """
    return [
        Celebrity(celebrity_id, name, urls, gender, (wheel_weights.path(portrait),))
        for celebrity_id, name, urls, gender, portrait in _BUILT_IN
    ]


def read_rgb(path: Path) -> np.ndarray:
    """A portrait as an upright H×W×3 RGB array."""
    try:
        with Image.open(path) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise GalleryError(f"{path} is not a JPEG or PNG image: {exc}") from exc


def portrait_embedding(engine: FaceEngine, path: Path) -> Embedding:
    """The embedding of the largest face in a portrait; GalleryError when it has none."""
    faces = engine.analyze(read_rgb(path), want_embeddings=True, max_faces=100)
    if not faces or faces[0].embedding is None:
        raise GalleryError(f"{path} shows no face the face models can find: use a clear portrait")
    largest = max(faces, key=lambda face: face.box.width * face.box.height)
    assert largest.embedding is not None
    return largest.embedding


class CelebrityGallery:
    """The built-in people and those under ``directory``; safe to use from several threads."""

    def __init__(self, directory: Path, *, include_built_in: bool = True) -> None:
        self.directory = directory
        self._built_in = built_in() if include_built_in else []
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._faces: list[tuple[Celebrity, Embedding]] = []

    def people(self) -> list[Celebrity]:
        """Everyone in the gallery, built-in first; an added person with a built-in Id replaces it."""
        added = self._added()
        ids = {person.celebrity_id for person in added}
        return [person for person in self._built_in if person.celebrity_id not in ids] + added

    def get(self, celebrity_id: str) -> Celebrity | None:
        """The person with this Id, if any."""
        return next((person for person in self.people() if person.celebrity_id == celebrity_id), None)

    def _added(self) -> list[Celebrity]:
        if not self.directory.is_dir():
            return []
        people = []
        for manifest in sorted(self.directory.glob(f"*/{MANIFEST}")):
            try:
                record = json.loads(manifest.read_text("utf-8"))
                people.append(
                    Celebrity(
                        celebrity_id=str(record["Id"]),
                        name=str(record["Name"]),
                        urls=tuple(str(url) for url in record.get("Urls", [])),
                        known_gender=record.get("KnownGender"),
                        portraits=tuple(manifest.parent / name for name in record["Portraits"]),
                    )
                )
            except (OSError, ValueError, KeyError, TypeError):
                continue  # not one of ours: every manifest we write is renamed into place whole
        return people

    def _signature(self) -> tuple[Any, ...]:
        if not self.directory.is_dir():
            return ()
        return tuple(
            (path.parent.name, path.stat().st_mtime_ns) for path in sorted(self.directory.glob(f"*/{MANIFEST}"))
        )

    def faces(self, engine: FaceEngine) -> list[tuple[Celebrity, Embedding]]:
        """(person, embedding) for every portrait, computed again only when the gallery or the model changed."""
        key = (engine.face_model_version, self._signature())
        with self._lock:
            if key != self._key:
                faces = []
                for person in self.people():
                    for portrait in person.portraits:
                        try:
                            faces.append((person, portrait_embedding(engine, portrait)))
                        except GalleryError:
                            continue  # checked when added; a portrait replaced by hand since then is skipped
                self._faces, self._key = faces, key
            return list(self._faces)

    def best_match(self, engine: FaceEngine, embedding: Embedding) -> tuple[Celebrity, float] | None:
        """The most similar person and that similarity (0-100), or None for an empty gallery."""
        scored = [(engine.similarity(embedding, face), person) for person, face in self.faces(engine)]
        if not scored:
            return None
        similarity, person = max(scored, key=lambda pair: pair[0])
        return person, similarity

    def add(
        self,
        engine: FaceEngine,
        name: str,
        portraits: Sequence[Path],
        *,
        urls: Sequence[str] = (),
        known_gender: str | None = None,
        celebrity_id: str | None = None,
        replace: bool = False,
    ) -> Celebrity:
        """Add (or with ``replace``, overwrite) one person; every portrait must show a face."""
        celebrity_id = celebrity_id or uuid.uuid4().hex[:12]
        if not ID_PATTERN.fullmatch(celebrity_id):
            raise GalleryError(f"id {celebrity_id!r} must be 1-64 letters and digits (Rekognition's id pattern)")
        if not name.strip():
            raise GalleryError("a name is required")
        if known_gender is not None and known_gender not in KNOWN_GENDERS:
            raise GalleryError(f"known gender must be one of {', '.join(KNOWN_GENDERS)}")
        if len(urls) > MAX_URLS or any(not url or len(url) > MAX_URL_CHARS for url in urls):
            raise GalleryError(f"at most {MAX_URLS} URLs of 1-{MAX_URL_CHARS} characters each")
        if not portraits:
            raise GalleryError("at least one portrait is required")
        target = self.directory / celebrity_id
        if not replace and (target.exists() or any(p.celebrity_id == celebrity_id for p in self._built_in)):
            raise GalleryError(f"id {celebrity_id} is already in the gallery (pass --replace to overwrite it)")
        for portrait in portraits:
            if portrait.suffix.lower() not in PORTRAIT_SUFFIXES:
                raise GalleryError(f"{portrait} is not a .jpg, .jpeg or .png file")
            portrait_embedding(engine, portrait)
        self.directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.directory, prefix=".adding-"))
        try:
            names = []
            for index, portrait in enumerate(portraits, start=1):
                names.append(f"portrait-{index}{portrait.suffix.lower()}")
                shutil.copyfile(portrait, staging / names[-1])
            record = {"Id": celebrity_id, "Name": name, "Urls": list(urls), "KnownGender": known_gender}
            (staging / MANIFEST).write_text(json.dumps({**record, "Portraits": names}, indent=2), "utf-8")
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return Celebrity(celebrity_id, name, tuple(urls), known_gender, tuple(target / n for n in names))

    def remove(self, celebrity_id: str) -> bool:
        """Remove an added person; False when there is none with that Id (built-in people cannot be removed)."""
        target = self.directory / celebrity_id
        if not ID_PATTERN.fullmatch(celebrity_id) or not (target / MANIFEST).is_file():
            return False
        shutil.rmtree(target)
        return True
