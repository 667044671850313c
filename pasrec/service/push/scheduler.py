"""Planning: after a user's new events, re-predict their time of interest and (re)schedule
their single pending push.

The planner (pasrec/service/push/planner.py) calls this for a batch of users taken from the push
outbox, off the ingestion request: one batched model call for the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime

from sqlalchemy import Engine

from pasrec.model.predictor import NextTime
from pasrec.service.history import UserHistory
from pasrec.service.inference import InferenceEngine
from pasrec.service.metrics import Metrics
from pasrec.service.push import policy, store, timing
from pasrec.service.settings import PushSettings
from pasrec.service.storage import read_recent


class PushScheduler:
    def __init__(
        self,
        engine: Engine,
        settings: PushSettings,
        inference: InferenceEngine,
        metrics: Metrics,
        history_length: Callable[[], int],
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._inference = inference
        self._metrics = metrics
        self._history_length = history_length

    def schedule(self, user_ids: Collection[str], now: datetime) -> dict[str, policy.Plan]:
        """Plan and store each user's push; returns the plans by user."""
        settings, inference = self._settings, self._inference
        # From the database, not the cache: another process's ingestion updates the cache
        # only after its commit, so the cache may still lack the very events being planned.
        # Planning reads no seen items.
        histories = {
            user_id: UserHistory(events, frozenset())
            for user_id, events in read_recent(
                self._engine, sorted(user_ids), self._history_length()
            ).items()
        }
        predictor = inference.current.predictor if inference.ready else None
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
            scored = inference.next_times([histories[u].pairs() for u in eligible])
            predicted = {u: s.next_time for u, s in zip(eligible, scored, strict=True)}
        # The timing strategy (pasrec/service/push/timing.py) turns the prediction into a due time;
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

        store.write(self._engine, lambda conn: store.apply_plans(conn, plans, version, now))
        for user_plan in plans.values():
            if user_plan.skip is None:
                self._metrics.push_scheduled.inc()
            else:
                self._metrics.push_skipped.labels(user_plan.skip).inc()
        return plans


def _last_event(history: UserHistory) -> datetime:
    return datetime.fromtimestamp(history.events[-1].ts, UTC)
