"""LocalRekognitionSettings: the server's configuration, from FACEQUEUE_LOCAL_* variables and CLI flags."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Rekognition's image limits, the one set the worker checks too (producer/contract.py, pydantic + stdlib only).
from producer.contract import IMAGE_BYTES_MAX, IMAGE_PIXELS_MAX

__all__ = ["IMAGE_BYTES_MAX", "LocalRekognitionSettings"]

# CompareFaces carries two images, each up to 5 MB, base64-encoded (4/3) in JSON, plus the rest of the body.
DEFAULT_MAX_REQUEST_BYTES = 2 * (IMAGE_BYTES_MAX * 4 // 3 + 4) + 256 * 1024


def _cores() -> int:
    return os.cpu_count() or 1


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "local_rekognition"


class LocalRekognitionSettings(BaseSettings):
    """Where the server listens, where it keeps collections and how much work it takes on."""

    model_config = SettingsConfigDict(
        env_prefix="FACEQUEUE_LOCAL_", extra="ignore", frozen=True, use_attribute_docstrings=True
    )

    host: str = "127.0.0.1"
    """Address to listen on (0.0.0.0 in a container)."""
    port: int = Field(default=8085, ge=0, le=65535)
    """Port to listen on; 0 picks a free one and prints it."""
    data_dir: Path = Field(default_factory=_default_data_dir)
    """Where collections live (one directory per collection, named by a hash of its id)."""
    inference_threads: int = Field(default_factory=_cores, ge=1, le=256)
    """Threads running image decoding and the face models; one per core keeps every core busy."""
    max_request_bytes: int = Field(default=DEFAULT_MAX_REQUEST_BYTES, ge=64 * 1024)
    """Largest request body: two 5 MB images in base64 plus 256 KiB."""
    max_image_pixels: int = Field(default=IMAGE_PIXELS_MAX, ge=80 * 80)
    """Decoded images past this are refused before decoding (a decompression bomb costs no memory)."""
    max_pending_requests: int = Field(default=64, ge=1)
    """Requests admitted at once; past this the server answers ThrottlingException, as Rekognition does."""
    account_id: str = Field(default="000000000000", pattern=r"^[0-9]{12}$")
    """The account in collection ARNs."""
    default_region: str = "us-east-1"
    """Region used in ARNs when a request carries no SigV4 credential scope."""
