"""The wire contract between producers, workers and consumers: jobs, results, names. pydantic + stdlib only.

Producers validate a job before it is enqueued, workers validate it again when it arrives, and consumers read the
result envelope from the results stream as plain JSON. Bump SCHEMA_VERSION on any incompatible change.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_pascal

SCHEMA_VERSION: Literal[1] = 1

# --- Names shared by every party: queues, tasks and Redis keys live here and nowhere else. ---
DEFAULT_QUEUE = "facequeue"
DEFAULT_RESULTS_STREAM = "facequeue:results"
KEY_PREFIX = "facequeue"


class Operation(StrEnum):
    """A Rekognition operation a job runs; the value is Rekognition's own operation name."""

    DETECT_FACES = "DetectFaces"
    COMPARE_FACES = "CompareFaces"
    INDEX_FACES = "IndexFaces"
    SEARCH_FACES_BY_IMAGE = "SearchFacesByImage"
    CREATE_COLLECTION = "CreateCollection"
    DELETE_COLLECTION = "DeleteCollection"
    LIST_FACES = "ListFaces"
    DELETE_FACES = "DeleteFaces"
    CREATE_USER = "CreateUser"
    DELETE_USER = "DeleteUser"
    ASSOCIATE_FACES = "AssociateFaces"
    DISASSOCIATE_FACES = "DisassociateFaces"
    LIST_USERS = "ListUsers"
    SEARCH_USERS = "SearchUsers"
    SEARCH_USERS_BY_IMAGE = "SearchUsersByImage"
    RECOGNIZE_CELEBRITIES = "RecognizeCelebrities"
    START_FACE_DETECTION = "StartFaceDetection"
    START_FACE_SEARCH = "StartFaceSearch"


TASK_NAMES: dict[Operation, str] = {
    Operation.DETECT_FACES: "facequeue.detect_faces",
    Operation.COMPARE_FACES: "facequeue.compare_faces",
    Operation.INDEX_FACES: "facequeue.index_faces",
    Operation.SEARCH_FACES_BY_IMAGE: "facequeue.search_faces_by_image",
    Operation.CREATE_COLLECTION: "facequeue.create_collection",
    Operation.DELETE_COLLECTION: "facequeue.delete_collection",
    Operation.LIST_FACES: "facequeue.list_faces",
    Operation.DELETE_FACES: "facequeue.delete_faces",
    Operation.CREATE_USER: "facequeue.create_user",
    Operation.DELETE_USER: "facequeue.delete_user",
    Operation.ASSOCIATE_FACES: "facequeue.associate_faces",
    Operation.DISASSOCIATE_FACES: "facequeue.disassociate_faces",
    Operation.LIST_USERS: "facequeue.list_users",
    Operation.SEARCH_USERS: "facequeue.search_users",
    Operation.SEARCH_USERS_BY_IMAGE: "facequeue.search_users_by_image",
    Operation.RECOGNIZE_CELEBRITIES: "facequeue.recognize_celebrities",
    Operation.START_FACE_DETECTION: "facequeue.video_face_detection",
    Operation.START_FACE_SEARCH: "facequeue.video_face_search",
}

VIDEO_POLL_TASK = "facequeue.video_poll"
"""A video job's wait for Rekognition: a short task re-sent with a countdown until the video job ends."""


MAX_JOBS_PER_MESSAGE = 16
"""A task message's argument is one job, or a list of up to this many jobs of the task's operation. Celery's cost
per message (receive, reserve, ack, result) is then paid once per list: bulk submits carry several jobs each."""


MAX_MESSAGE_BYTES = 8 * 2**20
"""Largest queue entry a worker reads (checked before parsing). A message carries references, never images: 16 jobs
of the largest kind (DeleteFaces of 4,096 face ids) come to ~2.5 MB, ~4.5 MB once signed. Larger entries are refused
unread and kept as a bounded dead letter."""


def queue_for(base: str, operation: Operation) -> str:
    """The queue jobs of one operation travel on: a backlog of one operation never holds up another's jobs.

    Workers consume every operation's queue and the bare ``base`` queue (for senders that name only that).
    """
    return f"{base}.{TASK_NAMES[operation].rpartition('.')[2]}"


