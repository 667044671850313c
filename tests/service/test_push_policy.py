"""Each push policy rule blocks (or holds) what it should and records why."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from push_helpers import at, later, push_env
from service_helpers import Clock, Keys, read_slice
from webhook_receiver import Receiver

from pasrec.service.settings import Settings

USER, OTHER = "1", "2"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@pytest.fixture
def users(data_slice: Path) -> dict[str, list[tuple[str, float]]]:
    return {u: events[:25] for u, events in read_slice(data_slice).items()}


def _first_delivery_then_a_second_push(env, history) -> tuple[dict, dict]:
    env.ingest(USER, history)
    first = env.pending(USER)
    env.dispatch_at(at(first["due_at"]))
    assert env.push(first["id"])["status"] == "delivered"
    # The user comes back a day after the push: a second push is scheduled.
    env.ingest(USER, [(history[0][0], at(first["due_at"]).timestamp() + 86400)], after_s=60)
    return first, env.pending(USER)


def test_min_gap_skips(settings: Settings, clock: Clock, keys: Keys, receiver, users) -> None:
    with push_env(settings, clock, keys, receiver.url, push_min_gap_s=1e9) as env:
        first, second = _first_delivery_then_a_second_push(env, users[USER])
        env.dispatch_at(at(second["due_at"]))
        skipped = env.push(second["id"])
        assert skipped["status"] == "skipped" and skipped["reason"] == "min_gap"
        assert receiver.counts() == {first["id"]: 1}
        assert 'pasrec_push_skipped_total{reason="min_gap"} 1.0' in env.client.get("/metrics").text


def test_frequency_cap_skips(settings: Settings, clock: Clock, keys: Keys, receiver, users) -> None:
    with push_env(
        settings, clock, keys, receiver.url, push_cap_count=1, push_cap_window_s=1e9
    ) as env:
        first, second = _first_delivery_then_a_second_push(env, users[USER])
        env.dispatch_at(at(second["due_at"]))
        skipped = env.push(second["id"])
        assert skipped["status"] == "skipped" and skipped["reason"] == "frequency_cap"
        assert receiver.counts() == {first["id"]: 1}


def test_recent_activity_skips(settings: Settings, clock: Clock, keys: Keys, receiver, users):
    with push_env(settings, clock, keys, receiver.url, push_active_window_s=1e9) as env:
        env.ingest(USER, users[USER])
        push = env.pending(USER)
        env.dispatch_at(at(push["due_at"]))
        skipped = env.push(push["id"])
        assert skipped["status"] == "skipped" and skipped["reason"] == "user_active"
        assert receiver.received == []


def test_quiet_hours_hold_the_push_to_their_end_in_the_users_zone(
    settings: Settings, clock: Clock, keys: Keys, receiver, users
) -> None:
    with push_env(
        settings,
        clock,
        keys,
        receiver.url,
        push_quiet_start=time(22, 0),
        push_quiet_end=time(8, 0),
        default_timezone="Asia/Tokyo",
    ) as env:
        env.ingest(USER, users[USER])
        env.ingest(OTHER, users[OTHER])
        engine = sa.create_engine(env.ctx.settings.effective_database_url)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE users SET timezone = 'Europe/Paris' WHERE id = :u"),
                         {"u": USER})  # fmt: skip
        engine.dispose()
        paris = ZoneInfo("Europe/Paris")
        push = env.pending(USER)
        # 23:30 in Paris: inside the quiet hours.
        local_due = at(push["due_at"]).astimezone(paris)
        night = datetime.combine(local_due.date(), time(23, 30), paris).astimezone(UTC)
        env.dispatch_at(max(night, at(push["due_at"])))
        held = env.push(push["id"])
        assert held["status"] == "pending" and held["reason"] == "quiet_hours"
        morning = at(held["due_at"]).astimezone(paris)
        assert morning.time() == time(8, 0) and morning > night
        assert env.dispatch_at(later(at(held["due_at"]), -1)) == 0
        env.dispatch_at(at(held["due_at"]))
        assert env.push(push["id"])["status"] == "delivered"
        # A user without a zone gets the default (Tokyo), where 23:00 is quiet too.
        other = env.pending(OTHER)
        tokyo = ZoneInfo("Asia/Tokyo")
        due_local = at(other["due_at"]).astimezone(tokyo)
        late = datetime.combine(due_local.date(), time(23, 0), tokyo).astimezone(UTC)
        env.dispatch_at(max(late, at(other["due_at"])))
        assert env.push(other["id"])["reason"] == "quiet_hours"


def test_global_rate_limit_holds_to_the_next_second(
    settings: Settings, clock: Clock, keys: Keys, receiver, users
) -> None:
    with push_env(settings, clock, keys, receiver.url, push_rate_limit_per_s=1) as env:
        env.ingest(USER, users[USER])
        env.ingest(OTHER, users[OTHER])
        pushes = [env.pending(USER), env.pending(OTHER)]
        now = max(at(p["due_at"]) for p in pushes).replace(microsecond=0)
        assert env.dispatch_at(now) == 2
        after = [env.push(p["id"]) for p in pushes]
        assert sorted(p["status"] for p in after) == ["delivered", "pending"]
        held = next(p for p in after if p["status"] == "pending")
        assert held["reason"] == "rate_limited" and at(held["due_at"]) == later(now, 1)
        assert env.dispatch_at(later(now, 1)) == 1
        assert env.push(held["id"])["status"] == "delivered"
        assert (
            'pasrec_push_held_total{reason="rate_limited"} 1.0' in env.client.get("/metrics").text
        )


def test_beyond_horizon_skips(settings: Settings, clock: Clock, keys: Keys, receiver, users):
    with push_env(settings, clock, keys, receiver.url, push_horizon_s=3600.0) as env:
        env.ingest(USER, users[USER])
        [push] = env.pushes(user_id=USER)
        assert push["status"] == "skipped" and push["reason"] == "beyond_horizon"
        assert env.dispatch_at(later(at(push["due_at"]), 1)) == 0


def test_backfill_of_old_events_pushes_nothing(
    settings: Settings, clock: Clock, keys: Keys, receiver, users
) -> None:
    with push_env(settings, clock, keys, receiver.url, push_horizon_s=7 * 86400.0) as env:
        env.ingest(USER, users[USER], after_s=400 * 86400)
        [push] = env.pushes(user_id=USER)
        assert push["status"] == "skipped" and push["reason"] == "beyond_horizon"


def test_low_return_probability_skips(settings, clock: Clock, keys: Keys, receiver, users):
    with push_env(settings, clock, keys, receiver.url, push_min_return_probability=1.0) as env:
        env.ingest(USER, users[USER])
        [push] = env.pushes(user_id=USER)
        assert push["status"] == "skipped" and push["reason"] == "low_return_probability"
        assert push["p_return"] is not None and push["p_return"] < 1.0


def test_short_history_gets_the_fallback_delay(
    settings: Settings, clock: Clock, keys: Keys, receiver, users
) -> None:
    with push_env(settings, clock, keys, receiver.url, push_fallback_delay_s=7200.0) as env:
        short = users[USER][:2]
        env.ingest(USER, short)
        push = env.pending(USER)
        assert push["fallback"] and push["predicted_at"] is None
        assert at(push["due_at"]) == datetime.fromtimestamp(short[-1][1], UTC) + timedelta(hours=2)
        env.dispatch_at(at(push["due_at"]))
        assert env.push(push["id"])["status"] == "delivered"


def test_model_without_toi_gets_the_fallback_delay(
    settings: Settings, checkpoint_no_toi: Path, clock: Clock, keys: Keys, receiver, users
) -> None:
    settings.model_path = checkpoint_no_toi
    with push_env(settings, clock, keys, receiver.url, push_fallback_delay_s=3600.0) as env:
        env.ingest(USER, users[USER])
        push = env.pending(USER)
        assert push["fallback"] and push["predicted_at"] is None
        last = datetime.fromtimestamp(users[USER][-1][1], UTC)
        assert at(push["due_at"]) == last + timedelta(hours=1)
        env.dispatch_at(at(push["due_at"]))
        payload = receiver.received[0].json()["data"]
        assert payload["predicted_at"] is None and len(payload["items"]) == 10


def test_an_older_push_in_flight_counts_for_the_min_gap(
    settings: Settings, clock: Clock, keys: Keys, receiver, users
) -> None:
    """New events while a push is being delivered schedule another; it must not follow the
    first one within the gap."""
    with push_env(
        settings,
        clock,
        keys,
        receiver.url,
        push_min_gap_s=3600.0,
        push_min_history=100,  # the fallback: due at once, whatever the model predicts
        push_fallback_delay_s=1.0,
    ) as env:
        history = users[USER]
        env.ingest(USER, history)
        first = env.pending(USER)
        now = at(first["due_at"])
        assert env.dispatcher.claim(now) == [first["id"]]
        env.ingest(USER, [(history[0][0], now.timestamp())], after_s=5)
        second = env.pending(USER)
        # Not even claimed while the first one is in flight under a live lease ...
        assert env.dispatch_at(at(second["due_at"])) == 0
        assert env.push(second["id"])["status"] == "pending"
        assert env.dispatcher.deliver(first["id"], at(second["due_at"])) == "delivered"
        # ... and once the first has gone out, the minimum gap stops the second.
        assert env.dispatch_at(at(second["due_at"])) == 1
        skipped = env.push(second["id"])
        assert skipped["status"] == "skipped" and skipped["reason"] == "min_gap"
        assert receiver.counts() == {first["id"]: 1}
