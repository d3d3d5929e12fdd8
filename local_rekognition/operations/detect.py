"""DetectFaces."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from local_rekognition.context import Call
from local_rekognition.faces import face_detail, requested_attributes
from local_rekognition.operations.common import Handler


async def detect_faces(call: Call) -> dict[str, Any]:
    """The 100 largest faces with DEFAULT members plus the requested Attributes."""
    attributes = requested_attributes(call.params.get("Attributes"))
    image, faces = await call.services.analyze(call.params["Image"], "Image", attributes=attributes)
    return {"FaceDetails": [face_detail(face, image.width, image.height, attributes) for face in faces]}


OPERATIONS: Mapping[str, Handler] = {"DetectFaces": detect_faces}
