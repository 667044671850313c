"""Per-user recent-history cache: Redis when configured, in-process otherwise.

The cache is never the system of record. Each user's entry holds the latest events (bounded
to the model's history length) plus every item the user has seen, and a *completeness marker*
written only by a rebuild from the database. Ingestion adds events whether or not the entry
exists, so a rebuild racing with ingestion ends up with the union of both; an entry without
the marker (after a flush, a restart, an eviction, or built for a shorter history than now
needed) reads as a miss and is rebuilt from the database.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import redis

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class CachedEvent:
    """One interaction; ordering is chronological, ties broken by database id."""

    ts: float
    id: int
    item_id: str


@dataclass(frozen=True)
class CachedHistory:
    events: list[CachedEvent]
    """Chronological, at most the requested length."""
    seen: frozenset[str]
    """Every item the user ever interacted with (not only the recent ones)."""


class HistoryCache(Protocol):
    def get(self, user_id: str, length: int) -> CachedHistory | None:
        """The cached history, or None when absent or not known to be complete."""

    def fill(
        self, user_id: str, events: list[CachedEvent], seen: Iterable[str], length: int
    ) -> None:
        """Store a history just read from the database and mark it complete."""

    def append(self, new_events: Mapping[str, list[CachedEvent]], length: int) -> None:
        """Add committed events, per user."""

    def ping(self) -> bool: ...

    def close(self) -> None: ...


@dataclass
class _Entry:
    events: list[CachedEvent] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    complete_for: int | None = None


class MemoryHistoryCache:
    """In-process cache for the embedded single-process deployment (LRU over users)."""

    def __init__(self, max_users: int) -> None:
        self._max_users = max_users
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, user_id: str, length: int) -> CachedHistory | None:
        with self._lock:
            entry = self._entries.get(user_id)
            if entry is None or entry.complete_for is None or entry.complete_for < length:
                return None
            self._entries.move_to_end(user_id)
            return CachedHistory(entry.events[-length:], frozenset(entry.seen))

    def fill(
        self, user_id: str, events: list[CachedEvent], seen: Iterable[str], length: int
    ) -> None:
        with self._lock:
            entry = self._touch(user_id)
            self._merge(entry, events, length)
            entry.seen.update(seen)
            entry.complete_for = length

    def append(self, new_events: Mapping[str, list[CachedEvent]], length: int) -> None:
        with self._lock:
            for user_id, events in new_events.items():
                entry = self._touch(user_id)
                self._merge(entry, events, length)
                entry.seen.update(e.item_id for e in events)

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        with self._lock:
            self._entries.clear()

    def _touch(self, user_id: str) -> _Entry:
        entry = self._entries.get(user_id)
        if entry is None:
            entry = self._entries[user_id] = _Entry()
            while len(self._entries) > self._max_users:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(user_id)
        return entry

    @staticmethod
    def _merge(entry: _Entry, events: list[CachedEvent], length: int) -> None:
        merged = sorted(set(entry.events).union(events))
        entry.events = merged[-length:]
        if entry.complete_for is not None:
            # Trimmed to `length`: no longer complete for a longer history.
            entry.complete_for = min(entry.complete_for, length)


_MARKER = "~complete"
# API ids cannot hold control characters, so this never collides with an item id.
_SEEN_MARKER = "\x00complete"


class RedisHistoryCache:
    """Redis cache: a sorted set of recent events (score = unix time) and a set of seen items.

    Sorted-set members are `<zero-padded db id>|<item id>`, so events at the same second keep
    their database order. The completeness marker is a member scored +inf, so trimming keeps
    it. The history length is part of the key: a checkpoint with another length gets entries
    of its own, and the old ones age out.
    """

    def __init__(self, url: str, prefix: str, ttl_s: int) -> None:
        self._redis = redis.Redis.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=2.0, health_check_interval=30
        )
        self._prefix = prefix
        self._ttl = ttl_s

    def _keys(self, user_id: str, length: int) -> tuple[str, str]:
        return f"{self._prefix}hist:{length}:{user_id}", f"{self._prefix}seen:{user_id}"

    def get(self, user_id: str, length: int) -> CachedHistory | None:
        hist_key, seen_key = self._keys(user_id, length)
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.zrange(hist_key, 0, -1, withscores=True)
            pipe.smembers(seen_key)
            members, raw_seen = pipe.execute()
        except redis.RedisError as exc:
            log.warning("history cache unavailable, reading the database: %s", exc)
            return None
        events: list[CachedEvent] = []
        complete = False
        for raw, score in members:
            member = raw.decode()
            if member == _MARKER:
                complete = True
                continue
            db_id, item_id = member.split("|", 1)
            events.append(CachedEvent(score, int(db_id), item_id))
        seen = {s.decode() for s in raw_seen}
        # Redis may evict either key on its own, so both must carry the marker.
        if not complete or _SEEN_MARKER not in seen:
            return None
        seen.discard(_SEEN_MARKER)
        return CachedHistory(events[-length:], frozenset(seen))

    def fill(
        self, user_id: str, events: list[CachedEvent], seen: Iterable[str], length: int
    ) -> None:
        hist_key, seen_key = self._keys(user_id, length)
        try:
            pipe = self._redis.pipeline(transaction=True)
            if events:
                pipe.zadd(hist_key, {_member(e): e.ts for e in events})
            pipe.zadd(hist_key, {_MARKER: math.inf})
            pipe.sadd(seen_key, _SEEN_MARKER, *seen)
            self._trim_and_expire(pipe, hist_key, seen_key, length)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not fill the history cache for %r: %s", user_id, exc)

    def append(self, new_events: Mapping[str, list[CachedEvent]], length: int) -> None:
        if not new_events:
            return
        try:
            pipe = self._redis.pipeline(transaction=True)
            for user_id, events in new_events.items():
                hist_key, seen_key = self._keys(user_id, length)
                pipe.zadd(hist_key, {_member(e): e.ts for e in events})
                pipe.sadd(seen_key, *{e.item_id for e in events})
                self._trim_and_expire(pipe, hist_key, seen_key, length)
            pipe.execute()
        except redis.RedisError as exc:
            # The database has the events; an entry left stale here ages out with the TTL.
            log.warning("could not update the history cache: %s", exc)

    def _trim_and_expire(
        self, pipe: redis.client.Pipeline, hist_key: str, seen_key: str, length: int
    ) -> None:
        # Keep the marker (scored +inf) and the `length` most recent events.
        pipe.zremrangebyrank(hist_key, 0, -(length + 2))
        pipe.expire(hist_key, self._ttl)
        pipe.expire(seen_key, self._ttl)

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        self._redis.close()


def _member(event: CachedEvent) -> str:
    return f"{event.id:020d}|{event.item_id}"
