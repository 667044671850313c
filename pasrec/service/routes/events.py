"""POST /v1/events: batch ingestion."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends

from pasrec.service.deps import Ctx, require
from pasrec.service.errors import ApiError
from pasrec.service.schemas import ErrorOut, EventBatch, IngestOut
from pasrec.service.storage import EventConflict, NewEvent, ingest

router = APIRouter(tags=["events"])


@router.post(
    "/v1/events",
    response_model=IngestOut,
    dependencies=[Depends(require("ingest"))],
    responses={
        400: {"model": ErrorOut, "description": "Malformed JSON."},
        409: {"model": ErrorOut, "description": "An event id reused for another event."},
        413: {"model": ErrorOut, "description": "Body or batch too large."},
        422: {"model": ErrorOut, "description": "Invalid events; nothing was stored."},
    },
    summary="Ingest a batch of interactions (all or nothing, idempotent on event_id)",
)
def post_events(batch: EventBatch, ctx: Ctx) -> IngestOut:
    settings = ctx.settings
    count = len(batch.events)
    if count == 0:
        raise ApiError(
            422,
            "validation_error",
            "body.events: the batch is empty",
            [{"loc": "body.events", "message": "must hold at least one event"}],
        )
    if count > settings.max_batch_events:
        raise ApiError(
            413,
            "batch_too_large",
            f"body.events: {count} events exceed the batch limit of "
            f"{settings.max_batch_events} (PASREC_MAX_BATCH_EVENTS)",
            [{"loc": "body.events", "message": f"at most {settings.max_batch_events} events"}],
        )
    now = ctx.clock()
    limit = now + timedelta(seconds=settings.max_future_skew_s)
    future = [
        {
            "loc": f"body.events[{i}].timestamp",
            "message": f"{e.timestamp.isoformat()} is more than {settings.max_future_skew_s:g} s "
            f"ahead of the server clock ({now.isoformat()})",
        }
        for i, e in enumerate(batch.events)
        if e.timestamp > limit
    ]
    if future:
        more = f" (and {len(future) - 1} more)" if len(future) > 1 else ""
        raise ApiError(
            422, "validation_error", f"{future[0]['loc']}: {future[0]['message']}{more}", future
        )

    known = ctx.inference.current.predictor.known if ctx.inference.ready else _unknown
    events = [NewEvent(e.user_id, e.item_id, e.timestamp, e.event_id) for e in batch.events]
    try:
        # With push on, the users go to the push outbox in the same transaction; a planner
        # plans their pushes later, so the request never waits for the model.
        result = ingest(ctx.engine, events, now, known, plan_pushes=settings.push_enabled)
    except EventConflict as exc:
        loc = f"body.events[{exc.index}].event_id"
        raise ApiError(
            409, "event_id_conflict", f"{loc}: {exc}", [{"loc": loc, "message": str(exc)}]
        ) from None
    ctx.history.committed(result.stored, ctx.history_length())
    ctx.metrics.events.labels("accepted").inc(result.accepted)
    ctx.metrics.events.labels("duplicate").inc(result.duplicates)
    ctx.metrics.events.labels("unknown_item").inc(result.unknown_items)
    return IngestOut(
        received=count,
        accepted=result.accepted,
        duplicates=result.duplicates,
        unknown_items=result.unknown_items,
    )


def _unknown(_item_id: str) -> bool:
    return False
