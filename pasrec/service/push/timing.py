"""When a user's push is due: the timing strategy (`PASREC_PUSH_TIMING`).

`toi` (the default) sends at the model's decoded time of interest. The others exist so that
a replay can compare the model against simple schedules under the very same policy and
delivery path:

- `tpp_median`: the median of the point-process head's next-time distribution (a checkpoint
  without a tpp head gives no time, so the fallback delay applies);
- `tpp_window`: the start of the `push_target_window_s`-long span (from the day after the
  last event) in which the head puts the most probability of the user's return: the time a
  push most likely finds the user back within that window, which is what "timely" means.
  It carries the head's probability that the push is timely, which the policy's
  `push_min_timely_probability` gate reads: the model also says when not to push;
- `fixed`: `push_fixed_interval_s` after the user's last event;
- `user_median`: the median gap between the distinct event times of the user's recent
  history (the fallback delay with fewer than two distinct times).

Every strategy returns a `NextTime` for `policy.plan`, or None for the fallback.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pasrec.model.predictor import NextTime
from pasrec.model.tpp import median_gap
from pasrec.service.history import UserHistory
from pasrec.service.settings import PushSettings

Timing = Literal["toi", "tpp_median", "tpp_window", "fixed", "user_median"]
TIMINGS: tuple[Timing, ...] = ("toi", "tpp_median", "tpp_window", "fixed", "user_median")
MODEL_TIMINGS: tuple[Timing, ...] = ("toi", "tpp_median", "tpp_window")
"""Strategies that need the model's prediction."""


def next_time(
    settings: PushSettings, history: UserHistory, predicted: NextTime | None, eligible: bool
) -> NextTime | None:
    """The time the strategy picks; `eligible` says the user has enough history for one."""
    strategy = settings.push_timing
    if not eligible:
        return None
    if strategy == "toi":
        # P(timely) belongs to a push at the window's start, not at the decoded time.
        return None if predicted is None else replace(predicted, p_timely=None)
    if strategy in ("tpp_median", "tpp_window"):
        if predicted is None or not predicted.quantiles:
            return None  # no tpp head: no distribution to read a time from
        if strategy == "tpp_median":
            at, p_timely = predicted.quantiles[0.5], None
        else:
            at, p_timely = predicted.window_start, predicted.p_timely
        if at is None:
            return None
        return NextTime(
            at, predicted.quantiles, predicted.p_within, predicted.window_start, p_timely
        )
    last = history.events[-1].ts
    if strategy == "fixed":
        return NextTime(last + settings.push_fixed_interval_s)
    gap = median_gap((event.ts for event in history.events), distinct=True)
    return None if gap is None else NextTime(last + gap)
