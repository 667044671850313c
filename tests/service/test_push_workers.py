"""Several dispatchers on one Postgres: no push is delivered twice, and a worker killed in
the middle of a delivery loses nothing."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from push_helpers import SECRET, at, push_env, push_settings
from service_helpers import Clock, Keys, read_slice
from webhook_receiver import Receiver, Reply

from pasrec.service.context import ServiceContext
from pasrec.service.metrics import Metrics
from pasrec.service.push.dispatcher import Dispatcher
from pasrec.service.settings import Settings, environment_without_settings


@pytest.fixture
def backend() -> str:
    """Workers share a database only on Postgres (the embedded default runs one dispatcher)."""
    return "postgres+redis"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def test_two_workers_never_deliver_a_push_twice(
    settings: Settings, clock: Clock, keys: Keys, receiver: Receiver, data_slice: Path
) -> None:
    users = read_slice(data_slice)
    chosen = [str(u) for u in range(1, 41)]
    with push_env(settings, clock, keys, receiver.url, push_claim_batch=3) as env:
        for user in chosen:
            env.ingest(user, users[user][:20])
        pending = env.pushes(status="pending")
        assert len(pending) == len(chosen)
        now = max(at(p["due_at"]) for p in pending)
        env.clock.set(now)
        second_ctx = ServiceContext.start(env.ctx.settings, env.clock, Metrics())
        second = Dispatcher(second_ctx, worker_id="second", rng=random.Random(8))
        counts = {"test-worker": 0, "second": 0}

        def run(dispatcher: Dispatcher) -> None:
            while claimed := dispatcher.dispatch_due(now):
                counts[dispatcher.worker_id] += claimed

        try:
            threads = [threading.Thread(target=run, args=(d,)) for d in (env.dispatcher, second)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        finally:
            second.close()
            second_ctx.close()
        delivered = receiver.counts()
        assert set(delivered) == {p["id"] for p in pending}
        assert set(delivered.values()) == {1}
        assert counts["test-worker"] > 0 and counts["second"] > 0
        assert len(env.pushes(status="delivered")) == len(chosen)


def test_worker_killed_mid_delivery_is_taken_over_after_its_lease(
    settings: Settings, clock: Clock, keys: Keys, data_slice: Path, tmp_path: Path
) -> None:
    history = read_slice(data_slice)["1"][:25]
    with (
        Receiver([Reply(hang=True)]) as receiver,
        push_env(settings, clock, keys, receiver.url) as env,
    ):
        env.ingest("1", history)
        push = env.pending("1")
        # Due now in real time, for the real `pasrec worker` process below.
        engine = sa.create_engine(env.ctx.settings.effective_database_url)
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE pushes SET due_at = :now WHERE id = :id"),
                {"now": datetime.now(UTC) - timedelta(seconds=1), "id": push["id"]},
            )
        engine.dispose()
        worker = _start_worker(env.ctx.settings, receiver.url, tmp_path / "worker.log")
        try:
            while not receiver.received:
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()
                time.sleep(0.05)
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
        held = env.push(push["id"])
        assert held["status"] == "delivering" and held["attempts"] == 1
        assert held["attempts_detail"][0]["outcome"] is None
        # Before the lease runs out nobody touches it; after, another worker delivers it.
        lease_end = at(held["updated_at"]) + timedelta(seconds=30)
        assert env.dispatch_at(lease_end - timedelta(seconds=1)) == 0
        assert env.dispatch_at(lease_end) == 1
        done = env.push(push["id"])
        assert done["status"] == "delivered" and done["attempts"] == 2
        assert [a["outcome"] for a in done["attempts_detail"]] == ["abandoned", "delivered"]
        assert receiver.counts() == {push["id"]: 2}  # at least once; receivers dedupe on the id


def _start_worker(settings: Settings, url: str, log: Path) -> subprocess.Popen[bytes]:
    configured = push_settings(settings, url)
    env = environment_without_settings()
    env.update(
        PASREC_DATABASE_URL=configured.database_url or "",
        PASREC_REDIS_URL=configured.redis_url or "",
        PASREC_REDIS_PREFIX=configured.redis_prefix,
        PASREC_MODEL_PATH=str(configured.model_path),
        PASREC_DEVICE="cpu",
        PASREC_PUSH_WEBHOOK_URL=url,
        PASREC_PUSH_WEBHOOK_SECRET=SECRET,
        PASREC_PUSH_LEASE_S="30",
        PASREC_PUSH_WEBHOOK_TIMEOUT_S="15",
        PASREC_PUSH_POLL_INTERVAL_S="0.2",
        PASREC_PUSH_QUIET_START="",
        PASREC_PUSH_QUIET_END="",
        PASREC_PUSH_ACTIVE_WINDOW_S="0",
        PASREC_PUSH_MIN_GAP_S="0",
        PASREC_PUSH_CAP_COUNT="0",
    )
    pasrec = Path(sys.executable).parent / "pasrec"
    with log.open("w") as out:
        return subprocess.Popen([str(pasrec), "worker"], env=env, stdout=out, stderr=out)
