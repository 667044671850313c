"""Every query on `pushes` and `push_attempts`: the one owner of those tables' SQL, shared by
the scheduler, the dispatcher, requeueing and the API (the push outbox has its own owner,
`outbox.py`).

Per-user changes lock the user's row first (Postgres), so the scheduler and dispatchers never
race to hold two pending pushes for one user; claims take push rows with SKIP LOCKED, so any
number of dispatchers share the due pushes without waiting on each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    RowMapping,
    and_,
    exists,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import aliased

from pasrec.service.db import chunks, insert_rows, update_rows, write_retrying
from pasrec.service.models import Push, PushAttempt, PushStatus, User
from pasrec.service.push.policy import Plan

T = TypeVar("T")

SUPERSEDED = "rescheduled"
"""Reason of a push awaiting a retry that new events replaced: its id already reached the
receiver (maybe), so new content gets a new id rather than reusing it."""


def write(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run `work` in a write transaction, retrying it after a deadlock or serialisation error."""
    return write_retrying(engine, work, "pushes")


@dataclass(frozen=True)
class UserState:
    timezone: str | None
    last_event_at: datetime | None


def lock_user(conn: Connection, user_id: str) -> UserState | None:
    row = conn.execute(
        select(User.timezone, User.last_event_at).where(User.id == user_id).with_for_update()
    ).first()
    return None if row is None else UserState(row.timezone, row.last_event_at)


def apply_plans(
    conn: Connection, plans: Mapping[str, Plan], model_version: str | None, now: datetime
) -> dict[str, str]:
    """Make each user's plan their push: update their pending push in place, or start a new
    one (cancelling, as superseded, a pending push that awaits a retry: its id may already
    have reached the receiver). A fixed number of statements for any number of users.

    Returns, per user, the id of the push that now carries the plan.
    """
    users = sorted(plans)
    # The users' rows first, in key order (as lock_user takes one), then their pending pushes.
    for chunk in chunks(users, 1):
        conn.execute(select(User.id).where(User.id.in_(chunk)).order_by(User.id).with_for_update())
    pending: dict[str, Row[Any]] = {}
    for chunk in chunks(users, 1):
        found = conn.execute(
            select(Push.user_id, Push.id, Push.attempts)
            .where(Push.user_id.in_(chunk), Push.status == PushStatus.PENDING)
            .order_by(Push.user_id)
            .with_for_update()
        )
        pending.update((row.user_id, row) for row in found)
    retried = [row.id for row in pending.values() if row.attempts > 0]
    for chunk in chunks(retried, 1):
        conn.execute(
            update(Push)
            .where(Push.id.in_(chunk))
            .values(status=PushStatus.CANCELLED, reason=SUPERSEDED, updated_at=now)
        )
    carried = {user_id: row.id for user_id, row in pending.items() if row.attempts == 0}
    started = {user_id: str(uuid.uuid4()) for user_id in users if user_id not in carried}
    values = {user_id: _plan_values(plans[user_id], model_version, now) for user_id in users}
    update_rows(conn, Push, "id", [{"id": carried[u], **values[u]} for u in sorted(carried)])
    insert_rows(
        conn,
        Push,
        [
            {"id": started[u], "user_id": u, "attempts": 0, "created_at": now, **values[u]}
            for u in sorted(started)
        ],
    )
    return carried | started


def _plan_values(plan: Plan, model_version: str | None, now: datetime) -> dict[str, Any]:
    # Plain text for the status: a column sent as an array carries no enum type.
    status = PushStatus.SKIPPED if plan.skip else PushStatus.PENDING
    return {
        "status": status.value,
        "due_at": plan.due_at,
        "predicted_at": plan.predicted_at,
        "p_return": plan.p_return,
        "fallback": plan.fallback,
        "reason": plan.skip,
        "model_version": model_version,
        "updated_at": now,
    }


