"""Helpers shared by the service tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from pasrec.replay import isolated_store
from pasrec.service.app import create_app
from pasrec.service.auth import create_key
from pasrec.service.settings import Settings

PG_URL = os.environ.get("PASREC_TEST_POSTGRES_URL", "postgresql+psycopg://@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PASREC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE = os.environ.get("PASREC_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    """Skip, or fail where the CI demands the real services."""
    if REQUIRE:
        pytest.fail(f"{reason} (PASREC_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


class Clock:
    """A settable clock; follows real time until `set` pins it."""

    def __init__(self) -> None:
        self.fixed: datetime | None = None

    def __call__(self) -> datetime:
        return self.fixed or datetime.now(UTC)

    def set(self, when: datetime) -> None:
        self.fixed = when


def row_count(settings: Settings, table: str) -> int:
    engine = sa.create_engine(settings.effective_database_url)
    with engine.connect() as conn:
        count = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    engine.dispose()
    return count


@dataclass(frozen=True)
class Sent:
    sql: str
    many: bool
    """Sent as an executemany (one call, one statement per parameter set)."""


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[Sent]]:
    """Every statement `engine` sends inside the block."""
    sent: list[Sent] = []

    def record(_conn: object, _cursor: object, sql: str, _params: object, _ctx: object,
               many: bool) -> None:  # fmt: skip
        sent.append(Sent(sql, many))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def read_slice(path: Path) -> dict[str, list[tuple[str, float]]]:
    """user -> chronological (item, unix seconds)."""
    users: dict[str, list[tuple[str, float]]] = {}
    for row in path.read_text().splitlines()[1:]:
        user, item, _rating, ts = row.split("\t")
        users.setdefault(user, []).append((item, float(ts)))
    for events in users.values():
        events.sort(key=lambda e: e[1])
    return users


@dataclass
class Keys:
    ingest: dict[str, str]
    read: dict[str, str]
    admin: dict[str, str]
    all: dict[str, str]


def make_keys(settings: Settings) -> Keys:
    def header(*scopes: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {create_key(settings, '-'.join(scopes), scopes)}"}

    return Keys(
        header("ingest"), header("read"), header("admin"), header("ingest", "read", "admin")
    )


class LiveServer:
    """uvicorn serving the app on a loopback port, in a thread of the test process."""

    def __init__(self, settings: Settings) -> None:
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=0, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def event(user: str, item: str, ts: float | str, event_id: str | None = None) -> dict:
    body: dict = {"user_id": user, "item_id": item, "timestamp": ts}
    if event_id is not None:
        body["event_id"] = event_id
    return body


@contextmanager
def private_schema(prefix: str) -> Iterator[str]:
    """A fresh schema in the `test` database (its URL pins the search path), dropped after."""
    try:
        isolated_store.check_postgres(PG_URL)
    except ValueError as exc:
        unavailable(str(exc))
    with isolated_store.private_schema(PG_URL, isolated_store.unique_name(prefix)) as url:
        yield url


@contextmanager
def service_process(env: dict[str, str], cwd: Path, log: Path) -> Iterator[subprocess.Popen]:
    """A real `python -m pasrec.service` process, yielded once `/readyz` answers 200, then
    stopped."""
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pasrec.service"], cwd=cwd, env=env, stdout=sink, stderr=sink
        )
    url = f"http://127.0.0.1:{env['PASREC_PORT']}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)
