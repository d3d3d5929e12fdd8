"""Walk a value against a botocore shape and list every way it breaks the service model.

Two modes: ``wire=True`` for the raw JSON a server sent (timestamps as epoch numbers, blobs as base64,
unknown members reported, since botocore's parser would drop them silently), and ``wire=False`` for what a
boto3 client returned (timestamps as datetimes, blobs as bytes). Usable for any JSON-protocol service:

    problems = shape_problems(response, service_model.operation_model("DetectFaces").output_shape)
    assert not problems, problems
"""

from __future__ import annotations

import base64
import binascii
import datetime
import math
import re
from typing import Any

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

# botocore adds this to every parsed response; it is not part of the output shape.
_SDK_MEMBERS = frozenset({"ResponseMetadata"})


def shape_problems(value: Any, shape: Shape, *, wire: bool = False, path: str = "$") -> list[str]:
    """Every violation of ``shape`` in ``value`` as "path: what", empty when it conforms."""
    problems: list[str] = []
    _walk(value, shape, wire, path, problems)
    return problems


def assert_output_conforms(operation: OperationModel, response: dict[str, Any], *, wire: bool = False) -> None:
    """Fail with every problem found when ``response`` does not match the operation's output shape."""
    body = {k: v for k, v in response.items() if k not in _SDK_MEMBERS} if not wire else response
    problems = shape_problems(body, operation.output_shape, wire=wire)
    assert not problems, f"{operation.name} response breaks the service model:\n" + "\n".join(problems)


def _walk(value: Any, shape: Shape, wire: bool, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        _structure(value, shape, wire, path, problems)
    elif kind == "list":
        assert isinstance(shape, ListShape)
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        _range(len(value), shape, path, "length", problems)
        for index, item in enumerate(value):
            _walk(item, shape.member, wire, f"{path}[{index}]", problems)
    elif kind == "map":
        assert isinstance(shape, MapShape)
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map, got {type(value).__name__}")
            return
        _range(len(value), shape, path, "entries", problems)
        for key, item in value.items():
            _walk(key, shape.key, wire, f"{path}.<key {key!r}>", problems)
            _walk(item, shape.value, wire, f"{path}[{key!r}]", problems)
    else:
        _scalar(value, shape, wire, path, problems)


def _structure(value: Any, shape: StructureShape, wire: bool, path: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append(f"{path}: expected a structure, got {type(value).__name__}")
        return
    for name in shape.required_members:
        if value.get(name) is None:
            problems.append(f"{path}.{name}: required member missing")
    for name, item in value.items():
        member = shape.members.get(name)
        if member is None:
            problems.append(f"{path}.{name}: not a member of {shape.name}")
        elif item is None:
            problems.append(f"{path}.{name}: null (members are left out, not sent as null)")
        else:
            _walk(item, member, wire, f"{path}.{name}", problems)


def _scalar(value: Any, shape: Shape, wire: bool, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    if kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected a string, got {type(value).__name__}")
            return
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.enum}")
        _range(len(value), shape, path, "length", problems)
        pattern = shape.metadata.get("pattern")
        if pattern and "\\p{" not in pattern and not re.fullmatch(pattern, value):
            problems.append(f"{path}: {value!r} does not match {pattern}")
    elif kind in ("integer", "long", "float", "double"):
        _number(value, shape, path, problems)
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected a boolean, got {value!r}")
    elif kind == "timestamp":
        _timestamp(value, wire, path, problems)
    elif kind == "blob":
        _blob(value, wire, path, problems)
    else:
        problems.append(f"{path}: the walker does not know shape type {kind}")


def _number(value: Any, shape: Shape, path: str, problems: list[str]) -> None:
    integral = shape.type_name in ("integer", "long")
    if isinstance(value, bool) or not isinstance(value, int if integral else int | float):
        problems.append(f"{path}: expected {'an integer' if integral else 'a number'}, got {value!r}")
    elif not math.isfinite(value):
        problems.append(f"{path}: expected a finite number, got {value!r}")
    else:
        _range(value, shape, path, "value", problems)


def _timestamp(value: Any, wire: bool, path: str, problems: list[str]) -> None:
    if wire:
        # AWS JSON protocols send timestamps as epoch seconds.
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            problems.append(f"{path}: expected epoch seconds, got {value!r}")
    elif not isinstance(value, datetime.datetime) or value.tzinfo is None:
        problems.append(f"{path}: expected an aware datetime, got {value!r}")


def _blob(value: Any, wire: bool, path: str, problems: list[str]) -> None:
    if not wire:
        if not isinstance(value, bytes | bytearray):
            problems.append(f"{path}: expected bytes, got {type(value).__name__}")
        return
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        problems.append(f"{path}: expected base64 text, got {value!r:.40}")


def _range(measure: float, shape: Shape, path: str, what: str, problems: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and measure < low:
        problems.append(f"{path}: {what} {measure} is below the minimum {low}")
    if high is not None and measure > high:
        problems.append(f"{path}: {what} {measure} is above the maximum {high}")
