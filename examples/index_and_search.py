"""Index a folder of photos into a collection, then find who is in other photos.

Indexing is a batch: one job per photo, all queued in one go, run by as many workers as there are. Each face is
stored under its photo's file name (ExternalImageId), so a search answers with a name, not just a FaceId. Searching
uses the largest face of each query photo.

    python examples/index_and_search.py COLLECTION FOLDER QUERY_PHOTO [QUERY_PHOTO...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from producer import FaceQueue, jobs

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}


def external_id(path: Path) -> str:
    # ExternalImageId allows letters, digits and _.-: only.
    return "".join(c if c.isalnum() or c in "_.-:" else "_" for c in path.name)


def main(collection: str, folder: str, queries: list[str]) -> int:
    with FaceQueue() as fq:  # settings from FACEQUEUE_* environment variables
        created = fq.result(fq.submit(jobs.create_collection(collection)), timeout_s=60)
        if created.error and created.error.code != "ResourceAlreadyExistsException":  # re-running is fine
            print(f"cannot create {collection}: {created.error.message}")
            return 1

        photos = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
        batch = fq.submit_many(jobs.index_faces(p, collection, external_image_id=external_id(p)) for p in photos)
        indexed = 0
        for envelope in fq.iter_results(batch.batch_id, timeout_s=600):
            indexed += envelope.face_count()
            if envelope.error:
                print(f"not indexed: {envelope.label}: {envelope.error.code}")
        print(f"indexed {indexed} face(s) from {len(photos)} photo(s) into {collection}")

        searches = fq.submit_many(jobs.search_faces_by_image(q, collection, face_match_threshold=80) for q in queries)
        for envelope in fq.iter_results(searches.batch_id, timeout_s=600):
            matches = (envelope.response or {}).get("FaceMatches", [])
            if envelope.error:  # InvalidParameterException: no face in the query photo
                found = f"error {envelope.error.code}"
            elif matches:
                found = ", ".join(f"{m['Face'].get('ExternalImageId')} ({m['Similarity']:.1f}%)" for m in matches)
            else:
                found = "nobody known"
            print(f"{envelope.label} -> {found}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
