"""Bodies of the push endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class PushOut(BaseModel):
    id: str = Field(description="Also the `webhook-id` header: the receiver's idempotency key.")
    user_id: str
    status: str = Field(
        description="pending, delivering, delivered, failed (refused for good), dead "
        "(attempts exhausted), skipped (by policy), cancelled."
    )
    due_at: datetime = Field(description="When it is (or was) due, after policy and backoff.")
    predicted_at: datetime | None = Field(description="Decoded ToI; null for a fallback push.")
    p_return: float | None = Field(description="P(return within the horizon), tpp head only.")
    fallback: bool = Field(description="Scheduled by the fallback delay rather than a ToI.")
    attempts: int = Field(description="Delivery attempts so far, requeued rounds included.")
    attempts_before_requeue: int = Field(
        description="Attempts made before the push was last requeued; the attempt budget "
        "(PASREC_PUSH_MAX_ATTEMPTS) counts the ones after."
    )
    reason: str | None = Field(
        description="Why it was skipped, held, failed, dead-lettered or cancelled."
    )
    model_version: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


class AttemptOut(BaseModel):
    attempt: int
    worker: str | None
    started_at: datetime
    finished_at: datetime | None
    status_code: int | None
    latency_ms: float | None
    outcome: str | None = Field(
        description="delivered, retry, failed, dead, or abandoned (its worker lost the lease); "
        "null while in flight."
    )
    error: str | None


class PushDetailOut(PushOut):
    payload: dict[str, Any] | None = Field(description="The body last sent (or being sent).")
    attempts_detail: list[AttemptOut]


class PushListOut(BaseModel):
    pushes: list[PushOut]


class RequeueOut(PushOut):
    requeued: bool = Field(
        description="True when this call requeued the push; false when it was already queued."
    )
