"""Fuzzing local_rekognition over HTTP: raw requests, a keep-alive driver, and the property every answer has.

- ``raw_requests`` draws whole HTTP requests: methods, paths, X-Amz-Target, Content-Type and Content-Encoding
  headers, chunked bodies; bodies of random bytes, truncated JSON, huge numbers, deep nesting, other encodings.
- ``Endpoint`` sends one request at a time on a keep-alive connection and tallies the answers (``Tally``).
- ``check_answer`` is the property: no 5xx but deliberate ones, errors in Rekognition's JSON shape.
"""

from __future__ import annotations

import collections
import gzip
import http.client
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from hypothesis import strategies as st

from local_rekognition.validation import service_model
from tests.fuzzing import dumps, json_values

JSON_11 = "application/x-amz-json-1.1"

TARGETS = st.one_of(
    st.sampled_from(sorted(service_model().operation_names)).map(lambda name: f"RekognitionService.{name}"),
    st.sampled_from(
        [
            "",
            "RekognitionService.",
            "RekognitionService",
            "rekognitionservice.DetectFaces",
            "RekognitionService.detectfaces",
            "RekognitionService.DetectFaces.",
            " RekognitionService.DetectFaces",
            "RekognitionService.ListStreamProcessors",
            "RekognitionService.__init__",
            "RekognitionService.../../x",
            "DynamoDB_20120810.ListTables",
        ]
    ),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30).map("RekognitionService.".__add__),
)
CONTENT_TYPES = st.sampled_from(
    [
        JSON_11,
        JSON_11,
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "x",
    ]
)
ENCODINGS = st.sampled_from(["gzip", "deflate", "identity", "br", "zstd", "gzip, deflate", "compress", "x"])
METHODS = st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "FUZZ"])
PATHS = st.one_of(
    st.sampled_from(["/health", "//", "/?Action=DetectFaces", "/..", "/%2e%2e/", "/../etc/passwd", "/x", "/health/"]),
    st.text(max_size=20).map(lambda text: "/" + quote(text)),
)


