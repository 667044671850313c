"""Notices requests whose events lie far outside the served model's training span.

Such a model still answers (pasrec/model/time_span.py reads the history relative to itself), but its
absolute-time features were never trained there, so an operator should know: the first such
request logs a warning, later ones at most once per `LOG_EVERY_S` with their count, and
`/readyz` shows the warning for as long as the model is served.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from pasrec.model.time_span import TrainingSpan

log = logging.getLogger(__name__)

LOG_EVERY_S = 3600.0


class SpanWatch:
    def __init__(
        self, spans: Iterable[TrainingSpan], monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.spans = tuple(spans)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._count = 0
        self._latest: float | None = None
        self._logged_at: float | None = None

    def observe(self, last_event_times: Iterable[float]) -> None:
        """Check the last event of each history a model call reads (unix seconds)."""
        outside = [t for t in last_event_times if any(s.far_outside(t) for s in self.spans)]
        if not outside:
            return
        with self._lock:
            self._count += len(outside)
            self._latest = outside[-1]
            now = self._monotonic()
            due = self._logged_at is None or now - self._logged_at >= LOG_EVERY_S
            if due:
                self._logged_at = now
            message = self._message() if due else None
        if message:
            log.warning("%s", message)

    def warning(self) -> str | None:
        with self._lock:
            return self._message() if self._count else None

    def _message(self) -> str:
        latest = datetime.fromtimestamp(self._latest or 0.0, UTC).date().isoformat()
        spans = ", ".join(span.describe() for span in self.spans)
        return (
            f"{self._count} histories had their last event far outside the model's training "
            f"span ({spans}; latest event {latest}): next times are read relative to each "
            "user's own history, but the model never saw such times; retrain it on recent "
            "events"
        )
