"""The `facequeue` command: the parser, one module per command family, and the presentation in show/.

rich, Pillow and OpenCV come with the `cli` extra (``pip install 'facequeue[cli]'``); the library in producer/ needs
none of them, so a service that only enqueues jobs does not install them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

CLI_EXTRA = frozenset({"rich", "PIL", "cv2", "numpy"})
"""Top-level modules the `cli` extra installs: a command that cannot import one of them names the extra."""


def main(argv: Iterable[str] | None = None) -> int:
    """Run the `facequeue` command; return its exit code (2 when the cli extra is not installed)."""
    try:
        # Here, not at the top: `import producer.cli` must work without the extra, so main() can say what is missing.
        from producer.cli.app import run
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in CLI_EXTRA:
            raise
        print(
            f"facequeue: the command needs the cli extra ({exc.name} is not installed): pip install 'facequeue[cli]'",
            file=sys.stderr,
        )
        return 2
    return run(argv)
