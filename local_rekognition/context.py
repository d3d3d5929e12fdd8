"""What every operation works with: the engine, the store, the image loader and the thread pools."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from local_rekognition import images
from local_rekognition.celebrity_gallery import CelebrityGallery
from local_rekognition.errors import InternalServerError, Throttling
from local_rekognition.faces import MAX_FACES_DETECTED
from local_rekognition.models.engine import DetectedFace, FaceEngine
from local_rekognition.settings import LocalRekognitionSettings
from local_rekognition.store import CollectionStore
from local_rekognition.video.jobs import VideoJobStore

T = TypeVar("T")


def celebrity_dir(data_dir: Path) -> Path:
    """Where the people an operator adds to the celebrity gallery live."""
    return data_dir / "celebrities"


@dataclass
class Services:
    """The long-lived parts of a running server, shared by all requests."""

    settings: LocalRekognitionSettings
    engine: FaceEngine
    store: CollectionStore
    s3: images.S3Reader = field(default_factory=images.S3Reader)
    inference: ThreadPoolExecutor = field(init=False)
    io: ThreadPoolExecutor = field(init=False)
    video_jobs: VideoJobStore = field(init=False)
    celebrities: CelebrityGallery = field(init=False)
    pending: int = 0

    def __post_init__(self) -> None:
        # Decoding and the models are CPU-bound and release the GIL: one thread per core keeps every core busy
        # while the event loop stays free to answer /health. S3 reads and store writes wait on I/O: own pool.
        self.inference = ThreadPoolExecutor(self.settings.inference_threads, thread_name_prefix="inference")
        self.io = ThreadPoolExecutor(8, thread_name_prefix="io")
        self.video_jobs = VideoJobStore(self.settings.data_dir)
        self.celebrities = CelebrityGallery(celebrity_dir(self.settings.data_dir))

    def close(self) -> None:
        """Stop the thread pools (waits for running work)."""
        self.video_jobs.closing = True
        self.inference.shutdown(wait=True, cancel_futures=True)
        self.io.shutdown(wait=True, cancel_futures=True)

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        """Count a request in, or refuse it with ThrottlingException past ``max_pending_requests``.

        The cap keeps memory flat under overload: each admitted request may hold two 5 MB images.
        """
        if self.pending >= self.settings.max_pending_requests:
            raise Throttling("Rate exceeded: too many requests are waiting for the face models")
        self.pending += 1
        try:
            yield
        finally:
            self.pending -= 1

    async def compute(self, function: Callable[..., T], *args: Any) -> T:
        """Run CPU-bound work on the inference pool."""
        return await asyncio.get_running_loop().run_in_executor(self.inference, function, *args)

    async def run_io(self, function: Callable[..., T], *args: Any) -> T:
        """Run blocking I/O (S3, the store's disk writes) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.io, function, *args)

    async def analyze(
        self,
        image: dict[str, Any],
        path: str,
        *,
        attributes: frozenset[str] = frozenset(),
        want_embeddings: bool = False,
    ) -> tuple[images.DecodedImage, list[DetectedFace]]:
        """Load one request image (Bytes or S3Object), decode it and find its faces, largest first."""
        data = images.image_bytes(image, path=path)
        if data is None:
            data = await self.run_io(self.s3.read, image["S3Object"])
        return await self.compute(self._decode_and_analyze, data, attributes, want_embeddings)

    def _decode_and_analyze(
        self, data: bytes, attributes: frozenset[str], want_embeddings: bool
    ) -> tuple[images.DecodedImage, list[DetectedFace]]:
        decoded = images.decode(data, max_pixels=self.settings.max_image_pixels)
        faces = self.engine.analyze(
            decoded.pixels,
            attributes=attributes,
            want_embeddings=want_embeddings,
            max_faces=MAX_FACES_DETECTED,
        )
        # The contract says largest first; sort anyway, since MaxFaces and "the source face" depend on it.
        faces = sorted(faces, key=lambda face: face.box.width * face.box.height, reverse=True)
        if want_embeddings and any(face.embedding is None for face in faces):
            raise InternalServerError("The face engine returned a face without an embedding")
        return decoded, faces


@dataclass(frozen=True)
class Call:
    """One operation call: the shared services, the caller's region and the validated JSON parameters."""

    services: Services
    region: str
    params: dict[str, Any]

    def collection_arn(self, collection_id: str) -> str:
        """The collection's ARN in the caller's region and the server's fake account."""
        account = self.services.settings.account_id
        return f"arn:aws:rekognition:{self.region}:{account}:collection/{collection_id}"
