"""Scale-out: 2 API processes and 2 `pasrec worker` processes on loopback over one PostgreSQL
(a private schema) and one Redis, delivering to the demo receiver (docker/webhook_receiver.py)
in its own process. Events for each user arrive split over both APIs, concurrently, and again
as duplicates; every due user must get exactly one delivered push, the others none."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from push_helpers import SECRET
from service_helpers import event, free_port, private_schema, read_slice

from pasrec.replay.isolated_store import private_redis_prefix, unique_name
from pasrec.service.settings import environment_without_settings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
KEY = "scale-out-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
DUE_USERS, LATER_USERS = 10, 4
FIXED_INTERVAL_S = 600.0


@pytest.fixture
def scale_schema() -> Iterator[str]:
    """A fresh schema in the `test` database, migrated by a real `pasrec migrate` process."""
    with private_schema("pasrec_scale") as url:
        yield url


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return f"--- {self.name} ---\n{self.log.read_text()[-4000:]}"


def _wait_http(proc: Proc, url: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        assert proc.popen.poll() is None, proc.output()
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, proc.output()
        time.sleep(0.2)


@contextmanager
def running_stack(
    scale_schema: str, redis_url: str, prefix: str, checkpoint: Path, tmp_path: Path
) -> Iterator[tuple[list[str], str]]:
    """Receiver, migrate, 2 APIs, 2 workers; yields the API URLs and the receiver's URL.
    Every Redis key under `prefix` is deleted once the processes have exited."""
    with private_redis_prefix(redis_url, prefix):
        yield from _stack(scale_schema, redis_url, prefix, checkpoint, tmp_path)


def _stack(
    scale_schema: str, redis_url: str, prefix: str, checkpoint: Path, tmp_path: Path
) -> Iterator[tuple[list[str], str]]:
    env = environment_without_settings()
    receiver_port = free_port()
    receiver_url = f"http://127.0.0.1:{receiver_port}"
    env.update(
        PASREC_DATABASE_URL=scale_schema,
        PASREC_REDIS_URL=redis_url,
        PASREC_REDIS_PREFIX=prefix,
        PASREC_MODEL_PATH=str(checkpoint),
        PASREC_DEVICE="cpu",
        PASREC_API_KEYS=json.dumps([{"name": "t", "scopes": ["ingest", "read"], "key": KEY}]),
        PASREC_PUSH_WEBHOOK_URL=f"{receiver_url}/push",
        PASREC_PUSH_WEBHOOK_SECRET=SECRET,
        PASREC_PUSH_DISPATCHER_ENABLED="false",  # APIs only schedule; the workers deliver
        PASREC_PUSH_POLL_INTERVAL_S="0.2",
        PASREC_PUSH_TIMING="fixed",
        PASREC_PUSH_FIXED_INTERVAL_S=str(FIXED_INTERVAL_S),
        PASREC_PUSH_MIN_HISTORY="1",
        PASREC_PUSH_QUIET_START="",  # a night-time CI run must not hold the pushes
        PASREC_PUSH_QUIET_END="",
        PASREC_LOG_LEVEL="WARNING",
    )
    procs: list[Proc] = []

    def spawn(name: str, cmd: list[str], **extra: str) -> Proc:
        log = tmp_path / f"{name}.log"
        with log.open("w") as sink:
            popen = subprocess.Popen(
                cmd, cwd=tmp_path, env=env | extra, stdout=sink, stderr=subprocess.STDOUT
            )
        procs.append(Proc(name, popen, log))
        return procs[-1]

    pasrec = [sys.executable, "-m", "pasrec.cli.main"]
    try:
        receiver = spawn(
            "receiver",
            [sys.executable, str(ROOT / "docker" / "webhook_receiver.py"),
             "--host", "127.0.0.1", "--port", str(receiver_port), "--quiet"],
            WEBHOOK_SECRET=SECRET,
        )  # fmt: skip
        migrate = subprocess.run([*pasrec, "migrate"], env=env, capture_output=True, text=True,
                                 timeout=120, cwd=tmp_path)  # fmt: skip
        assert migrate.returncode == 0, migrate.stderr
        apis = []
        for n in range(2):
            port = free_port()
            api = spawn(f"api{n}", [*pasrec, "serve"], PASREC_PORT=str(port))
            apis.append((api, f"http://127.0.0.1:{port}"))
        for n in range(2):
            spawn(f"worker{n}", [*pasrec, "worker"])
        _wait_http(receiver, f"{receiver_url}/healthz")
        for api, url in apis:
            _wait_http(api, f"{url}/readyz")
        yield [url for _, url in apis], receiver_url
    finally:
        for proc in procs:
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.popen.wait(timeout=30)
    # Graceful: workers finish their deliveries in flight and exit cleanly on SIGTERM.
    for proc in procs:
        if proc.name.startswith("worker"):
            assert proc.popen.returncode == 0, proc.output()


def test_two_apis_two_workers_deliver_each_due_push_exactly_once(
    scale_schema: str, redis_available: str, checkpoint: Path, tmp_path: Path, data_slice: Path
) -> None:
    prefix = unique_name("pasrec-scale") + ":"
    with running_stack(scale_schema, redis_available, prefix, checkpoint, tmp_path) as stack:
        _deliver_each_due_push_once(*stack, data_slice)
    with redis.Redis.from_url(redis_available) as client:
        leftover = client.keys(f"{prefix}*")
    assert leftover == [], "the run left Redis keys behind"


def _deliver_each_due_push_once(api_urls: list[str], receiver_url: str, data_slice: Path) -> None:
    histories = read_slice(data_slice)
    users = [u for u in sorted(histories, key=int) if len(histories[u]) >= 12]
    due, later = users[:DUE_USERS], users[DUE_USERS : DUE_USERS + LATER_USERS]
    now = time.time()

    def batches(user: str, last_at: float) -> list[list[dict]]:
        # The user's last 10 items (known to the model), re-stamped a minute apart to end at
        # `last_at`; split in two halves for the two APIs.
        items = [item for item, _ in histories[user][-10:]]
        events = [event(user, item, last_at - 60 * (9 - n), f"{user}-{n}")
                  for n, item in enumerate(items)]  # fmt: skip
        return [events[0::2], events[1::2]]

    # Due users' last event an hour ago: due at once (fixed interval 10 min, already past)
    # and outside the 30-min activity window. The others' are fresh: due in 10 minutes.
    work = [(user, batches(user, now - 3600)) for user in due]
    work += [(user, batches(user, now - 5)) for user in later]
    errors: list[str] = []

    def post(url: str, body: list[dict]) -> None:
        response = httpx.post(f"{url}/v1/events", json={"events": body}, headers=AUTH,
                              timeout=60)  # fmt: skip
        if response.status_code != 200:
            errors.append(f"{url}: {response.status_code} {response.text}")

    threads = []
    for _, (first, second) in work:
        # Each half to a different API at the same time, then every event again to the
        # other API: replicas race on the same users and see duplicates.
        threads += [
            threading.Thread(target=post, args=(api_urls[0], first)),
            threading.Thread(target=post, args=(api_urls[1], second)),
        ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for _, (first, second) in work:
        post(api_urls[1], first)
        post(api_urls[0], second)
    assert not errors, errors

    deadline = time.monotonic() + 90
    while True:
        got = httpx.get(f"{receiver_url}/deliveries", timeout=5).json()
        if got["unique"] >= len(due) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    # Let both workers poll many more times: a second delivery would show up now.
    time.sleep(3)
    got = httpx.get(f"{receiver_url}/deliveries", timeout=5).json()
    every = httpx.get(f"{api_urls[0]}/v1/pushes", params={"limit": 1000}, headers=AUTH,
                      timeout=30).json()["pushes"]  # fmt: skip
    story = sorted((p["user_id"], p["status"], p["reason"], p["due_at"], p["id"]) for p in every)
    assert got["unique"] == len(due), (got, story)
    assert got["requests"] == len(due), got  # no retry, no double claim

    delivered: dict[str, list[str]] = {}
    for url in api_urls:  # both replicas answer from the same store
        listed = httpx.get(f"{url}/v1/pushes", params={"status": "delivered", "limit": 100},
                           headers=AUTH, timeout=30).json()["pushes"]  # fmt: skip
        by_user: dict[str, list[str]] = {}
        for push in listed:
            by_user.setdefault(push["user_id"], []).append(push["id"])
        delivered[url] = sorted(p for ids in by_user.values() for p in ids)
        assert sorted(by_user) == sorted(due)
        assert all(len(ids) == 1 for ids in by_user.values()), by_user
    assert delivered[api_urls[0]] == delivered[api_urls[1]] == sorted(got["by_id"])
    for user in later:
        pending = httpx.get(f"{api_urls[0]}/v1/pushes", params={"user_id": user},
                            headers=AUTH, timeout=30).json()["pushes"]  # fmt: skip
        assert [p["status"] for p in pending] == ["pending"], pending
