"""What to tell a person when something goes wrong: one line saying what is wrong and what to do about it.

Two sources of trouble. Jobs fail on the worker with a code in their envelope (``JobError.code``): ``HINTS`` maps the
common codes to advice. The CLI itself meets unreachable services and missing AWS resources as exceptions:
``explain`` turns those into a sentence. Neither imports botocore: a producer-only install has no boto3, and the
boto3 exceptions the CLI can meet (listing an s3:// prefix, fetching a photo to annotate) are recognised by name.
"""

from __future__ import annotations

import ssl
from typing import Any

import redis

HINTS: dict[str, str] = {
    # The worker's environment: every job fails the same way until someone fixes it.
    "NoCredentials": "the worker found no AWS credentials; give its environment AWS_PROFILE or "
    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or point AWS_ENDPOINT_URL_REKOGNITION at local_rekognition)",
    "NoRegion": "the worker has no AWS region; set AWS_REGION in its environment",
    "UnrecognizedClientException": "AWS does not know the worker's access key; check its AWS_ACCESS_KEY_ID",
    "InvalidSignatureException": "AWS refused the worker's signature; check its AWS_SECRET_ACCESS_KEY",
    "ExpiredTokenException": "the worker's AWS session token expired; refresh its credentials",
    "EndpointConnectionError": "the worker cannot reach Rekognition; check AWS_ENDPOINT_URL_REKOGNITION and "
    "AWS_REGION in its environment, and that local_rekognition runs if you use it",
    "Timeout": "Rekognition did not answer the worker in time; check the endpoint, or raise "
    "FACEQUEUE_REKOGNITION_READ_TIMEOUT_S",
    "ThrottlingException": "Rekognition throttled the worker past its retries; lower the workers' concurrency or "
    "ask AWS for a higher TPS quota",
    "ProvisionedThroughputExceededException": "Rekognition throttled the worker past its retries; lower the "
    "workers' concurrency or ask AWS for a higher TPS quota",
    # The job's own inputs.
    "InvalidS3ObjectException": "the S3 bucket or key does not exist (or the worker reads another S3: check its "
    "AWS_ENDPOINT_URL_S3); list it with `aws s3 ls s3://BUCKET/KEY`",
    "AccessDeniedException": "the worker's AWS identity may not do this; grant it rekognition:* on the collection "
    "and s3:GetObject on the bucket",
    "S3ConnectionError": "the worker cannot reach S3; check AWS_ENDPOINT_URL_S3 and the network",
    "ResourceNotFoundException": "the collection does not exist; create it with `facequeue collection create ID` "
    "(and check the worker's AWS_REGION: collections are regional); for a user job, the user may not exist: "
    "`facequeue users list COLLECTION`",
    "ConflictException": "that user exists already; enrol more photos with `facequeue enrol`, or delete it first "
    "with `facequeue users delete COLLECTION USER`",
    "ServiceQuotaExceededException": "a user holds at most 100 faces; disassociate some before adding more",
    "IdempotentParameterMismatchException": "the job's ClientRequestToken was used before for another request; "
    "submit it as a new job (a new job id)",
    "ResourceAlreadyExistsException": "the collection exists already; use it, or delete it first with "
    "`facequeue collection delete ID`",
    "InvalidImageFormatException": "the file is not a JPEG or PNG the worker can read; convert it or leave it out",
    "ImageTooLargeException": "the photo is too large; downscale it below 15 MB and 100 megapixels",
    "InvalidParameterException": "Rekognition refused the request; for compare and search this usually means no "
    "face was found in the source photo",
    "JobExpired": "the job is older than the workers' FACEQUEUE_RESULT_TTL_S (a replayed or long-stuck message), "
    "so it was not run; submit it again if you still want it",
    "ImageBlobCorrupt": "the photo's bytes in Redis were damaged; submit it again",
    "InternalWorkerError": "the worker hit a bug; its log has the traceback, and the job is in the dead letters",
}


ALLOW_LIST_HINT = (
    "the worker's own allow-list refused the bucket, before asking AWS; add the bucket (or bucket/prefix) to the "
    "worker's FACEQUEUE_S3_ALLOWED, or use a bucket it lists"
)


def hint(code: str, message: str = "") -> str | None:
    """Return advice for a failed job's error code (and message), or None when its message says it all."""
    if code == "AccessDeniedException" and "FACEQUEUE_S3_ALLOWED" in message:
        # Our refusal, not IAM's: granting the worker more rights would change nothing.
        return ALLOW_LIST_HINT
    return HINTS.get(code)


def _tls_failure(exc: BaseException) -> str | None:
    """The TLS reason behind a Redis connection error (a certificate not trusted, a handshake refused), if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"its TLS certificate is not trusted here ({seen.verify_message})"
        if isinstance(seen, ssl.SSLError):
            return f"the TLS handshake failed ({seen.reason or seen})"
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return "its TLS certificate is not trusted here (certificate verify failed)"
    if "SSL" in text and ("handshake" in text.lower() or "wrong version" in text.lower()):
        return f"the TLS handshake failed ({text[:120]})"
    return None


def _aws_error_code(exc: BaseException) -> str | None:
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error") or {}
        return str(error.get("Code") or "") or None
    return None


def explain(exc: BaseException, *, redis_url: str = "FACEQUEUE_REDIS_URL") -> str | None:
    """Return one line saying what is wrong and what to do, for the exceptions a user (not a bug) causes."""
    if isinstance(exc, redis.AuthenticationError):
        return f"Redis at {redis_url} refused the password; put the right one in FACEQUEUE_REDIS_URL"
    if isinstance(exc, redis.ConnectionError) and (tls := _tls_failure(exc)):
        # Redis answered, but the connection was refused on TLS grounds: "does not answer" would send people to
        # start a Redis that is running.
        return (
            f"Redis at {redis_url} answers, but {tls}; give the URL the CA that signed it "
            "(?ssl_ca_certs=/path/ca.pem) or fix the server's certificate"
        )
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return (
            f"Redis does not answer at {redis_url}; start it (`redis-server`, or `facequeue-stack up`) "
            "or point FACEQUEUE_REDIS_URL at yours"
        )
    if isinstance(exc, redis.RedisError):
        return f"Redis at {redis_url} refused a command ({exc})"
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return "no AWS credentials to read S3 here; set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
    if name == "NoRegionError":
        return "no AWS region; set AWS_REGION"
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError"):
        return f"cannot reach S3 ({exc}); check AWS_ENDPOINT_URL_S3 and the network"
    code = _aws_error_code(exc)
    if code in ("NoSuchBucket", "404"):
        return "S3 has no such bucket; check its name (`aws s3 ls`) and AWS_ENDPOINT_URL_S3"
    if code in ("AccessDenied", "403", "AllAccessDisabled"):
        return "S3 refused access; your AWS identity needs s3:ListBucket and s3:GetObject on the bucket"
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
        return f"S3 refused your AWS credentials ({code}); check AWS_PROFILE or AWS_ACCESS_KEY_ID"
    return None
