"""What acting on one claimed push came to, and the metric each result counts in.

A label is `delivered`, `retry`, `failed`, `dead`, `skipped:<reason>`, `held:<reason>`,
`lost` (the lease was gone) or `error` (an unexpected exception); the last two count
nowhere, since the push is acted on again once its lease runs out.
"""

from __future__ import annotations

from dataclasses import dataclass

from pasrec.service.metrics import Metrics

DELIVERED = "delivered"
RETRY = "retry"
FAILED = "failed"
DEAD = "dead"
LOST = "lost"
ERROR = "error"
_SKIPPED = "skipped"
_HELD = "held"


@dataclass(frozen=True)
class Result:
    label: str
    lag_s: float = 0.0
    """Delivery time minus due time, for a delivered push."""


def skipped(reason: str) -> Result:
    return Result(f"{_SKIPPED}:{reason}")


def held(reason: str) -> Result:
    return Result(f"{_HELD}:{reason}")


def count(metrics: Metrics, result: Result) -> None:
    """Count a result whose writes were committed (so a transaction retried after a deadlock
    counts once)."""
    kind, _, reason = result.label.partition(":")
    if kind == DELIVERED:
        metrics.push_delivered.inc()
        metrics.push_lag.observe(max(result.lag_s, 0.0))
    elif kind == FAILED:
        metrics.push_failed.inc()
    elif kind == DEAD:
        metrics.push_dead.inc()
    elif kind == RETRY:
        metrics.push_retried.inc()
    elif kind == _SKIPPED:
        metrics.push_skipped.labels(reason).inc()
    elif kind == _HELD:
        metrics.push_held.labels(reason).inc()
