"""The push policy as pure functions of settings, times and counts (no I/O), so the scheduler,
the dispatcher and a simulation apply exactly the same rules.

Reasons are short codes stored in `pushes.reason` and used as metric labels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pasrec.model.predictor import NextTime
from pasrec.service.settings import PushSettings

log = logging.getLogger(__name__)

BEYOND_HORIZON = "beyond_horizon"
LOW_RETURN_PROBABILITY = "low_return_probability"
LOW_TIMELY_PROBABILITY = "low_timely_probability"
USER_ACTIVE = "user_active"
MIN_GAP = "min_gap"
FREQUENCY_CAP = "frequency_cap"
QUIET_HOURS = "quiet_hours"
RATE_LIMITED = "rate_limited"

DAY_S = 86400.0


@dataclass(frozen=True)
class Plan:
    """What to do about a user's push after their new events."""

    due_at: datetime
    predicted_at: datetime | None
    """The decoded time of interest; None for a fallback push."""
    p_return: float | None
    fallback: bool
    skip: str | None
    """Why no push will be sent (the push is recorded as skipped), or None."""


def plan(
    settings: PushSettings, now: datetime, last_event: datetime, next_time: NextTime | None
) -> Plan:
    """Due time of the user's push: the predicted ToI, or the fallback delay without one.

    A time already past (a stale prediction, or a backfill of old events) is due now; the
    horizon then refuses pushes far after the last event, so a backfill sends nothing.
    """
    p_return = None
    if next_time is None:
        predicted = None
        due = last_event + timedelta(seconds=settings.push_fallback_delay_s)
    else:
        predicted = datetime.fromtimestamp(next_time.time, UTC)
        due = predicted
        p_return = return_probability(next_time, settings.push_horizon_s)
    due = max(due, now)
    skip = None
    if (due - last_event).total_seconds() > settings.push_horizon_s:
        skip = BEYOND_HORIZON
    elif p_return is not None and p_return < settings.push_min_return_probability:
        skip = LOW_RETURN_PROBABILITY
    elif (
        next_time is not None
        and next_time.p_timely is not None
        and next_time.p_timely < settings.push_min_timely_probability
    ):
        skip = LOW_TIMELY_PROBABILITY
    return Plan(due, predicted, p_return, next_time is None, skip)


def return_probability(next_time: NextTime, horizon_s: float) -> float | None:
    """P(return within the horizon) from the tpp head, read at its nearest horizon at or above
    ours (the largest it has when ours is beyond them all); None without a tpp head."""
    if not next_time.p_within:
        return None
    horizons = sorted(next_time.p_within)
    days = horizon_s / DAY_S
    chosen = next((h for h in horizons if h >= days), horizons[-1])
    return next_time.p_within[chosen]


def blocking_reason(
    settings: PushSettings,
    now: datetime,
    last_event_at: datetime | None,
    last_delivered_at: datetime | None,
    delivered_in_window: int,
) -> str | None:
    """Why a due push must not be sent at all (it is then skipped), or None."""
    if (
        last_event_at is not None
        and (now - last_event_at).total_seconds() < settings.push_active_window_s
    ):
        return USER_ACTIVE
    if (
        last_delivered_at is not None
        and (now - last_delivered_at).total_seconds() < settings.push_min_gap_s
    ):
        return MIN_GAP
    if settings.push_cap_count and delivered_in_window >= settings.push_cap_count:
        return FREQUENCY_CAP
    return None


def user_zone(settings: PushSettings, name: str | None) -> ZoneInfo:
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown time zone %r; using %s", name, settings.default_timezone)
    return ZoneInfo(settings.default_timezone)


def quiet_until(settings: PushSettings, now: datetime, zone: ZoneInfo) -> datetime | None:
    """The end of the quiet hours (UTC) when `now` falls inside them in `zone`, else None."""
    start, end = settings.push_quiet_start, settings.push_quiet_end
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        inside, end_day = start <= clock < end, local.date()
    else:  # the window spans midnight
        inside = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)
