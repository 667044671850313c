"""Fixtures of the service tests: real Postgres/Redis back ends next to the embedded default,
tiny checkpoints trained once per session, apps, API keys and live servers."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from service_helpers import (
    REDIS_URL,
    Clock,
    Keys,
    make_keys,
    private_schema,
    unavailable,
)

from pasrec.replay.isolated_store import check_redis, private_redis_prefix, unique_name
from pasrec.service.app import create_app
from pasrec.service.migrate import upgrade
from pasrec.service.models import Base
from pasrec.service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


# --- back ends -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A private, migrated schema in the `test` database for this run, dropped at the end."""
    with private_schema("pasrec_test") as url:
        upgrade(Settings(database_url=url, _env_file=None))
        yield url


@pytest.fixture(scope="session")
def redis_available() -> str:
    try:
        check_redis(REDIS_URL)
    except ValueError as exc:
        unavailable(str(exc))
    return REDIS_URL


def _truncate(url: str) -> None:
    engine = sa.create_engine(url)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["embedded", "postgres+redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def base_settings(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Settings]:
    """Settings of a fresh, migrated, empty store on the parametrised back end (no model)."""
    # Explicit values, so PASREC_* variables of the shell running the tests cannot leak in.
    # CPU, so answers can be compared with a CPU predictor in the test; the GPU has its own test.
    common = {
        "_env_file": None,
        "batch_wait_ms": 2.0,
        "auth_enabled": True,
        "api_keys": [],
        "device": "cpu",
    }
    if backend == "embedded":
        embedded = Settings(
            sqlite_path=tmp_path / "pasrec.db", database_url=None, redis_url=None, **common
        )
        upgrade(embedded)
        yield embedded
        return
    url = request.getfixturevalue("pg_schema_url")
    redis_url = request.getfixturevalue("redis_available")
    _truncate(url)
    with private_redis_prefix(redis_url, unique_name("pasrec-test") + ":") as prefix:
        yield Settings(database_url=url, redis_url=redis_url, redis_prefix=prefix, **common)


@pytest.fixture
def settings(
    base_settings: Settings, checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Store plus the session's PASRec checkpoint; reloads may name any checkpoint of the
    run (every temporary directory of the session lies under its base)."""
    base_settings.model_path = checkpoint
    base_settings.model_dir = tmp_path_factory.getbasetemp()
    return base_settings


# --- checkpoints ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def data_slice(synthetic_users) -> Path:
    """120 synthetic users (tests/conftest.py): no reference data needed."""
    return synthetic_users(120)


def _train(data: Path, out: Path, model: str, *extra: str) -> Path:
    pasrec = shutil.which("pasrec", path=str(Path(sys.executable).parent)) or "pasrec"
    cmd = [
        pasrec, "train", "--data", str(data), "--model", model, "--epochs", "1",
        "--hidden", "32", "--ddim-steps", "10", "--diffusion-steps", "100",
        "--truncate", "30", "--history-length", "10", "--device", "cpu", "--quiet",
        "--out", str(out), *extra,
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out / "checkpoint"


@pytest.fixture(scope="session")
def checkpoint(data_slice: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny PASRec with the tpp ToI head, trained on the slice."""
    return _train(data_slice, tmp_path_factory.mktemp("pasrec"), "pasrec", "--toi-head", "tpp")


@pytest.fixture(scope="session")
def checkpoint_no_toi(data_slice: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny PreferDiff (no ToI module), another model class behind the same interface."""
    return _train(data_slice, tmp_path_factory.mktemp("preferdiff"), "preferdiff")


# --- apps, keys, servers -------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys(settings: Settings) -> Keys:
    return make_keys(settings)


@pytest.fixture
def client(settings: Settings, clock: Clock, keys: Keys) -> Iterator[TestClient]:
    with TestClient(create_app(settings, clock)) as test_client:
        yield test_client
