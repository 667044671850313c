"""Alembic migrations: they build exactly the models' schema; a stale schema stops the start."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from service_helpers import private_schema

from pasrec.service import migrations
from pasrec.service.app import create_app, run_server
from pasrec.service.auth import create_key
from pasrec.service.migrate import SchemaBehindError, head_revision, upgrade
from pasrec.service.models import Base
from pasrec.service.settings import Settings


@pytest.fixture
def empty_pg() -> Iterator[Settings]:
    """Settings on a brand-new, empty Postgres schema."""
    with private_schema("pasrec_empty") as url:
        yield Settings(database_url=url, redis_url=None, _env_file=None)


def test_migrations_build_exactly_the_models(base_settings: Settings) -> None:
    engine = sa.create_engine(base_settings.effective_database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
        revision = context.get_current_revision()
    engine.dispose()
    assert diff == []
    assert revision == head_revision()


def test_upgrade_is_idempotent(base_settings: Settings) -> None:
    assert upgrade(base_settings) == head_revision()
    assert upgrade(base_settings) == head_revision()


def test_shared_database_behind_refuses_to_start(empty_pg: Settings) -> None:
    with (
        pytest.raises(SchemaBehindError, match=r"run `pasrec migrate`"),
        TestClient(create_app(empty_pg)),
    ):
        pass
    with pytest.raises(SystemExit, match=r"pasrec serve: .*run `pasrec migrate`"):
        run_server(empty_pg)
    with pytest.raises(SchemaBehindError, match=r"run `pasrec migrate`"):
        create_key(empty_pg, "k", ["read"])
    upgrade(empty_pg)
    with TestClient(create_app(empty_pg)) as client:
        assert client.get("/healthz").status_code == 200


def test_schema_from_a_newer_release_is_named(empty_pg: Settings) -> None:
    upgrade(empty_pg)
    engine = sa.create_engine(empty_pg.effective_database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with (
        pytest.raises(SchemaBehindError, match="newer release"),
        TestClient(create_app(empty_pg)),
    ):
        pass


def test_embedded_default_migrates_itself_and_says_so(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        sqlite_path=tmp_path / "fresh" / "pasrec.db", database_url=None, _env_file=None
    )
    with caplog.at_level(logging.WARNING), TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
    assert any("migrating automatically" in r.getMessage() for r in caplog.records)
    engine = sa.create_engine(settings.effective_database_url)
    assert set(sa.inspect(engine).get_table_names()) >= {"users", "interactions", "pushes"}
    engine.dispose()


def test_push_outbox_migration_upgrades_and_downgrades(empty_pg: Settings) -> None:
    engine = sa.create_engine(empty_pg.effective_database_url)
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))

    def tables() -> set[str]:
        return set(sa.inspect(engine).get_table_names())

    def run(step: str, revision: str) -> None:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            getattr(command, step)(config, revision)

    try:
        assert upgrade(empty_pg, "0002") == "0002"
        assert "push_outbox" not in tables()
        assert upgrade(empty_pg, "0003") == "0003" == head_revision()
        assert "push_outbox" in tables()
        indexes = {i["name"] for i in sa.inspect(engine).get_indexes("push_outbox")}
        assert indexes == {"ix_push_outbox_queued_at"}
        run("downgrade", "0002")
        assert "push_outbox" not in tables() and "pushes" in tables()
        run("upgrade", "head")
        assert "push_outbox" in tables()
    finally:
        engine.dispose()