def blob_key(sha256_hex: str) -> str:
    """Redis key of an image the producer stored by content (claim check)."""
    return f"{KEY_PREFIX}:blob:{sha256_hex}"


def blob_refs_key(sha256_hex: str) -> str:
    """Redis counter of the unfinished jobs that reference a blob; the last one to succeed deletes the blob."""
    return f"{KEY_PREFIX}:blob:{sha256_hex}:refs"


def result_key(job_id: str) -> str:
    """Redis key holding a job's published result envelope; its existence means 'published'."""
    return f"{KEY_PREFIX}:result:{job_id}"


def done_channel(job_id: str) -> str:
    """Pub/sub channel notified once when a job's result is published."""
    return f"{KEY_PREFIX}:done:{job_id}"


def batch_key(batch_id: str) -> str:
    """Redis hash of a batch's progress counters (total, succeeded, failed)."""
    return f"{KEY_PREFIX}:batch:{batch_id}"


def batch_stream_key(batch_id: str) -> str:
    """Redis stream of a batch's completed job ids, in completion order."""
    return f"{KEY_PREFIX}:batch:{batch_id}:done"


DEAD_LETTERS_KEY = f"{KEY_PREFIX}:dead"
"""Redis sorted set of dead-lettered job ids, scored by the time they failed."""


REFUSED_LETTERS_KEY = f"{KEY_PREFIX}:refused"
"""Redis sorted set of the dead letters kept for queue entries refused unread (ids `refused-<uuid>`), by time: the
oldest beyond MAX_REFUSED_LETTERS are dropped, so a flood of junk cannot fill Redis."""
MAX_REFUSED_LETTERS = 100


def dead_letter_key(job_id: str) -> str:
    """Redis key of one dead letter: {"job": the job as submitted, "envelope": its failed result}."""
    return f"{DEAD_LETTERS_KEY}:{job_id}"


def journal_key(job_id: str) -> str:
    """Where a worker records a state-changing job's Rekognition answer until its result is published."""
    return f"{KEY_PREFIX}:journal:{job_id}"


JOB_MARK_PREFIX = "facequeue:job:"
"""Reserved ExternalImageId prefix: an IndexFaces job that sets no ExternalImageId has its faces indexed under
``facequeue:job:<job id>``, so that the worker can find them again after a lost answer (worker/reconcile.py)."""


def job_mark(job_id: str) -> str:
    """The ExternalImageId under which a job that sets none has its faces indexed."""
    return f"{JOB_MARK_PREFIX}{job_id}"


def cache_key(fingerprint: str) -> str:
    """Redis key of a stored Rekognition response for one image, operation and parameters."""
    return f"{KEY_PREFIX}:cache:{fingerprint}"


def rate_key(operation: str, endpoint: str = "") -> str:
    """Redis hash holding the shared rate limiter's state for one Rekognition operation at one endpoint (host:port)."""
    return f"{KEY_PREFIX}:rate:{endpoint}:{operation}" if endpoint else f"{KEY_PREFIX}:rate:{operation}"


def signing_conf(key: str, cert: str, cert_store: str) -> dict[str, Any]:
    """Celery's settings for signed task messages (its `auth` serializer), shared by producers and workers.

    ``key`` and ``cert`` are PEM files; ``cert_store`` a glob of the PEM certificates whose signatures are trusted.
    """
    return {
        "security_key": key,
        "security_certificate": cert,
        "security_cert_store": cert_store,
        "security_digest": "sha256",
        "task_serializer": "auth",
        "accept_content": ["auth"],
    }


# --- Rekognition's image limits: one set, for the worker (which refuses an image past them before any call) and for
# local_rekognition (which refuses it as Rekognition does). Here because both may import this module: it is
# pydantic + stdlib only, and every image (producer, worker, local_rekognition) carries it already. ---
IMAGE_SIDE_MIN_PX = 80
"""Rekognition needs at least 80 pixels on each side (docs: Guidelines and quotas in Amazon Rekognition)."""
IMAGE_BYTES_MAX = 5 * 2**20
"""Largest image passed as Bytes."""
S3_IMAGE_BYTES_MAX = 15 * 2**20
"""Largest image read from S3."""
IMAGE_PIXELS_MAX = 50_000_000
"""Largest image, in pixels: past it an image is refused unread (a decompression bomb costs no memory). Rekognition
documents no such limit for its face operations; this is local_rekognition's, and the worker refuses past it too,
so that neither pays a call to hear the other's refusal."""


