"""Checks a request against botocore's Rekognition service model, as AWS's front end does before any work.

Type mismatches answer SerializationException; broken constraints (required, length, range, pattern, enum)
answer ValidationException with AWS's "N validation errors detected: Value ... at 'path' failed to satisfy
constraint: ..." message. Blob sizes are left to the image loader, which answers Rekognition's own
ImageTooLargeException.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

from local_rekognition.errors import Serialization, UnknownOperation, Validation

# The model's patterns are Java regexes and Python's re lacks \p{...} classes (only Tags patterns use them):
# \p{Z}, Unicode separators, spelled out.
_SEPARATORS = " \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


@functools.cache
def service_model() -> ServiceModel:
    """Botocore's Rekognition model, loaded once (it is the contract both ends agree on)."""
    return botocore.session.get_session().get_service_model("rekognition")


@functools.cache
def _operation(name: str) -> OperationModel:
    return service_model().operation_model(name)


def operation_model(name: str) -> OperationModel:
    """The model of one operation, or UnknownOperation when the service has no such operation."""
    if name not in service_model().operation_names:
        raise UnknownOperation(f"Operation {name!r} is not part of RekognitionService")
    return _operation(name)


@functools.cache
def _compile(pattern: str) -> re.Pattern[str]:
    # \p{L} letters and \p{N} numbers: Python's \w (which adds "_", already allowed where these appear).
    translated = pattern.replace(r"\p{L}", r"\w").replace(r"\p{N}", r"\w").replace(r"\p{Z}", _SEPARATORS)
    return re.compile(translated)


def validate_input(operation: str, params: Any) -> None:
    """Raise Serialization or Validation unless ``params`` satisfies the operation's input shape."""
    shape = operation_model(operation).input_shape
    if not isinstance(params, dict):
        raise Serialization("Start of structure or map found where not expected: the body must be a JSON object")
    problems = list(_walk(params, shape, ""))
    if problems:
        count = len(problems)
        noun = "validation error" if count == 1 else "validation errors"
        raise Validation(f"{count} {noun} detected: " + "; ".join(problems))


def _member_path(parent: str, member: str) -> str:
    name = member[:1].lower() + member[1:]
    return f"{parent}.{name}" if parent else name


# How deep _render shows nested arrays: two frames a level, a list 600 levels down would otherwise hit the
# interpreter's recursion limit (1000) and turn a ValidationException into a 500.
_RENDER_DEPTH_MAX = 8


def _render(value: Any, depth: int = 0) -> str:
    if isinstance(value, list):
        if depth >= _RENDER_DEPTH_MAX:
            return "[...]"
        return "[" + ", ".join(_render(v, depth + 1) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fail(value: Any, path: str, constraint: str) -> str:
    return f"Value '{_render(value)}' at '{path}' failed to satisfy constraint: Member must {constraint}"


def _null(path: str) -> str:
    return f"Value null at '{path}' failed to satisfy constraint: Member must not be null"


def _walk(value: Any, shape: Shape, path: str) -> Iterator[str]:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        yield from _walk_structure(value, shape, path)
    elif kind == "list":
        assert isinstance(shape, ListShape)
        yield from _walk_list(value, shape, path)
    elif kind == "map":
        assert isinstance(shape, MapShape)
        yield from _walk_map(value, shape, path)
    elif kind == "string":
        yield from _walk_string(value, shape, path)
    elif kind in ("integer", "long"):
        yield from _walk_number(value, shape, path, integral=True)
    elif kind in ("float", "double"):
        yield from _walk_number(value, shape, path, integral=False)
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise Serialization(f"Expected a boolean at '{path}'")
    elif kind == "blob":
        if not isinstance(value, str):
            raise Serialization(f"Expected a base64 string at '{path}'")


def _walk_structure(value: Any, shape: StructureShape, path: str) -> Iterator[str]:
    if not isinstance(value, dict):
        raise Serialization(f"Expected a JSON object at '{path or 'body'}'")
    for name in shape.required_members:
        if value.get(name) is None:
            yield _null(_member_path(path, name))
    # Unknown members are ignored, as AWS does, so newer SDKs keep working.
    for name, member in shape.members.items():
        if value.get(name) is not None:
            yield from _walk(value[name], member, _member_path(path, name))


def _walk_list(value: Any, shape: ListShape, path: str) -> Iterator[str]:
    if not isinstance(value, list):
        raise Serialization(f"Expected a JSON array at '{path}'")
    yield from _length(value, len(value), shape, path)
    for index, item in enumerate(value, start=1):
        if item is None:
            yield _null(f"{path}.{index}.member")
        else:
            yield from _walk(item, shape.member, f"{path}.{index}.member")


def _walk_map(value: Any, shape: MapShape, path: str) -> Iterator[str]:
    if not isinstance(value, dict):
        raise Serialization(f"Expected a JSON object at '{path}'")
    yield from _length(value, len(value), shape, path)
    for key, item in value.items():
        yield from _walk(key, shape.key, f"{path}.key")
        if item is None:
            yield _null(f"{path}.{key}")
        else:
            yield from _walk(item, shape.value, f"{path}.{key}")


def _walk_string(value: Any, shape: Shape, path: str) -> Iterator[str]:
    if not isinstance(value, str):
        raise Serialization(f"Expected a string at '{path}'")
    enum = shape.enum
    if enum and value not in enum:
        yield _fail(value, path, f"satisfy enum value set: [{', '.join(enum)}]")
        return
    yield from _length(value, len(value), shape, path)
    pattern = shape.metadata.get("pattern")
    if pattern is not None and not _compile(pattern).fullmatch(value):
        yield _fail(value, path, f"satisfy regular expression pattern: {pattern}")


def _walk_number(value: Any, shape: Shape, path: str, *, integral: bool) -> Iterator[str]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Serialization(f"Expected a number at '{path}'")
    if isinstance(value, float) and not math.isfinite(value):
        raise Serialization(f"Expected a finite number at '{path}'")
    if integral and isinstance(value, float) and not value.is_integer():
        raise Serialization(f"Expected an integer at '{path}'")
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        yield _fail(value, path, f"have value greater than or equal to {low}")
    if high is not None and value > high:
        yield _fail(value, path, f"have value less than or equal to {high}")


def _length(value: Any, length: int, shape: Shape, path: str) -> Iterator[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and length < low:
        yield _fail(value, path, f"have length greater than or equal to {low}")
    if high is not None and length > high:
        yield _fail(value, path, f"have length less than or equal to {high}")
