"""The dispatcher: claims due pushes under a lease and delivers each one.

`Dispatcher.dispatch_due(now)` is the whole cycle (claim, then deliver every claimed push)
and returns how many pushes it claimed; the APScheduler job calls it with `now=None` (the
service clock, read afresh for each push), a simulation calls it with the virtual time.

Delivering one push: re-check the policy at the due time (skip or hold it), regenerate the
top-K from the user's latest history for that time, excluding what they have seen, record
the attempt, POST it signed, record the outcome. Every write is conditioned on still holding
the lease, so a dispatcher that stalled past its lease never overwrites the one that took
over; the attempt is recorded before the POST, so a crash leaves a visible trace.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, update

from service.inference import ModelNotLoaded
from service.models import Push, PushAttempt, PushStatus
from service.push import policy, store
from service.push.delivery import Outcome, WebhookSender
from service.push.ratelimit import make_rate_limiter
from service.settings import signing_key

if TYPE_CHECKING:
    from service.context import ServiceContext

log = logging.getLogger(__name__)

MODEL_NOT_LOADED = "model_not_loaded"
NO_HISTORY = "no_history"
ATTEMPTS_EXHAUSTED = "attempts_exhausted"


def new_worker_id() -> str:
    """An id naming this process in leases (host, pid, and a random part for uniqueness)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Dispatcher:
    """One dispatcher (a worker's or the API process's); many may share a database."""

    def __init__(
        self,
        ctx: ServiceContext,
        worker_id: str | None = None,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        settings = ctx.settings
        if settings.push_webhook_url is None or settings.push_webhook_secret is None:
            raise ValueError("active push is off: set PASREC_PUSH_WEBHOOK_URL and _SECRET")
        self._ctx = ctx
        self._settings = settings
        self.worker_id = worker_id or new_worker_id()
        # Jitter only spreads retries; a seeded generator makes a simulation repeatable.
        self._rng = rng or random.Random()
        self._limiter = make_rate_limiter(settings)
        self._sender = WebhookSender(
            settings.push_webhook_url,
            signing_key(settings.push_webhook_secret),
            settings.push_webhook_timeout_s,
            settings.push_concurrency,
            wall_clock,
        )
        self._pool = ThreadPoolExecutor(settings.push_concurrency, thread_name_prefix="push")
        self._slots_lock = threading.Lock()
        self._busy = 0

    # --- the cycle ------------------------------------------------------------------------

    def dispatch_due(self, now: datetime | None = None) -> int:
        """Claim the pushes due at `now` (at most `push_claim_batch`) and deliver them all.

        `now=None` follows the service clock. Returns how many pushes were claimed; a result
        equal to `push_claim_batch` means more may be due.
        """
        claimed = self.claim(now)
        if len(claimed) == 1 or self._settings.push_concurrency == 1:
            for push_id in claimed:
                self.deliver(push_id, now)
        else:
            list(self._pool.map(lambda push_id: self.deliver(push_id, now), claimed))
        return len(claimed)

    def start_due(self) -> int:
        """Claim as many due pushes as there are idle delivery slots and start delivering
        them in the background, following the service clock; returns how many it started.

        The periodic loop uses this rather than `dispatch_due`, which waits for its whole
        batch: here a slow receiver holds one slot, for at most the webhook deadline, while
        the other slots keep taking the pushes that fall due.
        """
        with self._slots_lock:
            idle = self._settings.push_concurrency - self._busy
            if idle <= 0:
                return 0
            claimed = self.claim(None, limit=min(idle, self._settings.push_claim_batch))
            self._busy += len(claimed)
        for push_id in claimed:
            self._pool.submit(self._deliver_in_slot, push_id)
        return len(claimed)

    def claim(self, now: datetime | None = None, limit: int | None = None) -> list[str]:
        """Lease the due pushes (and those whose lease expired), at most `limit` (default
        `push_claim_batch`); their ids."""
        when = now or self._ctx.clock()
        settings = self._settings
        most = settings.push_claim_batch if limit is None else limit
        return store.write(
            self._ctx.engine,
            lambda conn: store.claim(conn, self.worker_id, when, settings.push_lease_s, most),
        )

    def deliver(self, push_id: str, now: datetime | None = None) -> str:
        """Act on one claimed push; returns what happened: `delivered`, `retry`, `failed`,
        `dead`, `skipped:<reason>`, `held:<reason>`, `lost` (the lease was gone) or `error`
        (an unexpected exception, logged; the lease then expires and another try follows)."""
        when = now or self._ctx.clock()
        try:
            return self._deliver(push_id, when, now)
        except Exception:
            # The lease runs out and another attempt follows, so one bad push never stops
            # the dispatcher; the log says what went wrong.
            log.exception("delivering push %s failed", push_id)
            return "error"

    def _deliver_in_slot(self, push_id: str) -> None:
        try:
            self.deliver(push_id)
        finally:
            with self._slots_lock:
                self._busy -= 1

    def close(self) -> None:
        # Deliveries in flight finish first; each ends by its webhook deadline.
        self._pool.shutdown(wait=True)
        self._sender.close()
        self._limiter.close()

    # --- one push ---------------------------------------------------------------------------

    def _deliver(self, push_id: str, when: datetime, fixed_now: datetime | None) -> str:
        ctx, settings = self._ctx, self._settings
        with ctx.engine.connect() as conn, conn.begin():
            claimed = store.read_claimed(
                conn, push_id, self.worker_id, when, settings.push_cap_window_s
            )
        if claimed is None:
            return "lost"
        if claimed.attempts_since_requeue() >= settings.push_max_attempts:
            return self._finish(
                push_id, when, "dead", status=PushStatus.DEAD, reason=ATTEMPTS_EXHAUSTED
            )
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
            payload = self._payload(push_id, claimed, when)
        except ModelNotLoaded:
            retry = when + timedelta(seconds=settings.push_backoff_base_s)
            return self._hold(push_id, claimed.user_id, when, retry, MODEL_NOT_LOADED)
        if payload is None:
            return self._skip(push_id, when, NO_HISTORY)
        body = json.dumps(payload, separators=(",", ":")).encode()
        attempt = claimed.attempts + 1
        # The lease is renewed from now, not from the claim: generating the payload took time,
        # and the whole POST (bounded by the webhook deadline, at most half the lease) must
        # end before another dispatcher may take the push over.
        start = fixed_now or ctx.clock()
        started = store.write(
            ctx.engine, lambda conn: self._start_attempt(conn, push_id, attempt, payload, start)
        )
        if not started:
            return "lost"

        outcome = self._sender.send(push_id, body)
        done = fixed_now or ctx.clock()
        label = store.write(
            ctx.engine,
            lambda conn: self._record(conn, push_id, attempt, claimed, outcome, done),
        )
        self._count(label, claimed, done)
        return label

    def _payload(
        self, push_id: str, claimed: store.Claimed, when: datetime
    ) -> dict[str, Any] | None:
        ctx, settings = self._ctx, self._settings
        predictor = ctx.inference.current.predictor
        history = ctx.history.get(claimed.user_id, predictor.history_length)
        if history is None:
            return None
        exclude = set(history.seen)
        fallback = None
        if any(predictor.known(e.item_id) for e in history.events):
            scored = ctx.inference.score(
                history.pairs(), settings.push_k, at=claimed.due_at.timestamp(), exclude=exclude
            )
            items, version = scored.items, scored.model_version
        else:
            items, version = predictor.popular(settings.push_k, exclude=exclude), predictor.version
            fallback = "popularity"
        return {
            "type": "recommendations.push",
            "timestamp": when.isoformat(),
            "data": {
                "push_id": push_id,
                "user_id": claimed.user_id,
                "items": [{"item_id": item, "score": score} for item, score in items],
                "fallback": fallback,
                "predicted_at": _iso(claimed.predicted_at),
                "scheduled_for": claimed.due_at.isoformat(),
                "model_version": version,
                "generated_at": when.isoformat(),
            },
        }

    def _start_attempt(
        self, conn: Connection, push_id: str, attempt: int, payload: dict[str, Any], when: datetime
    ) -> bool:
        # Renewing the lease here, only while it still holds, gives every attempt a full lease
        # however long the claimed batch took to reach it.
        renewed = conn.execute(
            update(Push)
            .where(store.owned(push_id, self.worker_id), Push.lease_expires_at > when)
            .values(
                attempts=attempt,
                payload=payload,
                model_version=payload["data"]["model_version"],
                lease_expires_at=when + timedelta(seconds=self._settings.push_lease_s),
                updated_at=when,
            )
        )
        if renewed.rowcount != 1:
            return False
        conn.execute(
            PushAttempt.__table__.insert().values(
                push_id=push_id, attempt=attempt, worker=self.worker_id, started_at=when
            )
        )
        return True

    def _record(
        self,
        conn: Connection,
        push_id: str,
        attempt: int,
        claimed: store.Claimed,
        outcome: Outcome,
        done: datetime,
    ) -> str:
        settings = self._settings
        label: str = outcome.kind
        values: dict[str, Any]
        if outcome.kind == "delivered":
            values = {"status": PushStatus.DELIVERED, "delivered_at": done, "reason": None}
        elif outcome.kind == "failed":
            values = {"status": PushStatus.FAILED, "reason": outcome.reason}
        elif claimed.attempts_since_requeue(attempt) >= settings.push_max_attempts:
            label, values = "dead", {"status": PushStatus.DEAD, "reason": outcome.reason}
        else:
            values = {}
        attempt_outcome = "retry" if label == "retry" else label
        conn.execute(
            update(PushAttempt)
            .where(PushAttempt.push_id == push_id, PushAttempt.attempt == attempt)
            .values(
                finished_at=done,
                status_code=outcome.status_code,
                latency_ms=outcome.latency_ms,
                outcome=attempt_outcome,
                error=outcome.error,
            )
        )
        if label == "retry":
            delay = self.backoff_s(claimed.attempts_since_requeue(attempt), outcome.retry_after_s)
            due = done + timedelta(seconds=delay)
            kept = store.back_to_pending(
                conn, push_id, claimed.user_id, self.worker_id, due, outcome.reason, done
            )
        else:
            kept = store.finish(conn, push_id, self.worker_id, done, **values)
        if not kept:
            log.warning("push %s: lease lost during attempt %d (%s)", push_id, attempt, label)
            return "lost"
        return label

    def _count(self, label: str, claimed: store.Claimed, done: datetime) -> None:
        # After the commit, so a transaction retried after a deadlock counts once.
        metrics = self._ctx.metrics
        if label == "delivered":
            metrics.push_delivered.inc()
            metrics.push_lag.observe(max((done - claimed.due_at).total_seconds(), 0.0))
        elif label == "failed":
            metrics.push_failed.inc()
        elif label == "dead":
            metrics.push_dead.inc()
        elif label == "retry":
            metrics.push_retried.inc()

    def backoff_s(self, attempt: int, retry_after_s: float | None) -> float:
        """Delay before the attempt after `attempt`: the receiver's Retry-After when given,
        else exponential with jitter; both capped at `push_backoff_max_s`."""
        settings = self._settings
        if retry_after_s is not None:
            return min(retry_after_s, settings.push_backoff_max_s)
        ceiling = min(
            settings.push_backoff_base_s * 2 ** (attempt - 1), settings.push_backoff_max_s
        )
        return self._rng.uniform(ceiling / 2, ceiling)

    def _finish(self, push_id: str, when: datetime, label: str, **values: Any) -> str:
        kept = store.write(
            self._ctx.engine,
            lambda conn: store.finish(conn, push_id, self.worker_id, when, **values),
        )
        if kept and values.get("status") == PushStatus.DEAD:
            self._ctx.metrics.push_dead.inc()
        return label if kept else "lost"

    def _skip(self, push_id: str, when: datetime, reason: str) -> str:
        label = self._finish(
            push_id, when, f"skipped:{reason}", status=PushStatus.SKIPPED, reason=reason
        )
        if label != "lost":
            self._ctx.metrics.push_skipped.labels(reason).inc()
        return label

    def _hold(self, push_id: str, user_id: str, when: datetime, due: datetime, reason: str) -> str:
        kept = store.write(
            self._ctx.engine,
            lambda conn: store.back_to_pending(
                conn, push_id, user_id, self.worker_id, due, reason, when
            ),
        )
        if not kept:
            return "lost"
        self._ctx.metrics.push_held.labels(reason).inc()
        return f"held:{reason}"


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()