# --- Rekognition's own parameter rules (from its service model). ---
COLLECTION_ID_PATTERN = r"^[a-zA-Z0-9_.\-]+$"
EXTERNAL_IMAGE_ID_PATTERN = r"^[a-zA-Z0-9_.\-:]+$"
FACE_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
S3_BUCKET_PATTERN = r"^[0-9A-Za-z.\-_]+$"
USER_ID_PATTERN = r"^[a-zA-Z0-9_.\-:]+$"

CollectionId = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=COLLECTION_ID_PATTERN)]
ExternalImageId = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=EXTERNAL_IMAGE_ID_PATTERN)]
FaceId = Annotated[str, StringConstraints(pattern=FACE_ID_PATTERN)]
Percent = Annotated[float, Field(ge=0, le=100)]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=USER_ID_PATTERN)]
MAX_FACES_PER_USER = 100
"""Rekognition's limit on faces per user, and on FaceIds per AssociateFaces or DisassociateFaces call."""


class Attribute(StrEnum):
    """DetectFaces / IndexFaces attribute names, as Rekognition spells them."""

    DEFAULT = "DEFAULT"
    ALL = "ALL"
    AGE_RANGE = "AGE_RANGE"
    BEARD = "BEARD"
    EMOTIONS = "EMOTIONS"
    EYE_DIRECTION = "EYE_DIRECTION"
    EYEGLASSES = "EYEGLASSES"
    EYES_OPEN = "EYES_OPEN"
    GENDER = "GENDER"
    MOUTH_OPEN = "MOUTH_OPEN"
    MUSTACHE = "MUSTACHE"
    FACE_OCCLUDED = "FACE_OCCLUDED"
    SMILE = "SMILE"
    SUNGLASSES = "SUNGLASSES"


class QualityFilter(StrEnum):
    """How strictly Rekognition filters low-quality faces."""

    NONE = "NONE"
    AUTO = "AUTO"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


class _Model(BaseModel):
    # Frozen and closed: a typo in a field name is an error at both ends, never a silently ignored field.
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- Image sources: references only. Megabytes never travel inside a broker message. ---


class S3Image(_Model):
    """An image in S3 (or any S3-compatible store the worker's AWS_ENDPOINT_URL_S3 names)."""

    kind: Literal["s3"] = "s3"
    bucket: Annotated[str, StringConstraints(min_length=3, max_length=255, pattern=S3_BUCKET_PATTERN)]
    key: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    version: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None

    def describe(self) -> str:
        """Return a short human label, s3://bucket/key."""
        return f"s3://{self.bucket}/{self.key}"

    def s3_object(self) -> dict[str, str]:
        """Return Rekognition's S3Object for this object (Bucket, Name, and Version when pinned)."""
        s3_object = {"Bucket": self.bucket, "Name": self.key}
        if self.version is not None:
            s3_object["Version"] = self.version
        return s3_object


class BlobImage(_Model):
    """Image bytes the producer stored in Redis under a content-addressed key with a TTL (a claim check)."""

    kind: Literal["blob"] = "blob"
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    size_bytes: Annotated[int, Field(ge=0)]

    @property
    def key(self) -> str:
        """The Redis key holding the bytes."""
        return blob_key(self.sha256)

    def describe(self) -> str:
        """Return a short human label."""
        return f"blob:{self.sha256[:12]}"


ImageSource = Annotated[S3Image | BlobImage, Field(discriminator="kind")]

IMAGE_PARAMETERS = {"image": "Image", "source": "SourceImage", "target": "TargetImage"}
"""A job's image fields, in request order, and the Rekognition parameter each one fills."""
IMAGE_FIELDS = tuple(IMAGE_PARAMETERS)


# --- Jobs. ---


