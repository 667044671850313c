"""Runs a dispatcher and a push planner periodically with APScheduler, in `pasrec serve` or
`pasrec worker`."""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler

from pasrec.service.push.dispatcher import Dispatcher
from pasrec.service.push.parts import PushParts
from pasrec.service.push.planner import PushPlanner

log = logging.getLogger(__name__)


class DispatchLoop:
    """Background APScheduler jobs: one drains due pushes every `push_poll_interval_s`, the
    other plans the pushes of users with new events every `push_plan_interval_s`."""

    def __init__(self, parts: PushParts) -> None:
        self.dispatcher = Dispatcher(parts)
        self.planner = PushPlanner(parts, self.dispatcher.worker_id)
        self._stopping = False
        # APScheduler logs every run at INFO: once a second per process says nothing useful.
        logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
        self._scheduler = BackgroundScheduler(timezone="UTC")
        jobs = (
            (self._drain, parts.settings.push_poll_interval_s, "push-dispatch"),
            (self._plan, parts.settings.push_plan_interval_s, "push-plan"),
        )
        for job, seconds, name in jobs:
            # One run at a time; a run that overlaps the next tick absorbs it.
            self._scheduler.add_job(
                job, "interval", seconds=seconds, id=name, max_instances=1, coalesce=True
            )

    def start(self) -> None:
        self._scheduler.start()
        log.info("push dispatcher and planner %s started", self.dispatcher.worker_id)

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

    def _plan(self) -> None:
        # Until the outbox is empty: under steady ingestion one tick keeps planning, and the
        # next tick (coalesced) starts when this one ends.
        try:
            while not self._stopping and self.planner.plan_batch():
                pass
        except Exception:
            # The users went back to the outbox; the next tick retries them.
            log.exception("planning pushes failed")
