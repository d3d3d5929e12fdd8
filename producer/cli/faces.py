"""`facequeue analyze`, `compare` and `collection`: faces in photos, face against face, and collections of faces."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from producer import jobs
from producer.cli.batch import one, print_one, submit, watch_batch
from producer.cli.common import EXIT_OK, Subcommands, UsageError, add_common, add_progress, err
from producer.cli.inputs import expand_images, external_id, prepare_each, prepare_lazily
from producer.cli.show.annotate import AnnotationSkipped, Annotator, compare_picture, load_upright, save
from producer.client import FaceQueue
from producer.contract import new_id
from producer.staging import S3Stage
from producer.watch import WorkerCheck
from producer.window import Window


def cmd_analyze(fq: FaceQueue, args: argparse.Namespace) -> int:
    """Submit DetectFaces for every image; with --wait, print results as they complete."""
    stage = S3Stage.from_url(args.stage) if args.stage else None
    kept: list[str] = []
    prepared = prepare_lazily(expand_images(args.inputs), _detect(fq, args.attributes), args, kept)
    # What `facequeue resume` needs to rebuild the same inputs in the same order, should the submission stop.
    spec = {
        "command": "analyze",
        "inputs": [i if i.startswith("s3://") else os.path.abspath(i) for i in args.inputs],
        "attributes": args.attributes,
        "stage": args.stage,
    }
    args.submitting = new_id()
    batch = fq.submit_many(
        prepared, batch_id=args.submitting, stage=stage, on_wait=_WaitNotice(fq), spec=json.dumps(spec)
    )
    args.submitting = None
    err.print(f"submitted {len(batch)} job(s) as batch [bold]{batch.batch_id}[/]", highlight=False)
    _report_stage(stage)
    if not (args.wait or args.annotate):
        err.print(f"follow it with: facequeue status {batch.batch_id} --wait", markup=False, highlight=False)
        return EXIT_OK
    annotator = Annotator(args.annotate, dict(zip(batch.job_ids, kept, strict=True))) if args.annotate else None
    return watch_batch(fq, batch.batch_id, args, annotator=annotator)


def cmd_resume(fq: FaceQueue, args: argparse.Namespace) -> int:
    """Finish submitting a batch that stopped part-way (Redis full, interrupted); --wait then watches it."""
    state = fq.batch_state(args.batch_id)
    if state.progress.sealed:
        err.print(f"batch {args.batch_id}: every job is queued already", markup=False, highlight=False)
    else:
        spec = json.loads(state.spec) if state.spec else {}
        if spec.get("command") != "analyze":
            raise UsageError(
                f"batch {args.batch_id} was not submitted by `facequeue analyze`: resume it from the code that "
                "submitted it (FaceQueue.resume with the same inputs)"
            )
        stage = S3Stage.from_url(spec["stage"]) if spec.get("stage") else None
        kept: list[str] = []
        prepared = prepare_lazily(expand_images(spec["inputs"]), _detect(fq, spec["attributes"]), args, kept)
        args.submitting = args.batch_id
        batch = fq.resume(args.batch_id, prepared, stage=stage, on_wait=_WaitNotice(fq))
        args.submitting = None
        err.print(
            f"resumed batch {args.batch_id}: {len(batch)} more job(s) submitted, {state.queued} were queued already",
            markup=False,
            highlight=False,
        )
        _report_stage(stage)
    if not args.wait:
        err.print(f"follow it with: facequeue status {args.batch_id} --wait", markup=False, highlight=False)
        return EXIT_OK
    return watch_batch(fq, args.batch_id, args)


def _detect(fq: FaceQueue, attributes: str) -> Callable[[str], jobs.PreparedJob]:
    max_bytes = fq.settings.max_image_bytes
    return lambda image: jobs.detect_faces(image, attributes=attributes, max_bytes=max_bytes)


def _report_stage(stage: S3Stage | None) -> None:
    if stage is not None:
        err.print(
            f"staged in {stage.url}: {stage.uploaded} photo(s) uploaded, {stage.already_there} already there",
            markup=False,
            highlight=False,
        )


class _WaitNotice:
    """The submission's wait hook: says once that it waits for workers, and stops when none consumes the queue."""

    def __init__(self, fq: FaceQueue) -> None:
        self._check = WorkerCheck.for_queue(fq)
        self._said = False

    def __call__(self, progress: Any, window: Window) -> None:
        if not self._said:
            self._said = True
            err.print(
                f"facequeue: waiting for workers: {len(window.in_flight)} job(s) with {window.bytes / 2**20:.0f} MiB "
                f"of images in Redis fill the window (FACEQUEUE_WINDOW_BLOB_BYTES={window.max_bytes}); more go in "
                "as results come back",
                markup=False,
                highlight=False,
            )
        self._check(progress)


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
    p.add_argument(
        "--stage",
        metavar="S3URL",
        help="upload local photos to s3://bucket/prefix (content-addressed, once) and send S3 references",
    )
    add_common(p)
    add_progress(p)
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("resume", help="finish submitting a batch that stopped part-way (Redis full, interrupted)")
    p.add_argument("batch_id")
    p.add_argument("--wait", action="store_true", help="then wait and print the batch's results")
    add_common(p)
    add_progress(p)
    p.set_defaults(func=cmd_resume)

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
