"""Everything one running service instance holds: database, cache, model, auth, metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from pasrec.service.auth import Authenticator
from pasrec.service.cache import HistoryCache, MemoryHistoryCache, RedisHistoryCache
from pasrec.service.clock import Clock
from pasrec.service.db import make_engine
from pasrec.service.history import HistoryStore
from pasrec.service.inference import InferenceEngine, LoadedModel
from pasrec.service.metrics import Metrics
from pasrec.service.migrate import ensure_schema
from pasrec.service.model_registry import record_model_version
from pasrec.service.settings import Settings

log = logging.getLogger(__name__)

# History length used for cache writes while no model is loaded.
DEFAULT_HISTORY_LENGTH = 50


@dataclass
class ServiceContext:
    settings: Settings
    engine: Engine
    cache: HistoryCache
    history: HistoryStore
    inference: InferenceEngine
    auth: Authenticator
    metrics: Metrics
    clock: Clock

    @classmethod
    def start(cls, settings: Settings, clock: Clock, metrics: Metrics) -> ServiceContext:
        engine = make_engine(settings)
        try:
            ensure_schema(engine, settings)
            cache = _make_cache(settings)
        except Exception:
            engine.dispose()
            raise
        ctx = cls(
            settings=settings,
            engine=engine,
            cache=cache,
            history=HistoryStore(engine, cache),
            inference=InferenceEngine(
                settings.device,
                settings.batch_wait_ms,
                settings.max_inference_batch,
                metrics,
                settings.push_target_window_s / 86400.0,
            ),
            auth=Authenticator(engine, settings),
            metrics=metrics,
            clock=clock,
        )
        if not settings.auth_enabled:
            log.warning("authentication is OFF (PASREC_AUTH_ENABLED=false): every endpoint is open")
        try:
            if settings.model_path is not None:
                ctx.load_model(settings.model_path, settings.toi_model_path)
            else:
                log.warning("no PASREC_MODEL_PATH: not ready until a model is reloaded")
        except Exception:
            ctx.close()
            raise
        return ctx

    def load_model(
        self, path: Path, toi_path: Path | None = None
    ) -> tuple[LoadedModel, LoadedModel | None]:
        loaded, previous = self.inference.load(path, toi_path)
        record_model_version(self.engine, loaded.predictor, path, self.clock(), toi_path)
        return loaded, previous

    def history_length(self) -> int:
        if self.inference.ready:
            return self.inference.current.predictor.history_length
        return DEFAULT_HISTORY_LENGTH

    def close(self) -> None:
        self.inference.close()
        self.cache.close()
        self.engine.dispose()


def _make_cache(settings: Settings) -> HistoryCache:
    if settings.redis_url is None:
        log.info("no PASREC_REDIS_URL: using the in-process history cache")
        return MemoryHistoryCache(settings.memory_cache_users)
    return RedisHistoryCache(settings.redis_url, settings.redis_prefix, settings.cache_ttl_s)
