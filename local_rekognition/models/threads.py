"""Per-thread model objects: OpenCV's detector and recogniser keep state between calls."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import cv2

T = TypeVar("T")

# Each request runs on one core: the server runs as many requests at once as there are cores, so
# OpenCV's own thread pool on top of that would only make the requests fight over the same cores.
cv2.setNumThreads(1)
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


class PerThread(Generic[T]):
    """Builds one object per calling thread on first use and hands it back afterwards."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._local = threading.local()

    def get(self) -> T:
        """Return this thread's object, building it if this thread has none yet."""
        value: T | None = getattr(self._local, "value", None)
        if value is None:
            value = self._factory()
            self._local.value = value
        return value
