"""A small, flat error hierarchy: transient errors are retried, permanent ones fail the job once, with the code."""

from __future__ import annotations


class JobFailure(Exception):
    """A job cannot produce a response; ``code`` is what programs branch on, the message what people read."""

    retryable = False

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PermanentError(JobFailure):
    """Retrying cannot help: a bad image, a missing object, a missing collection, access denied."""


class TransientError(JobFailure):
    """Retrying may help: throttling, 5xx, timeouts, connection errors."""

    retryable = True


class ShuttingDown(Exception):
    """The worker is stopping: a job that has not reached Rekognition goes back to the queue for another worker."""