def new_id() -> str:
    """Return a fresh job or batch id."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


_NOT_PARAMETERS = {
    "schema_version",
    "job_id",
    "batch_id",
    "submitted_at",
    "label",
    "use_cache",
    "operation",
    "video",
    "request_token",
}
_NOT_PARAMETERS.update(IMAGE_FIELDS)
"""Fields Rekognition never sees as they are: the envelope's, and the images (the worker fetches and places them) and
the video (sent as its S3Object)."""


@functools.cache
def _optional_parameters(cls: type[BaseModel]) -> tuple[str, ...]:
    """The Rekognition names of a job class's fields that a job may leave out (default None), in field order."""
    return tuple(to_pascal(name) for name, field in cls.model_fields.items() if field.default is None)


class _Job(_Model):
    # Each field the job shares with Rekognition is named as Rekognition names it, in PascalCase (collection_id:
    # CollectionId). A serialization alias only: the job's own JSON keeps its names, and request() uses the alias.
    model_config = ConfigDict(alias_generator=AliasGenerator(serialization_alias=to_pascal))

    client_request_token: ClassVar[bool] = False
    """Whether the job id goes to Rekognition as ClientRequestToken, so a redelivered job is not done twice."""

    schema_version: Literal[1] = SCHEMA_VERSION
    job_id: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z_\-]{1,64}$")] = Field(default_factory=new_id)
    batch_id: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z_\-]{1,64}$")] | None = None
    submitted_at: datetime = Field(default_factory=utcnow)
    label: Annotated[str, StringConstraints(max_length=1024)] | None = None
    """A human label for the job (e.g. the photo's file name); carried into the result."""
    use_cache: bool = True
    """Opt-out of serving a stored response for the same image and parameters (issue 'never pay twice')."""

    def request(self) -> dict[str, Any]:
        """Return the Rekognition parameters other than the images: the job's own fields by their Rekognition names,
        those it always sends first and those it may leave out (None: not sent) after, then ClientRequestToken."""
        params = self.model_dump(mode="json", by_alias=True, exclude=_NOT_PARAMETERS, exclude_none=True)
        for name in _optional_parameters(type(self)):  # to the end, in field order
            if name in params:
                params[name] = params.pop(name)
        if self.client_request_token:
            params["ClientRequestToken"] = self.job_id
        return params

    def retried(self) -> Self:
        """The job again, to submit anew from its dead letter: a new job id (the old one keeps its failed result)."""
        return self.model_copy(update={"job_id": new_id(), "submitted_at": utcnow()})


def _normalise_attributes(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip().upper() for part in value.split(",") if part.strip()]
    return value


class DetectFacesJob(_Job):
    """DetectFaces on one image."""

    operation: Literal[Operation.DETECT_FACES] = Operation.DETECT_FACES
    image: ImageSource
    attributes: Annotated[tuple[Attribute, ...], Field(min_length=1)] = (Attribute.DEFAULT,)

    _split = field_validator("attributes", mode="before")(_normalise_attributes)


class CompareFacesJob(_Job):
    """CompareFaces: the largest face of the source against the faces of the target."""

    operation: Literal[Operation.COMPARE_FACES] = Operation.COMPARE_FACES
    source: ImageSource
    target: ImageSource
    similarity_threshold: Percent = 80.0
    quality_filter: QualityFilter = QualityFilter.NONE


class IndexFacesJob(_Job):
    """IndexFaces: add the faces of an image to a collection."""

    operation: Literal[Operation.INDEX_FACES] = Operation.INDEX_FACES
    image: ImageSource
    collection_id: CollectionId
    external_image_id: ExternalImageId | None = None
    max_faces: Annotated[int, Field(ge=1, le=100)] | None = None
    quality_filter: QualityFilter = QualityFilter.AUTO
    detection_attributes: tuple[Attribute, ...] = (Attribute.DEFAULT,)

    _split = field_validator("detection_attributes", mode="before")(_normalise_attributes)

    @field_validator("external_image_id")
    @classmethod
    def _not_a_job_mark(cls, value: str | None) -> str | None:
        # The prefix names one job's faces: a job that chose such an id could have them taken for another job's.
        if value is not None and value.startswith(JOB_MARK_PREFIX):
            raise ValueError(f"ExternalImageIds starting {JOB_MARK_PREFIX!r} are reserved for the worker's job marks")
        return value


