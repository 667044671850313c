"""Acting on one claimed push: re-check the policy at the due time (skip or hold it), generate
its body, record the attempt, POST it signed, record the outcome.

Every write is conditioned on still holding the lease (`store.owned`), so a dispatcher that
stalled past its lease never overwrites the one that took over; the attempt is recorded
before the POST, so a crash leaves a visible trace.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from pasrec.service.clock import Clock
from pasrec.service.inference import ModelNotLoaded
from pasrec.service.metrics import Metrics
from pasrec.service.models import PushStatus
from pasrec.service.push import outcomes, payload, policy, store
from pasrec.service.push.backoff import Backoff
from pasrec.service.push.delivery import Outcome, WebhookSender
from pasrec.service.push.outcomes import Result
from pasrec.service.push.payload import PayloadBuilder
from pasrec.service.push.ratelimit import RateLimiter
from pasrec.service.settings import PushSettings

log = logging.getLogger(__name__)

MODEL_NOT_LOADED = "model_not_loaded"
NO_HISTORY = "no_history"
ATTEMPTS_EXHAUSTED = "attempts_exhausted"


class Courier:
    """Delivers the pushes its owner claimed; safe to call from several threads at once."""

    def __init__(
        self,
        engine: Engine,
        settings: PushSettings,
        clock: Clock,
        metrics: Metrics,
        owner: str,
        payloads: PayloadBuilder,
        sender: WebhookSender,
        limiter: RateLimiter,
        backoff: Backoff,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._owner = owner
        self._payloads = payloads
        self._sender = sender
        self._limiter = limiter
        self._backoff = backoff

    def deliver(self, push_id: str, now: datetime | None) -> str:
        """Act on one claimed push at `now` (None: the service clock, read afresh at each
        step); returns its `outcomes` label."""
        result = self._act(push_id, now or self._clock(), now)
        outcomes.count(self._metrics, result)
        return result.label

    def _act(self, push_id: str, when: datetime, fixed_now: datetime | None) -> Result:
        settings = self._settings
        with self._engine.connect() as conn, conn.begin():
            claimed = store.read_claimed(
                conn, push_id, self._owner, when, settings.push_cap_window_s
            )
        if claimed is None:
            return Result(outcomes.LOST)
        if claimed.attempts_since_requeue() >= settings.push_max_attempts:
            kept = self._finish(push_id, when, status=PushStatus.DEAD, reason=ATTEMPTS_EXHAUSTED)
            return Result(outcomes.DEAD if kept else outcomes.LOST)
        blocked = policy.blocking_reason(
            settings,
            when,
            claimed.user.last_event_at,
            claimed.last_delivered_at,
            claimed.delivered_in_window,
        )
        if blocked is not None:
            return self._skip(push_id, when, blocked)
        zone = policy.user_zone(settings, claimed.user.timezone)
        quiet_end = policy.quiet_until(settings, when, zone)
        if quiet_end is not None:
            return self._hold(push_id, claimed.user_id, when, quiet_end, policy.QUIET_HOURS)
        if not self._limiter.acquire(when):
            next_second = datetime.fromtimestamp(int(when.timestamp()) + 1, UTC)
            return self._hold(push_id, claimed.user_id, when, next_second, policy.RATE_LIMITED)
        try:
            body = self._payloads.build(push_id, claimed, when)
        except ModelNotLoaded:
            retry = when + timedelta(seconds=settings.push_backoff_base_s)
            return self._hold(push_id, claimed.user_id, when, retry, MODEL_NOT_LOADED)
        if body is None:
            return self._skip(push_id, when, NO_HISTORY)
        return self._attempt(push_id, claimed, body, fixed_now)

    def _attempt(
        self,
        push_id: str,
        claimed: store.Claimed,
        body: dict[str, Any],
        fixed_now: datetime | None,
    ) -> Result:
        attempt = claimed.attempts + 1
        # The lease is renewed from now, not from the claim: generating the body took time,
        # and the whole POST (bounded by the webhook deadline, at most half the lease) must
        # end before another dispatcher may take the push over.
        start = fixed_now or self._clock()
        started = store.write(
            self._engine,
            lambda conn: store.start_attempt(
                conn, push_id, self._owner, attempt, body, start, self._settings.push_lease_s
            ),
        )
        if not started:
            return Result(outcomes.LOST)
        outcome = self._sender.send(push_id, payload.encode(body))
        done = fixed_now or self._clock()
        label = self._record(push_id, attempt, claimed, outcome, done)
        return Result(label, (done - claimed.due_at).total_seconds())

    def _record(
        self, push_id: str, attempt: int, claimed: store.Claimed, outcome: Outcome, done: datetime
    ) -> str:
        """Record the attempt's end and the push's next state in one transaction; returns
        the label (`lost` when the lease went meanwhile)."""
        spent = claimed.attempts_since_requeue(attempt)
        label: str = outcome.kind
        if label == outcomes.RETRY and spent >= self._settings.push_max_attempts:
            label = outcomes.DEAD
        retry_at: datetime | None = None
        final: dict[str, Any] = {}
        if label == outcomes.RETRY:
            retry_at = done + timedelta(seconds=self._backoff.delay_s(spent, outcome.retry_after_s))
        elif label == outcomes.DELIVERED:
            final = {"status": PushStatus.DELIVERED, "delivered_at": done, "reason": None}
        else:
            status = PushStatus.FAILED if label == outcomes.FAILED else PushStatus.DEAD
            final = {"status": status, "reason": outcome.reason}

        def write(conn: Connection) -> bool:
            store.end_attempt(
                conn, push_id, attempt, done, label,
                outcome.status_code, outcome.latency_ms, outcome.error,
            )  # fmt: skip
            if retry_at is None:
                return store.finish(conn, push_id, self._owner, done, **final)
            return store.back_to_pending(
                conn, push_id, claimed.user_id, self._owner, retry_at, outcome.reason, done
            )

        if not store.write(self._engine, write):
            log.warning("push %s: lease lost during attempt %d (%s)", push_id, attempt, label)
            return outcomes.LOST
        return label

    def _finish(self, push_id: str, when: datetime, **values: Any) -> bool:
        return store.write(
            self._engine,
            lambda conn: store.finish(conn, push_id, self._owner, when, **values),
        )

    def _skip(self, push_id: str, when: datetime, reason: str) -> Result:
        kept = self._finish(push_id, when, status=PushStatus.SKIPPED, reason=reason)
        return outcomes.skipped(reason) if kept else Result(outcomes.LOST)

    def _hold(
        self, push_id: str, user_id: str, when: datetime, due: datetime, reason: str
    ) -> Result:
        kept = store.write(
            self._engine,
            lambda conn: store.back_to_pending(
                conn, push_id, user_id, self._owner, due, reason, when
            ),
        )
        return outcomes.held(reason) if kept else Result(outcomes.LOST)
