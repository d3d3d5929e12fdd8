"""`facequeue analyze`, `compare` and `collection`: faces in photos, face against face, and collections of faces."""

from __future__ import annotations

import argparse
from pathlib import Path

from producer import jobs
from producer.cli.batch import one, print_one, submit, watch_batch
from producer.cli.common import EXIT_OK, Subcommands, UsageError, add_common, add_progress, err
from producer.cli.inputs import expand_images, external_id, prepare_each
from producer.cli.show.annotate import AnnotationSkipped, Annotator, compare_picture, load_upright, save
from producer.client import FaceQueue


def cmd_analyze(fq: FaceQueue, args: argparse.Namespace) -> int:
    """Submit DetectFaces for every image; with --wait, print results as they complete."""
    images = list(expand_images(args.inputs))
    if not images:
        raise UsageError("no images found in " + " ".join(args.inputs))
    max_bytes = fq.settings.max_image_bytes
    images, prepared = prepare_each(
        images, lambda i: jobs.detect_faces(i, attributes=args.attributes, max_bytes=max_bytes), args
    )
    batch = submit(fq, prepared, args)
    if not (args.wait or args.annotate):
        err.print(f"follow it with: facequeue status {batch.batch_id} --wait", markup=False, highlight=False)
        return EXIT_OK
    annotator = Annotator(args.annotate, dict(zip(batch.job_ids, images, strict=True))) if args.annotate else None
    return watch_batch(fq, batch.batch_id, args, annotator=annotator)


def cmd_compare(fq: FaceQueue, args: argparse.Namespace) -> int:
    """Compare the largest face of A with the faces of B; --annotate F draws both photos with the match."""
    envelope = one(fq, jobs.compare_faces(args.source, args.target, similarity_threshold=args.threshold), args)
    code = print_one(envelope, args)
    if args.annotate:
        try:
            picture = compare_picture(load_upright(args.source), load_upright(args.target), envelope)
        except AnnotationSkipped as why:
            err.print(f"annotate: skipped: {why}", markup=False, highlight=False)
        else:
            err.print(f"annotated: {save(picture, Path(args.annotate))}", markup=False, highlight=False)
    return code


def cmd_collection(fq: FaceQueue, args: argparse.Namespace) -> int:
    """Create, fill, search, list or delete a collection."""
    action, cid = args.action, args.collection_id
    single = {"create": jobs.create_collection, "delete": jobs.delete_collection, "list": jobs.list_faces}
    if action in single:
        return print_one(one(fq, single[action](cid), args), args)
    images = list(expand_images(args.images))
    if not images:
        raise UsageError(f"collection {action} needs image paths")
    if action == "search":
        images, prepared = prepare_each(
            images, lambda i: jobs.search_faces_by_image(i, cid, face_match_threshold=args.threshold), args
        )
    else:
        images, prepared = prepare_each(
            images,
            lambda i: jobs.index_faces(i, cid, external_image_id=external_id(i), max_faces=args.max_faces),
            args,
        )
    batch = submit(fq, prepared, args)
    annotator = Annotator(args.annotate, dict(zip(batch.job_ids, images, strict=True))) if args.annotate else None
    return watch_batch(fq, batch.batch_id, args, annotator=annotator)


def register(sub: Subcommands) -> None:
    """Add analyze, compare and collection to the `facequeue` parser."""
    p = sub.add_parser("analyze", help="DetectFaces on photos: PATH, GLOB, DIR or s3://bucket/prefix")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--attributes", default="DEFAULT", help="DEFAULT, ALL, or names like AGE_RANGE,EMOTIONS")
    p.add_argument("--wait", action="store_true", help="wait and print the results")
    p.add_argument("--annotate", metavar="DIR", type=Path, help="draw the faces on each photo into DIR (waits)")
    add_common(p)
    add_progress(p)
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("compare", help="CompareFaces: the largest face of SOURCE against TARGET")
    p.add_argument("source")
    p.add_argument("target")
    p.add_argument("--threshold", type=float, default=80.0)
    p.add_argument("--annotate", metavar="FILE", help="draw both photos side by side with the match into FILE")
    add_common(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("collection", help="collections: create, index, search, list, delete")
    p.add_argument("action", choices=["create", "index", "search", "list", "delete"])
    p.add_argument("collection_id")
    p.add_argument("images", nargs="*")
    p.add_argument("--threshold", type=float, default=80.0)
    p.add_argument("--max-faces", type=int, default=None)
    p.add_argument("--annotate", metavar="DIR", type=Path, help="index, search: draw the faces on each photo into DIR")
    add_common(p)
    add_progress(p)
    p.set_defaults(func=cmd_collection)
