"""The dispatcher: the lease loop that claims due pushes and hands each to the courier.

`Dispatcher.dispatch_due(now)` is the whole cycle (claim, then deliver every claimed push)
and returns how many pushes it claimed; a simulation calls it with the virtual time. The
periodic loop calls `start_due()`, which claims only as many pushes as there are idle
delivery slots and delivers them on a thread pool, following the service clock. What
happens to one push (policy, body, attempt, outcome) is the courier's (`courier.py`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from pasrec.service.push import outcomes, store
from pasrec.service.push.backoff import Backoff
from pasrec.service.push.courier import Courier
from pasrec.service.push.delivery import WebhookSender
from pasrec.service.push.parts import PushParts
from pasrec.service.push.payload import PayloadBuilder
from pasrec.service.push.ratelimit import make_rate_limiter
from pasrec.service.push.worker_id import new_worker_id
from pasrec.service.settings import PushSettings, signing_key

log = logging.getLogger(__name__)


class Dispatcher:
    """One dispatcher (a worker's or the API process's); many may share a database."""

    def __init__(
        self,
        parts: PushParts,
        worker_id: str | None = None,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        settings = parts.settings
        if settings.push_webhook_url is None or settings.push_webhook_secret is None:
            raise ValueError("active push is off: set PASREC_PUSH_WEBHOOK_URL and _SECRET")
        self._engine = parts.engine
        self._clock = parts.clock
        self._settings: PushSettings = settings
        self.worker_id = worker_id or new_worker_id()
        self._limiter = make_rate_limiter(
            settings.push_rate_limit_per_s, settings.redis_url, settings.redis_prefix
        )
        self._sender = WebhookSender(
            settings.push_webhook_url,
            signing_key(settings.push_webhook_secret),
            settings.push_webhook_timeout_s,
            settings.push_concurrency,
            wall_clock,
        )
        self._courier = Courier(
            parts.engine,
            settings,
            parts.clock,
            parts.metrics,
            self.worker_id,
            PayloadBuilder(parts.inference, parts.history, settings.push_k),
            self._sender,
            self._limiter,
            Backoff(
                settings.push_backoff_base_s, settings.push_backoff_max_s, rng or random.Random()
            ),
        )
        self._pool = ThreadPoolExecutor(settings.push_concurrency, thread_name_prefix="push")
        self._slots_lock = threading.Lock()
        self._busy = 0

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
        when = now or self._clock()
        settings = self._settings
        most = settings.push_claim_batch if limit is None else limit
        return store.write(
            self._engine,
            lambda conn: store.claim(conn, self.worker_id, when, settings.push_lease_s, most),
        )

    def deliver(self, push_id: str, now: datetime | None = None) -> str:
        """Act on one claimed push; returns what happened (`outcomes`): `delivered`, `retry`,
        `failed`, `dead`, `skipped:<reason>`, `held:<reason>`, `lost` (the lease was gone) or
        `error` (an unexpected exception, logged; the lease then expires and another try
        follows)."""
        try:
            return self._courier.deliver(push_id, now)
        except Exception:
            # The lease runs out and another attempt follows, so one bad push never stops
            # the dispatcher; the log says what went wrong.
            log.exception("delivering push %s failed", push_id)
            return outcomes.ERROR

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
