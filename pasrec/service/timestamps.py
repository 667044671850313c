"""Timestamps a request gives (event times, `at=`): RFC 3339 text or unix seconds.

Every refusal is a ValueError whose message completes "<where>: ...", so body fields and query
parameters report it the same way; nothing here may raise anything else (an OverflowError
escaping a validator would be a 500).
"""

from __future__ import annotations

import contextlib
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

_FORMAT_HINT = (
    "must be an RFC 3339 date-time, YYYY-MM-DDTHH:MM:SS[.fraction] then Z or +HH:MM/-HH:MM "
    "(e.g. 2024-05-01T12:00:00Z), or unix seconds"
)
# RFC 3339 section 5.6 `date-time`; its section 5.6 note allows "t" and "z" in lower case.
# Nothing else: no space separator, no week or ordinal dates, no basic (colon-less) format.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)
_NAIVE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?", re.ASCII)
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
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ValueError(_hint_for(value))
    year, month, day, hour, minute, second = (int(match[n]) for n in range(1, 7))
    if second == 60:
        raise ValueError("has second 60: leap seconds are not supported")
    # RFC 3339 allows any number of fraction digits; datetime keeps microseconds.
    micro = int((match["fraction"] or "").ljust(6, "0")[:6])
    zone = _zone(match["offset"])
    try:
        local = datetime(year, month, day, hour, minute, second, micro, zone)
    except ValueError as exc:
        raise ValueError(f"is not a valid date and time ({exc})") from None
    return _to_utc(local)


def _zone(offset: str) -> timezone:
    if offset in {"Z", "z"}:
        return UTC
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    if hours > 23 or minutes > 59:
        raise ValueError(f"has an invalid UTC offset {offset!r}")
    sign = -1 if offset[0] == "-" else 1
    # "-00:00" (UTC, local offset unknown, RFC 3339 section 4.3) is UTC all the same.
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _hint_for(value: str) -> str:
    if _NAIVE.fullmatch(value):
        return "needs a time zone offset (e.g. Z or +02:00)"
    return _FORMAT_HINT


def _to_utc(parsed: datetime) -> datetime:
    # A local time late on 9999-12-31 west of UTC is past the last representable UTC instant.
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(_TOO_LATE) from None
    if utc.timestamp() < 0:
        raise ValueError("is before 1970-01-01T00:00:00Z")
    return utc
