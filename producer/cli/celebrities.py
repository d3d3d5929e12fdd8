"""`facequeue celebrities`: who among the celebrities the endpoint knows is in each photo (RecognizeCelebrities)."""

from __future__ import annotations

import argparse
from pathlib import Path

from producer import jobs
from producer.cli.batch import submit, watch_batch
from producer.cli.common import EXIT_OK, Subcommands, UsageError, add_common, add_progress, err
from producer.cli.inputs import expand_images, prepare_each
from producer.cli.show.annotate import Annotator
from producer.cli.show.celebrities import CelebrityRoll
from producer.client import FaceQueue


def cmd_celebrities(fq: FaceQueue, args: argparse.Namespace) -> int:
    """Submit RecognizeCelebrities for every photo; with --wait, the results, the batch summary and who was where."""
    photos = list(expand_images(args.inputs))
    if not photos:
        raise UsageError("no images found in " + " ".join(args.inputs))
    max_bytes = fq.settings.max_image_bytes
    photos, prepared = prepare_each(photos, lambda photo: jobs.recognize_celebrities(photo, max_bytes=max_bytes), args)
    batch = submit(fq, prepared, args)
    if not (args.wait or args.annotate):
        err.print(f"follow it with: facequeue status {batch.batch_id} --wait", markup=False, highlight=False)
        return EXIT_OK
    annotator = Annotator(args.annotate, dict(zip(batch.job_ids, photos, strict=True))) if args.annotate else None
    roll = CelebrityRoll()
    code = watch_batch(fq, batch.batch_id, args, annotator=annotator, watchers=[roll.add])
    if roll.seen:
        err.print(roll.table())
    err.print(roll.closing_line(), markup=False, highlight=False)
    return code


def register(sub: Subcommands) -> None:
    """Add celebrities to the `facequeue` parser."""
    p = sub.add_parser("celebrities", help="RecognizeCelebrities on photos: PATH, GLOB, DIR or s3://bucket/prefix")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--wait", action="store_true", help="wait and print the results and who was recognised where")
    p.add_argument("--annotate", metavar="DIR", type=Path, help="draw the names on the faces of each photo into DIR")
    add_common(p)
    add_progress(p)
    p.set_defaults(func=cmd_celebrities)
