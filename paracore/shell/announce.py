"""One line for each thing paracore does on the user's behalf (a re-attach, a retry, a cancel).

The line goes to the ``paracore`` logger when the application configured logging (its own
handlers, or the root logger's), else to stderr, so it shows in a terminal, a log file, a
notebook and CI alike.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["LOGGER", "announce"]

LOGGER = logging.getLogger("paracore")


def announce(message: str) -> None:
    """Say ``message`` in one line: through the ``paracore`` logger if logging is set up,
    else on stderr prefixed with ``paracore:``."""
    line = " ".join(message.split())
    if LOGGER.hasHandlers():
        LOGGER.warning(line)
    else:
        print(f"paracore: {line}", file=sys.stderr, flush=True)
