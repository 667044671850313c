"""Active push end to end over real HTTP: a receiver on loopback, the dispatcher driven by the
test clock, pushes scheduled by real ingestion with the session's checkpoint."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import standardwebhooks
from push_helpers import SECRET, at, later, push_env, push_settings
from service_helpers import Clock, Keys, LiveServer, event, free_port, read_slice
from webhook_receiver import Receiver, Reply

from pasrec.service.settings import Settings

USER = "1"  # its ToI under the session checkpoint lies weeks after its 25th event


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


@pytest.fixture
def history(data_slice: Path) -> list[tuple[str, float]]:
    return read_slice(data_slice)[USER][:25]


def test_happy_path_delivers_once_at_the_toi_signed_and_unseen(
    settings: Settings, clock: Clock, keys: Keys, receiver: Receiver, history
) -> None:
    with push_env(settings, clock, keys, receiver.url) as env:
        env.ingest(USER, history)
        push = env.pending(USER)
        assert push["predicted_at"] is not None and not push["fallback"]
        due = at(push["due_at"])
        assert due == at(push["predicted_at"]) > env.clock()
        assert env.dispatch_at(later(due, -1)) == 0
        assert env.dispatch_at(due) == 1
        assert env.dispatch_at(later(due, 3600)) == 0
        assert len(receiver.received) == 1
        request = receiver.received[0]
        assert request.push_id == push["id"]
        # The Standard Webhooks library (which every receiver here verifies with) accepts it.
        payload = standardwebhooks.Webhook(SECRET).verify(request.body, request.headers)
        tampered = request.body.replace(b"push_id", b"push_Id")
        with pytest.raises(standardwebhooks.WebhookVerificationError):
            standardwebhooks.Webhook(SECRET).verify(tampered, request.headers)
        data = payload["data"]
        assert data["push_id"] == push["id"] and data["user_id"] == USER
        assert at(data["scheduled_for"]) == due and at(data["generated_at"]) == due
        items = [i["item_id"] for i in data["items"]]
        assert len(items) == 10 and not set(items) & {item for item, _ in history}
        assert data["model_version"] and data["fallback"] is None
        done = env.push(push["id"])
        assert done["status"] == "delivered" and at(done["delivered_at"]) == due
        assert [a["outcome"] for a in done["attempts_detail"]] == ["delivered"]
        assert done["attempts_detail"][0]["status_code"] == 200
        metrics = env.client.get("/metrics").text
        assert "pasrec_push_delivered_total 1.0" in metrics
        assert "pasrec_push_delivery_lag_seconds_count 1.0" in metrics


def test_new_event_reschedules_the_one_pending_push(
    settings: Settings, clock: Clock, keys: Keys, receiver: Receiver, history
) -> None:
    with push_env(settings, clock, keys, receiver.url) as env:
        env.ingest(USER, history[:-1])
        first = env.pending(USER)
        # The last event comes two days later: a new prediction from the new history.
        item, _ = history[-1]
        moved = at(first["due_at"]).timestamp() - 86400 * 10
        env.ingest(USER, [(item, moved)])
        second = env.pending(USER)
        assert second["id"] == first["id"]
        assert second["updated_at"] != first["updated_at"]
        assert second["due_at"] != first["due_at"]
        assert len(env.pushes(user_id=USER)) == 1
        due = at(second["due_at"])
        env.dispatch_at(due)
        assert receiver.counts() == {first["id"]: 1}


def test_cancel_and_bad_input_on_the_push_endpoints(
    settings: Settings, clock: Clock, keys: Keys, receiver: Receiver, history
) -> None:
    with push_env(settings, clock, keys, receiver.url) as env:
        env.ingest(USER, history)
        push = env.pending(USER)
        http = env.client
        assert http.post(f"/v1/pushes/{push['id']}/cancel", headers=keys.read).status_code == 403
        assert http.get("/v1/pushes", headers=keys.ingest).status_code == 403
        assert http.get("/v1/pushes").status_code == 401
        cancelled = http.post(f"/v1/pushes/{push['id']}/cancel", headers=keys.admin)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert env.dispatch_at(later(at(push["due_at"]), 60)) == 0
        assert receiver.received == []
        again = http.post(f"/v1/pushes/{push['id']}/cancel", headers=keys.admin)
        assert again.status_code == 409 and "cancelled" in again.json()["error"]["message"]
        missing = http.get("/v1/pushes/no-such-push", headers=keys.read)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "push_not_found"
        assert http.post("/v1/pushes/nope/cancel", headers=keys.admin).status_code == 404
        bad = http.get("/v1/pushes", params={"status": "sent"}, headers=keys.read)
        assert bad.status_code == 422 and bad.json()["error"]["details"][0]["loc"] == "query.status"
        assert http.get("/v1/pushes", params={"limit": 0}, headers=keys.read).status_code == 422
        long_id = http.get("/v1/pushes/" + "x" * 37, headers=keys.read)
        assert long_id.status_code == 422 and "Traceback" not in long_id.text
        # A delivered push cannot be cancelled.
        env.ingest(USER, [(history[0][0], history[-1][1] + 1)])
        fresh = env.pending(USER)
        env.dispatch_at(at(fresh["due_at"]))
        late = http.post(f"/v1/pushes/{fresh['id']}/cancel", headers=keys.admin)
        assert late.status_code == 409 and "delivered" in late.json()["error"]["message"]


def test_500_500_200_is_delivered_on_the_third_attempt_with_backoff(
    settings: Settings, clock: Clock, keys: Keys, history
) -> None:
    script = [Reply(500), Reply(503), Reply(200)]
    with Receiver(script) as receiver, push_env(settings, clock, keys, receiver.url) as env:
        env.ingest(USER, history)
        push = env.pending(USER)
        due = at(push["due_at"])
        assert env.dispatch_at(due) == 1
        first_retry = at(env.push(push["id"])["due_at"])
        # Base 10 s, doubling, jitter in [half, all] of it.
        assert 5 <= (first_retry - due).total_seconds() <= 10
        assert env.dispatch_at(later(first_retry, -0.5)) == 0
        assert env.dispatch_at(first_retry) == 1
        second_retry = at(env.push(push["id"])["due_at"])
        assert 10 <= (second_retry - first_retry).total_seconds() <= 20
        assert env.dispatch_at(second_retry) == 1
        done = env.push(push["id"])
        assert done["status"] == "delivered" and done["attempts"] == 3
        attempts = done["attempts_detail"]
        assert [a["outcome"] for a in attempts] == ["retry", "retry", "delivered"]
        assert [a["status_code"] for a in attempts] == [500, 503, 200]
        assert all(a["latency_ms"] is not None for a in attempts)
        assert receiver.counts() == {push["id"]: 3}
        assert "pasrec_push_retried_total 2.0" in env.client.get("/metrics").text


def test_receiver_down_is_retried_then_dead_lettered_and_listed(
    settings: Settings, clock: Clock, keys: Keys, history
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/hook"
    with push_env(settings, clock, keys, closed) as env:
        env.ingest(USER, history)
        push = env.pending(USER)
        due = env.follow_retries(push["id"], 3)
        dead = env.push(push["id"])
        assert dead["status"] == "dead" and dead["reason"] == "connection_error"
        assert [a["outcome"] for a in dead["attempts_detail"]] == ["retry", "retry", "dead"]
        assert all(a["error"] for a in dead["attempts_detail"])
        assert [p["id"] for p in env.pushes(status="dead")] == [push["id"]]
        assert env.dispatch_at(later(due, 86400)) == 0


def test_410_fails_at_once(settings: Settings, clock: Clock, keys: Keys, history) -> None:
    with Receiver([Reply(410)]) as receiver, push_env(settings, clock, keys, receiver.url) as env:
        env.ingest(USER, history)
        push = env.pending(USER)
        env.dispatch_at(at(push["due_at"]))
        failed = env.push(push["id"])
        assert failed["status"] == "failed" and failed["reason"] == "http_410"
        assert failed["attempts"] == 1
        assert env.dispatch_at(later(at(push["due_at"]), 86400)) == 0
        assert len(receiver.received) == 1


def test_429_retry_after_is_waited(settings: Settings, clock: Clock, keys: Keys, history) -> None:
    script = [Reply(429, {"Retry-After": "120"})]
    with Receiver(script) as receiver, push_env(settings, clock, keys, receiver.url) as env:
        env.ingest(USER, history)
        push = env.pending(USER)
        due = at(push["due_at"])
        env.dispatch_at(due)
        waiting = env.push(push["id"])
        assert waiting["status"] == "pending" and waiting["reason"] == "http_429"
        assert at(waiting["due_at"]) == later(due, 120)
        assert env.dispatch_at(later(due, 119)) == 0
        assert env.dispatch_at(later(due, 120)) == 1
        assert env.push(push["id"])["status"] == "delivered"
        assert receiver.counts() == {push["id"]: 2}


def test_webhook_timeout_is_retried(settings: Settings, clock: Clock, keys: Keys, history) -> None:
    with (
        Receiver([Reply(hang=True)]) as receiver,
        push_env(settings, clock, keys, receiver.url, push_webhook_timeout_s=0.3) as env,
    ):
        env.ingest(USER, history)
        push = env.pending(USER)
        started = time.monotonic()
        env.dispatch_at(at(push["due_at"]))
        assert time.monotonic() - started < 5
        waiting = env.push(push["id"])
        assert waiting["status"] == "pending" and waiting["reason"] == "timeout"
        env.dispatch_at(at(waiting["due_at"]))
        assert env.push(push["id"])["status"] == "delivered"


def test_serve_runs_the_dispatcher_unless_turned_off(
    settings: Settings, keys: Keys, receiver: Receiver, history
) -> None:
    """The app's own APScheduler dispatcher, on the system clock, behind a real uvicorn."""
    # The history moved to end a minute ago; with the fallback its push is due at once.
    shift = time.time() - 60 - history[-1][1]
    for enabled, user in ((True, "serve-on"), (False, "serve-off")):
        configured = push_settings(
            settings,
            receiver.url,
            push_dispatcher_enabled=enabled,
            push_poll_interval_s=0.1,
            push_fallback_delay_s=1.0,
            push_min_history=100,
        )
        body = {"events": [event(user, item, ts + shift) for item, ts in history]}
        before = len(receiver.received)
        with LiveServer(configured) as url:
            response = httpx.post(f"{url}/v1/events", json=body, headers=keys.ingest)
            assert response.status_code == 200, response.text
            deadline = time.monotonic() + (20 if enabled else 1.5)
            while len(receiver.received) == before and time.monotonic() < deadline:
                time.sleep(0.05)
        assert [r.json()["data"]["user_id"] for r in receiver.received] == ["serve-on"]
