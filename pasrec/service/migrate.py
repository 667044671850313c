"""Schema migrations run from code (`pasrec migrate`) and the start-up schema check."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from pasrec.service import migrations
from pasrec.service.db import make_engine, write_tx
from pasrec.service.settings import Settings

log = logging.getLogger(__name__)


class SchemaBehindError(RuntimeError):
    """The database schema is older than this code (or missing): run `pasrec migrate`."""


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    return cfg


@functools.cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "migrations package holds no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_engine(engine: Engine, revision: str = "head") -> str:
    cfg = _config()
    with write_tx(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    now = current_revision(engine)
    assert now is not None
    return now


def upgrade(settings: Settings, revision: str = "head") -> str:
    """Upgrade the database named by `settings` to `revision`; returns the revision reached."""
    engine = make_engine(settings)
    try:
        before = current_revision(engine)
        after = upgrade_engine(engine, revision)
        log.info("database schema %s -> %s", before or "(empty)", after)
        return after
    finally:
        engine.dispose()


def ensure_schema(engine: Engine, settings: Settings) -> None:
    """Make sure the schema is current before serving; auto-upgrade only where allowed."""
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return
    if settings.should_auto_migrate:
        log.warning(
            "database schema is at %s, code needs %s: migrating automatically (%s)",
            current or "(empty)",
            head,
            "embedded SQLite default" if settings.embedded_database else "PASREC_AUTO_MIGRATE",
        )
        upgrade_engine(engine)
        return
    if current is not None and current not in _known_revisions():
        raise SchemaBehindError(
            f"database schema is at revision {current}, which this code does not know "
            f"(it expects {head}); the database was migrated by a newer release"
        )
    raise SchemaBehindError(
        f"database schema is at revision {current or '(none)'} but this code needs {head}: "
        "run `pasrec migrate` first"
    )


@functools.cache
def _known_revisions() -> frozenset[str]:
    return frozenset(s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions())
