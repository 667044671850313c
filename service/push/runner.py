"""Runs a dispatcher periodically with APScheduler, in `pasrec serve` or `pasrec worker`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler

from service.push.dispatcher import Dispatcher

if TYPE_CHECKING:
    from service.context import ServiceContext

log = logging.getLogger(__name__)


class DispatchLoop:
    """A background APScheduler job that drains due pushes every `push_poll_interval_s`."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.dispatcher = Dispatcher(ctx)
        self._stopping = False
        # APScheduler logs every run at INFO: once a second per process says nothing useful.
        logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._scheduler.add_job(
            self._drain,
            "interval",
            seconds=ctx.settings.push_poll_interval_s,
            id="push-dispatch",
            # One run at a time; a run that overlaps the next tick absorbs it.
            max_instances=1,
            coalesce=True,
        )

    def start(self) -> None:
        self._scheduler.start()
        log.info("push dispatcher %s started", self.dispatcher.worker_id)

    def stop(self) -> None:
        """Stop polling and let the deliveries in flight finish (each within the webhook
        deadline, so a shutdown waits at most `push_webhook_timeout_s` for them)."""
        self._stopping = True
        self._scheduler.shutdown(wait=True)
        self.dispatcher.close()
        log.info("push dispatcher %s stopped", self.dispatcher.worker_id)

    def _drain(self) -> None:
        # Start deliveries while slots are idle and pushes are due; deliveries run on in the
        # background, so the next tick finds what fell due meanwhile even if one is slow.
        while not self._stopping and self.dispatcher.start_due():
            pass
