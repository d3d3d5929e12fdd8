"""Lay out the development set's photos from clones of their repositories: python scripts/dev_faces.py.

tests/data/dev_faces.csv holds the labels, tests/data/dev_faces_sources.toml each source's repository and commit.
The photos are taken with ``git show COMMIT:PATH`` from a clone of that repository into tests/data/dev_faces/
(ignored by git), so they are the very bytes the labels were made on. A clone is looked for, per repository
``owner/name``, at ``MIRRORS/owner+name/repo``, ``MIRRORS/owner+name`` and ``MIRRORS/name``; clone the missing ones
there with ``git clone https://github.com/owner/name``. The two wheel portraits are copied from their installed
packages (matplotlib, scikit-image), so every clone has at least those.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
LABELS = DATA / "dev_faces.csv"
SOURCES = DATA / "dev_faces_sources.toml"
PHOTOS = DATA / "dev_faces"
"""Where the photos are laid out, one file per face named ``<face>.<ext>``."""
DEFAULT_MIRRORS = Path("/work/.mirror")


@dataclass(frozen=True)
class DevFace:
    """One labelled face of the development set."""

    face: str
    source: str
    path: str
    labels: dict[str, str]

    @property
    def photo(self) -> Path:
        """Where scripts/dev_faces.py lays this face's photo out."""
        return PHOTOS / f"{self.face}{Path(self.path).suffix}"


def dev_faces() -> list[DevFace]:
    """Every face of tests/data/dev_faces.csv, in file order."""
    with LABELS.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [DevFace(face=row["face"], source=row["source"], path=row["path"], labels=dict(row)) for row in rows]


def sources() -> dict[str, dict[str, str]]:
    """The [source.*] tables of tests/data/dev_faces_sources.toml."""
    with SOURCES.open("rb") as handle:
        table: dict[str, dict[str, str]] = tomllib.load(handle)["source"]
    return table


def _from_package(face: DevFace) -> bool:
    package, _, inside = face.path.partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return False
    shutil.copyfile(Path(spec.origin).parent / inside, face.photo)
    return True


def clone_of(mirrors: Path, repo: str) -> Path | None:
    """A clone of ``repo`` (owner/name) under ``mirrors``, or None."""
    owner, name = repo.split("/")
    for candidate in (mirrors / f"{owner}+{name}" / "repo", mirrors / f"{owner}+{name}", mirrors / name):
        if candidate.is_dir():
            return candidate
    return None


def _missing(faces: list[DevFace]) -> Iterator[DevFace]:
    return (face for face in faces if not face.photo.is_file())


def lay_out(mirrors: Path) -> tuple[int, list[str]]:
    """Write every missing photo; return how many were written and the repositories no clone was found for."""
    known = sources()
    faces = dev_faces()
    written, absent = 0, []
    PHOTOS.mkdir(parents=True, exist_ok=True)
    for key, spec in known.items():
        wanted = [face for face in _missing(faces) if face.source == key]
        if not wanted:
            continue
        if spec.get("package"):
            written += sum(_from_package(face) for face in wanted)
            continue
        clone = clone_of(mirrors, spec["repo"])
        if clone is None:
            absent.append(spec["repo"])
            continue
        for face in wanted:
            data = subprocess.run(
                ["git", "-C", str(clone), "show", f"{spec['commit']}:{face.path}"], capture_output=True, check=True
            ).stdout
            partial = face.photo.with_suffix(face.photo.suffix + ".partial")
            partial.write_bytes(data)
            partial.replace(face.photo)
            written += 1
    return written, absent


def main(argv: list[str] | None = None) -> int:
    """Command line: lay the photos out and say what is present."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirrors", type=Path, default=DEFAULT_MIRRORS, help="folder holding the clones")
    args = parser.parse_args(argv)
    written, absent = lay_out(args.mirrors)
    present = sum(face.photo.is_file() for face in dev_faces())
    print(f"dev faces: {present} of {len(dev_faces())} photos in {PHOTOS} ({written} written now)")
    for repo in absent:
        print(f"  no clone of {repo} under {args.mirrors}: git clone https://github.com/{repo}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