def _nested(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    if kind == "object":
        return b'{"a":' * depth + b"1" + b"}" * depth
    return b"[" * depth  # unbalanced


def _hole(params: dict[str, Any], member: str, fragment: bytes) -> bytes:
    # A request body with one member's value replaced by raw JSON text that json.dumps cannot produce.
    marker = "\x01HOLE\x01"
    return dumps({**params, member: marker}).replace(dumps(marker), fragment)


NUMBERS = st.sampled_from(
    [b"1e400", b"-1e400", b"-0", b"0x10", b"01", b"1.", b".5", b"+1", b"1e-400", b"NaN", b"Infinity", b"-Infinity"]
)
FRAGMENTS = st.one_of(
    NUMBERS,
    st.integers(1, 5000).map(lambda digits: b"9" * digits),
    st.tuples(st.integers(1, 3000), st.sampled_from(["array", "object", "unbalanced"])).map(lambda t: _nested(*t)),
    st.sampled_from([b"null", b"true", b'"\\ud800"', b'"\\u0000"', b'"\\x"', b"[", b"{", b'"', b"]"]),
)
TEMPLATES: st.SearchStrategy[tuple[dict[str, Any], str]] = st.sampled_from(
    [
        ({"CollectionId": "fuzz-faces"}, "MaxResults"),
        ({}, "MaxResults"),
        ({"CollectionId": "fuzz-faces", "FaceIds": ["00000000-0000-0000-0000-000000000000"]}, "FaceIds"),
        ({"CollectionId": "fuzz-faces"}, "CollectionId"),
        ({"CollectionId": "fuzz-faces", "Image": {"Bytes": "AAAA"}}, "Image"),
        ({"Image": {"Bytes": "AAAA"}}, "Attributes"),
        ({"SourceImage": {"Bytes": "AAAA"}, "TargetImage": {"Bytes": "AAAA"}}, "SimilarityThreshold"),
        ({"CollectionId": "fuzz-tags"}, "Tags"),
    ]
)


def _encoded_text(text: str, encoding: str) -> bytes:
    return json.dumps({"CollectionId": text}, ensure_ascii=False).encode(encoding, errors="surrogatepass")


BODIES = st.one_of(
    st.binary(max_size=300),
    json_values().map(dumps),
    st.tuples(json_values().map(dumps), st.integers(0, 200)).map(lambda t: t[0][: t[1]]),  # truncated
    st.tuples(st.integers(1, 3000), st.sampled_from(["array", "object", "unbalanced"])).map(lambda t: _nested(*t)),
    st.tuples(TEMPLATES, FRAGMENTS).map(lambda t: _hole(t[0][0], t[0][1], t[1])),
    st.tuples(st.text(max_size=30), st.sampled_from(["utf-8", "utf-16", "utf-32", "utf-16-be", "utf-8-sig"])).map(
        lambda t: _encoded_text(*t)
    ),
    st.sampled_from([b"", b" ", b"\n\t ", b"null", b"\x00" * 8, b"{}", b"[]", b'""', b"0", b"\xef\xbb\xbf{}"]),
)


@st.composite
def raw_requests(draw: st.DrawFn) -> dict[str, Any]:
    """One HTTP request: mostly POST / with a target, every header and the body fuzzed."""
    rare = draw(st.integers(0, 9)) == 0
    method = draw(METHODS) if rare else "POST"
    path = draw(PATHS) if draw(st.integers(0, 9)) == 0 else "/"
    headers: dict[str, str] = {}
    target = draw(st.one_of(st.none(), TARGETS, TARGETS, TARGETS))
    if target is not None:
        headers[draw(st.sampled_from(["X-Amz-Target", "x-amz-target", "X-AMZ-TARGET"]))] = target
    content_type = draw(st.one_of(st.none(), CONTENT_TYPES, CONTENT_TYPES))
    if content_type is not None:
        headers["Content-Type"] = content_type
    body = draw(BODIES)
    encoding = draw(st.one_of(st.none(), st.none(), st.none(), ENCODINGS))
    if encoding is not None:
        headers["Content-Encoding"] = encoding
        if encoding == "gzip" and draw(st.booleans()):
            body = gzip.compress(body)
    if draw(st.integers(0, 9)) == 0:
        headers["Authorization"] = draw(
            st.sampled_from(
                [
                    "AWS4-HMAC-SHA256 Credential=AKID/20240101/eu-west-1/rekognition/aws4_request, Signature=x",
                    "AWS4-HMAC-SHA256 Credential=AKID/20240101/../rekognition/aws4_request",
                    "Bearer x",
                    "x" * 2000,
                ]
            )
        )
    return {
        "method": method,
        "path": path,
        "headers": headers,
        "body": body,
        "chunked": draw(st.integers(0, 9)) == 0 and method != "HEAD",
    }


@dataclass(frozen=True)
class Answer:
    """One HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def error_code(self) -> str | None:
        """``__type`` of an error body, if the body is one."""
        if self.status < 400 or not self.body:
            return None
        try:
            document = self.json()
        except ValueError:
            return None
        return document.get("__type") if isinstance(document, dict) else None


@dataclass
class Tally:
    """How many requests were sent, and the answers by status and error code."""

    requests: int = 0
    reconnects: int = 0
    answers: collections.Counter[str] = field(default_factory=collections.Counter)
    campaigns: collections.Counter[str] = field(default_factory=collections.Counter)
    successes: collections.Counter[str] = field(default_factory=collections.Counter)

    def record(self, campaign: str, answer: Answer) -> None:
        """Count one answer."""
        self.requests += 1
        self.campaigns[campaign] += 1
        self.successes[campaign] += answer.status == 200
        self.answers[f"{answer.status} {answer.error_code or ''}".strip()] += 1

    def record_drop(self, campaign: str) -> None:
        """Count one request the HTTP layer refused by closing the connection."""
        self.requests += 1
        self.campaigns[campaign] += 1
        self.answers["connection closed by the HTTP layer"] += 1

    def report(self) -> str:
        """A few lines for the terminal."""
        lines = [f"fuzzed local_rekognition with {self.requests} requests ({self.reconnects} reconnects)"]
        lines.append("  requests (200s) by campaign:")
        lines += [f"  {count:6d} ({self.successes[name]:5d})  {name}" for name, count in self.campaigns.items()]
        lines.append("  answers:")
        lines += [f"  {count:6d}  {key}" for key, count in self.answers.most_common()]
        return "\n".join(lines)


_RESET = (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)


class Endpoint:
    """An HTTP/1.1 keep-alive connection to one server, reopened when the server closed it (as after a 413)."""

    def __init__(self, url: str, tally: Tally, timeout_s: float = 60) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.tally = tally
        self._timeout_s = timeout_s
        self._connection: http.client.HTTPConnection | None = None
        self._used = False

    def close(self) -> None:
        """Close the connection."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def send(
        self,
        campaign: str,
        body: bytes | None,
        headers: Mapping[str, str],
        *,
        method: str = "POST",
        path: str = "/",
        chunked: bool = False,
        may_drop: bool = False,
    ) -> Answer | None:
        """Send one request and return the answer; a keep-alive connection the server closed is reopened once.

        ``may_drop``: the HTTP layer may refuse the request line or headers and close the connection while the
        body is still being sent; that counts as "dropped" and gives None instead of raising.
        """
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = http.client.HTTPConnection(self.host, self.port, timeout=self._timeout_s)
                self._used = False
            try:
                payload: Any = _chunks(body) if chunked and body is not None else body
                self._connection.request(method, path, body=payload, headers=dict(headers), encode_chunked=chunked)
                response = self._connection.getresponse()
                answer = Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
            except _RESET:
                reused = self._used
                self.close()
                if may_drop and (attempt == 2 or not reused):
                    self.tally.record_drop(campaign)
                    return None
                # Only a connection that served requests before may have been closed between two of them.
                if attempt == 2 or not reused:
                    raise
                self.tally.reconnects += 1
                continue
            self._used = True
            if response.will_close:
                self.close()
            self.tally.record(campaign, answer)
            return answer
        raise AssertionError("unreachable")

    def call(self, campaign: str, operation: str, params: Any) -> Answer:
        """POST / with ``params`` as the JSON body, as an SDK calls ``operation``."""
        headers = {"Content-Type": JSON_11, "X-Amz-Target": f"RekognitionService.{operation}"}
        answer = self.send(campaign, dumps(params), headers)
        assert answer is not None
        return answer


