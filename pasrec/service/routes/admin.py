"""POST /v1/admin/model/reload: swap checkpoints without dropping requests."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Body, Depends

from pasrec.model.checkpoint import CheckpointError
from pasrec.service.deps import Ctx, require
from pasrec.service.errors import ApiError
from pasrec.service.model_paths import PathRefused, allowed_checkpoint
from pasrec.service.schemas import ErrorOut, ReloadIn, ReloadOut
from pasrec.service.settings import Settings

log = logging.getLogger(__name__)

router = APIRouter(tags=["admin"], dependencies=[Depends(require("admin"))])


@router.post(
    "/v1/admin/model/reload",
    response_model=ReloadOut,
    responses={
        401: {"model": ErrorOut, "description": "Missing or invalid API key."},
        403: {"model": ErrorOut, "description": "The key lacks the `admin` scope."},
        422: {
            "model": ErrorOut,
            "description": "No path, a path outside PASREC_MODEL_DIR, or not a valid "
            "checkpoint (the reason is in the server log, not in the answer).",
        },
    },
    summary="Load a checkpoint (default PASREC_MODEL_PATH) and serve it from now on",
)
def reload_model(ctx: Ctx, body: Annotated[ReloadIn | None, Body()] = None) -> ReloadOut:
    settings = ctx.settings
    requested = body or ReloadIn()
    path = _choose(requested.path, settings.model_path, settings, "body.path")
    if path is None:
        raise ApiError(
            422,
            "validation_error",
            "body.path: no checkpoint path given and PASREC_MODEL_PATH is unset",
            [{"loc": "body.path", "message": "required when PASREC_MODEL_PATH is unset"}],
        )
    toi_path = _choose(requested.toi_path, settings.toi_model_path, settings, "body.toi_path")
    try:
        loaded, previous = ctx.load_model(path, toi_path)
    except (ValueError, OSError) as exc:
        # The old model keeps serving.
        which = repr(requested.path or str(path))
        if toi_path is not None:
            which += f" with next times from {requested.toi_path or str(toi_path)!r}"
        raise ApiError(
            422, "invalid_checkpoint", f"cannot load checkpoint {which}: {_reason(exc)}"
        ) from None
    return ReloadOut(
        model_version=loaded.predictor.version,
        model_name=loaded.predictor.model_name,
        previous_version=None if previous is None else previous.predictor.version,
        path=str(path),
        toi_path=None if toi_path is None else str(toi_path),
    )


def _choose(raw: str | None, default: Path | None, settings: Settings, loc: str) -> Path | None:
    """The request's path, checked against PASREC_MODEL_DIR, else the configured default."""
    if not raw:
        return default
    try:
        return allowed_checkpoint(raw, settings.model_dir)
    except PathRefused as exc:
        detail = [{"loc": loc, "message": str(exc)}]
        raise ApiError(422, "path_not_allowed", f"{loc}: {exc}", detail) from None


def _reason(exc: Exception) -> str:
    """What the caller may learn of a failed load."""
    if isinstance(exc, CheckpointError | OSError):
        # Which file is missing, unreadable or altered would tell the caller what exists on
        # the server's disk, and where: only the log says.
        incident = uuid.uuid4().hex[:12]
        log.warning("checkpoint reload failed (incident %s): %s", incident, exc)
        return (
            "not an intact checkpoint directory this server can read; the server log has "
            f"the reason (incident {incident})"
        )
    # Two intact checkpoints that do not pair (a ToI checkpoint without a ToI module).
    return str(exc)
