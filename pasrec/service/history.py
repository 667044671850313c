"""Users' recent histories: served from the cache, rebuilt from the database on a miss."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Engine

from pasrec.service.cache import CachedEvent, HistoryCache
from pasrec.service.storage import read_history


@dataclass(frozen=True)
class UserHistory:
    events: list[CachedEvent]
    """Chronological, at most the requested length."""
    seen: frozenset[str]

    def pairs(self) -> list[tuple[str, float]]:
        """The (item, unix seconds) form the model takes."""
        return [(e.item_id, e.ts) for e in self.events]


class HistoryStore:
    def __init__(self, engine: Engine, cache: HistoryCache) -> None:
        self._engine = engine
        self._cache = cache

    def get(self, user_id: str, length: int) -> UserHistory | None:
        """The user's history, or None when the user has no stored event."""
        cached = self._cache.get(user_id, length)
        if cached is not None:
            return UserHistory(cached.events, cached.seen)
        stored = read_history(self._engine, user_id, length)
        if stored is None:
            return None
        self._cache.fill(user_id, stored.events, stored.seen, length)
        return UserHistory(stored.events, frozenset(stored.seen))

    def committed(self, new_events: Mapping[str, list[CachedEvent]], length: int) -> None:
        """Record events that the database has committed."""
        self._cache.append(new_events, length)