class SearchFacesByImageJob(_Job):
    """SearchFacesByImage: the largest face of an image against a collection."""

    operation: Literal[Operation.SEARCH_FACES_BY_IMAGE] = Operation.SEARCH_FACES_BY_IMAGE
    image: ImageSource
    collection_id: CollectionId
    face_match_threshold: Percent = 80.0
    max_faces: Annotated[int, Field(ge=1, le=4096)] = 10
    quality_filter: QualityFilter = QualityFilter.NONE


class CreateCollectionJob(_Job):
    """CreateCollection."""

    operation: Literal[Operation.CREATE_COLLECTION] = Operation.CREATE_COLLECTION
    collection_id: CollectionId


class DeleteCollectionJob(_Job):
    """DeleteCollection."""

    operation: Literal[Operation.DELETE_COLLECTION] = Operation.DELETE_COLLECTION
    collection_id: CollectionId


class ListFacesJob(_Job):
    """ListFaces, one page."""

    operation: Literal[Operation.LIST_FACES] = Operation.LIST_FACES
    collection_id: CollectionId
    max_results: Annotated[int, Field(ge=0, le=4096)] | None = None
    next_token: Annotated[str, StringConstraints(max_length=255)] | None = None


class DeleteFacesJob(_Job):
    """DeleteFaces."""

    operation: Literal[Operation.DELETE_FACES] = Operation.DELETE_FACES
    collection_id: CollectionId
    face_ids: Annotated[tuple[FaceId, ...], Field(min_length=1, max_length=4096)]


class CreateUserJob(_Job):
    """CreateUser; its ClientRequestToken is the job id, so a redelivered job never creates twice."""

    client_request_token = True
    operation: Literal[Operation.CREATE_USER] = Operation.CREATE_USER
    collection_id: CollectionId
    user_id: UserId


class DeleteUserJob(_Job):
    """DeleteUser (its faces stay in the collection); ClientRequestToken is the job id."""

    client_request_token = True
    operation: Literal[Operation.DELETE_USER] = Operation.DELETE_USER
    collection_id: CollectionId
    user_id: UserId


class AssociateFacesJob(_Job):
    """AssociateFaces: up to 100 indexed faces to one user; ClientRequestToken is the job id, so a redelivered job
    answers what the first run did instead of reporting the faces as already associated."""

    client_request_token = True
    operation: Literal[Operation.ASSOCIATE_FACES] = Operation.ASSOCIATE_FACES
    collection_id: CollectionId
    user_id: UserId
    face_ids: Annotated[tuple[FaceId, ...], Field(min_length=1, max_length=MAX_FACES_PER_USER)]
    user_match_threshold: Percent = 75.0


class DisassociateFacesJob(_Job):
    """DisassociateFaces: up to 100 faces from one user; ClientRequestToken is the job id."""

    client_request_token = True
    operation: Literal[Operation.DISASSOCIATE_FACES] = Operation.DISASSOCIATE_FACES
    collection_id: CollectionId
    user_id: UserId
    face_ids: Annotated[tuple[FaceId, ...], Field(min_length=1, max_length=MAX_FACES_PER_USER)]


class ListUsersJob(_Job):
    """ListUsers, one page."""

    operation: Literal[Operation.LIST_USERS] = Operation.LIST_USERS
    collection_id: CollectionId
    max_results: Annotated[int, Field(ge=1, le=500)] | None = None
    next_token: Annotated[str, StringConstraints(max_length=255)] | None = None


class SearchUsersJob(_Job):
    """SearchUsers: the users most like an indexed face or like another user (exactly one of the two)."""

    operation: Literal[Operation.SEARCH_USERS] = Operation.SEARCH_USERS
    collection_id: CollectionId
    user_id: UserId | None = None
    face_id: FaceId | None = None
    user_match_threshold: Percent = 80.0
    max_users: Annotated[int, Field(ge=1, le=500)] = 10

    @model_validator(mode="after")
    def _one_query(self) -> SearchUsersJob:
        if (self.user_id is None) == (self.face_id is None):
            raise ValueError("give exactly one of user_id and face_id")
        return self


