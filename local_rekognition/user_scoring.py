"""How well a face matches a person: the face against the centroid of the person's faces.

A user's vector is the mean of its faces' unit embeddings; a query's similarity to the user is the engine's
calibrated similarity between the query and that mean (cosine, so the mean's length does not matter). Averaging
keeps what the photos of one person share and cancels what one photo happens to have (light, pose, blur), so a
stranger who resembles one enrolment photo by chance scores lower against the person than against that photo,
while a new photo of the person scores higher than against most single photos. bench/user_identification.py
measures it against the best single face on held-out photos (docs/people.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from local_rekognition.models.engine import Embedding, FaceEngine
from local_rekognition.store import Collection, Matrix
from local_rekognition.user_records import StoredUser


def face_rows(collection: Collection, face_ids: Sequence[str]) -> list[int]:
    """Rows of ``collection.embeddings`` for the given faces (faces not in the collection are skipped)."""
    wanted = set(face_ids)
    return [index for index, face in enumerate(collection.faces) if face.face_id in wanted]


def centroid(collection: Collection, face_ids: Sequence[str]) -> Embedding | None:
    """The mean of the faces' unit embeddings, or None when none of them is in the collection."""
    rows = face_rows(collection, face_ids)
    if not rows:
        return None
    matrix = collection.embeddings[rows]
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit = matrix / np.where(norms > 0, norms, 1.0)
    mean: Embedding = unit.mean(axis=0).astype(np.float32)
    return mean


def user_vectors(collection: Collection) -> tuple[list[StoredUser], Matrix]:
    """Users with at least one face, by id, and their centroids, one row each."""
    position = {face.face_id: index for index, face in enumerate(collection.faces)}
    users: list[StoredUser] = []
    rows: list[Embedding] = []
    for user_id in sorted(collection.users):
        user = collection.users[user_id]
        indices = [position[face_id] for face_id in user.face_ids if face_id in position]
        if not indices:
            continue
        matrix = collection.embeddings[indices]
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        rows.append((matrix / np.where(norms > 0, norms, 1.0)).mean(axis=0))
        users.append(user)
    if not rows:
        return [], np.zeros((0, 0), dtype=np.float32)
    return users, np.stack(rows).astype(np.float32)


def ranked_users(
    engine: FaceEngine,
    collection: Collection,
    query: Embedding,
    *,
    threshold: float,
    max_users: int,
    exclude_user_id: str | None = None,
) -> list[tuple[float, StoredUser]]:
    """(similarity, user) for users whose similarity to ``query`` reaches ``threshold``, most similar first."""
    users, matrix = user_vectors(collection)
    if not users:
        return []
    vector = np.asarray(query, dtype=np.float32)
    if matrix.shape[1] != vector.shape[0]:
        raise ValueError("the query and the collection's embeddings differ in size")
    norms = np.linalg.norm(matrix, axis=1) * float(np.linalg.norm(vector))
    cosines = (matrix @ vector) / np.where(norms > 0, norms, 1.0)
    matches: list[tuple[float, StoredUser]] = []
    # The calibrated similarity is monotonic in the cosine: the walk stops at the first user below threshold.
    for index in np.argsort(-cosines, kind="stable"):
        user = users[int(index)]
        if user.user_id == exclude_user_id:
            continue
        similarity = min(100.0, max(0.0, float(engine.similarity(vector, matrix[int(index)]))))
        if similarity < threshold or len(matches) >= max_users:
            break
        matches.append((similarity, user))
    return matches
