"""Private storage for one short-lived run on shared Postgres and Redis.

A replay (or a test) that drives the service against a real Postgres and Redis must not see
another run's rows or cached histories, and must leave nothing behind. It gets a fresh
schema (the URL pins the search path to it, so migrations and queries land there) and a
unique Redis key prefix; both are removed afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


def unique_name(prefix: str) -> str:
    """``prefix`` plus a random suffix: a valid schema name and Redis key prefix."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def check_postgres(database_url: str) -> None:
    """Raise ValueError naming the server (password hidden) when it cannot be reached."""
    engine = sa.create_engine(database_url, connect_args={"connect_timeout": 5})
    address = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect():
            pass
    except sa.exc.SQLAlchemyError as exc:
        raise ValueError(f"PostgreSQL at {address} is not reachable: {exc}") from None
    finally:
        engine.dispose()


def check_redis(redis_url: str) -> None:
    """Raise ValueError naming the server when it does not answer a ping."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ValueError(f"Redis at {redis_url} is not reachable: {exc}") from None
    finally:
        client.close()


@contextmanager
def private_schema(database_url: str, schema: str) -> Iterator[str]:
    """A new empty schema named ``schema`` (see `unique_name`) in the database of
    ``database_url``; yields the URL whose connections use it, and drops the schema with
    everything in it on exit."""
    admin = sa.create_engine(database_url, connect_args={"connect_timeout": 5})
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = sa.engine.make_url(database_url).update_query_dict(
            {"options": f"-csearch_path={schema}"}
        )
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@contextmanager
def private_redis_prefix(redis_url: str, key_prefix: str) -> Iterator[str]:
    """Yields ``key_prefix`` (make it unique, see `unique_name`); every key under it is
    deleted on exit."""
    import redis

    try:
        yield key_prefix
    finally:
        client = redis.Redis.from_url(redis_url)
        try:
            keys = list(client.scan_iter(match=f"{key_prefix}*", count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
        finally:
            client.close()
