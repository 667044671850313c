"""SQLAlchemy models of the system of record (Postgres in production, SQLite embedded).

`pasrec/service/migrations/versions/` must produce exactly this schema; a test compares the two.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

ID_LENGTH = 128
"""Longest user, item and event id accepted (the API validates against the same bound)."""

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every back end.

    Postgres keeps `timestamptz`; SQLite has no time zones, so values are stored as naive UTC
    and made aware again when read, which keeps comparisons in Python correct.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# BigInteger autoincrement is not supported by SQLite; its INTEGER PRIMARY KEY is 64-bit.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    # IANA zone name (e.g. "Europe/Paris"); NULL means the deployment default. Push quiet
    # hours are evaluated in this zone.
    timezone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Latest event time seen for the user; the push policy uses it for "active recently".
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Item(Base):
    __tablename__ = "items"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Interaction(Base):
    __tablename__ = "interactions"
    __table_args__ = (Index(None, "user_id", "ts", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Client event id, or a content hash when the client gave none; unique, so re-posting
    # a batch stores nothing twice.
    event_id: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    item_id: Mapped[str] = mapped_column(ForeignKey("items.id"), index=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ModelVersion(Base):
    """Every checkpoint a replica has served; pushes refer to it by `version`."""

    __tablename__ = "model_versions"

    version: Mapped[str] = mapped_column(String(128), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    n_items: Mapped[int] = mapped_column(Integer)
    has_toi: Mapped[bool] = mapped_column(Boolean)
    has_tpp: Mapped[bool] = mapped_column(Boolean)
    first_loaded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_loaded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PushStatus(enum.StrEnum):
    """Lifecycle of a push (stored as text so a migration can add states)."""

    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    FAILED = "failed"
    DEAD = "dead"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class Push(Base):
    __tablename__ = "pushes"
    __table_args__ = (
        # At most one pending push per user: rescheduling updates it in place.
        Index(
            "uq_pushes_user_pending",
            "user_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index(None, "status", "due_at"),
        Index(None, "user_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    # When the dispatcher should act: the decoded ToI, moved by policy (quiet hours) or by
    # retry backoff.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    predicted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Probability of return within the push horizon, when the checkpoint has a tpp head.
    p_return: Mapped[float | None] = mapped_column(Float)
    fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Attempts made before the push was last requeued from `dead`: the attempt budget counts
    # from here, while attempt numbers (and `push_attempts` rows) keep counting from 1.
    attempts_before_requeue: Mapped[int] = mapped_column(
        Integer, default=0, server_default=text("0")
    )
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Why a push was skipped, failed or dead-lettered (a short machine-readable code).
    reason: Mapped[str | None] = mapped_column(String(64))
    model_version: Mapped[str | None] = mapped_column(String(128))
    # The exact body last sent (or about to be sent) to the webhook.
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PushAttempt(Base):
    """One webhook delivery attempt of a push, whatever its outcome."""

    __tablename__ = "push_attempts"
    __table_args__ = (UniqueConstraint("push_id", "attempt"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    push_id: Mapped[str] = mapped_column(ForeignKey("pushes.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    # delivered / retry / failed / dead
    outcome: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)


class PushOutbox(Base):
    """Users whose push must be (re)planned: written in the transaction that stores their
    events, removed by the planner once a plan covers every one of them."""

    __tablename__ = "push_outbox"
    __table_args__ = (Index(None, "queued_at"),)

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # When the oldest event not yet covered by a plan was stored (planning lag starts here).
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When the oldest event stored while a planner held the claim arrived: set means the
    # plan in progress misses it, so the row stays for another round instead of being
    # deleted.
    requeued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The planner holding the user, until `claim_expires_at` (after that another may take it:
    # a planner that died loses nothing).
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiKey(Base):
    """API keys created with `pasrec apikey create`; only a hash of the secret is stored."""

    __tablename__ = "api_keys"

    # Public part of the key, used to find the row without scanning.
    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    # Space-separated scopes, e.g. "ingest read".
    scopes: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
