"""How a command's failure reaches the user: one line on stderr and exit status 2."""

from __future__ import annotations

import sys
from collections.abc import Callable


class UsageError(Exception):
    """A problem with the user's input, printed without a traceback."""


def report_errors(command: str, work: Callable[[], int]) -> int:
    """``work()``'s exit status; bad input is one line, not a traceback."""
    try:
        return work()
    except (UsageError, ValueError, FileNotFoundError) as err:
        print(f"pasrec {command}: error: {err}", file=sys.stderr)
        return 2
