"""Requeueing dead pushes once their receiver is back (the API endpoint and `pasrec requeue`):
what may be requeued and why not; the queries are the store's.

A requeued push keeps its id, so the receiver still deduplicates on `webhook-id` whatever an
earlier attempt may have got through; it is due at once, gets a fresh attempt budget, and is
regenerated from the user's latest history when it goes out, like any push. Requeueing is
idempotent per push: a push already back in the queue is left as it is.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine

from pasrec.service.models import PushStatus
from pasrec.service.push import store

REQUEUED = "requeued"
"""Reason of a push put back in the queue by an operator."""


class Outcome(enum.StrEnum):
    REQUEUED = "requeued"
    ALREADY_QUEUED = "already_queued"
    NOT_DEAD = "not_dead"
    USER_HAS_PENDING = "user_has_pending"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class Result:
    push_id: str
    outcome: Outcome
    message: str

    @property
    def ok(self) -> bool:
        return self.outcome in {Outcome.REQUEUED, Outcome.ALREADY_QUEUED}


_QUEUED = {PushStatus.PENDING, PushStatus.DELIVERING}


def requeue(conn: Connection, push_id: str, now: datetime) -> Result:
    """Put one dead push back in the queue, due at `now`."""
    user_id = store.user_of(conn, push_id)
    if user_id is None:
        return Result(push_id, Outcome.NOT_FOUND, f"no push with id {push_id!r}")
    # The user's row lock serialises this with scheduling, which keeps one pending push per user.
    store.lock_user(conn, user_id)
    status = store.status_of(conn, push_id)
    if status in _QUEUED:
        return Result(push_id, Outcome.ALREADY_QUEUED, f"push {push_id!r} is already {status}")
    if status != PushStatus.DEAD:
        return Result(
            push_id,
            Outcome.NOT_DEAD,
            f"push {push_id!r} is {status}; only a dead push can be requeued",
        )
    other = store.other_pending(conn, user_id, push_id)
    if other is not None:
        return Result(
            push_id,
            Outcome.USER_HAS_PENDING,
            f"user {user_id!r} already has pending push {other!r}, which will carry the latest "
            "recommendations; a user has one pending push at a time",
        )
    store.requeue(conn, push_id, now, REQUEUED)
    return Result(push_id, Outcome.REQUEUED, f"push {push_id!r} requeued, due {now.isoformat()}")


def requeue_many(engine: Engine, push_ids: list[str], now: datetime) -> list[Result]:
    """Requeue each push in its own transaction, so one refusal does not undo the others."""
    return [store.write(engine, lambda conn, p=p: requeue(conn, p, now)) for p in push_ids]