class SearchUsersByImageJob(_Job):
    """SearchUsersByImage: who the largest face of an image is, among a collection's users."""

    operation: Literal[Operation.SEARCH_USERS_BY_IMAGE] = Operation.SEARCH_USERS_BY_IMAGE
    image: ImageSource
    collection_id: CollectionId
    user_match_threshold: Percent = 80.0
    max_users: Annotated[int, Field(ge=1, le=500)] = 10
    quality_filter: QualityFilter = QualityFilter.NONE


class RecognizeCelebritiesJob(_Job):
    """RecognizeCelebrities: who among the celebrities the endpoint knows is in an image (its 64 largest faces).

    Rekognition takes the image alone, so the job has no parameters of its own. Its answer depends on the image
    and on the endpoint's celebrity gallery, which changes rarely: it is cached like DetectFaces (worker/cache.py).
    """

    operation: Literal[Operation.RECOGNIZE_CELEBRITIES] = Operation.RECOGNIZE_CELEBRITIES
    image: ImageSource


class VideoFaceAttributes(StrEnum):
    """What each face of a video job carries: DEFAULT members, or ALL attributes."""

    DEFAULT = "DEFAULT"
    ALL = "ALL"


class _VideoJob(_Job):
    video: S3Image
    """The stored video (MP4 or MOV, H.264) in S3; Rekognition Video reads it there."""
    request_token: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z_\-]{1,64}$")] | None = None
    """The ClientRequestToken of the Start* call when it is not the job id: a retried job (``retried``) keeps its
    first job id's, so a retry reuses the Rekognition job the first attempt started, never pays for a second one."""

    @model_serializer(mode="wrap")
    def _without_unset_token(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A job that is no retry carries no request_token member at all: its wire JSON stays what it was, and a
        # worker of an earlier release (extra="forbid") still takes it.
        data: dict[str, Any] = handler(self)
        if data.get("request_token", "") is None:
            del data["request_token"]
        return data

    def request(self) -> dict[str, Any]:
        """Return the Start* parameters: the video and the job's token as ClientRequestToken (a redelivered or retried
        start gets the same Rekognition job, not a second one), then the job's own fields."""
        token = self.request_token or self.job_id
        return {"Video": {"S3Object": self.video.s3_object()}, "ClientRequestToken": token, **super().request()}

    def retried(self) -> Self:
        """The job again under a new job id, with the Start* token of its first attempt (issue 25: a retry after a
        lost answer started a second Rekognition job)."""
        return self.model_copy(
            update={"job_id": new_id(), "submitted_at": utcnow(), "request_token": self.request_token or self.job_id}
        )


class FaceDetectionVideoJob(_VideoJob):
    """StartFaceDetection on a stored video, then every page of GetFaceDetection, as one result."""

    operation: Literal[Operation.START_FACE_DETECTION] = Operation.START_FACE_DETECTION
    face_attributes: VideoFaceAttributes = VideoFaceAttributes.DEFAULT


class FaceSearchVideoJob(_VideoJob):
    """StartFaceSearch of a stored video's faces in a collection, then every page of GetFaceSearch, as one result."""

    operation: Literal[Operation.START_FACE_SEARCH] = Operation.START_FACE_SEARCH
    collection_id: CollectionId
    face_match_threshold: Percent = 80.0


VIDEO_OPERATIONS = frozenset({Operation.START_FACE_DETECTION, Operation.START_FACE_SEARCH})

VIDEO_GET_OPERATIONS: dict[Operation, tuple[str, str]] = {
    Operation.START_FACE_DETECTION: ("GetFaceDetection", "Faces"),
    Operation.START_FACE_SEARCH: ("GetFaceSearch", "Persons"),
}
"""Each video job's Get* operation and the response member its pages list."""


Job = Annotated[
    DetectFacesJob
    | CompareFacesJob
    | IndexFacesJob
    | SearchFacesByImageJob
    | CreateCollectionJob
    | DeleteCollectionJob
    | ListFacesJob
    | DeleteFacesJob
    | CreateUserJob
    | DeleteUserJob
    | AssociateFacesJob
    | DisassociateFacesJob
    | ListUsersJob
    | SearchUsersJob
    | SearchUsersByImageJob
    | RecognizeCelebritiesJob
    | FaceDetectionVideoJob
    | FaceSearchVideoJob,
    Field(discriminator="operation"),
]
JOB_ADAPTER: TypeAdapter[Job] = TypeAdapter(Job)

IMAGE_OPERATIONS = frozenset(
    {
        Operation.DETECT_FACES,
        Operation.COMPARE_FACES,
        Operation.INDEX_FACES,
        Operation.SEARCH_FACES_BY_IMAGE,
        Operation.SEARCH_USERS_BY_IMAGE,
        Operation.RECOGNIZE_CELEBRITIES,
    }
)


def image_parameters(job: Job) -> dict[str, S3Image | BlobImage]:
    """The images a job reads, by the Rekognition parameter each one fills, in request order."""
    # Read fields from __dict__: getattr on a field a model lacks goes through pydantic's slow __getattr__.
    found = {parameter: job.__dict__.get(name) for name, parameter in IMAGE_PARAMETERS.items()}
    return {parameter: image for parameter, image in found.items() if isinstance(image, S3Image | BlobImage)}


def job_images(job: Job) -> list[S3Image | BlobImage]:
    """The images a job reads, in request order (CompareFaces: source, then target)."""
    return list(image_parameters(job).values())


def unique_blobs(images: Iterable[S3Image | BlobImage]) -> list[BlobImage]:
    """The Redis blobs among a job's images, each once."""
    return list({image.sha256: image for image in images if isinstance(image, BlobImage)}.values())


def job_blobs(job: Job) -> list[BlobImage]:
    """The Redis blobs a job reads, each once."""
    return unique_blobs(job_images(job))


def parse_job(payload: Any) -> Job:
    """Validate a JSON-decoded job; raises pydantic.ValidationError with every problem listed."""
    return JOB_ADAPTER.validate_python(payload)


# --- Results. ---


class JobStatus(StrEnum):
    """How a job ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"


class JobError(_Model):
    """Why a job failed: a code a program can branch on, a message a person can act on."""

    code: str
    message: str
    retryable: bool


class ResultEnvelope(_Model):
    """What a consumer reads for one job, from the result key, the results stream or Celery's backend."""

    schema_version: Literal[1] = SCHEMA_VERSION
    job_id: str
    batch_id: str | None = None
    operation: str
    status: JobStatus
    label: str | None = None
    response: dict[str, Any] | None = None
    """Rekognition's response unchanged, less its ResponseMetadata (request ids and HTTP headers)."""
    error: JobError | None = None
    attempts: int = 1
    """Rekognition calls made for this result: 1 when the first call answered, 0 when none was needed (served from
    the cache, or the job was refused before any call)."""
    cached: bool = False
    submitted_at: datetime | None = None
    started_at: datetime
    finished_at: datetime
    queue_wait_ms: float | None = None
    rekognition_ms: float = 0.0
    worker: str | None = None

    @model_validator(mode="after")
    def _one_outcome(self) -> ResultEnvelope:
        if self.status is JobStatus.SUCCEEDED and self.error is not None:
            raise ValueError("a succeeded result carries no error")
        if self.status is JobStatus.FAILED and self.error is None:
            raise ValueError("a failed result carries an error")
        return self

    def face_count(self) -> int:
        """Return how many faces the response describes (0 for operations without faces)."""
        if self.response is None:
            return 0
        for member in ("FaceDetails", "FaceRecords", "FaceMatches"):
            if member in self.response:
                return len(self.response[member])
        if "CelebrityFaces" in self.response:  # RecognizeCelebrities: the faces named and the faces nobody is
            return len(self.response["CelebrityFaces"]) + len(self.response.get("UnrecognizedFaces", []))
        if self.operation in (Operation.START_FACE_DETECTION, Operation.START_FACE_SEARCH):
            # A video result: one entry per face per sampled timestamp (ListFaces' "Faces" are not sightings).
            return len(self.response.get("Faces", self.response.get("Persons", [])))
        return 0


def validate_collection_id(value: str) -> str:
    """Check a CollectionId against Rekognition's rule; raises ValueError with a readable message."""
    if not (1 <= len(value) <= 255) or not re.fullmatch(COLLECTION_ID_PATTERN, value):
        raise ValueError(f"CollectionId {value!r} must be 1–255 characters of letters, digits, '_', '.', '-'")
    return value
