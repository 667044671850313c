"""The FastAPI application and `pasrec serve`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from pasrec.service import errors
from pasrec.service.clock import Clock, system_clock
from pasrec.service.context import ServiceContext
from pasrec.service.db import make_engine
from pasrec.service.metrics import Metrics
from pasrec.service.middleware import BodyLimit, RequestMetrics
from pasrec.service.migrate import SchemaBehindError, ensure_schema
from pasrec.service.push.runner import DispatchLoop
from pasrec.service.routes import admin, events, health, pushes, recommend
from pasrec.service.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings, clock: Clock = system_clock) -> FastAPI:
    """The API; storage, cache and model are opened when the app starts (its lifespan)."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = ServiceContext.start(settings, clock, metrics)
        app.state.ctx = ctx
        log.info(
            "service ready: database %s, cache %s, auth %s",
            ctx.engine.url.render_as_string(hide_password=True),
            "redis" if settings.redis_url else "in-process",
            "on" if settings.auth_enabled else "OFF",
        )
        dispatch = None
        if settings.push_enabled and settings.push_dispatcher_enabled:
            dispatch = DispatchLoop(ctx)
            dispatch.start()
        try:
            yield
        finally:
            if dispatch is not None:
                dispatch.stop()
            ctx.close()

    app = FastAPI(
        title="PASRec-push",
        version="0.1.0",
        description="Active sequential recommendation: ingest interactions, ask what a user "
        "wants and when they will be back.",
        lifespan=lifespan,
    )
    errors.install(app)
    for router in (events.router, recommend.router, pushes.router, admin.router, health.router):
        app.include_router(router)
    # Outermost first: metrics see every response, including 413s from the body limit.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Alembic logs its context at INFO on every schema check (each /readyz); our own
    # migration log lines say what happened.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)


def run_server(settings: Settings) -> None:
    """`pasrec serve`: check the schema, then serve the API with uvicorn until stopped."""
    configure_logging(settings)
    engine = make_engine(settings)
    try:
        ensure_schema(engine, settings)
    except SchemaBehindError as exc:
        raise SystemExit(f"pasrec serve: {exc}") from None
    finally:
        engine.dispose()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
