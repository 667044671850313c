"""POST /v1/admin/model/reload: swap checkpoints without dropping requests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Body, Depends

from service.deps import Ctx, require
from service.errors import ApiError
from service.schemas import ErrorOut, ReloadIn, ReloadOut

router = APIRouter(tags=["admin"], dependencies=[Depends(require("admin"))])


@router.post(
    "/v1/admin/model/reload",
    response_model=ReloadOut,
    responses={
        401: {"model": ErrorOut, "description": "Missing or invalid API key."},
        403: {"model": ErrorOut, "description": "The key lacks the `admin` scope."},
        422: {"model": ErrorOut, "description": "No path, or not a valid checkpoint."},
    },
    summary="Load a checkpoint (default PASREC_MODEL_PATH) and serve it from now on",
)
def reload_model(ctx: Ctx, body: Annotated[ReloadIn | None, Body()] = None) -> ReloadOut:
    raw = body.path if body is not None and body.path else ctx.settings.model_path
    if raw is None:
        raise ApiError(
            422,
            "validation_error",
            "body.path: no checkpoint path given and PASREC_MODEL_PATH is unset",
            [{"loc": "body.path", "message": "required when PASREC_MODEL_PATH is unset"}],
        )
    path = Path(raw)
    raw_toi = body.toi_path if body is not None and body.toi_path else ctx.settings.toi_model_path
    toi_path = None if raw_toi is None else Path(raw_toi)
    try:
        loaded, previous = ctx.load_model(path, toi_path)
    except (ValueError, OSError) as exc:
        # CheckpointError is a ValueError; the old model keeps serving.
        which = repr(str(path))
        if toi_path is not None:
            which += f" with next times from {str(toi_path)!r}"
        message = f"cannot load checkpoint {which}: {exc}"
        raise ApiError(422, "invalid_checkpoint", message) from None
    return ReloadOut(
        model_version=loaded.predictor.version,
        model_name=loaded.predictor.model_name,
        previous_version=None if previous is None else previous.predictor.version,
        path=str(path),
        toi_path=None if toi_path is None else str(toi_path),
    )
