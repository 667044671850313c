"""Live times far outside the checkpoint's training span: the session's model is trained on
synthetic data of 2020-21 (tests/data_sources.py) and queried with this year's events. Its
next times must follow the user's own history (never before the last event), and the service
must say it is out of span."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_helpers import Clock, event, make_keys, read_slice

from pasrec.model.predictor import NextTime, Predictor
from pasrec.model.time_norm import DAY_SECONDS
from pasrec.service.app import create_app
from pasrec.service.settings import Settings

# An afternoon event: a decoded day's midnight would lie before it.
AFTERNOON_S = 15 * 3600 + 37 * 60


def moved(history: list[tuple[str, float]], last_day: int) -> list[tuple[str, float]]:
    """The history moved by whole days so that its last event falls on `last_day`, in the
    afternoon (the gaps between events are kept to the second)."""
    last = history[-1][1]
    offset = last_day * DAY_SECONDS + AFTERNOON_S - last
    return [(item, ts + offset) for item, ts in history]


def times_of(value: NextTime) -> list[float]:
    """Every time a next-time answer gives."""
    extra = [] if value.window_start is None else [value.window_start]
    return [value.time, *(value.quantiles or {}).values(), *extra]


@pytest.fixture(scope="module")
def histories(data_slice: Path) -> list[list[tuple[str, float]]]:
    users = read_slice(data_slice)
    return [users[u][:30] for u in ("1", "5", "10", "42", "77", "99", "118")]


def test_next_time_is_relative_to_the_history_out_of_span(
    checkpoint: Path, histories: list[list[tuple[str, float]]]
) -> None:
    predictor = Predictor.load(checkpoint, device="cpu")
    span = predictor.span
    today = int(time.time() // DAY_SECONDS)
    assert span.far_outside(today * DAY_SECONDS), "the test needs a model trained long ago"
    now_histories = [moved(h, today) for h in histories]
    answers = predictor.predict_next_time(now_histories)
    assert all(answers)
    for history, answer in zip(now_histories, answers, strict=True):
        assert min(times_of(answer)) >= history[-1][1]
        assert answer.time - history[-1][1] < predictor.horizon_days * DAY_SECONDS
    # The same histories ending on the span's last day, where the model was trained: today's
    # answers are those, moved by the same number of days (after the never-before-the-last-
    # event floor, which both sides apply).
    in_span = predictor.predict_next_time([moved(h, span.last_day) for h in histories])
    days = (today - span.last_day) * DAY_SECONDS
    for now, then in zip(answers, in_span, strict=True):
        assert times_of(now) == pytest.approx([t + days for t in times_of(then)], abs=1e-3)
        assert now.p_within == then.p_within


def test_readyz_and_logs_warn_about_out_of_span_events(
    settings: Settings, clock: Clock, histories, caplog: pytest.LogCaptureFixture
) -> None:
    keys = make_keys(settings)
    today = int(time.time() // DAY_SECONDS) - 1  # yesterday: no event from the future
    with caplog.at_level(logging.WARNING), TestClient(create_app(settings, clock)) as client:
        old = [(item, ts) for item, ts in histories[0][:10]]  # 2020: inside the span
        client.post("/v1/events", json={"events": [event("then", i, t) for i, t in old]},
                    headers=keys.ingest)  # fmt: skip
        assert client.get("/v1/recommend/then", headers=keys.read).status_code == 200
        ready = client.get("/readyz").json()
        assert "warnings" not in ready, ready

        recent = moved(histories[1], today)
        client.post("/v1/events", json={"events": [event("now", i, t) for i, t in recent]},
                    headers=keys.ingest)  # fmt: skip
        body = client.get("/v1/recommend/now", headers=keys.read).json()
        assert body["fallback"] is None
        assert body["next_time"]["unix"] >= recent[-1][1]
        ready = client.get("/readyz")
    assert ready.status_code == 200  # a warning, not a failure: the model still answers
    warning = ready.json()["warnings"]["model_time_span"]
    first_year = datetime.fromtimestamp(histories[0][0][1], UTC).year
    assert f"far outside the model's training span ({first_year}-" in warning
    assert "retrain" in warning
    logged = [r.getMessage() for r in caplog.records if r.name == "pasrec.service.span_watch"]
    assert len(logged) == 1 and "training span" in logged[0]
