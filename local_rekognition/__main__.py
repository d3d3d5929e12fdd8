"""``python -m local_rekognition`` / ``local-rekognition``: run the server until SIGINT or SIGTERM.

``local-rekognition celebrities add|list|remove`` manages the celebrity gallery instead (see celebrity_cli).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from local_rekognition.context import Services
from local_rekognition.models.wheel_weights import WeightsMissing
from local_rekognition.server import create_app
from local_rekognition.settings import LocalRekognitionSettings
from local_rekognition.store import CollectionStore


def parse_settings(argv: list[str] | None) -> LocalRekognitionSettings:
    """Settings from FACEQUEUE_LOCAL_* variables, overridden by the command-line flags given."""
    parser = argparse.ArgumentParser(prog="local-rekognition", description=__doc__)
    flags: list[tuple[str, type, str]] = [
        ("--host", str, "address to listen on"),
        ("--port", int, "port to listen on, 0 for any free one"),
        ("--data-dir", Path, "where collections live"),
        ("--inference-threads", int, "threads decoding images and running the models"),
        ("--max-request-bytes", int, "largest request body"),
        ("--max-image-pixels", int, "largest image, in pixels"),
        ("--max-pending-requests", int, "requests in progress at once before ThrottlingException"),
    ]
    for flag, kind, meaning in flags:
        variable = "FACEQUEUE_LOCAL_" + flag.removeprefix("--").replace("-", "_").upper()
        parser.add_argument(flag, type=kind, help=f"{meaning} (env {variable})")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {key: value for key, value in vars(args).items() if value is not None}
    try:
        return LocalRekognitionSettings(**overrides)
    except ValidationError as exc:
        parser.error(str(exc))


def _lock_data_dir(data_dir: Path) -> Any:
    # Two servers writing one data dir would overwrite each other's faces.npz: refuse the second one.
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / ".lock").open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SystemExit(f"local_rekognition: another server is using {data_dir}") from None
    return handle


async def serve(settings: LocalRekognitionSettings) -> None:
    """Load the engine, listen, print the bound address, and serve until told to stop."""
    from local_rekognition.models import load_engine

    lock = _lock_data_dir(settings.data_dir)
    services = Services(settings=settings, engine=load_engine(), store=CollectionStore(settings.data_dir))
    # No Content-Encoding is inflated: SDKs never compress Rekognition requests, the limit then bounds the bytes
    # actually processed, and aiohttp's parser refused broken deflate itself, in text/plain and 10 s late.
    runner = web.AppRunner(create_app(services), access_log=None, auto_decompress=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        port = runner.addresses[0][1]
        # Scripts and tests read this line to learn the port when --port 0 picked one.
        print(f"local_rekognition listening on http://{settings.host}:{port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
        services.close()
        lock.close()


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    arguments = argv if argv is not None else sys.argv[1:]
    if arguments[:1] == ["celebrities"]:
        from local_rekognition.celebrity_cli import main as celebrities

        raise SystemExit(celebrities(arguments[1:]))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = parse_settings(arguments)
    try:
        asyncio.run(serve(settings))
    except WeightsMissing as exc:
        # One line a person can act on (it names the command that restores the file), not a traceback.
        raise SystemExit(f"local_rekognition: {exc}") from None


if __name__ == "__main__":
    main()
