"""The celebrity gallery on disk, with the real face engine: what it accepts, refuses, replaces and forgets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local_rekognition.celebrity_gallery import MANIFEST, CelebrityGallery, GalleryError, read_rgb
from local_rekognition.models import load_engine
from testmedia.photos import astronaut, grace_hopper


def test_the_built_in_people_come_from_the_wheels_portraits(tmp_path: Path) -> None:
    people = {person.celebrity_id: person for person in CelebrityGallery(tmp_path / "none").people()}

    assert people["Q11641"].name == "Grace Hopper"
    assert people["Q11641"].portraits[0].read_bytes() == grace_hopper().read_bytes()
    assert people["EileenCollins"].portraits[0].read_bytes() == astronaut().read_bytes()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"celebrity_id": "not-alnum"}, "letters and digits"),
        ({"celebrity_id": "Q11641"}, "already in the gallery"),
        ({"known_gender": "Robot"}, "known gender"),
        ({"urls": ["x" * 256]}, "URLs"),
        ({"name": " "}, "name"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(tmp_path: Path, change: dict[str, object], reason: str) -> None:
    gallery = CelebrityGallery(tmp_path)
    arguments: dict[str, object] = {"name": "Grace", "celebrity_id": "Grace1", **change}
    name = str(arguments.pop("name"))

    with pytest.raises(GalleryError, match=reason):
        gallery.add(load_engine(), name, [grace_hopper()], **arguments)  # type: ignore[arg-type]
    assert not list(tmp_path.glob(f"*/{MANIFEST}"))


def test_an_added_person_is_replaced_only_when_asked_and_can_be_removed(tmp_path: Path) -> None:
    gallery = CelebrityGallery(tmp_path, include_built_in=False)
    engine = load_engine()
    gallery.add(engine, "First", [grace_hopper()], celebrity_id="P1")
    with pytest.raises(GalleryError, match="already"):
        gallery.add(engine, "Second", [astronaut()], celebrity_id="P1")

    gallery.add(engine, "Second", [astronaut()], celebrity_id="P1", replace=True)

    [person] = gallery.people()
    assert person.name == "Second"
    embedding = engine.analyze(read_rgb(astronaut()), want_embeddings=True)[0].embedding
    assert embedding is not None
    match = gallery.best_match(engine, embedding)
    assert match is not None and match[0].celebrity_id == "P1" and match[1] >= 80
    assert gallery.remove("P1") and gallery.people() == [] and not gallery.remove("P1")
    assert not any(tmp_path.iterdir())


def test_a_directory_someone_else_left_there_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / MANIFEST).write_text(json.dumps({"Name": "no id"}))

    assert [person.celebrity_id for person in CelebrityGallery(tmp_path).people()] == ["Q11641", "EileenCollins"]
