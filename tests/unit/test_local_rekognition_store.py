"""The on-disk collection store: safe paths, atomic persistence, snapshots."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from local_rekognition.store import (
    CollectionExistsError,
    CollectionNotFoundError,
    CollectionStore,
    Matrix,
    StoredFace,
    directory_name,
)


def face(number: int) -> StoredFace:
    return StoredFace(
        face_id=f"00000000-0000-4000-8000-{number:012d}",
        image_id="11111111-1111-4111-8111-111111111111",
        bounding_box={"Width": 0.5, "Height": 0.5, "Left": 0.1, "Top": 0.2},
        confidence=99.0,
        external_image_id=None if number % 2 else f"img:{number}",
    )


def vectors(count: int, dims: int = 8, seed: int = 0) -> Matrix:
    rows = np.random.default_rng(seed).normal(size=(count, dims)).astype(np.float32)
    unit: Matrix = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return unit


@given(st.text(min_size=1, max_size=255))
def test_directory_names_are_one_safe_path_part(collection_id: str) -> None:
    name = directory_name(collection_id)
    assert re.fullmatch(r"[0-9a-f]{64}", name)


def test_dot_ids_get_distinct_directories_inside_the_store(tmp_path: Path) -> None:
    store = CollectionStore(tmp_path / "data")
    for collection_id in (".", "..", "...", "x" * 255):
        store.create(collection_id, "1.0", {})
    directories = list((tmp_path / "data" / "collections").iterdir())
    assert len(directories) == 4
    assert all(directory.parent == tmp_path / "data" / "collections" for directory in directories)
    assert sorted(tmp_path.iterdir()) == [tmp_path / "data"]
    assert [c.collection_id for c in store.all()] == sorted([".", "..", "...", "x" * 255])


def test_everything_survives_reopening(tmp_path: Path) -> None:
    store = CollectionStore(tmp_path)
    store.create("c", "1.0", {"team": "faces"})
    rows = vectors(4)
    store.add_faces("c", [face(n) for n in range(4)], rows)
    store.delete_faces("c", [face(1).face_id])
    reopened = CollectionStore(tmp_path).get("c")
    assert reopened.faces == (face(0), face(2), face(3))
    np.testing.assert_array_equal(reopened.embeddings, rows[[0, 2, 3]])
    assert reopened.tags == {"team": "faces"}
    assert reopened.created_at == store.get("c").created_at


def test_missing_and_duplicate_collections(tmp_path: Path) -> None:
    store = CollectionStore(tmp_path)
    store.create("c", "1.0", {})
    with pytest.raises(CollectionExistsError):
        store.create("c", "1.0", {})
    for action in (store.get, store.delete):
        with pytest.raises(CollectionNotFoundError):
            action("absent")
    with pytest.raises(CollectionNotFoundError):
        store.add_faces("absent", [face(0)], vectors(1))
    store.delete("c")
    with pytest.raises(CollectionNotFoundError):
        CollectionStore(tmp_path).get("c")


def test_delete_faces_reports_deleted_and_missing_in_order(tmp_path: Path) -> None:
    store = CollectionStore(tmp_path)
    store.create("c", "1.0", {})
    store.add_faces("c", [face(n) for n in range(3)], vectors(3))
    deleted, missing, _ = store.delete_faces("c", [face(2).face_id, face(9).face_id, face(0).face_id])
    assert deleted == [face(2).face_id, face(0).face_id]
    assert missing == [face(9).face_id]
    store.delete_faces("c", [face(1).face_id])
    assert store.get("c").face_count == 0
    store.add_faces("c", [face(5)], vectors(1, dims=8))  # an emptied collection takes faces again
    assert store.get("c").embeddings.shape == (1, 8)


def test_snapshots_do_not_change_under_the_reader(tmp_path: Path) -> None:
    store = CollectionStore(tmp_path)
    store.create("c", "1.0", {})
    store.add_faces("c", [face(0)], vectors(1))
    snapshot = store.get("c")
    store.add_faces("c", [face(1)], vectors(1, seed=1))
    assert snapshot.face_count == 1 and snapshot.embeddings.shape == (1, 8)
    assert not snapshot.embeddings.flags.writeable


def test_mismatched_embedding_sizes_are_refused(tmp_path: Path) -> None:
    store = CollectionStore(tmp_path)
    store.create("c", "1.0", {})
    store.add_faces("c", [face(0)], vectors(1, dims=8))
    with pytest.raises(ValueError, match="dimensions"):
        store.add_faces("c", [face(1)], vectors(1, dims=16))
    with pytest.raises(ValueError, match="one embedding row per face"):
        store.add_faces("c", [face(1), face(2)], vectors(1))


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    store = CollectionStore(tmp_path)
    store.create("c", "1.0", {})

    def index(start: int) -> None:
        for number in range(start, start + 10):
            store.add_faces("c", [face(number)], vectors(1, seed=number))

    threads = [threading.Thread(target=index, args=(start,)) for start in range(0, 40, 10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {f.face_id for f in CollectionStore(tmp_path).get("c").faces} == {face(n).face_id for n in range(40)}


def test_leftovers_of_a_crash_are_cleaned_and_ignored(tmp_path: Path) -> None:
    store = CollectionStore(tmp_path)
    store.create("c", "1.0", {})
    store.add_faces("c", [face(0)], vectors(1))
    directory = tmp_path / "collections" / directory_name("c")
    # Given a temp file of a write that never reached os.replace, and a half-made collection directory
    (directory / ".tmp-abc.npz").write_bytes(b"partial")
    (tmp_path / "collections" / directory_name("half")).mkdir()
    reopened = CollectionStore(tmp_path)
    assert [c.collection_id for c in reopened.all()] == ["c"]
    assert not (directory / ".tmp-abc.npz").exists()
    reopened.create("half", "1.0", {})
    assert reopened.get("half").face_count == 0


def test_user_changes_persist_once_per_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from local_rekognition import user_records
    from local_rekognition.store import Collection
    from local_rekognition.user_records import StoredUser, TokenMismatchError

    store = CollectionStore(tmp_path)
    store.create("c", "1.0", {})
    calls: list[str] = []

    def add(user_id: str) -> Any:
        def change(current: Collection) -> tuple[dict[str, StoredUser], dict[str, Any]]:
            calls.append(user_id)
            if user_id == "bad":
                raise ValueError("refused")
            return {**current.users, user_id: StoredUser(user_id, 0.0)}, {"made": user_id}

        return change

    # A token answers its first response again without running the change; other parameters are refused
    assert store.change_users("c", "CreateUser:t", "one", add("ada")) == {"made": "ada"}
    assert store.change_users("c", "CreateUser:t", "one", add("ada")) == {"made": "ada"}
    with pytest.raises(TokenMismatchError):
        store.change_users("c", "CreateUser:t", "two", add("bob"))
    # A change that raises stores nothing, not even its token
    with pytest.raises(ValueError):
        store.change_users("c", "CreateUser:u", "three", add("bad"))
    assert calls == ["ada", "bad"]
    reopened = CollectionStore(tmp_path).get("c")
    assert list(reopened.users) == ["ada"] and list(reopened.tokens) == ["CreateUser:t"]
    # Tokens older than TOKEN_TTL_S are forgotten: the same token then runs the change again
    monkeypatch.setattr(user_records, "TOKEN_TTL_S", -1.0)
    store.change_users("c", "CreateUser:t", "one", add("ada"))
    assert calls == ["ada", "bad", "ada"]


def test_faces_held_by_a_user_are_not_deleted(tmp_path: Path) -> None:
    from local_rekognition.user_records import StoredUser

    store = CollectionStore(tmp_path)
    store.create("c", "1.0", {})
    store.add_faces("c", [face(0), face(1)], vectors(2))
    store.change_users("c", None, "", lambda current: ({"u": StoredUser("u", 0.0, (face(0).face_id,))}, {}))
    deleted, missing, held = store.delete_faces("c", [face(0).face_id, face(1).face_id])
    assert (deleted, missing, held) == ([face(1).face_id], [], [(face(0).face_id, "u")])
