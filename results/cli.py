"""What every command line of the suite does with Ctrl-C: one line and exit 130, never a traceback."""
from __future__ import annotations

import os
import sys
from typing import Callable


def run(main: Callable[[], int], name: str, interrupted: str) -> None:
    """``sys.exit(main())``; on Ctrl-C print ``name: interrupted`` and exit 130 at once (a second Ctrl-C during the
    interpreter's teardown must not turn into a traceback, nor the exit into a death by SIGINT)."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print(f"{name}: interrupted (Ctrl-C); {interrupted}", file=sys.stderr)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except OSError:
                pass
        os._exit(130)
