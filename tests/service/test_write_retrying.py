"""`pasrec.service.db.write_retrying`, the one deadlock-retry loop behind ingestion and push
writes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from pasrec.service import db, storage
from pasrec.service.db import RETRY_BACKOFF_S, WRITE_RETRIES, write_retrying
from pasrec.service.push import store


class _DriverError(Exception):
    """Stands in for psycopg's error, which carries the SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _failing(sqlstate: str, failures: int) -> tuple[Callable[[Connection], str], list[int]]:
    """Work that raises `sqlstate` on its first `failures` runs, then succeeds."""
    runs: list[int] = []

    def work(conn: Connection) -> str:
        runs.append(1)
        if len(runs) <= failures:
            raise OperationalError("UPDATE", {}, _DriverError(sqlstate))
        return "done"

    return work, runs


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
def test_deadlocks_and_serialisation_failures_are_retried(engine, sqlstate) -> None:
    work, runs = _failing(sqlstate, failures=WRITE_RETRIES)
    assert write_retrying(engine, work, "rows") == "done"
    assert len(runs) == WRITE_RETRIES + 1


def test_each_retry_waits_a_random_growing_backoff(engine, monkeypatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(db.time, "sleep", waits.append)
    for _ in range(5):
        work, _runs = _failing("40P01", failures=WRITE_RETRIES)
        write_retrying(engine, work, "rows")
    per_call = [waits[i : i + WRITE_RETRIES] for i in range(0, len(waits), WRITE_RETRIES)]
    assert len(per_call) == 5 and all(len(call) == WRITE_RETRIES for call in per_call)
    for call in per_call:
        assert all(0 <= wait <= RETRY_BACKOFF_S * 2**n for n, wait in enumerate(call))
    assert len(set(waits)) == len(waits)  # drawn at random, so the colliding writers part


def test_the_last_retry_s_error_propagates(engine) -> None:
    work, runs = _failing("40P01", failures=WRITE_RETRIES + 1)
    with pytest.raises(OperationalError):
        write_retrying(engine, work, "rows")
    assert len(runs) == WRITE_RETRIES + 1


def test_other_errors_are_not_retried(engine) -> None:
    work, runs = _failing("08006", failures=1)  # connection failure
    with pytest.raises(OperationalError):
        write_retrying(engine, work, "rows")
    assert len(runs) == 1


def test_ingestion_and_push_writes_share_it(monkeypatch) -> None:
    calls: list[str] = []

    def spy(engine: object, work: object, what: str) -> str:
        calls.append(what)
        return "result"

    monkeypatch.setattr(storage, "write_retrying", spy)
    monkeypatch.setattr(store, "write_retrying", spy)
    assert storage.ingest(None, [], None, lambda _: True) == "result"  # type: ignore[arg-type]
    assert store.write(None, lambda conn: None) == "result"  # type: ignore[arg-type]
    assert calls == ["interactions", "pushes"]


def test_a_real_postgres_deadlock_is_survived(pg_schema_url: str) -> None:
    """Two transactions lock two rows in opposite orders: Postgres aborts one, which runs
    again after the other commits, so both updates land."""
    engine = sa.create_engine(pg_schema_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE retry_probe (id int PRIMARY KEY, hits int)"))
        conn.execute(sa.text("INSERT INTO retry_probe VALUES (1, 0), (2, 0)"))
    both_hold_one = threading.Barrier(2, timeout=30)
    errors: list[Exception] = []

    def cross(first: int, second: int) -> None:
        runs = 0

        def work(conn: Connection) -> None:
            nonlocal runs
            runs += 1
            bump = sa.text("UPDATE retry_probe SET hits = hits + 1 WHERE id = :id")
            conn.execute(bump, {"id": first})
            if runs == 1:  # only the first run meets the other transaction halfway
                both_hold_one.wait()
            conn.execute(bump, {"id": second})

        try:
            write_retrying(engine, work, "retry_probe")
        except Exception as exc:  # the main thread reports it
            errors.append(exc)

    threads = [threading.Thread(target=cross, args=order) for order in ((1, 2), (2, 1))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        with engine.connect() as conn:
            hits = conn.execute(sa.text("SELECT id, hits FROM retry_probe ORDER BY id")).all()
        assert [tuple(row) for row in hits] == [(1, 2), (2, 2)]
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE retry_probe"))
        engine.dispose()
