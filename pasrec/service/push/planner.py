"""The push planner: plans the pushes of users with new events, off the ingestion request.

Ingestion only puts users in the push outbox (pasrec/service/push/outbox.py). A planner claims a
batch of them, plans every push of the batch with one batched model call
(`PushScheduler.schedule`), stores the pushes, then removes the users from the outbox,
except those whose events arrived while it planned: they go back for another round. It runs
wherever dispatchers run (an APScheduler job of `pasrec serve` and `pasrec worker`, see
`runner.py`); any number of planners may share a database.
"""

from __future__ import annotations

from datetime import datetime

from pasrec.service.push import outbox, store
from pasrec.service.push.parts import PushParts
from pasrec.service.push.scheduler import PushScheduler
from pasrec.service.push.worker_id import new_worker_id


class PushPlanner:
    def __init__(self, parts: PushParts, worker_id: str | None = None) -> None:
        settings = parts.settings
        if not settings.push_enabled:
            raise ValueError("active push is off: set PASREC_PUSH_WEBHOOK_URL and _SECRET")
        self._engine = parts.engine
        self._clock = parts.clock
        self._metrics = parts.metrics
        self._batch_users = settings.push_plan_batch_users
        self._lease_s = settings.push_plan_lease_s
        self._scheduler = PushScheduler(
            parts.engine, settings, parts.inference, parts.metrics, parts.history_length
        )
        self.worker_id = worker_id or new_worker_id()

    def plan_batch(self, now: datetime | None = None) -> int:
        """Claim up to `push_plan_batch_users` users, plan and store their pushes; returns how
        many users were claimed. `now` defaults to the service clock.

        A failure gives the claimed users back before it is raised, so the next round (or
        another planner) plans them.
        """
        engine = self._engine
        now = self._clock() if now is None else now
        users = store.write(
            engine,
            lambda conn: outbox.claim(conn, self.worker_id, now, self._lease_s, self._batch_users),
        )
        if not users:
            return 0
        try:
            self._scheduler.schedule(users, now)
        except Exception:
            store.write(engine, lambda conn: outbox.release(conn, self.worker_id, users))
            raise
        queued = store.write(engine, lambda conn: outbox.finish(conn, self.worker_id, users))
        done = self._clock()
        for queued_at in queued:
            self._metrics.push_planning_lag.observe(max((done - queued_at).total_seconds(), 0.0))
        return len(users)

    def drain(self, now: datetime | None = None) -> int:
        """Plan until this planner finds no user left to claim; returns the users planned
        (a user with events during planning counts once per round)."""
        total = 0
        while planned := self.plan_batch(now):
            total += planned
        return total
