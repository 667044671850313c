"""Validation of the ids a request names (users, items, events, pushes), wherever they appear.

Bodies, paths and query strings share these checks, so an id the database cannot hold (a NUL
byte is refused by PostgreSQL text) is a 422 naming the parameter, never a database error.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator, BeforeValidator

from pasrec.service.models import ID_LENGTH

AUTO_EVENT_ID_PREFIX = "auto:"
"""Prefix of the ids the service derives from an event's content when the client gives none;
reserved, so a client's id can never collide with a later id-less event."""

PUSH_ID_LENGTH = 36
"""Push ids are UUIDs in their 36-character text form."""

# Cc: C0/C1 controls (NUL included); Cs: lone surrogates, which no UTF-8 database can store.
# Format characters (Cf) stay allowed: the zero-width joiner inside emoji sequences is one.
_REFUSED_CATEGORIES = {"Cc", "Cs"}


def check_text(value: str) -> str:
    """The id unchanged, or ValueError when it holds a control character or a lone surrogate."""
    for position, char in enumerate(value):
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise ValueError(
                f"must not contain control characters or unpaired surrogates "
                f"(U+{ord(char):04X} at position {position})"
            )
    return value


def entity_id(value: Any) -> str:
    """A user, item or event id from JSON: a string, or an integer read as its decimal text."""
    # Integers are accepted because many data sets number their users and items.
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if not 1 <= len(value) <= ID_LENGTH:
        raise ValueError(f"must be 1 to {ID_LENGTH} characters long (got {len(value)})")
    return check_text(value)


def client_event_id(value: str) -> str:
    """A client's event id: any entity id outside the reserved `auto:` namespace."""
    if value.startswith(AUTO_EVENT_ID_PREFIX):
        raise ValueError(
            f"must not start with {AUTO_EVENT_ID_PREFIX!r}: the prefix is reserved for the ids "
            "the service derives from an event's content; leave event_id out to get one"
        )
    return value


EntityId = Annotated[str, BeforeValidator(entity_id)]
EventId = Annotated[str, BeforeValidator(entity_id), AfterValidator(client_event_id)]
UserIdPath = Annotated[str, Path(min_length=1, max_length=ID_LENGTH), AfterValidator(check_text)]
UserIdQuery = Annotated[
    str | None, Query(min_length=1, max_length=ID_LENGTH), AfterValidator(check_text)
]
PushIdPath = Annotated[
    str, Path(min_length=1, max_length=PUSH_ID_LENGTH), AfterValidator(check_text)
]
