"""``local-rekognition celebrities add|list|remove``: the operator's hands on the celebrity gallery.

Works on the gallery directory of a data dir while a server runs on it: an added person is written whole and
renamed into place, and the server embeds the portraits on its next RecognizeCelebrities.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from local_rekognition.celebrity_gallery import KNOWN_GENDERS, CelebrityGallery, GalleryError
from local_rekognition.context import celebrity_dir
from local_rekognition.models.wheel_weights import WeightsMissing
from local_rekognition.settings import LocalRekognitionSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="local-rekognition celebrities", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add a person from one or more portraits (JPEG or PNG, one face each)")
    add.add_argument("portraits", nargs="+", type=Path, help="portrait files; the largest face in each is used")
    add.add_argument("--name", required=True, help="the Name RecognizeCelebrities answers")
    add.add_argument("--id", dest="celebrity_id", help="the Id (letters and digits); a random one if absent")
    add.add_argument("--url", dest="urls", action="append", default=[], help="a Urls entry; repeat for more")
    add.add_argument("--known-gender", choices=KNOWN_GENDERS, help="KnownGender.Type")
    add.add_argument("--replace", action="store_true", help="overwrite a person already added with this Id")
    remove = commands.add_parser("remove", help="remove a person added before (built-in people stay)")
    remove.add_argument("celebrity_id", metavar="ID")
    commands.add_parser("list", help="everyone in the gallery, one JSON object a line")
    for command in (add, remove, commands.choices["list"]):
        command.add_argument("--data-dir", type=Path, help="the server's data dir (env FACEQUEUE_LOCAL_DATA_DIR)")
    return parser


def main(argv: list[str]) -> int:
    """Run one gallery command; 0 on success, 1 with a one-line reason on stderr otherwise."""
    args = _parser().parse_args(argv)
    data_dir = args.data_dir or LocalRekognitionSettings().data_dir
    try:
        gallery = CelebrityGallery(celebrity_dir(data_dir))
    except WeightsMissing as exc:
        print(f"local-rekognition celebrities: {exc}", file=sys.stderr)
        return 1
    if args.command == "list":
        for person in gallery.people():
            print(json.dumps({"Id": person.celebrity_id, **person.info(), "Portraits": len(person.portraits)}))
        return 0
    if args.command == "remove":
        if not gallery.remove(args.celebrity_id):
            print(f"local-rekognition celebrities: no added person with id {args.celebrity_id}", file=sys.stderr)
            return 1
        return 0
    from local_rekognition.models import load_engine

    try:
        person = gallery.add(
            load_engine(),
            args.name,
            args.portraits,
            urls=args.urls,
            known_gender=args.known_gender,
            celebrity_id=args.celebrity_id,
            replace=args.replace,
        )
    except GalleryError as exc:
        print(f"local-rekognition celebrities: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"Id": person.celebrity_id, **person.info(), "Portraits": len(person.portraits)}))
    return 0
