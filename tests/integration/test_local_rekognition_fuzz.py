"""Fuzz local_rekognition over HTTP: over 10,000 generated requests, no crash and no unintended 5xx.

One real server process (own data dir, 64 KiB request limit so bodies around the limit are cheap) takes, one
request at a time on a keep-alive connection (so never near its pending-request limit):
  1. raw protocol fuzz (tests/fuzz_http.py): random methods, paths, X-Amz-Target, Content-Type and
     Content-Encoding headers, chunked bodies; bodies of random bytes, truncated JSON, huge numbers, deep
     nesting, other encodings, nulls;
  2. bodies around the size limit, plain, chunked, gzip-compressed, and as image bytes;
  3. structure-aware fuzz of all 11 operations from botocore's input shapes (tests/fuzzing.py), with images
     made by Pillow, mutated or not (tests/fuzz_images.py);
  4. collection ids that read as paths, with the data dir's surroundings watched.
Every answer must satisfy tests.fuzz_http.check_answer, which fails on any InternalServerError (the disk and
the engine are healthy here, so one would be a bug); every 200 must match the operation's output shape. The
hypothesis runs are derandomized (the same requests on every run) and keep no example database.
"""

from __future__ import annotations

import base64
import gzip
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.model import StructureShape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from local_rekognition import pagination
from local_rekognition.validation import service_model
from testmedia.photos import grace_hopper
from tests.botocore_shapes import shape_problems
from tests.fixtures.aws import LocalRekognitionProcess, local_rekognition_environment, s3_client
from tests.fuzz_http import JSON_11, Answer, Endpoint, Tally, check_answer, raw_requests
from tests.fuzz_images import Images, image_bytes, sample_images
from tests.fuzzing import TRICKY_STRINGS, LiveValues, ShapeFuzzer

pytestmark = pytest.mark.slow

LIMIT_BYTES = 64 * 1024
"""The fuzzed server's --max-request-bytes (the smallest it accepts)."""

OPERATIONS = [
    # Destructive ones last, so the others find collections and faces to work on.
    "DetectFaces",
    "CompareFaces",
    "CreateCollection",
    "DescribeCollection",
    "ListCollections",
    "IndexFaces",
    "ListFaces",
    "SearchFaces",
    "SearchFacesByImage",
    "CreateUser",
    "ListUsers",
    "AssociateFaces",
    "SearchUsers",
    "SearchUsersByImage",
    "DisassociateFaces",
    "DeleteUser",
    "DeleteFaces",
    "DeleteCollection",
]

BUDGET = {"raw": 3000, "limit": 300, "paths": 1200, **dict.fromkeys(OPERATIONS, 600)}
"""Requests each campaign must send; 15,300 in all, about a minute and a half on two cores."""

PATH_CALLS = 4
"""Requests per path-like id: create, describe, list faces, delete."""

FUZZ_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    # Requests take milliseconds, the server is module-scoped, and some bodies are large on purpose.
    suppress_health_check=list(HealthCheck),
)


def face_jpeg() -> bytes:
    """The one-face portrait, 160 px wide: the models find its face in about 15 ms."""
    with Image.open(grace_hopper()) as photo:
        small = photo.convert("RGB").resize((160, round(160 * photo.height / photo.width)))
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=85)
    return out.getvalue()


