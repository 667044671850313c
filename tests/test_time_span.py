"""pasrec/model/time_span.py: which live times count as far outside the training span, and the
shift that brings such a history back into it."""

from __future__ import annotations

import pytest

from pasrec.model.time_norm import DAY_SECONDS, TimeNormalizer
from pasrec.model.time_span import TrainingSpan

# Trained on 100 days from day 10,000 (1997-05-19).
SPAN = TrainingSpan.of(TimeNormalizer(origin_day=10_000, span_days=100))


def at(day: int, hour: float = 15.5) -> float:
    return day * DAY_SECONDS + hour * 3600


@pytest.mark.parametrize("day", [10_000, 10_100, 10_200, 9_900])
def test_within_one_span_is_left_alone(day: int) -> None:
    assert not SPAN.far_outside(at(day))
    assert SPAN.shift_days(at(day)) == 0


def test_after_the_span_the_last_event_lands_on_its_last_day() -> None:
    assert SPAN.far_outside(at(10_201))
    assert SPAN.shift_days(at(20_000)) == 10_100 - 20_000


def test_before_the_span_the_last_event_lands_on_its_first_day() -> None:
    assert SPAN.far_outside(at(9_899))
    assert SPAN.shift_days(at(5_000)) == 10_000 - 5_000


def test_describe_names_the_dates() -> None:
    assert SPAN.describe() == "1997-05-19..1997-08-27"
