"""`pasrec worker`: push planning and dispatching only (no HTTP API), as many processes as
wanted."""

from __future__ import annotations

import logging
import signal
import threading

from prometheus_client import start_http_server

from pasrec.service.app import configure_logging
from pasrec.service.clock import system_clock
from pasrec.service.context import ServiceContext
from pasrec.service.metrics import Metrics
from pasrec.service.migrate import SchemaBehindError
from pasrec.service.push.runner import DispatchLoop
from pasrec.service.settings import Settings

log = logging.getLogger(__name__)


def run_worker(settings: Settings) -> None:
    """Plan and deliver pushes until SIGTERM or SIGINT, then finish the deliveries in flight."""
    configure_logging(settings)
    if not settings.push_enabled:
        raise SystemExit("pasrec worker: active push is off; set PASREC_PUSH_WEBHOOK_URL")
    try:
        ctx = ServiceContext.start(settings, system_clock, Metrics())
    except SchemaBehindError as exc:
        raise SystemExit(f"pasrec worker: {exc}") from None
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        if settings.worker_metrics_port is not None:
            start_http_server(settings.worker_metrics_port, registry=ctx.metrics.registry)
        loop = DispatchLoop(ctx)
        loop.start()
        try:
            stop.wait()
        finally:
            loop.stop()
    finally:
        ctx.close()
