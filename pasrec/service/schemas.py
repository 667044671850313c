"""Request and response bodies of the HTTP API (they also make up the OpenAPI document)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from pasrec.model.predictor import NextTime
from pasrec.service.ids import EntityId, EventId
from pasrec.service.timestamps import parse_time

Timestamp = Annotated[datetime, BeforeValidator(parse_time)]


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: EventId | None = Field(
        default=None,
        description="Idempotency key; the prefix `auto:` is reserved. Without one, the "
        "event's content (user, item, time) serves as its identity.",
    )
    user_id: EntityId
    item_id: EntityId
    timestamp: Timestamp = Field(
        description="RFC 3339 date-time (`T` and `Z` in either case, an offset required) or "
        "unix seconds."
    )


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(description="At most PASREC_MAX_BATCH_EVENTS events.")


class IngestOut(BaseModel):
    received: int
    accepted: int = Field(description="Events stored by this call.")
    duplicates: int = Field(description="Events already stored (or repeated in the batch).")
    unknown_items: int = Field(
        description="Accepted events whose item the loaded model does not know; they are "
        "stored but ignored by inference (all of them when no model is loaded)."
    )


class ScoredItem(BaseModel):
    item_id: str
    score: float


class NextTimeOut(BaseModel):
    time: datetime = Field(description="Predicted next interaction time (UTC).")
    unix: float
    quantiles: dict[str, datetime] | None = Field(
        default=None, description="Quantile -> time; only with a tpp head."
    )
    p_within_days: dict[str, float] | None = Field(
        default=None, description="Horizon in days -> probability of returning within it."
    )
    window_start: datetime | None = Field(
        default=None,
        description="Only with a tpp head: when a push most likely finds the user back within "
        "PASREC_PUSH_TARGET_WINDOW_S (the `tpp_window` push timing).",
    )
    p_timely: float | None = Field(
        default=None,
        description="Only with a tpp head: the probability that a push at window_start is "
        "timely (the user back within the window, given not back before it).",
    )

    @classmethod
    def of(cls, value: NextTime | None) -> NextTimeOut | None:
        if value is None:
            return None
        return cls(
            time=datetime.fromtimestamp(value.time, UTC),
            unix=value.time,
            quantiles=None
            if value.quantiles is None
            else {f"{q:g}": datetime.fromtimestamp(t, UTC) for q, t in value.quantiles.items()},
            p_within_days=None
            if value.p_within is None
            else {f"{h:g}": p for h, p in value.p_within.items()},
            window_start=None
            if value.window_start is None
            else datetime.fromtimestamp(value.window_start, UTC),
            p_timely=value.p_timely,
        )


class RecommendOut(BaseModel):
    user_id: str
    items: list[ScoredItem]
    fallback: str | None = Field(
        description="`popularity` when the model could not personalise; null otherwise."
    )
    fallback_reason: str | None = None
    at: datetime | None = Field(description="The time recommended for (null: predicted ToI).")
    next_time: NextTimeOut | None
    model_version: str
    generated_at: datetime


class ToiOut(BaseModel):
    user_id: str
    next_time: NextTimeOut | None
    reason: str | None = Field(default=None, description="Why next_time is null.")
    last_event_at: datetime
    model_version: str


class ReloadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(
        default=None, description="Checkpoint directory; default PASREC_MODEL_PATH."
    )
    toi_path: str | None = Field(
        default=None,
        description="Checkpoint whose next-time predictions replace the first one's; "
        "default PASREC_TOI_MODEL_PATH (unset: the first checkpoint's own).",
    )


class ReloadOut(BaseModel):
    model_version: str
    model_name: str
    previous_version: str | None
    path: str
    toi_path: str | None = None


class ErrorDetail(BaseModel):
    loc: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []


class ErrorOut(BaseModel):
    error: ErrorBody
