"""A local MJPEG-over-HTTP stream (multipart/x-mixed-replace, as IP cameras serve) for `facequeue watch` tests."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterator

import cv2
import numpy as np
import numpy.typing as npt

_BOUNDARY = "facequeueframe"


@contextlib.contextmanager
def mjpeg_stream(frames: list[npt.NDArray[np.uint8]], fps: float) -> Iterator[str]:
    """Serve the RGB ``frames`` once, at ``fps``, to each client of the yielded URL; then close the stream."""
    jpegs = [cv2.imencode(".jpg", np.ascontiguousarray(f[:, :, ::-1]))[1].tobytes() for f in frames]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
            self.end_headers()
            started = time.monotonic()
            try:
                for index, jpeg in enumerate(jpegs):
                    # A camera delivers frames at its own pace: hold each until its time comes.
                    delay = started + index / fps - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    self.wfile.write(
                        f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                        + jpeg
                        + b"\r\n"
                    )
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
    finally:
        server.shutdown()
        server.server_close()
