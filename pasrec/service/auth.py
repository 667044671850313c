"""API keys with scopes: creation (`pasrec apikey create`), revocation and verification.

A key reads `pasrec_<key id>_<secret>`. The database stores the key id and the SHA-256 of the
whole key; the secret has 256 bits of entropy, so a fast hash is enough (a slow password hash
guards low-entropy secrets, which these are not). Keys may also come from the environment
(`PASREC_API_KEYS`), given as their SHA-256 or, for local stacks, in plain.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select, update

from pasrec.service.db import make_engine, read_tx, write_tx
from pasrec.service.migrate import ensure_schema
from pasrec.service.models import ApiKey
from pasrec.service.settings import Scope, Settings

SCOPES: tuple[Scope, ...] = ("ingest", "read", "admin")
_PREFIX = "pasrec_"
# Verified database keys are remembered this long, so a revocation takes effect within it.
_CACHE_S = 30.0


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str]


def _sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _check_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = sorted(set(scopes))
    unknown = [s for s in chosen if s not in SCOPES]
    if not chosen or unknown:
        raise ValueError(f"scopes must be a non-empty subset of {', '.join(SCOPES)}")
    return chosen


def _migrated_engine(settings: Settings) -> Engine:
    engine = make_engine(settings)
    ensure_schema(engine, settings)
    return engine


def create_key(settings: Settings, name: str, scopes: Iterable[str]) -> str:
    """Create a key in the database and return it; it is shown once and never stored."""
    chosen = _check_scopes(scopes)
    if not 1 <= len(name) <= 64:
        raise ValueError("key name must be 1 to 64 characters")
    key_id = secrets.token_hex(8)
    key = f"{_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    engine = _migrated_engine(settings)
    try:
        with write_tx(engine) as conn:
            conn.execute(
                ApiKey.__table__.insert().values(
                    key_id=key_id,
                    name=name,
                    secret_sha256=_sha256(key),
                    scopes=" ".join(chosen),
                    created_at=datetime.now(UTC),
                )
            )
    finally:
        engine.dispose()
    return key


def key_id_of(key_or_id: str) -> str:
    """The id of a database key (`pasrec_<id>_<secret>`), or the text itself if it is one."""
    if key_or_id.startswith(_PREFIX):
        return key_or_id[len(_PREFIX) :].split("_", 1)[0]
    return key_or_id


def revoke_key(settings: Settings, key_id: str) -> bool:
    """Revoke a database key by its id (the part after `pasrec_`); False if none matched."""
    engine = _migrated_engine(settings)
    try:
        with write_tx(engine) as conn:
            result = conn.execute(
                update(ApiKey)
                .where(ApiKey.key_id == key_id, ApiKey.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            return result.rowcount == 1
    finally:
        engine.dispose()


class Authenticator:
    """Resolves a presented key to a principal; used by the API on every protected call."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self._engine = engine
        self._configured: dict[str, Principal] = {}
        for configured in settings.api_keys:
            digest = configured.sha256 or (_sha256(configured.key) if configured.key else None)
            if digest is None:
                raise ValueError(f"API key {configured.name!r} needs `sha256` or `key`")
            self._configured[digest] = Principal(configured.name, frozenset(configured.scopes))
        self._verified: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def authenticate(self, key: str) -> Principal | None:
        digest = _sha256(key)
        principal = self._configured.get(digest)
        if principal is not None:
            return principal
        now = time.monotonic()
        with self._lock:
            hit = self._verified.get(digest)
        if hit is not None and now - hit[0] < _CACHE_S:
            return hit[1]
        principal = self._lookup(key, digest)
        if principal is not None:
            with self._lock:
                self._verified[digest] = (now, principal)
        return principal

    def _lookup(self, key: str, digest: str) -> Principal | None:
        if not key.startswith(_PREFIX):
            return None
        key_id = key[len(_PREFIX) :].split("_", 1)[0]
        with read_tx(self._engine) as conn:
            row = conn.execute(
                select(ApiKey.name, ApiKey.secret_sha256, ApiKey.scopes).where(
                    ApiKey.key_id == key_id, ApiKey.revoked_at.is_(None)
                )
            ).first()
        if row is None or not hmac.compare_digest(row.secret_sha256, digest):
            return None
        return Principal(row.name, frozenset(row.scopes.split()))
