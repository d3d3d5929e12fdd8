"""`python -m producer.cli`: the `facequeue` command."""

from __future__ import annotations

import sys

from producer.cli import main

sys.exit(main())
