"""Rekognition's error codes, as the wire sends them and botocore raises them."""

from __future__ import annotations


class RekognitionError(Exception):
    """An error answered as ``{"__type": code, "Message": ...}`` with an HTTP status."""

    code = "InternalServerError"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ClientError(RekognitionError):
    """The request itself is wrong: retrying it unchanged cannot succeed."""

    code = "InvalidParameterException"
    status = 400


class InvalidParameter(ClientError):
    """A parameter is well formed but unusable, e.g. no face in a CompareFaces source image."""

    code = "InvalidParameterException"


class Validation(ClientError):
    """A parameter breaks the service model's constraints (AWS's framework answers ValidationException)."""

    code = "ValidationException"


class Serialization(ClientError):
    """The body is not JSON, or a member has the wrong JSON type."""

    code = "SerializationException"


class UnknownOperation(ClientError):
    """``X-Amz-Target`` names no operation this server implements."""

    code = "UnknownOperationException"


class ImageTooLarge(ClientError):
    """Image bytes, S3 object or pixel count past Rekognition's limits."""

    code = "ImageTooLargeException"


class InvalidImageFormat(ClientError):
    """Not a JPEG or PNG, or one that does not decode."""

    code = "InvalidImageFormatException"


class InvalidS3Object(ClientError):
    """The S3 object or its bucket cannot be read."""

    code = "InvalidS3ObjectException"


class ResourceNotFound(ClientError):
    """The collection, or the user, does not exist."""

    code = "ResourceNotFoundException"


class ResourceAlreadyExists(ClientError):
    """A collection with that id exists already."""

    code = "ResourceAlreadyExistsException"


class Conflict(ClientError):
    """A user with that id exists already."""

    code = "ConflictException"


class ServiceQuotaExceeded(ClientError):
    """A user would pass its 100 faces."""

    code = "ServiceQuotaExceededException"


class IdempotentParameterMismatch(ClientError):
    """A ClientRequestToken reused with other parameters than the call (or video job) it first started."""

    code = "IdempotentParameterMismatchException"


class InvalidPaginationToken(ClientError):
    """A NextToken this server did not hand out for this listing."""

    code = "InvalidPaginationTokenException"


class Throttling(RekognitionError):
    """Too many requests wait for the models; Rekognition answers 500 with this code and SDKs back off."""

    code = "ThrottlingException"
    status = 500


class InternalServerError(RekognitionError):
    """A bug or an engine failure on our side."""

    code = "InternalServerError"
    status = 500


class VideoTooLarge(ClientError):
    """A stored video past Rekognition Video's size limit (10 GB)."""

    code = "VideoTooLargeException"


class LimitExceeded(ClientError):
    """Too many video jobs in progress at once (Rekognition's default quota is 20 per account)."""

    code = "LimitExceededException"
