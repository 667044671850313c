"""API keys: 401 without or with a bad key, 403 with the wrong scope, explicit auth-off."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from service_helpers import Clock, Keys, event, row_count

from pasrec.service.app import create_app
from pasrec.service.auth import create_key, revoke_key
from pasrec.service.settings import ConfiguredKey, Settings

ROOT = Path(__file__).resolve().parents[2]

ENDPOINTS = [
    ("post", "/v1/events", "ingest"),
    ("get", "/v1/recommend/u1", "read"),
    ("get", "/v1/users/u1/toi", "read"),
    ("post", "/v1/admin/model/reload", "admin"),
]
BATCH = {"events": [event("u1", "50", 1e9)]}


def call(client: TestClient, method: str, path: str, headers: dict[str, str]):
    if method == "post":
        return client.post(path, json=BATCH if path == "/v1/events" else {}, headers=headers)
    return client.get(path, headers=headers)


@pytest.mark.parametrize(("method", "path", "scope"), ENDPOINTS)
def test_missing_wrong_and_misscoped_keys(
    client: TestClient, keys: Keys, settings: Settings, method: str, path: str, scope: str
) -> None:
    missing = call(client, method, path, {})
    assert missing.status_code == 401
    assert "missing API key" in missing.json()["error"]["message"]
    assert missing.headers["www-authenticate"] == "Bearer"

    wrong = call(client, method, path, {"Authorization": "Bearer pasrec_0000_nope"})
    assert wrong.status_code == 401
    assert "invalid" in wrong.json()["error"]["message"]

    other = {"ingest": keys.read, "read": keys.ingest, "admin": keys.read}[scope]
    forbidden = call(client, method, path, other)
    assert forbidden.status_code == 403
    assert f"lacks the '{scope}' scope" in forbidden.json()["error"]["message"]
    assert row_count(settings, "interactions") == 0

    allowed = call(client, method, path, getattr(keys, scope))
    assert allowed.status_code not in (401, 403)


def test_x_api_key_header_and_revocation(settings: Settings, clock: Clock) -> None:
    key = create_key(settings, "reader", ["read"])
    with TestClient(create_app(settings, clock)) as client:
        assert client.get("/v1/recommend/u1", headers={"X-API-Key": key}).status_code == 200
    assert revoke_key(settings, key.split("_")[1])
    assert not revoke_key(settings, key.split("_")[1])
    with TestClient(create_app(settings, clock)) as client:
        assert client.get("/v1/recommend/u1", headers={"X-API-Key": key}).status_code == 401


def test_apikey_cli_creates_and_revokes_a_key(tmp_path, clock: Clock) -> None:
    env = {**os.environ, "PASREC_SQLITE_PATH": str(tmp_path / "keys.db"),
           "PASREC_DATABASE_URL": "", "PASREC_AUTH_ENABLED": "true"}  # fmt: skip

    def pasrec(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pasrec.cli.main", "apikey", *args], env=env,
                              capture_output=True, text=True, cwd=ROOT)  # fmt: skip

    created = pasrec("--name", "reader", "--scopes", "read")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    settings = Settings(_env_file=None, sqlite_path=tmp_path / "keys.db", auth_enabled=True,
                        api_keys=[], device="cpu")  # fmt: skip
    with TestClient(create_app(settings, clock)) as client:
        # No model is loaded (503), but the key got past authentication.
        assert client.get("/v1/recommend/u1", headers={"X-API-Key": key}).status_code == 503
    revoked = pasrec("--revoke", key)
    assert revoked.returncode == 0 and key.split("_")[1] in revoked.stdout
    again = pasrec("--revoke", key.split("_")[1])
    assert again.returncode == 1 and "no active database key" in again.stderr
    # A running API drops its 30-second cache of verified keys; a fresh one refuses at once.
    with TestClient(create_app(settings, clock)) as client:
        assert client.get("/v1/recommend/u1", headers={"X-API-Key": key}).status_code == 401
    missing = pasrec("--name", "x")
    assert missing.returncode == 2 and "--scopes" in missing.stderr
    assert "Traceback" not in missing.stderr + again.stderr


def test_keys_from_the_environment(settings: Settings, clock: Clock) -> None:
    plain = "local-stack-ingest-key-0123456789"
    hashed = "reader-key-known-only-by-its-hash"
    settings.api_keys = [
        ConfiguredKey(name="stack", scopes=["ingest"], key=plain),
        ConfiguredKey(
            name="hashed", scopes=["read"], sha256=hashlib.sha256(hashed.encode()).hexdigest()
        ),
    ]
    with TestClient(create_app(settings, clock)) as client:
        ok = client.post("/v1/events", json=BATCH, headers={"X-API-Key": plain})
        assert ok.status_code == 200
        assert client.get("/v1/recommend/u1", headers={"X-API-Key": hashed}).status_code == 200
        denied = client.get("/v1/recommend/u1", headers={"X-API-Key": plain})
        assert denied.status_code == 403


def test_environment_keys_are_parsed_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "PASREC_API_KEYS", '[{"name": "a", "scopes": ["read", "admin"], "key": "0123456789abcdef"}]'
    )
    parsed = Settings(_env_file=None).api_keys
    assert parsed[0].scopes == ["read", "admin"]
    monkeypatch.setenv("PASREC_API_KEYS", '[{"name": "a", "scopes": ["root"], "key": "x"}]')
    with pytest.raises(ValueError, match="scopes"):
        Settings(_env_file=None)


def test_create_key_validates(settings: Settings) -> None:
    with pytest.raises(ValueError, match="scopes"):
        create_key(settings, "x", ["superuser"])
    with pytest.raises(ValueError, match="scopes"):
        create_key(settings, "x", [])
    with pytest.raises(ValueError, match="name"):
        create_key(settings, "", ["read"])
    assert row_count(settings, "api_keys") == 0


def test_auth_off_only_when_asked_and_logged(
    settings: Settings, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    settings.auth_enabled = False
    with caplog.at_level(logging.WARNING), TestClient(create_app(settings, clock)) as client:
        assert client.post("/v1/events", json=BATCH).status_code == 200
        assert client.get("/v1/recommend/u1").status_code == 200
    assert any("authentication is OFF" in r.getMessage() for r in caplog.records)
    assert Settings(_env_file=None).auth_enabled is True


def test_keys_are_stored_hashed(settings: Settings) -> None:
    key = create_key(settings, "k", ["read"])
    engine = sa.create_engine(settings.effective_database_url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT key_id, secret_sha256, scopes FROM api_keys")).one()
    engine.dispose()
    # The secret is all after `pasrec_<id>_`: it may itself hold or start with "_".
    secret = key.split("_", 2)[2]
    assert secret and key not in stored and secret not in stored.secret_sha256
    assert stored.secret_sha256 == hashlib.sha256(key.encode()).hexdigest()
    assert stored.scopes == "read"
