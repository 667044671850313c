"""GET /v1/recommend/{user_id} and GET /v1/users/{user_id}/toi."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from pasrec.service.deps import Ctx, require
from pasrec.service.errors import ApiError
from pasrec.service.ids import UserIdPath
from pasrec.service.inference import LoadedModel, ModelNotLoaded
from pasrec.service.schemas import ErrorOut, NextTimeOut, RecommendOut, ScoredItem, ToiOut
from pasrec.service.timestamps import parse_time

router = APIRouter(tags=["recommendations"], dependencies=[Depends(require("read"))])

_ERRORS = {
    401: {"model": ErrorOut, "description": "Missing or invalid API key."},
    403: {"model": ErrorOut, "description": "The key lacks the `read` scope."},
    422: {"model": ErrorOut, "description": "Invalid parameter."},
    503: {"model": ErrorOut, "description": "No model loaded."},
}


def _loaded(ctx: Ctx) -> LoadedModel:
    try:
        return ctx.inference.current
    except ModelNotLoaded as exc:
        raise ApiError(503, "model_not_loaded", str(exc)) from None


@router.get(
    "/v1/recommend/{user_id}",
    response_model=RecommendOut,
    responses=_ERRORS,
    summary="Top-K items for a user now (or at a given time), with the predicted next time",
)
def recommend(
    user_id: UserIdPath,
    ctx: Ctx,
    k: Annotated[int | None, Query(description="Items wanted (default PASREC_DEFAULT_K).")] = None,
    at: Annotated[
        str | None,
        Query(
            description="RFC 3339 time or unix seconds to recommend for; default: the "
            "predicted time of interest."
        ),
    ] = None,
    exclude_seen: Annotated[
        bool, Query(description="Leave out items the user already interacted with.")
    ] = True,
) -> RecommendOut:
    settings = ctx.settings
    k = settings.default_k if k is None else k
    if not 1 <= k <= settings.max_k:
        raise ApiError(
            422,
            "validation_error",
            f"query.k: must be between 1 and {settings.max_k} (PASREC_MAX_K), got {k}",
            [{"loc": "query.k", "message": f"must be between 1 and {settings.max_k}"}],
        )
    at_time = None
    if at is not None:
        try:
            at_time = parse_time(at, numeric_strings=True)
        except ValueError as exc:
            detail = [{"loc": "query.at", "message": str(exc)}]
            raise ApiError(422, "validation_error", f"query.at: {exc}", detail) from None
    loaded = _loaded(ctx)
    predictor = loaded.predictor
    history = ctx.history.get(user_id, predictor.history_length)
    exclude = set(history.seen) if history is not None and exclude_seen else set()
    reason = None
    if history is None:
        reason = "unknown user: no events stored for this user"
    elif not any(predictor.known(e.item_id) for e in history.events):
        reason = "none of the user's recent items is known to the model"
    if reason is not None:
        label = "unknown_user" if history is None else "no_known_history"
        ctx.metrics.fallbacks.labels(label).inc()
        items = predictor.popular(k, exclude=exclude)
        next_time, version = None, predictor.version
    else:
        scored = ctx.inference.score(
            history.pairs(), k, at=None if at_time is None else at_time.timestamp(), exclude=exclude
        )
        items, next_time, version = scored.items, scored.next_time, scored.model_version
    return RecommendOut(
        user_id=user_id,
        items=[ScoredItem(item_id=i, score=s) for i, s in items],
        fallback=None if reason is None else "popularity",
        fallback_reason=reason,
        at=at_time,
        next_time=NextTimeOut.of(next_time),
        model_version=version,
        generated_at=ctx.clock(),
    )


@router.get(
    "/v1/users/{user_id}/toi",
    response_model=ToiOut,
    responses={**_ERRORS, 404: {"model": ErrorOut, "description": "No events for this user."}},
    summary="The user's predicted next interaction time (with quantiles under a tpp head)",
)
def time_of_interest(user_id: UserIdPath, ctx: Ctx) -> ToiOut:
    loaded = _loaded(ctx)
    predictor = loaded.predictor
    history = ctx.history.get(user_id, predictor.history_length)
    if history is None:
        raise ApiError(404, "unknown_user", f"no events are stored for user {user_id!r}")
    last = history.events[-1]
    reason = None
    next_time = None
    version = predictor.version
    if not predictor.has_toi:
        reason = f"the model ({predictor.model_name}) has no time-of-interest module"
    elif not any(predictor.known(e.item_id) for e in history.events):
        reason = "none of the user's recent items is known to the model"
    else:
        scored = ctx.inference.score(history.pairs(), 1, want_items=False)
        next_time, version = scored.next_time, scored.model_version
        if next_time is None:
            reason = "the model gave no prediction for this history"
    return ToiOut(
        user_id=user_id,
        next_time=NextTimeOut.of(next_time),
        reason=reason,
        last_event_at=datetime.fromtimestamp(last.ts, UTC),
        model_version=version,
    )
