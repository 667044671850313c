"""Shared pieces of the push tests: settings with active push on, an app plus a dispatcher
driven by the test clock, and ingestion of slice users."""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr
from service_helpers import Clock, Keys, event

from pasrec.service.app import create_app
from pasrec.service.context import ServiceContext
from pasrec.service.push.dispatcher import Dispatcher
from pasrec.service.push.planner import PushPlanner
from pasrec.service.settings import Settings

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()

# Every rule off, so each test turns on only the one it is about.
QUIET = {
    "push_dispatcher_enabled": False,
    "push_rate_limit_per_s": 0,
    "push_quiet_start": None,
    "push_quiet_end": None,
    "push_min_gap_s": 0.0,
    "push_cap_count": 0,
    "push_active_window_s": 0.0,
    "push_horizon_s": 1e9,
    "push_min_return_probability": 0.0,
    "push_concurrency": 1,
    "push_backoff_base_s": 10.0,
    "push_max_attempts": 3,
    "push_webhook_timeout_s": 5.0,
    "push_lease_s": 30.0,
}


def push_settings(settings: Settings, url: str, **overrides: Any) -> Settings:
    values = {
        **QUIET,
        "push_webhook_url": url,
        "push_webhook_secret": SecretStr(SECRET),
        **overrides,
    }
    return settings.model_copy(update=values)


@dataclass
class PushEnv:
    client: TestClient
    ctx: ServiceContext
    dispatcher: Dispatcher
    planner: PushPlanner
    clock: Clock
    keys: Keys

    def ingest(self, user: str, history: list[tuple[str, float]], after_s: float = 60.0) -> None:
        """Post the events with the clock `after_s` past the last one, then plan the push
        (as the planner of a running service would, shortly after)."""
        self.clock.set(datetime.fromtimestamp(history[-1][1] + after_s, UTC))
        body = {"events": [event(user, item, ts) for item, ts in history]}
        response = self.client.post("/v1/events", json=body, headers=self.keys.ingest)
        assert response.status_code == 200, response.text
        self.planner.drain()

    def pushes(self, **params: str) -> list[dict[str, Any]]:
        response = self.client.get("/v1/pushes", params=params, headers=self.keys.read)
        assert response.status_code == 200, response.text
        return response.json()["pushes"]

    def push(self, push_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/pushes/{push_id}", headers=self.keys.read)
        assert response.status_code == 200, response.text
        return response.json()

    def pending(self, user: str) -> dict[str, Any]:
        found = self.pushes(user_id=user, status="pending")
        assert len(found) == 1, found
        return found[0]

    def dispatch_at(self, when: datetime) -> int:
        self.clock.set(when)
        return self.dispatcher.dispatch_due(when)

    def follow_retries(self, push_id: str, attempts: int) -> datetime:
        """Dispatch the push `attempts` times, each at the due time its last outcome set;
        returns the time the last attempt was made at."""
        due = at(self.push(push_id)["due_at"])
        for _ in range(attempts):
            assert self.dispatch_at(due) == 1
            last, due = due, at(self.push(push_id)["due_at"])
        return last


@contextmanager
def push_env(
    settings: Settings, clock: Clock, keys: Keys, url: str, **overrides: Any
) -> Iterator[PushEnv]:
    configured = push_settings(settings, url, **overrides)
    with TestClient(create_app(configured, clock)) as client:
        ctx = client.app.state.ctx
        dispatcher = Dispatcher(ctx, worker_id="test-worker", rng=random.Random(7))
        planner = PushPlanner(ctx, worker_id="test-planner")
        try:
            yield PushEnv(client, ctx, dispatcher, planner, clock, keys)
        finally:
            dispatcher.close()


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def later(when: datetime, seconds: float) -> datetime:
    return when + timedelta(seconds=seconds)
