"""All service configuration, read from `PASREC_*` environment variables (or a `.env` file).

This is the only place the service reads its environment; every other module receives a
`Settings` instance (push code only its `PushSettings` part), so tests and the CLI can build
one explicitly.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
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


class PushSettings(BaseModel):
    """The settings of active push (`pasrec/service/push/`), the only ones push code receives.

    `Settings` inherits them, so they keep their `PASREC_PUSH_*` variables; declared here once,
    with their checks, so push code depends on these fields and nothing else of the service.
    """

    model_config = ConfigDict(use_attribute_docstrings=True)

    push_webhook_url: str | None = None
    """Where pushes are POSTed. Unset: active push is off (nothing is scheduled or sent)."""

    push_webhook_secret: SecretStr | None = None
    """Standard Webhooks signing secret, `whsec_<base64 of 24-64 random bytes>`; required with
    `push_webhook_url`."""

    push_dispatcher_enabled: bool = True
    """Run a dispatcher and a push planner inside `pasrec serve`; false for API-only replicas
    (then run `pasrec worker` somewhere: without one, pushes are neither planned nor sent)."""

    push_plan_interval_s: float = Field(default=1.0, gt=0, le=3600)
    """How often a planner looks for users in the push outbox (users with new events, whose
    push must be planned again); each run plans until the outbox is empty."""

    push_plan_batch_users: int = Field(default=256, gt=0, le=10_000)
    """Most users one planner claims at a time and plans with one batched model call."""

    push_plan_lease_s: float = Field(default=300.0, gt=0)
    """How long users claimed by a planner stay reserved for it; after that another planner may
    take them over (a planner that died loses nothing). Must exceed the time one batch of
    `push_plan_batch_users` takes to plan, or a slow batch is planned twice (harmless but
    wasted)."""

    push_poll_interval_s: float = Field(default=1.0, gt=0, le=3600)
    """How often a dispatcher looks for due pushes."""

    push_claim_batch: int = Field(default=50, gt=0, le=10_000)
    """Most pushes one dispatcher claims per query."""

    push_concurrency: int = Field(default=8, gt=0, le=256)
    """Deliveries one dispatcher process runs at the same time."""

    push_lease_s: float = Field(default=60.0, gt=0)
    """How long a claimed push stays reserved for its dispatcher; after that another one may
    take it over (a crashed worker loses nothing). Renewed when an attempt starts; must be at
    least twice `push_webhook_timeout_s`, so an attempt always ends inside its lease."""

    push_webhook_timeout_s: float = Field(default=10.0, gt=0)
    """Total deadline of one webhook attempt, from connecting to the end of the answer (a
    receiver that answers slowly, a byte at a time, is cut off there and retried later)."""

    push_max_attempts: int = Field(default=6, gt=0, le=100)
    """Delivery attempts before a push is dead-lettered (status `dead`)."""

    push_backoff_base_s: float = Field(default=10.0, gt=0)
    """Retry delay after the first failed attempt; it doubles each attempt, with jitter (a
    uniform draw from half to all of it)."""

    push_backoff_max_s: float = Field(default=3600.0, gt=0)
    """Longest retry delay, also the most a receiver's `Retry-After` can ask for."""

    push_k: int = Field(default=10, gt=0)
    """Items in a push."""

    push_min_gap_s: float = Field(default=6 * 3600.0, ge=0)
    """Least time between two delivered pushes to one user; a push due sooner is skipped
    (`min_gap`)."""

    push_cap_count: int = Field(default=3, ge=0)
    """Most pushes delivered to one user per `push_cap_window_s` (0: no cap); over it a push
    is skipped (`frequency_cap`)."""

    push_cap_window_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    """Rolling window of the frequency cap."""

    push_quiet_start: time | None = time(22, 0)
    """Start of the quiet hours in the user's time zone (e.g. `22:00`); unset: none. A push due
    inside them is held to their end, not dropped."""

    push_quiet_end: time | None = time(8, 0)
    """End of the quiet hours in the user's time zone (e.g. `08:00`)."""

    default_timezone: str = "UTC"
    """IANA time zone of users whose `timezone` is unset (or not a known zone)."""

    push_rate_limit_per_s: int = Field(default=100, ge=0)
    """Most webhook requests per second over all dispatchers (counted in Redis when
    configured, per process otherwise); 0: unlimited. Pushes over it wait for the next
    second."""

    push_min_history: int = Field(default=3, ge=1)
    """Fewest events (of items the model knows) for a predicted time; users with fewer, and
    every user when the model has no ToI module, get the fallback delay."""

    push_fallback_delay_s: float = Field(default=24 * 3600.0, gt=0)
    """Fallback: the push is due this long after the user's last event."""

    push_timing: Literal["toi", "tpp_median", "tpp_window", "fixed", "user_median"] = "toi"
    """When a push is due (`pasrec/service/push/timing.py`): the model's time of interest, the tpp
    head's median, the start of the span of `push_target_window_s` in which the tpp head
    most expects the user back, a fixed interval after the last event, or the user's median
    gap. The last two exist to compare schedules in `pasrec replay`."""

    push_target_window_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    """With `push_timing=tpp_window`: how soon after a push the user should come back for the
    push to count as timely; the push goes out when that is most likely."""

    push_fixed_interval_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    """With `push_timing=fixed`: the push is due this long after the user's last event."""

    push_active_window_s: float = Field(default=1800.0, ge=0)
    """No push to a user whose last event is this recent at the due time (`user_active`)."""

    push_horizon_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    """No push due later than this after the user's last event (`beyond_horizon`)."""

    push_min_return_probability: float = Field(default=0.05, ge=0, le=1)
    """With a tpp head: no push when P(return within the horizon) is below this
    (`low_return_probability`). Read at the head's nearest horizon at or above
    `push_horizon_s` (1, 7 or 30 days; 30 beyond that). 0: never skip."""

    push_min_timely_probability: float = Field(default=0.0, ge=0, le=1)
    """With `push_timing=tpp_window`: no push when the tpp head gives it less than this
    probability of being timely, i.e. of the user coming back within `push_target_window_s`
    of it, given not before it (`low_timely_probability`). 0: never skip."""

    @field_validator(
        "push_webhook_url",
        "push_webhook_secret",
        "push_quiet_start",
        "push_quiet_end",
        mode="before",
    )
    @classmethod
    def _empty_push_is_unset(cls, value: object) -> object:
        return value or None

    @field_validator("push_webhook_secret")
    @classmethod
    def _secret_format(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            signing_key(value)
        return value

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _push_consistent(self) -> Self:
        if self.push_webhook_url and self.push_webhook_secret is None:
            raise ValueError("push_webhook_url needs push_webhook_secret (whsec_<base64>)")
        if self.push_lease_s < 2 * self.push_webhook_timeout_s:
            raise ValueError(
                "push_lease_s must exceed push_webhook_timeout_s: it must be at least twice as "
                "long, so an attempt always ends inside its lease"
            )
        if (self.push_quiet_start is None) != (self.push_quiet_end is None):
            raise ValueError("set both push_quiet_start and push_quiet_end, or neither")
        return self

    @property
    def push_enabled(self) -> bool:
        return self.push_webhook_url is not None


ENV_PREFIX = "PASREC_"


def environment_without_settings(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default: this process's) without any `PASREC_*` setting: for a child
    process that must configure itself from scratch, not inherit this one's service. Names
    are matched without case, as the settings read them."""
    source = os.environ if environ is None else environ
    return {k: v for k, v in source.items() if not k.upper().startswith(ENV_PREFIX)}


class Settings(BaseSettings, PushSettings):
    """Service settings; each field maps to the environment variable `PASREC_<FIELD>`.

    The push fields come from `PushSettings`; `Settings` adds storage, model, API, auth,
    logging and the worker's metrics port.
    """

    # Errors name the setting but never echo its value: secrets and URLs with passwords
    # would end up in logs.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        extra="ignore",
        use_attribute_docstrings=True,
        hide_input_in_errors=True,
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

    toi_model_path: Path | None = None
    """A second checkpoint that answers every next-time question (decoded ToI, tpp
    quantiles, return probability: `/toi`, `/recommend`'s next time, push scheduling) while
    the items still come from `model_path`. For pairing the clock of one model with the
    ranking of another when measured better. It must have a ToI module."""

    model_dir: Path | None = None
    """The directory inside which `POST /v1/admin/model/reload` may load a checkpoint named in
    its body (`path`, `toi_path`; relative paths are read from here). Unset: a reload can only
    load `model_path` and `toi_model_path` again."""

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

    max_batch_events: int = Field(default=1000, gt=0, le=20_000)
    """Most events accepted in one `POST /v1/events` (at most 20,000: a batch is one
    transaction and one request, and the tests prove the largest allowed one is stored)."""

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

    # --- worker --------------------------------------------------------------------------
    worker_metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """Port on which `pasrec worker` serves Prometheus `/metrics`; unset: none."""

    @field_validator("database_url")
    @classmethod
    def _empty_url_is_unset(cls, value: str | None) -> str | None:
        # docker-compose passes unset variables as empty strings.
        return value or None

    @field_validator("model_dir", mode="before")
    @classmethod
    def _empty_dir_is_unset(cls, value: object) -> object:
        return value or None

    @field_validator("redis_url")
    @classmethod
    def _empty_redis_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("worker_metrics_port", mode="before")
    @classmethod
    def _empty_port_is_unset(cls, value: object) -> object:
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


def signing_key(secret: SecretStr) -> bytes:
    """The HMAC key of a Standard Webhooks secret `whsec_<base64>`."""
    text = secret.get_secret_value()
    if not text.startswith("whsec_"):
        raise ValueError("push_webhook_secret must look like whsec_<base64>")
    try:
        key = base64.b64decode(text.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("push_webhook_secret: the part after whsec_ is not base64") from None
    if not 24 <= len(key) <= 64:
        raise ValueError("push_webhook_secret must hold 24 to 64 bytes (whsec_ + base64)")
    return key
