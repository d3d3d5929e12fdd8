"""MediaPipe's canonical face: the 468 mesh points of a generic frontal face, read from the landmarker bundle.

The bundle's ``geometry_pipeline_metadata_landmarks.binarypb`` is a protocol buffer whose field 1 holds a mesh:
field 3 of that mesh is the vertex buffer, five floats per vertex (x, y, z, u, v) in centimetres with y up and z
towards the viewer. Protobuf's wire format is simple enough to walk here without a protobuf dependency.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

import numpy as np
import numpy.typing as npt

from local_rekognition.models import wheel_weights

MESH_POINTS = 468
_CANONICAL_MESH = 1
_VERTEX_BUFFER = 3
_FLOATS_PER_VERTEX = 5
_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def _fields(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(field number, raw bytes) of each length-delimited or fixed field; varints are skipped."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, kind = key >> 3, key & 7
        if kind == _VARINT:
            _, at = _varint(data, at)
            continue
        if kind == _LENGTH:
            size, at = _varint(data, at)
        elif kind in (_FIXED32, _FIXED64):
            size = 4 if kind == _FIXED32 else 8
        else:
            raise ValueError(f"unexpected protobuf wire type {kind}")
        yield number, data[at : at + size]
        at += size


def parse_canonical(data: bytes) -> npt.NDArray[np.float64]:
    """The canonical face (468×3) in camera axes: x to the image's right, y down, z away from the camera."""
    mesh = next(value for number, value in _fields(data) if number == _CANONICAL_MESH)
    floats = b"".join(value for number, value in _fields(mesh) if number == _VERTEX_BUFFER)
    vertices = np.frombuffer(floats, dtype="<f4").reshape(-1, _FLOATS_PER_VERTEX)
    if len(vertices) != MESH_POINTS:
        raise ValueError(f"canonical mesh has {len(vertices)} vertices, expected {MESH_POINTS}")
    canonical: npt.NDArray[np.float64] = vertices[:, :3].astype(np.float64) * np.array([1.0, -1.0, -1.0])
    return canonical


@cache
def canonical_face() -> npt.NDArray[np.float64]:
    """The canonical face of the landmarker bundle in the weights directory (see parse_canonical)."""
    return parse_canonical(wheel_weights.path("geometry_pipeline_metadata_landmarks.binarypb").read_bytes())
