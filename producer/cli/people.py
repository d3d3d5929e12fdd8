"""`facequeue enrol`, `facequeue identify` and `facequeue users list|delete`: people, not just faces."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from producer import jobs, people
from producer.cli.batch import one, print_one, submit, watch_batch
from producer.cli.common import EXIT_FAILED, EXIT_OK, Subcommands, UsageError, add_common, add_progress, err, output
from producer.cli.inputs import expand_images, prepare_each
from producer.cli.show.annotate import Annotator
from producer.client import FaceQueue
from producer.contract import JobStatus, validate_collection_id


def cmd_enrol(fq: FaceQueue, args: argparse.Namespace) -> int:
    """Index each photo's largest face, create the person's user if needed, associate the faces, report the rest."""
    cid, person = validate_collection_id(args.collection_id), args.person
    photos = list(expand_images(args.images))
    if not photos:
        raise UsageError(f"enrol {person} needs photos of them")
    enrolment = people.Enrolment(person)
    jobs.create_user(cid, person)  # refuses a bad UserId before any photo is indexed
    indexing: list[jobs.PreparedJob] = []
    for photo in list(photos):
        try:
            indexing.append(people.enrolment_index_job(cid, photo))
        except jobs.ImageInputError as exc:
            # One bad file must not cost the rest of the person's photos: it is left out, with why.
            enrolment.left_out[photo] = f"unusable photo: {exc}"
            photos.remove(photo)
    if not indexing:
        _report_enrolment(enrolment, args)
        return EXIT_FAILED
    batch = submit(fq, indexing, args)
    annotator = Annotator(args.annotate, dict(zip(batch.job_ids, photos, strict=True))) if args.annotate else None
    watch_batch(fq, batch.batch_id, args, annotator=annotator)
    people.read_indexed(
        enrolment, {photo: fq.get_result(job_id) for photo, job_id in zip(photos, batch.job_ids, strict=True)}
    )
    if enrolment.faces:
        problem = people.user_created(one(fq, jobs.create_user(cid, person), args))
        if problem is not None:
            enrolment.left_out.update({photo: problem for photo in enrolment.faces.values()})
        else:
            for prepared in people.association_jobs(enrolment, cid, args.threshold):
                face_ids = prepared.job.face_ids  # type: ignore[union-attr]
                people.read_associated(enrolment, one(fq, prepared, args), face_ids)
        stray = people.stray_faces(enrolment)
        if stray:
            # Faces that joined nobody would linger in the collection and turn up in SearchFaces: remove them.
            one(fq, jobs.delete_faces(cid, stray), args)
    _report_enrolment(enrolment, args)
    return EXIT_OK if enrolment.associated and not enrolment.left_out else EXIT_FAILED


def _report_enrolment(enrolment: people.Enrolment, args: argparse.Namespace) -> None:
    table = Table("photo", "enrolment", header_style="bold", title=f"enrol {enrolment.person}")
    for photo, face_id in sorted(enrolment.associated.items()):
        table.add_row(escape(photo), f"[green]associated[/] {face_id}")
    for photo, why in sorted(enrolment.left_out.items()):
        table.add_row(escape(photo), f"[red]left out[/]: {escape(why)}")
    err.print(table)
    status = enrolment.user_status or "not changed"
    err.print(
        f"{enrolment.person}: {len(enrolment.associated)} photo(s) associated, {len(enrolment.left_out)} left out;"
        f" user {status}",
        markup=False,
        highlight=False,
    )
    if args.report:
        Path(args.report).write_text(json.dumps(enrolment.to_json(), indent=2) + "\n", "utf-8")


def cmd_identify(fq: FaceQueue, args: argparse.Namespace) -> int:
    """SearchUsersByImage on each photo: the person and the similarity, or "unknown" below the threshold."""
    cid = validate_collection_id(args.collection_id)
    photos = list(expand_images(args.images))
    if not photos:
        raise UsageError("identify needs photos")
    photos, prepared = prepare_each(
        photos,
        lambda photo: jobs.search_users_by_image(
            photo, cid, user_match_threshold=args.threshold, max_users=args.max_users
        ),
        args,
    )
    batch = submit(fq, prepared, args)
    annotator = Annotator(args.annotate, dict(zip(batch.job_ids, photos, strict=True))) if args.annotate else None
    return watch_batch(fq, batch.batch_id, args, annotator=annotator)


def cmd_users(fq: FaceQueue, args: argparse.Namespace) -> int:
    """List a collection's users (every page), or delete users (their faces stay in the collection)."""
    cid = validate_collection_id(args.collection_id)
    if args.action == "delete":
        if not args.user_ids:
            raise UsageError("users delete needs the user ids to delete")
        codes = [print_one(one(fq, jobs.delete_user(cid, user_id), args), args) for user_id in args.user_ids]
        return max(codes)
    if args.user_ids:
        raise UsageError("users list takes no user ids")
    users: list[dict[str, Any]] = []
    token = None
    while True:
        envelope = one(fq, jobs.list_users(cid, next_token=token), args)
        if envelope.status is JobStatus.FAILED:
            return print_one(envelope, args)
        response = envelope.response or {}
        users += response.get("Users", [])
        token = response.get("NextToken")
        if not token:
            break
    _print_users(users, args)
    return EXIT_OK


