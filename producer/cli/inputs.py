"""The command line's images: paths, globs, directories and s3:// prefixes, each prepared as a job."""

from __future__ import annotations

import argparse
import glob
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from producer import jobs
from producer.cli.common import UsageError, err
from producer.cli.show.hints import explain

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"}


def expand_images(inputs: Sequence[str]) -> Iterator[str]:
    """Yield image paths and s3:// URLs from paths, globs, directories and s3://bucket/prefix arguments."""
    for item in inputs:
        if item.startswith("s3://"):
            yield from _s3_objects(item)
            continue
        matches = sorted(glob.glob(item)) if glob.has_magic(item) else [item]
        if not matches:
            raise UsageError(f"{item}: no file matches")
        for match in matches:
            path = Path(match)
            if path.is_dir():
                yield from (str(p) for p in sorted(path.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES)
            elif path.exists():
                yield str(path)
            else:
                raise UsageError(f"{match}: no such file or directory")


def _s3_objects(url: str) -> Iterator[str]:
    if Path(url).suffix.lower() in IMAGE_SUFFIXES:
        yield url
        return
    try:
        import boto3
    except ImportError:
        raise UsageError("listing an s3:// prefix needs boto3: pip install 'facequeue[worker]'") from None
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    try:
        for page in boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if Path(obj["Key"]).suffix.lower() in IMAGE_SUFFIXES:
                    yield f"s3://{bucket}/{obj['Key']}"
    except Exception as exc:
        line = explain(exc)
        if line is None:
            raise
        raise UsageError(f"s3://{bucket}: {line}") from exc


def prepare_each(
    images: Sequence[str], prepare: Callable[[str], jobs.PreparedJob], args: argparse.Namespace
) -> tuple[list[str], list[jobs.PreparedJob]]:
    """Prepare a job per image; an image that cannot be used (empty, unreadable, too large) is reported and left out.

    One bad file must not cost the user the whole batch: the rest is submitted, and the exit code says 1.
    """
    kept: list[str] = []
    prepared: list[jobs.PreparedJob] = []
    for image in images:
        try:
            prepared.append(prepare(image))
        except jobs.ImageInputError as exc:
            where = "" if image in str(exc) else f"{image}: "
            err.print(f"facequeue: skipped {where}{exc}", markup=False, highlight=False)
            args.skipped += 1
            continue
        kept.append(image)
    if not prepared:
        raise UsageError(f"none of the {len(images)} image(s) can be used (see above)")
    return kept, prepared


def external_id(image: str) -> str:
    """A file name made to fit ExternalImageId's pattern."""
    stem = Path(image).name
    return "".join(c if c.isalnum() or c in "_.-:" else "_" for c in stem)[:255] or "image"


def prepare_lazily(
    images: Iterable[str], prepare: Callable[[str], jobs.PreparedJob], args: argparse.Namespace, kept: list[str]
) -> Iterator[jobs.PreparedJob]:
    """Prepare a job per image as the submission reads it (one chunk in memory, never the batch), appending each
    image used to ``kept``; an image that cannot be used is reported and left out, as in prepare_each."""
    seen = 0
    for image in images:
        seen += 1
        try:
            prepared = prepare(image)
        except jobs.ImageInputError as exc:
            where = "" if image in str(exc) else f"{image}: "
            err.print(f"facequeue: skipped {where}{exc}", markup=False, highlight=False)
            args.skipped += 1
            continue
        kept.append(image)
        yield prepared
    if not kept:
        raise UsageError(f"none of the {seen} image(s) can be used (see above)" if seen else "no images found")
