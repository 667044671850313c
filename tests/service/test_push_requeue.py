"""Dead pushes are requeued once the receiver is back: by the API and by `pasrec requeue`,
idempotently per push, keeping the push id (the receiver's idempotency key)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from push_helpers import PushEnv, at, push_env
from service_helpers import Clock, Keys, read_slice
from webhook_receiver import Receiver, Reply

from pasrec.service.settings import Settings, environment_without_settings

ROOT = Path(__file__).resolve().parents[2]
USER = "1"
DOWN = [Reply(503)] * 3  # the receiver is down for the whole attempt budget (3), then back


@pytest.fixture
def history(data_slice: Path) -> list[tuple[str, float]]:
    return read_slice(data_slice)[USER][:25]


def kill(env: PushEnv, history: list[tuple[str, float]]) -> str:
    """Ingest the history and let every attempt of its push fail: the push's id, now dead."""
    env.ingest(USER, history)
    push_id = env.pending(USER)["id"]
    env.follow_retries(push_id, 3)
    assert env.push(push_id)["status"] == "dead"
    return push_id


def test_a_dead_push_is_requeued_once_and_delivered_with_its_id(
    settings: Settings, clock: Clock, keys: Keys, history
) -> None:
    with Receiver(list(DOWN)) as receiver, push_env(settings, clock, keys, receiver.url) as env:
        push_id = kill(env, history)
        http = env.client
        url = f"/v1/pushes/{push_id}/requeue"
        assert http.post(url, headers=keys.read).status_code == 403
        now = clock()
        first = http.post(url, headers=keys.admin)
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["requeued"] is True and body["status"] == "pending"
        assert body["reason"] == "requeued" and at(body["due_at"]) == now
        assert body["attempts"] == 3 and body["attempts_before_requeue"] == 3
        again = http.post(url, headers=keys.admin)
        assert again.status_code == 200 and again.json()["requeued"] is False
        assert {k: v for k, v in again.json().items() if k != "requeued"} == {
            k: v for k, v in body.items() if k != "requeued"
        }

        assert env.dispatch_at(now) == 1
        delivered = env.push(push_id)
        assert delivered["status"] == "delivered", delivered
        assert [a["attempt"] for a in delivered["attempts_detail"]] == [1, 2, 3, 4]
        assert receiver.counts() == {push_id: 4}
        late = http.post(url, headers=keys.admin)
        assert late.status_code == 409 and "only a dead push" in late.json()["error"]["message"]
        missing = http.post("/v1/pushes/no-such-push/requeue", headers=keys.admin)
        assert missing.status_code == 404


def test_a_requeued_push_gets_a_whole_new_attempt_budget(
    settings: Settings, clock: Clock, keys: Keys, history
) -> None:
    with (
        Receiver(list(DOWN) + list(DOWN)) as receiver,
        push_env(settings, clock, keys, receiver.url) as env,
    ):
        push_id = kill(env, history)
        assert env.client.post(f"/v1/pushes/{push_id}/requeue", headers=env.keys.admin).is_success
        env.follow_retries(push_id, 3)
        dead = env.push(push_id)
        assert dead["status"] == "dead" and dead["attempts"] == 6
        assert [a["outcome"] for a in dead["attempts_detail"]][3:] == ["retry", "retry", "dead"]
        assert receiver.counts() == {push_id: 6}


def test_a_user_with_a_newer_pending_push_keeps_that_one(
    settings: Settings, clock: Clock, keys: Keys, history
) -> None:
    with Receiver(list(DOWN)) as receiver, push_env(settings, clock, keys, receiver.url) as env:
        dead_id = kill(env, history)
        env.ingest(USER, [(history[0][0], history[-1][1] + 86400)])
        newer = env.pending(USER)
        refused = env.client.post(f"/v1/pushes/{dead_id}/requeue", headers=keys.admin)
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "user_has_pending"
        assert newer["id"] in refused.json()["error"]["message"]
        assert env.push(dead_id)["status"] == "dead"


def test_pasrec_requeue_cli(settings: Settings, clock: Clock, keys: Keys, history) -> None:
    with Receiver(list(DOWN)) as receiver, push_env(settings, clock, keys, receiver.url) as env:
        push_id = kill(env, history)
        environ = environment_without_settings()
        environ |= {
            "PASREC_DATABASE_URL": settings.database_url or "",
            "PASREC_SQLITE_PATH": str(settings.sqlite_path),
        }

        def pasrec(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "pasrec.cli.main", "requeue", *args],
                env=environ, capture_output=True, text=True, cwd=ROOT, timeout=120,
            )  # fmt: skip

        usage = pasrec()
        assert usage.returncode == 2 and "--all-dead" in usage.stderr
        first = pasrec("--all-dead")
        assert first.returncode == 0, first.stderr
        assert f"{push_id}\trequeued" in first.stdout and "1 of 1" in first.stdout
        assert env.push(push_id)["status"] == "pending"
        again = pasrec(push_id)
        assert again.returncode == 0 and f"{push_id}\talready_queued" in again.stdout
        unknown = pasrec("no-such-push")
        assert unknown.returncode == 1 and "not_found" in unknown.stdout
        assert "Traceback" not in usage.stderr + first.stderr + again.stderr + unknown.stderr
