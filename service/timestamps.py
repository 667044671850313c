"""Timestamps a request gives (event times, `at=`): RFC 3339 text or unix seconds.

Every refusal is a ValueError whose message completes "<where>: ...", so body fields and query
parameters report it the same way; nothing here may raise anything else (an OverflowError
escaping a validator would be a 500).
"""

from __future__ import annotations

import contextlib
import math
from datetime import UTC, datetime
from typing import Any

_FORMAT_HINT = "must be an RFC 3339 timestamp (e.g. 2024-05-01T12:00:00Z) or unix seconds"
_TOO_LATE = "is too far in the future"


def parse_time(value: Any, *, numeric_strings: bool = False) -> datetime:
    """RFC 3339 text or unix seconds -> aware UTC datetime; pre-1970 and NaN refused."""
    if isinstance(value, bool):
        raise ValueError("must be an RFC 3339 string or unix seconds, not a boolean")
    if isinstance(value, str) and numeric_strings:
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, int | float):
        return _from_unix(value)
    if isinstance(value, str):
        return _from_text(value)
    raise ValueError("must be an RFC 3339 string or unix seconds")


def _from_unix(value: float) -> datetime:
    if not math.isfinite(value):
        raise ValueError("must be a finite number of unix seconds")
    if value < 0:
        raise ValueError("is before 1970-01-01T00:00:00Z")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(_TOO_LATE) from None


def _from_text(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(_FORMAT_HINT) from None
    if parsed.tzinfo is None:
        raise ValueError("needs a time zone offset (e.g. Z or +02:00)")
    return _to_utc(parsed)


def _to_utc(parsed: datetime) -> datetime:
    # A local time late on 9999-12-31 west of UTC is past the last representable UTC instant.
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(_TOO_LATE) from None
    if utc.timestamp() < 0:
        raise ValueError("is before 1970-01-01T00:00:00Z")
    return utc
