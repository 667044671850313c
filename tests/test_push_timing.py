"""The push-timing strategies of `pasrec/service/push/timing.py`, on hand-made histories."""

from __future__ import annotations

import pytest

from pasrec.model.predictor import NextTime
from pasrec.service.cache import CachedEvent
from pasrec.service.history import UserHistory
from pasrec.service.push.timing import next_time
from pasrec.service.settings import Settings

DAY = 86400.0


def history(*days: float) -> UserHistory:
    events = [CachedEvent(d * DAY, i, f"item{i}") for i, d in enumerate(days)]
    return UserHistory(events, frozenset(e.item_id for e in events))


def settings(timing: str) -> Settings:
    return Settings(_env_file=None, push_timing=timing, push_fixed_interval_s=3 * DAY)


PREDICTED = NextTime(
    20 * DAY, quantiles={0.5: 15 * DAY}, p_within={7.0: 0.4}, window_start=12 * DAY,
    p_timely=0.3,
)


def test_toi_passes_the_prediction_through_but_not_the_windows_p_timely() -> None:
    chosen = next_time(settings("toi"), history(0, 10), PREDICTED, True)
    assert chosen == NextTime(20 * DAY, {0.5: 15 * DAY}, {7.0: 0.4}, 12 * DAY, None)
    assert next_time(settings("toi"), history(0, 10), None, True) is None


def test_tpp_median_takes_the_median_and_keeps_the_distribution() -> None:
    chosen = next_time(settings("tpp_median"), history(0, 10), PREDICTED, True)
    assert chosen is not None and chosen.time == 15 * DAY and chosen.p_within == {7.0: 0.4}
    # Without a tpp head there is no median: the fallback applies.
    assert next_time(settings("tpp_median"), history(0, 10), NextTime(20 * DAY), True) is None


def test_tpp_window_pushes_at_the_start_of_the_likeliest_window() -> None:
    chosen = next_time(settings("tpp_window"), history(0, 10), PREDICTED, True)
    assert chosen is not None and chosen.time == 12 * DAY and chosen.quantiles == {0.5: 15 * DAY}
    # The chance of being timely belongs to a push at the window's start, and to no other time.
    assert chosen.p_timely == 0.3
    assert next_time(settings("tpp_median"), history(0, 10), PREDICTED, True).p_timely is None
    assert next_time(settings("tpp_window"), history(0, 10), NextTime(20 * DAY), True) is None
    # The median strategy needs no window; the window strategy does.
    no_window = NextTime(20 * DAY, quantiles={0.5: 15 * DAY})
    assert next_time(settings("tpp_median"), history(0, 10), no_window, True).time == 15 * DAY
    assert next_time(settings("tpp_window"), history(0, 10), no_window, True) is None


def test_fixed_interval_after_the_last_event() -> None:
    chosen = next_time(settings("fixed"), history(0, 10), None, True)
    assert chosen is not None and chosen.time == pytest.approx(13 * DAY)


def test_user_median_gap_over_distinct_times() -> None:
    # Times 0, 2, 2, 8, 9: distinct gaps 2, 6, 1 -> median 2 days after day 9.
    chosen = next_time(settings("user_median"), history(0, 2, 2, 8, 9), None, True)
    assert chosen is not None and chosen.time == pytest.approx(11 * DAY)
    assert next_time(settings("user_median"), history(4, 4), None, True) is None


def test_ineligible_users_get_the_fallback() -> None:
    for timing in ("toi", "tpp_median", "tpp_window", "fixed", "user_median"):
        assert next_time(settings(timing), history(0, 1, 2), PREDICTED, False) is None
