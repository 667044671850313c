"""The push-schedule what-if (`bench/push_schedules.py`) on hand-made decision points."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location(
    "push_schedules", Path(__file__).resolve().parents[1] / "bench" / "push_schedules.py"
)
push_schedules = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(push_schedules)

DAY = 86400.0


def _points(gaps: list[float], times: list[float] | None = None) -> dict:
    times = times or [0.0] * len(gaps)
    return {"times": np.array(times) * DAY, "gaps": np.array(gaps)}


def test_a_push_is_sent_only_to_a_user_not_back_yet_and_timely_within_the_window() -> None:
    points = _points([1.0, 3.0, 10.0, np.inf])
    send = np.ones(4, dtype=bool)
    day_one = push_schedules.outcome(points, np.ones(4), send, 7.0, 30.0, 100 * DAY)
    # Everyone is still away on day 1; the returns on days 1 and 3 fall inside [1, 8].
    assert (day_one["pushes"], day_one["timely_pushes"], day_one["spam"]) == (4, 2, 2)
    assert day_one["timely"] == pytest.approx(50.0)
    later = push_schedules.outcome(points, np.full(4, 5.0), send, 7.0, 30.0, 100 * DAY)
    # By day 5 two users are back (no push); of the others only the day-10 return is timely.
    assert (later["pushes"], later["timely_pushes"]) == (2, 1)


def test_unjudged_unsent_and_beyond_horizon_pushes_are_not_counted() -> None:
    points = _points([2.0, 2.0, 2.0], times=[0.0, 95.0, 0.0])
    send = np.array([True, True, False])
    row = push_schedules.outcome(points, np.ones(3), send, 7.0, 30.0, 100 * DAY)
    assert row["pushes"] == 1  # the second push's window ends after the data
    none = push_schedules.outcome(points, np.full(3, 40.0), np.ones(3, bool), 7.0, 30.0, 1e9)
    assert none["pushes"] == 0 and none["timely"] is None and none["timely_ci95"] is None


def test_ranking_auc_by_hand() -> None:
    auc = push_schedules.ranking_auc
    assert auc(np.array([2.0, 1.0]), np.array([True, False])) == 1.0
    assert auc(np.array([3.0, 2.0, 1.0]), np.array([True, False, True])) == 0.5
    assert auc(np.array([1.0, 1.0]), np.array([True, False])) == 0.5  # a tie counts half
    assert auc(np.array([1.0]), np.array([True])) is None
