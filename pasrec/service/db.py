"""Database engine construction and transaction helpers for Postgres and SQLite."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    bindparam,
    create_engine,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

from pasrec.service.settings import Settings

log = logging.getLogger(__name__)

_IMMEDIATE = "pasrec_immediate"

WRITE_RETRIES = 3
# Before retry n, wait a random share of RETRY_BACKOFF_S * 2**n: two transactions that
# deadlocked and retried at once could lock in opposite orders again, and do on a loaded host.
RETRY_BACKOFF_S = 0.05
"""Times `write_retrying` runs a transaction again after Postgres aborted it."""

_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
"""deadlock_detected and serialization_failure: Postgres rolled the whole transaction back,
so running it again from the start is safe and usually succeeds."""

MAX_BIND_PARAMS = 32_766
"""Most bind parameters one statement may carry on every supported back end: SQLite's limit
(PostgreSQL's wire protocol allows 65,535). A multi-row INSERT or an IN list over a client's
batch must be split to stay under it."""

T = TypeVar("T")


def make_engine(settings: Settings) -> Engine:
    url = make_url(settings.effective_database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    return create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
    )


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so writes can BEGIN IMMEDIATE:
        # a deferred transaction that later upgrades to a write lock fails at once with
        # "database is locked" instead of waiting on the busy timeout.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: committed on success, rolled back on any error."""
    with engine.connect() as conn:
        conn.execution_options(**{_IMMEDIATE: True})
        with conn.begin():
            yield conn


def write_retrying(engine: Engine, work: Callable[[Connection], T], what: str) -> T:
    """Run `work` in a write transaction, again from the start when Postgres aborts it as a
    deadlock victim or for a serialisation failure (at most WRITE_RETRIES times); `what`
    names the rows in the warning. Any other error, or the last retry's, propagates. Each
    retry waits a random backoff first, so the transactions that collided no longer meet."""
    for attempt in range(WRITE_RETRIES + 1):
        try:
            with write_tx(engine) as conn:
                return work(conn)
        except OperationalError as exc:
            sqlstate = getattr(exc.orig, "sqlstate", None)
            if attempt == WRITE_RETRIES or sqlstate not in _RETRYABLE_SQLSTATES:
                raise
            log.warning("deadlock on %s; retrying (%d)", what, attempt + 1)
            time.sleep(random.uniform(0.0, RETRY_BACKOFF_S * 2**attempt))
    raise AssertionError("unreachable")


@contextmanager
def read_tx(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn, conn.begin():
        yield conn


def dialect_insert(conn: Connection, table: type) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with the dialect's ON CONFLICT support (Postgres or SQLite)."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def insert_rows(
    conn: Connection,
    table: type,
    rows: Sequence[Mapping[str, Any]],
    finish: Callable[[Any], Any] = lambda insert: insert,
) -> list[Row[Any]]:
    """INSERT `rows` (dicts with the same keys) into `table`; `finish` adds the ON CONFLICT
    and RETURNING clauses to the dialect's insert. Returns the rows RETURNING gave.

    PostgreSQL: one statement for any number of rows (`_unnested`), rows locked in the
    order given. SQLite: one executemany, which SQLAlchemy sends as multi-row INSERTs under
    the bind-parameter limit.
    """
    if not rows:
        return []
    if conn.dialect.name != "postgresql":
        result = conn.execute(finish(sqlite.insert(table)), list(rows))
        return list(result) if result.returns_rows else []
    source = _unnested(table, rows)
    names = list(rows[0])
    insert = postgresql.insert(table).from_select(names, select(*(source.c[n] for n in names)))
    result = conn.execute(finish(insert))
    return list(result) if result.returns_rows else []


def update_rows(conn: Connection, table: type, key: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Give each row of `table` whose `key` column equals a row's `key` that row's other
    values (`rows`: dicts with the same keys). PostgreSQL: one UPDATE ... FROM unnest
    (`_unnested`); SQLite: one executemany."""
    if not rows:
        return
    columns = table.__table__.columns
    names = [name for name in rows[0] if name != key]
    if conn.dialect.name != "postgresql":
        # Bound names must differ from the columns' own, which SQLAlchemy reserves.
        stmt = (
            update(table)
            .where(columns[key] == bindparam(f"new_{key}"))
            .values({name: bindparam(f"new_{name}") for name in names})
        )
        conn.execute(stmt, [{f"new_{name}": value for name, value in row.items()} for row in rows])
        return
    source = _unnested(table, rows)
    conn.execute(
        update(table)
        .where(columns[key] == source.c[key])
        .values({name: source.c[name] for name in names})
    )


def _unnested(table: type, rows: Sequence[Mapping[str, Any]]) -> Any:
    """`rows` as a PostgreSQL table source: each column sent as one array, unnested side by
    side. The statement's text, hence its compiled form, psycopg's conversion and the
    server's prepared plan, is the same whatever the number of rows, so a batch costs one
    round trip and no per-row statement. A function scan returns the arrays in order, so
    rows given in key order are locked in key order."""
    columns = table.__table__.columns
    names = list(rows[0])
    arrays = [
        bindparam(
            f"{name}_values", [row[name] for row in rows], postgresql.ARRAY(columns[name].type)
        )
        for name in names
    ]
    return func.unnest(*arrays).table_valued(*names).render_derived()


def chunks(rows: Sequence[T], params_per_row: int) -> Iterator[Sequence[T]]:
    """`rows` in slices small enough that each statement stays under MAX_BIND_PARAMS."""
    size = max(1, MAX_BIND_PARAMS // params_per_row)
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
