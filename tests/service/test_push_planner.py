"""Push planning off the ingestion request: the events request only fills the push outbox, a
planner plans batches of users with one model call, claims are exclusive across planners,
and an event arriving while a user is being planned gets that user planned again."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from push_helpers import PushEnv, push_env
from service_helpers import Clock, Keys, event, read_slice, row_count, statements

from pasrec.service.push import outbox
from pasrec.service.push.planner import PushPlanner
from pasrec.service.settings import Settings

USERS = ["1", "2", "3"]


@pytest.fixture
def env(settings: Settings, clock: Clock, keys: Keys) -> Iterator[PushEnv]:
    # Nothing listens there: these tests plan pushes, none is delivered.
    with push_env(settings, clock, keys, "http://127.0.0.1:9/") as planned:
        yield planned


@pytest.fixture
def histories(data_slice: Path) -> dict[str, list[tuple[str, float]]]:
    users = read_slice(data_slice)
    return {user: users[user][:20] for user in USERS}


def post(env: PushEnv, batch: dict[str, list[tuple[str, float]]]) -> None:
    """POST the events as one batch, the clock a minute after the latest (no planning)."""
    latest = max(ts for events in batch.values() for _, ts in events)
    env.clock.set(datetime.fromtimestamp(latest + 60, UTC))
    body = [event(user, item, ts) for user, events in batch.items() for item, ts in events]
    response = env.client.post("/v1/events", json={"events": body}, headers=env.keys.ingest)
    assert response.status_code == 200, response.text


def count_model_calls(env: PushEnv, during: Callable[[], None] | None = None) -> list[list]:
    """Record the histories of every next-time model call (and run `during` inside the
    first one, as if it happened while the model was busy)."""
    calls: list[list] = []
    real = env.ctx.inference.next_times

    def counted(histories: list, *args: Any, **kwargs: Any) -> list:
        calls.append(histories)
        if during is not None and len(calls) == 1:
            during()
        return real(histories, *args, **kwargs)

    env.ctx.inference.next_times = counted  # type: ignore[method-assign]
    return calls


def test_ingestion_does_not_plan_and_the_planner_plans_the_batch_in_one_model_call(
    env: PushEnv, histories
) -> None:
    calls = count_model_calls(env)
    post(env, histories)
    assert calls == []
    assert env.pushes() == []
    # One outbox row per user however many events each one had.
    assert row_count(env.ctx.settings, "push_outbox") == len(USERS)
    assert env.planner.drain() == len(USERS)
    assert len(calls) == 1 and len(calls[0]) == len(USERS)
    for user in USERS:
        assert env.pending(user)["predicted_at"] is not None
    assert row_count(env.ctx.settings, "push_outbox") == 0
    metrics = env.client.get("/metrics").text
    assert f"pasrec_push_planning_lag_seconds_count {len(USERS)}.0" in metrics
    assert env.planner.drain() == 0


def test_a_round_stores_every_kind_of_plan_in_a_fixed_number_of_statements(
    env: PushEnv, data_slice: Path
) -> None:
    # Thirty users, a third each: a first push, a pending push rescheduled in place, and a
    # pending push awaiting a retry (its id may have reached the receiver: it is cancelled
    # and a new push carries the plan). Per-user statements made planning cost three round
    # trips per user, which competed with ingestion for the cores.
    users = dict(list(read_slice(data_slice).items())[:30])
    fresh, in_place, retried = (list(users)[n::3] for n in range(3))
    post(env, {user: users[user][:5] for user in in_place + retried})
    env.planner.drain()
    before = {user: env.pending(user)["id"] for user in in_place + retried}
    with env.ctx.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE pushes SET attempts = 1 WHERE user_id IN :users").bindparams(
                sa.bindparam("users", expanding=True)
            ),
            {"users": retried},
        )
    post(env, {user: users[user][:8] for user in users})
    with statements(env.ctx.engine) as sent:
        assert env.planner.plan_batch() == len(users)
    # Claim, read the histories, store the pushes, leave the outbox: about a dozen in all.
    assert len([s for s in sent if not s.sql.startswith("BEGIN")]) <= 12
    for user in in_place:
        assert env.pending(user)["id"] == before[user]
    for user in retried:
        assert env.pending(user)["id"] != before[user]
        old = env.push(before[user])
        assert (old["status"], old["reason"]) == ("cancelled", "rescheduled")
    for user in users:
        pushes = env.pushes(user_id=user)
        assert [p["status"] for p in pushes].count("pending") == 1
        assert env.pending(user)["predicted_at"] is not None


def test_an_event_during_planning_gets_the_user_planned_again(env: PushEnv, histories) -> None:
    user = USERS[0]
    first, last = histories[user][:-1], histories[user][-1]

    def new_event() -> None:
        env.clock.set(datetime.fromtimestamp(last[1] + 60, UTC))
        response = env.client.post(
            "/v1/events", json={"events": [event(user, *last)]}, headers=env.keys.ingest
        )
        assert response.status_code == 200, response.text

    post(env, {user: first})
    calls = count_model_calls(env, during=new_event)
    assert env.planner.plan_batch() == 1
    # The plan just stored was made from the history before the new event: the user waits
    # in the outbox, free for the next round.
    assert calls[0][0][-1] == first[-1]
    assert row_count(env.ctx.settings, "push_outbox") == 1
    assert env.planner.plan_batch() == 1
    assert calls[1][0][-1] == last
    assert row_count(env.ctx.settings, "push_outbox") == 0
    assert len(env.pushes(user_id=user)) == 1


def test_a_failed_plan_gives_the_users_back(env: PushEnv, histories) -> None:
    post(env, histories)
    real = env.ctx.inference.next_times

    def broken(*_: Any, **__: Any) -> list:
        raise RuntimeError("model down")

    env.ctx.inference.next_times = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="model down"):
        env.planner.plan_batch()
    env.ctx.inference.next_times = real  # type: ignore[method-assign]
    # Released at once, not after the lease: the next round plans them.
    assert env.planner.drain() == len(USERS)
    assert all(env.pending(user) for user in USERS)


def test_two_planners_never_hold_the_same_user(
    env: PushEnv, backend: str, data_slice: Path
) -> None:
    if backend != "postgres+redis":
        pytest.skip("SKIP LOCKED is PostgreSQL's; embedded SQLite has one process")
    users = dict(list(read_slice(data_slice).items())[:30])
    post(env, {user: events[:5] for user, events in users.items()})
    now, lease = env.clock(), env.ctx.settings.push_plan_lease_s
    engine = env.ctx.engine

    # Planner A is mid-claim (its transaction holds the rows it took): planner B must skip
    # them at once instead of waiting, and take only the others.
    with engine.connect() as a_conn, a_conn.begin():
        held = outbox.claim(a_conn, "A", now, lease, 10)
        with engine.connect() as b_conn, b_conn.begin():
            b_conn.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
            taken = outbox.claim(b_conn, "B", now, lease, 10)
    assert len(held) == len(taken) == 10 and not set(held) & set(taken)
    # Committed claims stay theirs until the lease runs out.
    with engine.begin() as conn:
        rest = outbox.claim(conn, "C", now, lease, 100)
    assert len(rest) == len(users) - 20 and not set(rest) & (set(held) | set(taken))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE push_outbox SET claimed_by = NULL, claim_expires_at = NULL"))

    # Two planners draining side by side plan every user exactly once.
    settings = env.ctx.settings
    env.ctx.settings = settings.model_copy(update={"push_plan_batch_users": 4})
    planners = [PushPlanner(env.ctx, worker_id=f"p{i}") for i in range(2)]
    planned: list[str] = []
    lock = threading.Lock()
    for planner in planners:
        real = planner._scheduler.schedule

        def recorded(user_ids: Any, when: datetime, real: Any = real) -> Any:
            with lock:
                planned.extend(user_ids)
            return real(user_ids, when)

        planner._scheduler.schedule = recorded  # type: ignore[method-assign]
    threads = [threading.Thread(target=planner.drain) for planner in planners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    env.ctx.settings = settings
    assert sorted(planned) == sorted(users)
    assert row_count(settings, "push_outbox") == 0