@dataclass
class Fuzz:
    """The fuzzed server, the connection to it, what exists on it, and the tally."""

    server: LocalRekognitionProcess
    endpoint: Endpoint
    tally: Tally
    watched: Path
    watched_before: set[Path]
    collections: LiveValues
    faces: LiveValues
    tokens: LiveValues
    users: LiveValues
    images: Images
    bucket: str
    keys: list[str]
    fuzzer: ShapeFuzzer = field(init=False)

    def __post_init__(self) -> None:
        self.fuzzer = ShapeFuzzer(hints=self._hints())

    def _hints(self) -> dict[str, st.SearchStrategy[Any]]:
        collection_ids = st.one_of(
            st.just("fuzz-faces"),  # the one with faces in it
            self.collections.strategy(),
            self.collections.strategy(),
            st.sampled_from([".", "..", "...", "-", "_", ".git", "x" * 255]),
            st.from_regex(r"[a-zA-Z0-9_.\-]{1,40}", fullmatch=True),
        )
        face_ids = st.one_of(
            self.faces.strategy(),
            st.uuids().map(str),
            st.from_regex(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", fullmatch=True),
        )
        user_ids = st.one_of(
            self.users.strategy(),
            self.users.strategy(),
            st.sampled_from(["fuzz-user", "..", ":", "x" * 128]),
            st.from_regex(r"[a-zA-Z0-9_.\-:]{1,20}", fullmatch=True),
        )
        listings = st.sampled_from(["ListCollections", "ListFaces", "ListUsers", "Other"])
        forged = st.builds(
            pagination.encode,
            listings,
            st.one_of(st.none(), self.collections.strategy()),
            st.one_of(st.text(max_size=20), st.sampled_from(["0", "1", "-1", "²", "1e3", " 1", "9" * 60])),
        )
        tokens = st.one_of(self.tokens.strategy(), forged.filter(lambda token: len(token) <= 255), st.text(max_size=40))
        s3_objects = st.fixed_dictionaries(
            {
                "Bucket": st.sampled_from([self.bucket, self.bucket, "no-such-bucket-fuzz", "a.b-c_d"]),
                "Name": st.sampled_from([*self.keys, "missing.jpg", "../x", "/etc/passwd", "%2e%2e/x", "a\x00b"]),
            },
            optional={"Version": st.sampled_from(["null", "1", "../x"])},
        )
        blobs = image_bytes(self.images)
        images = st.one_of(
            *[st.fixed_dictionaries({"Bytes": blobs})] * 9,
            st.fixed_dictionaries({"S3Object": s3_objects}),
        )
        return {
            "CollectionId": collection_ids,
            "FaceId": face_ids,
            "UserId": user_ids,
            "PaginationToken": tokens,
            "Image": images,
            "S3Object": s3_objects,
        }

    def call(self, campaign: str, operation: str, params: Any) -> Answer:
        """Call one operation, check the answer's property and learn from it what now exists."""
        answer = self.endpoint.call(campaign, operation, params)
        check_answer(answer)
        if answer.status == 200:
            document = answer.json()
            problems = shape_problems(document, service_model().operation_model(operation).output_shape, wire=True)
            assert not problems, f"{operation} answer breaks the service model: {problems}"
            self._learn(operation, params, document)
        return answer

    def _learn(self, operation: str, params: dict[str, Any], document: dict[str, Any]) -> None:
        if operation == "CreateCollection":
            self.collections.add(params["CollectionId"])
        elif operation == "DeleteCollection":
            self.collections.discard(params["CollectionId"])
        elif operation == "IndexFaces":
            for record in document["FaceRecords"]:
                self.faces.add(record["Face"]["FaceId"])
        elif operation == "CreateUser":
            self.users.add(params["UserId"])
        elif operation == "DeleteUser":
            self.users.discard(params["UserId"])
        elif operation == "DeleteFaces":
            for face_id in document.get("DeletedFaces", []):
                self.faces.discard(face_id)
        if isinstance(document.get("NextToken"), str):
            self.tokens.add(document["NextToken"])


def files_under(directory: Path) -> set[Path]:
    """Every file and directory below ``directory``."""
    return set(directory.rglob("*"))


def assert_data_dir_layout(data_dir: Path) -> None:
    """Only the store's own layout under the data dir: hashed collection directories with their two files."""
    for path in files_under(data_dir):
        relative = path.relative_to(data_dir).parts
        if relative in ((".lock",), ("collections",), ("trash",)):
            continue
        if relative[0] == "video_jobs":  # stored-video jobs: <JobId>.json, and scratch/ for the clip being read
            assert relative[1:] in ((), ("scratch",)) or re.fullmatch(r"[0-9a-f]{32}\.json", relative[1]), path
            continue
        assert relative[0] == "collections", f"unexpected {path}"
        assert re.fullmatch(r"[0-9a-f]{64}", relative[1]), f"unexpected {path}"
        stored = (("collection.json",), ("faces.npz",), ("users.json",))
        assert len(relative) == 2 or relative[2:] in stored, f"unexpected {path}"


@pytest.fixture(scope="module")
def fuzz(moto_s3_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    """A server of our own: data dir at <watched>/sandbox/data next to a canary directory."""
    watched = tmp_path_factory.mktemp("fuzz")
    sandbox = watched / "sandbox"
    (sandbox / "canary").mkdir(parents=True)
    (sandbox / "canary" / "keep").write_text("untouched")
    server = LocalRekognitionProcess(
        data_dir=sandbox / "data",
        log=watched / "server.log",
        env=local_rekognition_environment(moto_s3_url),
        extra_args=["--max-request-bytes", str(LIMIT_BYTES)],
    )
    tally = Tally()
    endpoint: Endpoint | None = None
    images = sample_images(face_jpeg())
    bucket = "facequeue-fuzz"
    s3 = s3_client(moto_s3_url)
    s3.create_bucket(Bucket=bucket)
    keys = ["face.jpg", "tiny.png", "gif.gif"]
    for key, name in zip(keys, ["jpeg-face", "png-8px", "gif"], strict=True):
        s3.put_object(Bucket=bucket, Key=key, Body=images[name])
    try:
        server.start()
        endpoint = Endpoint(server.url, tally)
        state = Fuzz(
            server=server,
            endpoint=endpoint,
            tally=tally,
            watched=watched,
            watched_before=set(),
            collections=LiveValues(["fuzz-faces"]),
            faces=LiveValues(["00000000-0000-0000-0000-000000000000"]),
            tokens=LiveValues(["e30="]),
            users=LiveValues(["fuzz-user"]),
            images=images,
            bucket=bucket,
            keys=keys,
        )
        # Given a collection holding the portrait's face, so searches and listings have something to find
        state.call("setup", "CreateCollection", {"CollectionId": "fuzz-faces"})
        face = {"Bytes": base64.b64encode(images["jpeg-face"]).decode()}
        for _ in range(3):
            assert state.call("setup", "IndexFaces", {"CollectionId": "fuzz-faces", "Image": face}).status == 200
        assert len(state.faces.values) == 3
        # and a user holding one of them, so user searches have someone to find
        assert state.call("setup", "CreateUser", {"CollectionId": "fuzz-faces", "UserId": "fuzz-user"}).status == 200
        associate = {"CollectionId": "fuzz-faces", "UserId": "fuzz-user", "FaceIds": state.faces.values[:1]}
        assert state.call("setup", "AssociateFaces", associate).status == 200
        state.watched_before = files_under(watched) - files_under(sandbox / "data") - {watched / "server.log"}
        yield state
    finally:
        if endpoint is not None:
            endpoint.close()
        if server.process is not None:
            server.stop()


def fuzz_settings(campaign: str, requests_per_example: int = 1) -> settings:
    """The campaign's hypothesis settings: as many examples as its budget of requests needs."""
    return settings(FUZZ_SETTINGS, max_examples=BUDGET[campaign] // requests_per_example)


# ---------------------------------------------------------------------------------------------------------------
# 1. Raw protocol


def test_raw_requests_get_well_formed_answers(fuzz: Fuzz) -> None:
    @fuzz_settings("raw")
    @given(request=raw_requests())
    def send(request: dict[str, Any]) -> None:
        # aiohttp's parser refuses a method HTTP does not define itself (400 in text/plain), and may close the
        # connection before the body is through.
        http_layer_may_refuse = request["method"] == "FUZZ"
        answer = fuzz.endpoint.send(
            "raw",
            request["body"],
            request["headers"],
            method=request["method"],
            path=request["path"],
            chunked=request["chunked"],
            may_drop=http_layer_may_refuse,
        )
        if answer is not None:
            check_answer(
                answer, method=request["method"], path=request["path"], http_layer_may_refuse=http_layer_may_refuse
            )

    send()
    assert fuzz.tally.campaigns["raw"] >= BUDGET["raw"]


# ---------------------------------------------------------------------------------------------------------------
# 2. The request size limit


LIMIT_SIZES = st.one_of(
    st.integers(LIMIT_BYTES - 48, LIMIT_BYTES + 48), st.sampled_from([LIMIT_BYTES * 2, LIMIT_BYTES * 16])
)


def padded(size: int) -> bytes:
    """A valid ListCollections body of exactly ``size`` bytes (JSON allows trailing white space)."""
    start = b'{"MaxResults": 1}'
    return start + b" " * (size - len(start))


@fuzz_settings("limit")
@given(size=LIMIT_SIZES, how=st.sampled_from(["plain", "chunked", "gzip", "image"]))
def test_bodies_past_the_limit_get_413_and_the_rest_are_served(fuzz: Fuzz, size: int, how: str) -> None:
    headers = {"Content-Type": JSON_11, "X-Amz-Target": "RekognitionService.ListCollections"}
    body = padded(size)
    if how == "gzip":
        # Bodies are not inflated: the limit counts the bytes parsed, and a gzip bomb is just bytes that are not JSON.
        headers["Content-Encoding"] = "gzip"
        body = gzip.compress(body)
    elif how == "image":
        headers["X-Amz-Target"] = "RekognitionService.DetectFaces"
        start = b'{"Image": {"Bytes": "'
        body = start + b"A" * (size - len(start) - 3) + b'"}}'
        assert len(body) == size
    answer = fuzz.endpoint.send("limit", body, headers, chunked=how == "chunked")
    assert answer is not None
    check_answer(answer)
    if how == "gzip":
        assert (answer.status, answer.error_code) == (400, "SerializationException")
    elif size > LIMIT_BYTES:
        assert (answer.status, answer.error_code) == (413, "ImageTooLargeException")
    elif how == "image":
        # Within the limit, the image itself is judged: 48 KiB of zero bytes is no JPEG or PNG
        assert (answer.status, answer.error_code) == (400, "InvalidImageFormatException")
    else:
        assert answer.status == 200


# ---------------------------------------------------------------------------------------------------------------
# 3. Every operation, from its input shape


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_operation_survives_its_fuzzed_inputs(fuzz: Fuzz, operation: str) -> None:
    shape = service_model().operation_model(operation).input_shape
    assert isinstance(shape, StructureShape)

    @fuzz_settings(operation)
    @given(params=fuzz.fuzzer.request(shape))
    def call(params: dict[str, Any]) -> None:
        fuzz.call(operation, operation, params)

    call()
    assert fuzz.tally.campaigns[operation] >= BUDGET[operation]
    # The campaign reached the operation's own code, not only validation: some answers were 200
    assert fuzz.tally.successes[operation] > 0


# ---------------------------------------------------------------------------------------------------------------
# 4. Collection ids that read as paths


PATH_LIKE_IDS = st.one_of(
    st.sampled_from(TRICKY_STRINGS),
    st.from_regex(r"[.\-_]{1,6}", fullmatch=True),
    st.from_regex(r"[.a-z]{1,4}(\.\.[.a-z]{0,4}){0,3}", fullmatch=True),
    st.lists(
        st.sampled_from(["..", ".", "x", "canary", "sandbox", "data", "collections", "%2e%2e"]), min_size=1, max_size=6
    ).flatmap(lambda parts: st.sampled_from(["/", "\\", "."]).map(lambda sep: sep.join(parts))),
    st.text(max_size=12),
)


@fuzz_settings("paths", requests_per_example=PATH_CALLS)
@given(collection_id=PATH_LIKE_IDS)
def test_path_like_collection_ids_stay_inside_the_data_dir(fuzz: Fuzz, collection_id: str) -> None:
    params = {"CollectionId": collection_id}
    created = fuzz.call("paths", "CreateCollection", params)
    described = fuzz.call("paths", "DescribeCollection", params)
    listed = fuzz.call("paths", "ListFaces", params)
    deleted = fuzz.call("paths", "DeleteCollection", params)
    # An id the model allows is a collection like any other; one it does not is refused by every operation
    if created.status == 200:
        assert (described.status, listed.status, deleted.status) == (200, 200, 200)
        assert collection_id in described.json()["CollectionARN"]
    elif created.error_code == "ValidationException":
        assert {a.error_code for a in (described, listed, deleted)} == {"ValidationException"}
    # And nothing appeared around the data dir
    data_dir = fuzz.server.data_dir
    around = files_under(fuzz.watched) - files_under(data_dir) - {fuzz.watched / "server.log"}
    assert around == fuzz.watched_before
    assert_data_dir_layout(data_dir)


# ---------------------------------------------------------------------------------------------------------------
# At the end


def test_the_server_survived_everything(fuzz: Fuzz, capsys: pytest.CaptureFixture[str]) -> None:
    # Runs last in the module; the count covers whichever campaigns ran before it
    server = fuzz.server
    assert server.process is not None and server.process.poll() is None, server.output()[-4000:]
    assert server.health() is not None
    # No operation failed unexpectedly (aiohttp's own tracebacks for requests its parser refused do not count)
    assert " failed (request " not in server.output(), server.output()[-4000:]
    assert_data_dir_layout(server.data_dir)
    around = files_under(fuzz.watched) - files_under(server.data_dir) - {fuzz.watched / "server.log"}
    assert around == fuzz.watched_before
    with capsys.disabled():
        print("\n" + fuzz.tally.report())
    if set(BUDGET) <= set(fuzz.tally.campaigns):  # the whole module ran
        short = {
            name: fuzz.tally.campaigns[name] for name, budget in BUDGET.items() if fuzz.tally.campaigns[name] < budget
        }
        assert not short, f"campaigns that sent fewer requests than their budget: {short}"
        assert fuzz.tally.requests >= 10_000
