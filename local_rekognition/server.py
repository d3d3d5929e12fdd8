"""The AWS JSON 1.1 endpoint (``POST /``, ``X-Amz-Target: RekognitionService.<Operation>``) and ``/health``.

Requests may be SigV4-signed for any region and credentials; signatures are not checked. Errors come back as
Rekognition's ``{"__type": code, "Message": ...}`` so SDKs raise the very same error codes as against AWS.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

import numpy as np
from aiohttp import web
from aiohttp.typedefs import Handler

from local_rekognition.context import Call, Services
from local_rekognition.errors import (
    ImageTooLarge,
    InternalServerError,
    RekognitionError,
    ResourceAlreadyExists,
    ResourceNotFound,
    Serialization,
    UnknownOperation,
)
from local_rekognition.operations import OPERATIONS
from local_rekognition.store import CollectionExistsError, CollectionNotFoundError
from local_rekognition.validation import validate_input

log = logging.getLogger(__name__)

SERVICES_KEY = web.AppKey("services", Services)
CONTENT_TYPE = "application/x-amz-json-1.1"
_TARGET_PREFIX = "RekognitionService."
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/rekognition/aws4_request")


def _json_default(value: Any) -> Any:
    # Engines compute in numpy; its scalars are not JSON types.
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _response(body: dict[str, Any], status: int, request_id: str) -> web.Response:
    return web.Response(
        body=json.dumps(body, default=_json_default, allow_nan=False).encode("utf-8"),
        status=status,
        content_type=CONTENT_TYPE,
        headers={"x-amzn-RequestId": request_id},
    )


class RequestTooLarge(ImageTooLarge):
    """A body past ``max_request_bytes``: Rekognition's code for oversized images, with HTTP's own status."""

    status = 413


def error_response(error: RekognitionError, request_id: str) -> web.Response:
    """Rekognition's error body and headers for ``error``."""
    response = _response({"__type": error.code, "Message": error.message}, error.status, request_id)
    response.headers["x-amzn-ErrorType"] = error.code
    return response


def request_region(request: web.Request, default: str) -> str:
    """The region of the request's SigV4 credential scope, else ``default``."""
    match = _CREDENTIAL_SCOPE.search(request.headers.get("Authorization", ""))
    return match.group(1) if match else default


async def _read_params(request: web.Request) -> Any:
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        limit = request.app[SERVICES_KEY].settings.max_request_bytes
        raise RequestTooLarge(
            f"Request body is larger than this server's limit of {limit}"
            " bytes; Rekognition takes images of at most 5 MB as Bytes (use S3Object for up to 15 MB)"
        ) from exc
    except web.RequestPayloadError as exc:
        # A body that cannot be read to its end, e.g. broken chunked encoding, or "Content-Encoding: gzip" over
        # bytes that are not gzip when the runner inflates bodies (__main__'s does not): the caller's fault.
        raise Serialization(f"The request body cannot be read: {exc}") from exc
    if not body.strip():
        return {}
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Serialization(f"The request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        # json's C scanner refuses nesting deeper than the interpreter's recursion limit (about 1000 levels).
        raise Serialization("The request body is not valid JSON: it is nested too deeply") from exc


async def handle_operation(request: web.Request) -> web.Response:
    """Dispatch one AWS JSON 1.1 call to its operation and render its result or error."""
    request_id = str(uuid.uuid4())
    services = request.app[SERVICES_KEY]
    target = request.headers.get("X-Amz-Target", "")
    operation = target[len(_TARGET_PREFIX) :] if target.startswith(_TARGET_PREFIX) else ""
    try:
        handler = OPERATIONS.get(operation)
        if handler is None:
            raise UnknownOperation(f"Operation {target or '(no X-Amz-Target)'} is not implemented by local_rekognition")
        with services.admitted():
            params = await _read_params(request)
            validate_input(operation, params)
            # A member sent as null is a member not sent, as AWS reads it: handlers see values or their defaults.
            params = {name: value for name, value in params.items() if value is not None}
            call = Call(services, request_region(request, services.settings.default_region), params)
            result = await handler(call)
        return _response(result, 200, request_id)
    except RekognitionError as error:
        return error_response(error, request_id)
    except CollectionNotFoundError as missing:
        return error_response(ResourceNotFound(f"The collection id: {missing.args[0]} does not exist"), request_id)
    except CollectionExistsError as taken:
        return error_response(ResourceAlreadyExists(f"The collection id: {taken.args[0]} already exists"), request_id)
    except Exception:
        log.exception("%s failed (request %s)", operation, request_id)
        return error_response(InternalServerError("Internal server error"), request_id)


@web.middleware
async def aws_shaped_refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The router's 404 and 405 in Rekognition's error shape, so every answer of this server is JSON."""
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as refused:
        error = UnknownOperation(
            f"{request.method} {request.path} is not an operation: call POST / with X-Amz-Target: "
            f"{_TARGET_PREFIX}<Operation>"
        )
        response = error_response(error, str(uuid.uuid4()))
        response.set_status(refused.status)
        if "Allow" in refused.headers:
            response.headers["Allow"] = refused.headers["Allow"]
        return response


async def handle_health(request: web.Request) -> web.Response:
    """Liveness and readiness for compose healthchecks: the engine is loaded once the server listens."""
    services = request.app[SERVICES_KEY]
    return web.json_response(
        {
            "Status": "ok",
            "FaceModelVersion": services.engine.face_model_version,
            "PendingRequests": services.pending,
            "InferenceThreads": services.settings.inference_threads,
        }
    )


def create_app(services: Services) -> web.Application:
    """The aiohttp application for ``services``; the caller closes the services after the app stops."""
    app = web.Application(client_max_size=services.settings.max_request_bytes, middlewares=[aws_shaped_refusals])
    app[SERVICES_KEY] = services
    app.router.add_post("/", handle_operation)
    app.router.add_get("/health", handle_health)
    app.on_startup.append(_resume_video_jobs)
    return app


async def _resume_video_jobs(app: web.Application) -> None:
    # Jobs a stopped server left IN_PROGRESS run again now, so their JobIds still end SUCCEEDED or FAILED.
    from local_rekognition.operations.video import resume_jobs

    resumed = resume_jobs(app[SERVICES_KEY])
    if resumed:
        log.info("resumed %d video job(s) left in progress", resumed)
