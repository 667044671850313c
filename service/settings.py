"""All service configuration, read from `PASREC_*` environment variables (or a `.env` file).

This is the only place the service reads its environment; every other module receives a
`Settings` instance, so tests and the CLI can build one explicitly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Scope = Literal["ingest", "read", "admin"]


class ConfiguredKey(BaseModel):
    """An API key given through the environment rather than created with `pasrec apikey`."""

    name: str = Field(min_length=1, max_length=64)
    scopes: list[Scope] = Field(min_length=1)
    # Prefer `sha256` so the plain key never sits in the environment; `key` is accepted for
    # local stacks (docker-compose) where convenience wins.
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    key: str | None = Field(default=None, min_length=16)


class Settings(BaseSettings):
    """Service settings; each field maps to the environment variable `PASREC_<FIELD>`."""

    model_config = SettingsConfigDict(
        env_prefix="PASREC_", env_file=".env", extra="ignore", use_attribute_docstrings=True
    )

    # --- storage -------------------------------------------------------------------------
    database_url: str | None = None
    """SQLAlchemy URL of the system of record, e.g.
    `postgresql+psycopg://user@host:5432/db`. Unset: SQLite in `sqlite_path`."""

    sqlite_path: Path = Path("pasrec.db")
    """File of the embedded SQLite database, used only when `database_url` is unset."""

    redis_url: str | None = None
    """Redis URL for the per-user history cache, e.g. `redis://127.0.0.1:6379/0`.
    Unset: an in-process cache (fine for a single process)."""

    redis_prefix: str = "pasrec:"
    """Prefix of every Redis key the service writes, so several deployments (or test runs)
    can share one Redis."""

    cache_ttl_s: int = Field(default=7 * 24 * 3600, gt=0)
    """Seconds a user's cached history lives in Redis after its last write."""

    memory_cache_users: int = Field(default=100_000, gt=0)
    """How many users the in-process cache keeps (least recently used are evicted)."""

    auto_migrate: bool | None = None
    """Upgrade the schema on start. Unset: only for the embedded SQLite default; a shared
    database must be migrated explicitly with `pasrec migrate`."""

    db_pool_size: int = Field(default=10, gt=0)
    """Connections kept open per process (Postgres only)."""

    # --- model ---------------------------------------------------------------------------
    model_path: Path | None = None
    """Checkpoint directory to serve. Unset: the service starts without a model and
    `/readyz` reports not ready until `POST /v1/admin/model/reload` loads one."""

    device: str = "auto"
    """Torch device for inference: `auto` (CUDA when present), `cpu`, `cuda`, `cuda:1`, ..."""

    batch_wait_ms: float = Field(default=3.0, ge=0, le=1000)
    """How long the inference engine waits to gather concurrent requests into one batch."""

    max_inference_batch: int = Field(default=64, gt=0)
    """Most requests answered by one model call."""

    # --- API -----------------------------------------------------------------------------
    host: str = "127.0.0.1"
    """Address `pasrec serve` binds."""

    port: int = Field(default=8000, ge=0, le=65535)
    """Port `pasrec serve` binds (0: any free port)."""

    max_batch_events: int = Field(default=1000, gt=0, le=100_000)
    """Most events accepted in one `POST /v1/events`."""

    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    """Largest request body accepted; larger ones get 413 before being read."""

    max_future_skew_s: float = Field(default=300.0, ge=0)
    """Events stamped more than this many seconds after the server's clock are rejected."""

    max_k: int = Field(default=100, gt=0)
    """Largest `k` accepted by `/v1/recommend`."""

    default_k: int = Field(default=10, gt=0)
    """`k` used when the request gives none."""

    # --- auth ----------------------------------------------------------------------------
    auth_enabled: bool = True
    """Require API keys. Turning this off is logged loudly at start-up; never do it on a
    reachable network."""

    api_keys: list[ConfiguredKey] = Field(default_factory=list)
    """Extra keys as JSON, e.g.
    `[{"name": "ingestor", "scopes": ["ingest"], "sha256": "<hex of sha256(key)>"}]`."""

    # --- logging -------------------------------------------------------------------------
    log_level: str = "INFO"
    """Python logging level of the service loggers."""

    @field_validator("database_url")
    @classmethod
    def _empty_url_is_unset(cls, value: str | None) -> str | None:
        # docker-compose passes unset variables as empty strings.
        return value or None

    @field_validator("redis_url")
    @classmethod
    def _empty_redis_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.sqlite_path}"

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def should_auto_migrate(self) -> bool:
        if self.auto_migrate is None:
            return self.embedded_database
        return self.auto_migrate
