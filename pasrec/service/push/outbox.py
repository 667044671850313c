"""The push outbox: which users' pushes must be (re)planned.

Ingestion adds a user in the transaction that stores their events, so a stored event is
never left without a plan and the request never waits for the model. Planners claim users
under a lease with `SELECT ... FOR UPDATE SKIP LOCKED` (SQLite: its write lock serialises
claims), so several planners share the outbox without planning a user twice at once, and
a planner that dies only delays its users until the lease runs out.

A user's row holds when the oldest unplanned event was stored (`queued_at`, where planning
lag starts). Events stored while a planner holds the user set `requeued_at`: that plan may
have read the history before them, so the row survives it and is planned again.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, case, delete, func, or_, select, update

from pasrec.service.db import insert_rows
from pasrec.service.models import PushOutbox


def enqueue(conn: Connection, user_ids: Collection[str], now: datetime) -> None:
    """Mark these users for planning (one row per user, whatever the number of events)."""

    def upsert(insert: Any) -> Any:
        return insert.on_conflict_do_update(
            index_elements=["user_id"],
            set_={
                # Unclaimed: the row already waits with an older `queued_at`; nothing to
                # change.
                "requeued_at": case(
                    (
                        PushOutbox.claimed_by.is_not(None),
                        func.coalesce(PushOutbox.requeued_at, insert.excluded.queued_at),
                    ),
                    else_=None,
                )
            },
        )

    # Sorted, like the rest of ingestion, so overlapping batches lock rows in one order.
    rows = [{"user_id": user_id, "queued_at": now} for user_id in sorted(user_ids)]
    insert_rows(conn, PushOutbox, rows, upsert)


def claim(conn: Connection, owner: str, now: datetime, lease_s: float, limit: int) -> list[str]:
    """Lease up to `limit` users waiting for a plan (oldest first), or whose lease ran out."""
    free = or_(PushOutbox.claimed_by.is_(None), PushOutbox.claim_expires_at <= now)
    users = list(
        conn.execute(
            select(PushOutbox.user_id)
            .where(free)
            .order_by(PushOutbox.queued_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    if users:
        # The plan about to be made covers every event stored so far, requeued ones included.
        conn.execute(
            update(PushOutbox)
            .where(PushOutbox.user_id.in_(users))
            .values(
                claimed_by=owner,
                claim_expires_at=now + timedelta(seconds=lease_s),
                requeued_at=None,
            )
        )
    return users


def finish(conn: Connection, owner: str, user_ids: Collection[str]) -> list[datetime]:
    """Drop the planned users from the outbox, except those with events stored since the
    claim (released for another round). Returns the `queued_at` of every user planned."""
    ours = PushOutbox.claimed_by == owner
    rows = conn.execute(
        select(PushOutbox.user_id, PushOutbox.queued_at, PushOutbox.requeued_at)
        .where(PushOutbox.user_id.in_(list(user_ids)), ours)
        # In key order, as ingestion upserts them: the two wait for each other, never deadlock.
        .order_by(PushOutbox.user_id)
        .with_for_update()
    ).all()
    done = [row.user_id for row in rows if row.requeued_at is None]
    again = [row.user_id for row in rows if row.requeued_at is not None]
    if done:
        conn.execute(delete(PushOutbox).where(PushOutbox.user_id.in_(done), ours))
    if again:
        conn.execute(
            update(PushOutbox)
            .where(PushOutbox.user_id.in_(again), ours)
            .values(
                queued_at=PushOutbox.requeued_at,
                requeued_at=None,
                claimed_by=None,
                claim_expires_at=None,
            )
        )
    return [row.queued_at for row in rows]


def release(conn: Connection, owner: str, user_ids: Collection[str]) -> None:
    """Give claimed users back unplanned (planning failed); they keep their `queued_at`."""
    conn.execute(
        update(PushOutbox)
        .where(PushOutbox.user_id.in_(list(user_ids)), PushOutbox.claimed_by == owner)
        .values(claimed_by=None, claim_expires_at=None, requeued_at=None)
    )