def _print_users(users: list[dict[str, Any]], args: argparse.Namespace) -> None:
    with output(args) as stream:
        if args.format == "jsonl":
            for user in users:
                stream.write(json.dumps(user) + "\n")
        elif args.format == "csv":
            stream.write("user_id,user_status\r\n")
            for user in users:
                stream.write(f"{user['UserId']},{user['UserStatus']}\r\n")
        else:
            table = Table("user", "status", header_style="bold")
            for user in users:
                table.add_row(escape(user["UserId"]), user["UserStatus"])
            Console(file=stream, soft_wrap=True).print(table)
    err.print(f"{len(users)} user(s) in {args.collection_id}", markup=False, highlight=False)


def register(sub: Subcommands) -> None:
    """Add enrol, identify and users to the `facequeue` parser."""
    p = sub.add_parser("enrol", help="enrol PERSON in COLLECTION from photos of them (a user with their faces)")
    p.add_argument("collection_id")
    p.add_argument("person", help="the UserId: letters, digits, '_', '.', '-', ':' (at most 128)")
    p.add_argument("images", nargs="+")
    p.add_argument(
        "--threshold",
        type=float,
        default=75.0,
        help="least similarity a new face needs to the person's faces enrolled before (AssociateFaces' 75)",
    )
    p.add_argument("--annotate", metavar="DIR", type=Path, help="draw the indexed faces on each photo into DIR")
    p.add_argument("--report", metavar="FILE", help="write the enrolment (associated, left out and why) as JSON")
    add_common(p)
    add_progress(p)
    p.set_defaults(func=cmd_enrol)

    p = sub.add_parser("identify", help="who is in each photo: SearchUsersByImage against COLLECTION's users")
    p.add_argument("collection_id")
    p.add_argument("images", nargs="+")
    p.add_argument("--threshold", type=float, default=80.0, help="least similarity to name a person (default 80)")
    p.add_argument("--max-users", type=int, default=5, help="matching users to return per photo")
    p.add_argument("--annotate", metavar="DIR", type=Path, help="write each photo with name and similarity into DIR")
    add_common(p)
    add_progress(p)
    p.set_defaults(func=cmd_identify)

    p = sub.add_parser("users", help="a collection's users: list, or delete (their faces stay)")
    p.add_argument("action", choices=["list", "delete"])
    p.add_argument("collection_id")
    p.add_argument("user_ids", nargs="*")
    add_common(p)
    p.set_defaults(func=cmd_users)