def _chunks(body: bytes) -> list[bytes]:
    # Deterministic chunk sizes: 1, 7, 4096, then the rest.
    cuts = sorted({0, *(cut for cut in (1, 8, 4104) if cut < len(body)), len(body)})
    return [body[start:end] for start, end in itertools.pairwise(cuts)]


DELIBERATE_500S = frozenset({"ThrottlingException"})
"""500s this server gives on purpose; an InternalServerError during a fuzz run is a bug (disk and engine are
healthy), though the issue allows it as a deliberate answer with a message."""


def check_answer(answer: Answer, *, method: str = "POST", path: str = "/", http_layer_may_refuse: bool = False) -> None:
    """The property every answer has: no 5xx but deliberate ones; errors as Rekognition's JSON with a message.

    ``http_layer_may_refuse``: aiohttp's HTTP parser itself may answer 400 in text/plain before the application
    sees the request (e.g. a method HTTP does not define); such answers carry no x-amzn-RequestId.
    """
    status = answer.status
    assert 200 <= status < 600, f"status {status}"
    if "x-amzn-requestid" not in answer.headers:
        if path.split("?")[0] == "/health" and method in ("GET", "HEAD"):
            assert status == 200, f"/health answered {status}: {answer.body[:200]!r}"
            return
        assert http_layer_may_refuse and status == 400, (
            f"{status} without x-amzn-RequestId (not from the application): {answer.body[:300]!r}"
        )
        return
    if method == "HEAD":
        assert status < 500, f"HEAD {path}: {status}"
        return
    try:
        document = answer.json()
    except ValueError as exc:
        raise AssertionError(f"{status} body is not JSON: {answer.body[:300]!r}") from exc
    assert isinstance(document, dict), f"{status} body is not a JSON object: {document!r:.300}"
    if status < 400:
        assert status == 200, f"unexpected success status {status}"
        return
    code, message = document.get("__type"), document.get("Message")
    assert isinstance(code, str) and code, f"{status} error without __type: {document!r:.300}"
    assert isinstance(message, str) and message, f"{status} {code} without a Message"
    assert answer.headers.get("x-amzn-errortype") == code, f"x-amzn-ErrorType differs from __type {code}"
    if status >= 500:
        assert status == 500 and code in DELIBERATE_500S, f"{status} {code}: {message[:500]}"
