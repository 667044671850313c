"""Liveness, readiness and Prometheus metrics (no API key: probes and scrapers)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from pasrec.service.deps import Ctx
from pasrec.service.migrate import current_revision, head_revision

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Database (schema current), cache and model are usable")
def readyz(ctx: Ctx) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        revision = current_revision(ctx.engine)
        head = head_revision()
        checks["database"] = "ok" if revision == head else f"schema {revision}, needs {head}"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready, reported as text
        checks["database"] = f"unreachable: {type(exc).__name__}"
    checks["cache"] = "ok" if ctx.cache.ping() else "unreachable"
    checks["model"] = (
        f"ok: {ctx.inference.current.predictor.version}" if ctx.inference.ready else "not loaded"
    )
    ready = all(v.startswith("ok") for v in checks.values())
    body: dict[str, object] = {"status": "ready" if ready else "not ready", "checks": checks}
    # Warnings do not make the service unready: it still answers, an operator should look.
    span_warning = ctx.inference.current.span_watch.warning() if ctx.inference.ready else None
    if span_warning:
        body["warnings"] = {"model_time_span": span_warning}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(ctx: Ctx) -> Response:
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)
