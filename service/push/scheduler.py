"""Scheduling on ingestion: after a user's new events, re-predict their time of interest and
(re)schedule their single pending push.

Runs in the ingestion request right after the events commit, for every user of the batch at
once (one batched model call). The events are already stored when this runs, so a failure
here is logged and counted, never turned into a failed ingestion: the user's next event
schedules again.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from model.predictor import NextTime
from service.history import UserHistory
from service.push import policy, store, timing

if TYPE_CHECKING:
    from service.context import ServiceContext

log = logging.getLogger(__name__)


class PushScheduler:
    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def after_events(self, user_ids: Collection[str], now: datetime) -> None:
        """Reschedule these users' pushes; errors are logged, not raised (see module doc)."""
        try:
            self.schedule(user_ids, now)
        except Exception:
            log.exception("scheduling pushes for %d users failed", len(user_ids))

    def schedule(self, user_ids: Collection[str], now: datetime) -> dict[str, policy.Plan]:
        """Plan and store each user's push; returns the plans by user."""
        ctx, settings = self._ctx, self._ctx.settings
        length = ctx.history_length()
        histories: dict[str, UserHistory] = {}
        for user_id in sorted(user_ids):
            history = ctx.history.get(user_id, length)
            if history is not None:
                histories[user_id] = history
        predictor = ctx.inference.current.predictor if ctx.inference.ready else None
        version = None if predictor is None else predictor.version
        eligible = (
            []
            if predictor is None
            else [
                user_id
                for user_id, history in histories.items()
                if sum(predictor.known(e.item_id) for e in history.events)
                >= settings.push_min_history
            ]
        )
        predicted: dict[str, NextTime | None] = {}
        if (
            predictor is not None
            and predictor.has_toi
            and settings.push_timing in timing.MODEL_TIMINGS
        ):
            scored = ctx.inference.next_times([histories[u].pairs() for u in eligible])
            predicted = {u: s.next_time for u, s in zip(eligible, scored, strict=True)}
        # The timing strategy (service/push/timing.py) turns the prediction into a due time;
        # every strategy then goes through the same policy.
        chosen = set(eligible)
        plans = {
            user_id: policy.plan(
                settings,
                now,
                _last_event(history),
                timing.next_time(settings, history, predicted.get(user_id), user_id in chosen),
            )
            for user_id, history in histories.items()
        }

        def write(conn: Connection) -> None:
            # Sorted, so concurrent batches lock users in the same order.
            for user_id in sorted(plans):
                store.apply_plan(conn, user_id, plans[user_id], version, now)

        store.write(ctx.engine, write)
        for user_plan in plans.values():
            if user_plan.skip is None:
                ctx.metrics.push_scheduled.inc()
            else:
                ctx.metrics.push_skipped.labels(user_plan.skip).inc()
        return plans


def _last_event(history: UserHistory) -> datetime:
    return datetime.fromtimestamp(history.events[-1].ts, UTC)
