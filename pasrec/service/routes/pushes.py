"""GET /v1/pushes, GET /v1/pushes/{id}, POST /v1/pushes/{id}/cancel and /requeue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from pasrec.service.db import read_tx, write_tx
from pasrec.service.deps import Ctx, require
from pasrec.service.errors import ApiError
from pasrec.service.ids import PushIdPath, UserIdQuery
from pasrec.service.models import PushStatus
from pasrec.service.push import requeue, store
from pasrec.service.push.schemas import AttemptOut, PushDetailOut, PushListOut, PushOut, RequeueOut
from pasrec.service.schemas import ErrorOut

router = APIRouter(tags=["pushes"])

_AUTH = {
    401: {"model": ErrorOut, "description": "Missing or invalid API key."},
    403: {"model": ErrorOut, "description": "The key lacks the scope."},
}
_NOT_FOUND = {404: {"model": ErrorOut, "description": "No push with this id."}}


@router.get(
    "/v1/pushes",
    response_model=PushListOut,
    dependencies=[Depends(require("read"))],
    responses={**_AUTH, 422: {"model": ErrorOut, "description": "Invalid filter."}},
    summary="Pushes, newest first, by user and/or status (e.g. status=dead: the dead letters)",
)
def list_pushes(
    ctx: Ctx,
    user_id: UserIdQuery = None,
    status: PushStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> PushListOut:
    with read_tx(ctx.engine) as conn:
        rows = store.list_pushes(conn, user_id, None if status is None else status.value, limit)
    return PushListOut(pushes=[PushOut.model_validate(dict(row)) for row in rows])


@router.get(
    "/v1/pushes/{push_id}",
    response_model=PushDetailOut,
    dependencies=[Depends(require("read"))],
    responses={**_AUTH, **_NOT_FOUND},
    summary="One push with its payload and every delivery attempt",
)
def get_push(push_id: PushIdPath, ctx: Ctx) -> PushDetailOut:
    with read_tx(ctx.engine) as conn:
        found = store.get_push(conn, push_id)
    if found is None:
        raise _unknown(push_id)
    push, attempts = found
    return PushDetailOut.model_validate(
        {**push, "attempts_detail": [AttemptOut.model_validate(dict(a)) for a in attempts]}
    )


@router.post(
    "/v1/pushes/{push_id}/cancel",
    response_model=PushOut,
    dependencies=[Depends(require("admin"))],
    responses={
        **_AUTH,
        **_NOT_FOUND,
        409: {"model": ErrorOut, "description": "Not pending (being delivered, or finished)."},
    },
    summary="Cancel a pending push (one awaiting a retry included)",
)
def cancel_push(push_id: PushIdPath, ctx: Ctx) -> PushOut:
    with write_tx(ctx.engine) as conn:
        before = store.cancel(conn, push_id, ctx.clock())
        found = store.get_push(conn, push_id)
    if before is None or found is None:
        raise _unknown(push_id)
    if before != PushStatus.PENDING:
        raise ApiError(
            409,
            "not_cancellable",
            f"push {push_id!r} is {before}; only a pending push can be cancelled",
        )
    return PushOut.model_validate(dict(found[0]))


@router.post(
    "/v1/pushes/{push_id}/requeue",
    response_model=RequeueOut,
    dependencies=[Depends(require("admin"))],
    responses={
        **_AUTH,
        **_NOT_FOUND,
        409: {
            "model": ErrorOut,
            "description": "Not dead (delivered, failed, skipped, cancelled), or the user has "
            "another pending push.",
        },
    },
    summary="Put a dead push back in the queue, due now (idempotent)",
)
def requeue_push(push_id: PushIdPath, ctx: Ctx) -> RequeueOut:
    result = store.write(ctx.engine, lambda conn: requeue.requeue(conn, push_id, ctx.clock()))
    if result.outcome == requeue.Outcome.NOT_FOUND:
        raise _unknown(push_id)
    if not result.ok:
        raise ApiError(409, result.outcome.value, result.message)
    with read_tx(ctx.engine) as conn:
        found = store.get_push(conn, push_id)
    assert found is not None  # pushes are never deleted
    requeued = result.outcome == requeue.Outcome.REQUEUED
    return RequeueOut.model_validate({**found[0], "requeued": requeued})


def _unknown(push_id: str) -> ApiError:
    return ApiError(404, "push_not_found", f"no push with id {push_id!r}")