def claim(conn: Connection, owner: str, now: datetime, lease_s: float, limit: int) -> list[str]:
    """Lease up to `limit` pushes that are due, or whose previous lease ran out.

    A user's pending push waits while another push of that user is being delivered under a
    live lease: otherwise events arriving mid-delivery (through any API replica) would let a
    second worker send a second push before the first one's outcome is recorded.
    """
    in_flight = aliased(Push)
    busy_user = exists().where(
        in_flight.user_id == Push.user_id,
        in_flight.id != Push.id,
        in_flight.status == PushStatus.DELIVERING,
        in_flight.lease_expires_at > now,
    )
    due = (
        select(Push.id, Push.status)
        .where(
            or_(
                and_(Push.status == PushStatus.PENDING, Push.due_at <= now, ~busy_user),
                and_(Push.status == PushStatus.DELIVERING, Push.lease_expires_at <= now),
            )
        )
        .order_by(Push.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = conn.execute(due).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    conn.execute(
        update(Push)
        .where(Push.id.in_(ids))
        .values(
            status=PushStatus.DELIVERING,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_s),
            updated_at=now,
        )
    )
    orphaned = [row.id for row in rows if row.status == PushStatus.DELIVERING]
    if orphaned:
        # Their worker died (or stalled past the lease) after starting an attempt.
        conn.execute(
            update(PushAttempt)
            .where(PushAttempt.push_id.in_(orphaned), PushAttempt.outcome.is_(None))
            .values(outcome="abandoned", error="the lease expired before an outcome was recorded")
        )
    return ids


def owned(push_id: str, owner: str) -> Any:
    """The condition under which a dispatcher may still change a push it claimed."""
    return and_(Push.id == push_id, Push.status == PushStatus.DELIVERING, Push.lease_owner == owner)


@dataclass(frozen=True)
class Claimed:
    user_id: str
    due_at: datetime
    predicted_at: datetime | None
    attempts: int
    user: UserState
    last_delivered_at: datetime | None
    delivered_in_window: int
    attempts_before_requeue: int = 0

    def attempts_since_requeue(self, attempts: int | None = None) -> int:
        """`attempts` (default: those made so far) counted against the attempt budget."""
        return (self.attempts if attempts is None else attempts) - self.attempts_before_requeue


def read_claimed(
    conn: Connection, push_id: str, owner: str, now: datetime, cap_window_s: float
) -> Claimed | None:
    """The claimed push and what the policy needs; None when the lease is no longer ours."""
    push = conn.execute(
        select(
            Push.user_id,
            Push.due_at,
            Push.predicted_at,
            Push.attempts,
            Push.attempts_before_requeue,
            Push.created_at,
        ).where(owned(push_id, owner), Push.lease_expires_at > now)
    ).first()
    if push is None:
        return None
    user = conn.execute(
        select(User.timezone, User.last_event_at).where(User.id == push.user_id)
    ).one()
    delivered = and_(Push.user_id == push.user_id, Push.status == PushStatus.DELIVERED)
    last = conn.execute(select(func.max(Push.delivered_at)).where(delivered)).scalar_one()
    window_start = now - timedelta(seconds=cap_window_s)
    in_window = conn.execute(
        select(func.count()).where(delivered, Push.delivered_at > window_start)
    ).scalar_one()
    # An older push of the same user in flight counts as delivered now, so two pushes
    # claimed side by side (new events came between them) do not both reach the user; the
    # older goes first, and it carries the latest history anyway.
    in_flight = conn.execute(
        select(func.count()).where(
            Push.user_id == push.user_id,
            Push.status == PushStatus.DELIVERING,
            Push.lease_expires_at > now,
            tuple_(Push.created_at, Push.id) < tuple_(push.created_at, push_id),
        )
    ).scalar_one()
    if in_flight:
        last = now
        in_window += in_flight
    return Claimed(
        push.user_id,
        push.due_at,
        push.predicted_at,
        push.attempts,
        UserState(user.timezone, user.last_event_at),
        last,
        in_window,
        push.attempts_before_requeue,
    )


def finish(conn: Connection, push_id: str, owner: str, now: datetime, **values: Any) -> bool:
    """Give a claimed push its final state; False when the lease was lost meanwhile."""
    result = conn.execute(
        update(Push)
        .where(owned(push_id, owner))
        .values(lease_owner=None, lease_expires_at=None, updated_at=now, **values)
    )
    return result.rowcount == 1


def start_attempt(
    conn: Connection,
    push_id: str,
    owner: str,
    attempt: int,
    payload: dict[str, Any],
    now: datetime,
    lease_s: float,
) -> bool:
    """Record attempt number `attempt` of a claimed push as started, with the body it sends,
    and renew the lease from `now`; False when the lease was lost meanwhile."""
    # Renewed only while it still holds, which gives every attempt a full lease however long
    # the claimed batch took to reach it.
    renewed = conn.execute(
        update(Push)
        .where(owned(push_id, owner), Push.lease_expires_at > now)
        .values(
            attempts=attempt,
            payload=payload,
            model_version=payload["data"]["model_version"],
            lease_expires_at=now + timedelta(seconds=lease_s),
            updated_at=now,
        )
    )
    if renewed.rowcount != 1:
        return False
    conn.execute(
        PushAttempt.__table__.insert().values(
            push_id=push_id, attempt=attempt, worker=owner, started_at=now
        )
    )
    return True


def end_attempt(
    conn: Connection,
    push_id: str,
    attempt: int,
    done: datetime,
    outcome: str,
    status_code: int | None,
    latency_ms: float | None,
    error: str | None,
) -> None:
    """Record how attempt number `attempt` ended."""
    conn.execute(
        update(PushAttempt)
        .where(PushAttempt.push_id == push_id, PushAttempt.attempt == attempt)
        .values(
            finished_at=done,
            status_code=status_code,
            latency_ms=latency_ms,
            outcome=outcome,
            error=error,
        )
    )


def back_to_pending(
    conn: Connection,
    push_id: str,
    user_id: str,
    owner: str,
    due: datetime,
    reason: str,
    now: datetime,
) -> bool:
    """Return a claimed push to the queue, due at `due`; False when the lease was lost.

    If new events gave the user another pending push meanwhile, that one wins and this one
    is cancelled as superseded (a user has at most one pending push).
    """
    lock_user(conn, user_id)
    if other_pending(conn, user_id, push_id) is not None:
        return finish(conn, push_id, owner, now, status=PushStatus.CANCELLED, reason=SUPERSEDED)
    return finish(conn, push_id, owner, now, status=PushStatus.PENDING, due_at=due, reason=reason)


def other_pending(conn: Connection, user_id: str, push_id: str) -> str | None:
    """The user's pending push other than `push_id` (a user has at most one), or None."""
    return conn.execute(
        select(Push.id).where(
            Push.user_id == user_id, Push.status == PushStatus.PENDING, Push.id != push_id
        )
    ).scalar_one_or_none()


CANCELLED_BY_API = "cancelled"


def list_pushes(
    conn: Connection, user_id: str | None, status: str | None, limit: int
) -> list[RowMapping]:
    """Newest first."""
    stmt = select(Push.__table__).order_by(Push.created_at.desc(), Push.id).limit(limit)
    if user_id is not None:
        stmt = stmt.where(Push.user_id == user_id)
    if status is not None:
        stmt = stmt.where(Push.status == status)
    return list(conn.execute(stmt).mappings())


def get_push(conn: Connection, push_id: str) -> tuple[RowMapping, list[RowMapping]] | None:
    """A push and its attempts (in order), or None."""
    push = conn.execute(select(Push.__table__).where(Push.id == push_id)).mappings().first()
    if push is None:
        return None
    attempts = conn.execute(
        select(PushAttempt.__table__)
        .where(PushAttempt.push_id == push_id)
        .order_by(PushAttempt.attempt)
    ).mappings()
    return push, list(attempts)


def cancel(conn: Connection, push_id: str, now: datetime) -> str | None:
    """Cancel a pending push. Returns the push's status before the call (`pending` when this
    call cancelled it), or None for an unknown id."""
    done = conn.execute(
        update(Push)
        .where(Push.id == push_id, Push.status == PushStatus.PENDING)
        .values(status=PushStatus.CANCELLED, reason=CANCELLED_BY_API, updated_at=now)
    )
    if done.rowcount == 1:
        return PushStatus.PENDING
    return conn.execute(select(Push.status).where(Push.id == push_id)).scalar_one_or_none()


def user_of(conn: Connection, push_id: str) -> str | None:
    """The user a push is for, or None for an unknown id."""
    return conn.execute(select(Push.user_id).where(Push.id == push_id)).scalar_one_or_none()


def status_of(conn: Connection, push_id: str) -> str:
    return conn.execute(select(Push.status).where(Push.id == push_id)).scalar_one()


def requeue(conn: Connection, push_id: str, now: datetime, reason: str) -> None:
    """Put a push back in the queue, due at `now`, with a fresh attempt budget."""
    conn.execute(
        update(Push)
        .where(Push.id == push_id)
        .values(
            status=PushStatus.PENDING,
            due_at=now,
            reason=reason,
            attempts_before_requeue=Push.attempts,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )


def dead_push_ids(conn: Connection, user_id: str | None, limit: int) -> list[str]:
    """The dead pushes (of one user, or all), oldest first."""
    stmt = (
        select(Push.id)
        .where(Push.status == PushStatus.DEAD)
        .order_by(Push.created_at, Push.id)
        .limit(limit)
    )
    if user_id is not None:
        stmt = stmt.where(Push.user_id == user_id)
    return list(conn.execute(stmt).scalars())
