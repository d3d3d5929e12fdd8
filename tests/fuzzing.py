"""Hypothesis strategies for fuzzing an AWS JSON service's input, derived from its botocore service model.

``ShapeFuzzer`` walks an input shape into a strategy of mostly valid values with an invalid one at every level
now and then: wrong JSON types, nulls, numbers out of range, strings past their length or off their pattern
(path tricks like ``..`` and ``/etc/passwd``, NUL, lone surrogates), lists and maps past their limits.
``hints`` name live values per shape (collection ids that exist, face ids indexed, see ``LiveValues``) so a
valid request reaches the operation's code rather than stopping at ResourceNotFoundException.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape
from hypothesis import strategies as st

TRICKY_STRINGS: tuple[str, ...] = (
    "",
    " ",
    ".",
    "..",
    "...",
    "../x",
    "../../canary/escaped",
    "..\\..\\x",
    "/etc/passwd",
    "/tmp/escaped",
    "%2e%2e",
    "%2e%2e%2fx",
    "..%2f..%2fx",
    "x/../../y",
    "\x00",
    "a\x00b",
    "\ud800",
    "\u202e",
    "\n",
    "💥",
    "con",
    "nul.txt",
    "~root",
    ".git",
    "collection.json",
    "faces.npz",
    ".tmp-x",
    "aws:tag",
    "x" * 256,
    "x" * 4097,
)
"""Strings that have broken servers before: traversal, encodings, NUL, separators, reserved names, lengths."""

WRONG_TYPES: st.SearchStrategy[Any] = st.sampled_from(
    [None, True, False, 0, -1, 1.5, 2**63, -(2**63) - 1, 10**30, "", "1", [], [None], {}, {"a": 1}, [[[]]]]
)
"""JSON values of every type, for members that expect another."""


def one_in(n: int, rare: st.SearchStrategy[Any], common: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """About one draw in ``n`` from ``rare``, the rest from ``common``."""
    return st.integers(0, n - 1).flatmap(lambda roll: rare if roll == 0 else common)


def json_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Arbitrary JSON: unicode strings, huge integers, floats incl. NaN and infinity, nested arrays and objects."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(10**300), max_value=10**300),
        st.floats(),
        st.text(),
        st.sampled_from(TRICKY_STRINGS),
    )
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
        max_leaves=max_leaves,
    )


def dumps(value: Any) -> bytes:
    """JSON as an SDK would send it, except that NaN and infinities are written too (as Python's json does)."""
    return json.dumps(value, allow_nan=True).encode("utf-8", errors="surrogatepass")


def _java_pattern(pattern: str) -> tuple[str, Callable[[str], bool]]:
    # The model's patterns are Java regexes: \p{L} letters, \p{N} numbers, \p{Z} separators, and one (?!aws:)
    # lookahead that hypothesis' from_regex cannot generate from. Returns a Python pattern and a filter.
    keep: Callable[[str], bool] = lambda text: True  # noqa: E731
    if "(?!aws:)" in pattern:
        pattern = pattern.replace("(?!aws:)", "")
        keep = lambda text: not text.startswith("aws:")  # noqa: E731
    return pattern.replace(r"\p{L}", r"\w").replace(r"\p{N}", r"\w").replace(r"\p{Z}", " "), keep


@dataclass
class ShapeFuzzer:
    """Hypothesis strategies for botocore shapes; one invalid value in ``invalid_share`` at each level.

    ``hints`` map a shape name (e.g. "CollectionId", "Image") to a strategy of valid values that replaces the
    one derived from the model, e.g. ids that exist on the server under test.
    """

    hints: Mapping[str, st.SearchStrategy[Any]] = field(default_factory=dict)
    invalid_share: int = 10
    _cache: dict[str, st.SearchStrategy[Any]] = field(default_factory=dict)

    def request(self, shape: StructureShape) -> st.SearchStrategy[dict[str, Any]]:
        """A request body for an operation's input shape: always a JSON object, members fuzzed."""
        members = self._members(shape)
        unknown = st.dictionaries(st.text(min_size=1, max_size=12), json_values(4), max_size=2)
        return st.one_of(members, members, members, st.tuples(members, unknown).map(lambda p: {**p[1], **p[0]}))

    def for_shape(self, shape: Shape) -> st.SearchStrategy[Any]:
        """Mostly valid values for ``shape``, sometimes invalid ones."""
        key = f"{shape.type_name}:{shape.name}"
        if key not in self._cache:
            self._cache[key] = st.deferred(lambda: one_in(self.invalid_share, self._invalid(shape), self._valid(shape)))
        return self._cache[key]

    def _valid(self, shape: Shape) -> st.SearchStrategy[Any]:
        if shape.name in self.hints:
            return self.hints[shape.name]
        kind = shape.type_name
        if kind == "structure":
            assert isinstance(shape, StructureShape)
            return self._members(shape)
        if kind == "list":
            assert isinstance(shape, ListShape)
            low, high = _bounds(shape)
            return st.lists(self.for_shape(shape.member), min_size=low or 0, max_size=min(high or 4, 4))
        if kind == "map":
            assert isinstance(shape, MapShape)
            high = _bounds(shape)[1]
            key = self._valid(shape.key)
            return st.dictionaries(key, self.for_shape(shape.value), max_size=min(high or 3, 3))
        if kind == "string":
            return _valid_string(shape)
        if kind in ("integer", "long"):
            low, high = _bounds(shape)
            return st.one_of(
                st.integers(low, high if high is not None else 10**6),
                # JSON has one number type: 3.0 is an integer too, and -0 is 0.
                st.integers(low, high if high is not None else 10**6).map(float),
            )
        if kind in ("float", "double"):
            low, high = _bounds(shape)
            return st.one_of(
                st.floats(low, high, allow_nan=False, allow_infinity=False),
                st.integers(math.ceil(low or -(10**6)), math.floor(high if high is not None else 10**6)),
            )
        if kind == "boolean":
            return st.booleans()
        if kind == "blob":
            return st.binary(min_size=1, max_size=64).map(lambda data: base64.b64encode(data).decode())
        raise AssertionError(f"no strategy for {kind} shapes ({shape.name})")

    def _members(self, shape: StructureShape) -> st.SearchStrategy[dict[str, Any]]:
        required = {name: self.for_shape(shape.members[name]) for name in shape.required_members}
        optional = {name: self.for_shape(m) for name, m in shape.members.items() if name not in required}
        return st.fixed_dictionaries(required, optional=optional)

    def _invalid(self, shape: Shape) -> st.SearchStrategy[Any]:
        kind = shape.type_name
        wrong = WRONG_TYPES.filter(lambda value: not _has_type(value, kind))
        high = _bounds(shape)[1]
        if kind == "structure":
            assert isinstance(shape, StructureShape)
            return st.one_of(wrong, self._members(shape).flatmap(lambda value: _break_structure(shape, value)))
        if kind == "list":
            assert isinstance(shape, ListShape)
            return st.one_of(wrong, self._invalid_list(shape))
        if kind == "map":
            assert isinstance(shape, MapShape)
            options = [wrong, st.just({"k": None}), st.dictionaries(st.sampled_from(TRICKY_STRINGS), st.text())]
            if high is not None:
                options.append(st.just({f"k{index}": "v" for index in range(high + 1)}))
            return st.one_of(options)
        if kind == "string":
            return st.one_of(wrong, _invalid_string(shape))
        if kind in ("integer", "long", "float", "double"):
            return st.one_of(wrong, _invalid_number(shape))
        if kind == "blob":
            return st.one_of(wrong, st.sampled_from(["", "!!!!", "=", "AAA", "\x00"]))
        return wrong

    def _invalid_list(self, shape: ListShape) -> st.SearchStrategy[Any]:
        low, high = _bounds(shape)
        item = self.for_shape(shape.member)
        options = [st.lists(item, max_size=3).map(lambda items: [*items, None])]
        if low:
            options.append(st.just([]))
        if high is not None:
            options.append(item.map(lambda value: [value] * (high + 1)))
        return st.one_of(options)


def _invalid_number(shape: Shape) -> st.SearchStrategy[Any]:
    low, high = _bounds(shape)
    edges: list[Any] = [math.nan, math.inf, -math.inf, 10**20, -(10**20), 2**63, 1e308, -1e308]
    if low is not None:
        edges += [low - 1, low - 1e-9]
    if high is not None:
        edges += [high + 1, high + 1e-9]
    if shape.type_name in ("integer", "long"):
        edges += [1.5, -0.5, 1e-300]
    return st.sampled_from(edges)


def _bounds(shape: Shape) -> tuple[int | None, int | None]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    return (None if low is None else int(low)), (None if high is None else int(high))


def _has_type(value: Any, kind: str) -> bool:
    if kind in ("structure", "map"):
        return isinstance(value, dict)
    if kind == "list":
        return isinstance(value, list)
    if kind in ("string", "blob"):
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _valid_string(shape: Shape) -> st.SearchStrategy[str]:
    if shape.enum:
        return st.sampled_from(list(shape.enum))
    low, high = _bounds(shape)
    low = low or 0
    pattern = shape.metadata.get("pattern")
    if pattern is None:
        return st.text(min_size=low, max_size=min(high or 64, 64))
    python_pattern, keep = _java_pattern(pattern)
    limit = high if high is not None else 10**6
    texts = st.from_regex(re.compile(python_pattern), fullmatch=True)
    return texts.filter(lambda text: low <= len(text) <= limit and keep(text))


def _invalid_string(shape: Shape) -> st.SearchStrategy[str]:
    low, high = _bounds(shape)
    options: list[st.SearchStrategy[str]] = [st.sampled_from(TRICKY_STRINGS), st.text(max_size=40)]
    if high is not None:
        options.append(st.sampled_from(["x" * (high + 1), "é" * (high + 1)]))
    if low:
        options.append(st.just(""))
    if shape.enum:
        options.append(st.sampled_from([name.lower() for name in shape.enum] + [name + " " for name in shape.enum]))
    return st.one_of(options)


def _break_structure(shape: StructureShape, value: dict[str, Any]) -> st.SearchStrategy[Any]:
    # A required member missing or null, or every member null.
    options: list[st.SearchStrategy[Any]] = [st.just(dict.fromkeys(shape.members))]
    for name in shape.required_members:
        options.append(st.just({k: v for k, v in value.items() if k != name}))
        options.append(st.just({**value, name: None}))
    return st.one_of(options)


class LiveValues:
    """Values that exist on the server right now, as strategies reading the current list at draw time.

    Hypothesis needs strategies before the test runs; ids appear and disappear while it does, so the strategy
    draws an index and takes whatever the list holds then (``fallback`` while it is empty).
    """

    def __init__(self, fallback: Sequence[str]) -> None:
        self.values: list[str] = []
        self._fallback = list(fallback)

    def add(self, value: str) -> None:
        """Record a value the server now has."""
        if value not in self.values:
            self.values.append(value)

    def discard(self, value: str) -> None:
        """Forget a value the server no longer has."""
        if value in self.values:
            self.values.remove(value)

    def strategy(self) -> st.SearchStrategy[str]:
        """One of the current values."""
        return st.integers(0, 2**16).map(self._pick)

    def _pick(self, index: int) -> str:
        pool = self.values or self._fallback
        return pool[index % len(pool)]
