"""Enqueue from a synchronous web handler: accept a photo, answer at once with a job id, serve the result later.

The handler never calls Rekognition itself: a request that waited for face analysis would hold a web worker for
seconds and time out under load. It stores the photo in Redis, queues the job (about a millisecond), answers 202, and
the client asks for the result when it wants it. Plain WSGI from the standard library: the same two functions work
under gunicorn or any WSGI server (FaceQueue is thread-safe: one per process, shared by every request).

    python examples/web_handler.py serve --port 8000
    curl --data-binary @photo.jpg localhost:8000/photos      -> 202 {"job_id": "..."}
    curl 'localhost:8000/jobs/JOB_ID?wait=30'                 -> 200 the result envelope, or 202 while pending

    python examples/web_handler.py demo PHOTO                 # serve on a free port, play both requests once
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

from producer import FaceQueue, jobs

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

# One client per process, built from FACEQUEUE_* environment variables, shared by all requests.
queue = FaceQueue()


def _json(start_response: StartResponse, status: str, body: Any) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """POST /photos (the photo as the body) and GET /jobs/ID[?wait=SECONDS]."""
    method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
    if method == "POST" and path == "/photos":
        size = int(environ.get("CONTENT_LENGTH") or 0)
        photo = environ["wsgi.input"].read(size)
        try:
            # The label travels with the job into its result: name the upload so results are readable.
            handle = queue.submit(jobs.detect_faces(photo, attributes="ALL", label=environ.get("HTTP_X_FILENAME")))
        except jobs.ImageInputError as exc:  # empty or too large: the client's mistake, said at once
            return _json(start_response, "400 Bad Request", {"error": str(exc)})
        return _json(start_response, "202 Accepted", {"job_id": handle.job_id, "result": f"/jobs/{handle.job_id}"})
    if method == "GET" and path.startswith("/jobs/"):
        job_id = path.removeprefix("/jobs/")
        wait_s = float(parse_qs(environ.get("QUERY_STRING", "")).get("wait", ["0"])[0])
        try:
            # A short long-poll saves the client a polling loop; without ?wait it answers at once.
            envelope = queue.result(job_id, timeout_s=min(wait_s, 60)) if wait_s else queue.get_result(job_id)
        except TimeoutError:
            envelope = None
        if envelope is None:
            return _json(start_response, "202 Accepted", {"job_id": job_id, "status": "pending"})
        return _json(start_response, "200 OK", envelope.model_dump(mode="json", exclude_none=True))
    return _json(start_response, "404 Not Found", {"error": f"no route {method} {path}"})


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def demo(photo: str) -> int:
    """Serve on a free port in a thread, POST the photo, GET its result, print both answers."""
    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    with open(photo, "rb") as body:
        request = urllib.request.Request(f"{base}/photos", data=body.read(), headers={"X-Filename": photo})
    with urllib.request.urlopen(request) as response:
        accepted = json.loads(response.read())
        print(f"POST /photos -> {response.status} job {accepted['job_id']}")
    with urllib.request.urlopen(f"{base}{accepted['result']}?wait=60") as response:
        envelope = json.loads(response.read())
        faces = len((envelope.get("response") or {}).get("FaceDetails", []))
        print(f"GET {accepted['result']} -> {response.status} {envelope.get('status')}: {faces} face(s)")
    server.shutdown()
    return 0 if envelope.get("status") == "succeeded" else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("--port", type=int, default=8000)
    sub.add_parser("demo").add_argument("photo")
    args = parser.parse_args()
    if args.command == "demo":
        return demo(args.photo)
    with make_server("127.0.0.1", args.port, app) as server:
        print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
