"""Reads and writes of interactions in the system of record.

Ingestion is one transaction per batch. Rows are written table by table (users, items,
interactions), each in sorted key order, so concurrent overlapping batches on Postgres wait
for each other instead of deadlocking; a deadlock that happens anyway is retried.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, case, func, select

from pasrec.service.cache import CachedEvent
from pasrec.service.db import chunks, insert_rows, read_tx, write_retrying
from pasrec.service.ids import AUTO_EVENT_ID_PREFIX
from pasrec.service.models import Interaction, Item, User
from pasrec.service.push import outbox


@dataclass(frozen=True)
class NewEvent:
    user_id: str
    item_id: str
    ts: datetime
    event_id: str | None = None

    def key(self) -> str:
        """The idempotency key: the client's event id, or a hash of the content."""
        if self.event_id is not None:
            return self.event_id
        content = f"{self.user_id}\x1f{self.item_id}\x1f{self.ts.timestamp():.6f}"
        return AUTO_EVENT_ID_PREFIX + hashlib.sha256(content.encode()).hexdigest()


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    unknown_items: int = 0
    stored: dict[str, list[CachedEvent]] = field(default_factory=dict)
    """Events written by this batch, per user (for the cache)."""


class EventConflict(ValueError):
    """An event id arrived again with different content."""

    def __init__(self, index: int, event_id: str) -> None:
        super().__init__(
            f"event_id {event_id!r} was already used for a different event "
            "(user, item or timestamp differ)"
        )
        self.index = index
        self.event_id = event_id


def ingest(
    engine: Engine,
    events: Sequence[NewEvent],
    now: datetime,
    known: Callable[[str], bool],
    plan_pushes: bool = False,
) -> IngestResult:
    """Store a batch all-or-nothing; events already stored are counted, not stored again.

    With `plan_pushes` every user with a new event is put in the push outbox in the same
    transaction, so a planner (re)plans their push (pasrec/service/push/outbox.py).
    """

    def work(conn: Connection) -> IngestResult:
        result = _ingest(conn, events, now, known)
        if plan_pushes and result.stored:
            outbox.enqueue(conn, result.stored.keys(), now)
        return result

    return write_retrying(engine, work, "interactions")


def _ingest(
    conn: Connection, events: Sequence[NewEvent], now: datetime, known: Callable[[str], bool]
) -> IngestResult:
    result = IngestResult()
    by_key: dict[str, tuple[int, NewEvent]] = {}
    for index, event in enumerate(events):
        key = event.key()
        first = by_key.get(key)
        if first is None:
            by_key[key] = (index, event)
        elif not _same(first[1], event):
            raise EventConflict(index, key)
        else:
            result.duplicates += 1

    latest: dict[str, datetime] = {}
    for _, event in by_key.values():
        if event.user_id not in latest or event.ts > latest[event.user_id]:
            latest[event.user_id] = event.ts

    def upsert_users(insert: Any) -> Any:
        newer = User.last_event_at.is_(None) | (insert.excluded.last_event_at > User.last_event_at)
        return insert.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "last_event_at": case(
                    (newer, insert.excluded.last_event_at), else_=User.last_event_at
                )
            },
        )

    insert_rows(
        conn,
        User,
        [{"id": u, "created_at": now, "last_event_at": latest[u]} for u in sorted(latest)],
        upsert_users,
    )
    item_ids = sorted({event.item_id for _, event in by_key.values()})
    insert_rows(
        conn,
        Item,
        [{"id": i, "first_seen_at": now} for i in item_ids],
        lambda insert: insert.on_conflict_do_nothing(index_elements=["id"]),
    )

    rows = [
        {
            "event_id": key,
            "user_id": event.user_id,
            "item_id": event.item_id,
            "ts": event.ts,
            "ingested_at": now,
        }
        for key, (_, event) in sorted(by_key.items())
    ]
    inserted = insert_rows(
        conn,
        Interaction,
        rows,
        lambda insert: insert.on_conflict_do_nothing(index_elements=["event_id"]).returning(
            Interaction.id, Interaction.event_id
        ),
    )
    inserted_by_key = {key: db_id for db_id, key in inserted}

    already = [key for key in by_key if key not in inserted_by_key]
    if already:
        _check_same_as_stored(conn, already, by_key)
    result.duplicates += len(already)

    for key, db_id in inserted_by_key.items():
        event = by_key[key][1]
        result.accepted += 1
        if not known(event.item_id):
            result.unknown_items += 1
        result.stored.setdefault(event.user_id, []).append(
            CachedEvent(event.ts.timestamp(), db_id, event.item_id)
        )
    return result


def _same(a: NewEvent, b: NewEvent) -> bool:
    return (a.user_id, a.item_id) == (b.user_id, b.item_id) and abs(
        a.ts.timestamp() - b.ts.timestamp()
    ) < 1e-6


def _check_same_as_stored(
    conn: Connection, keys: list[str], by_key: dict[str, tuple[int, NewEvent]]
) -> None:
    stmt = select(Interaction.event_id, Interaction.user_id, Interaction.item_id, Interaction.ts)
    for chunk in chunks(keys, 1):
        for event_id, user_id, item_id, ts in conn.execute(
            stmt.where(Interaction.event_id.in_(chunk))
        ):
            index, event = by_key[event_id]
            if not _same(event, NewEvent(user_id, item_id, ts)):
                raise EventConflict(index, event_id)


@dataclass(frozen=True)
class StoredHistory:
    events: list[CachedEvent]
    seen: set[str]


def read_history(engine: Engine, user_id: str, length: int) -> StoredHistory | None:
    """The user's `length` latest events and every item seen; None for an unknown user."""
    with read_tx(engine) as conn:
        latest = conn.execute(
            select(Interaction.id, Interaction.item_id, Interaction.ts)
            .where(Interaction.user_id == user_id)
            .order_by(Interaction.ts.desc(), Interaction.id.desc())
            .limit(length)
        ).all()
        if not latest:
            return None
        seen = set(
            conn.execute(
                select(Interaction.item_id).where(Interaction.user_id == user_id).distinct()
            ).scalars()
        )
    events = [CachedEvent(ts.timestamp(), db_id, item) for db_id, item, ts in reversed(latest)]
    return StoredHistory(events, seen)


def read_recent(
    engine: Engine, user_ids: Sequence[str], length: int
) -> dict[str, list[CachedEvent]]:
    """Each user's `length` latest events (chronological), in one query per chunk of users;
    users without events are absent."""
    rank = (
        func.row_number()
        .over(
            partition_by=Interaction.user_id,
            order_by=(Interaction.ts.desc(), Interaction.id.desc()),
        )
        .label("rank")
    )
    found: dict[str, list[CachedEvent]] = {}
    with read_tx(engine) as conn:
        for chunk in chunks(sorted(user_ids), 1):
            ranked = (
                select(
                    Interaction.user_id, Interaction.id, Interaction.item_id, Interaction.ts, rank
                )
                .where(Interaction.user_id.in_(chunk))
                .subquery()
            )
            rows = conn.execute(
                select(ranked.c.user_id, ranked.c.id, ranked.c.item_id, ranked.c.ts).where(
                    ranked.c.rank <= length
                )
            )
            for user_id, db_id, item_id, ts in rows:
                found.setdefault(user_id, []).append(CachedEvent(ts.timestamp(), db_id, item_id))
    return {user_id: sorted(events) for user_id, events in found.items()}
