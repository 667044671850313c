"""The global webhook rate limit: a fixed one-second window shared by every dispatcher.

Windows are numbered by the service clock's second, so a simulation that drives the clock
sees the same limit as production. With Redis all processes share one counter; without it
(the embedded single-process deployment) a counter in memory is enough.
"""

from __future__ import annotations

import logging
import math
import threading
from datetime import datetime
from typing import Protocol

import redis

log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    def acquire(self, now: datetime) -> bool:
        """Take one request from the window holding `now`; False when it is used up."""

    def close(self) -> None: ...


class Unlimited:
    def acquire(self, now: datetime) -> bool:
        return True

    def close(self) -> None:
        pass


class MemoryRateLimiter:
    def __init__(self, per_second: int) -> None:
        self._limit = per_second
        self._window = -1
        self._used = 0
        self._lock = threading.Lock()

    def acquire(self, now: datetime) -> bool:
        window = math.floor(now.timestamp())
        with self._lock:
            if window != self._window:
                self._window, self._used = window, 0
            if self._used >= self._limit:
                return False
            self._used += 1
            return True

    def close(self) -> None:
        pass


class RedisRateLimiter:
    def __init__(self, url: str, prefix: str, per_second: int) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = f"{prefix}push-rate:"
        self._limit = per_second
        # Used while Redis is unreachable: each process then limits itself, which protects
        # the receiver less than the shared counter but keeps pushes flowing.
        self._local = MemoryRateLimiter(per_second)

    def acquire(self, now: datetime) -> bool:
        key = f"{self._prefix}{math.floor(now.timestamp())}"
        try:
            pipe = self._client.pipeline()
            pipe.incr(key)
            pipe.expire(key, 10)
            used, _ = pipe.execute()
        except redis.RedisError as exc:
            log.warning("rate limit: Redis unavailable (%s); limiting per process", exc)
            return self._local.acquire(now)
        return int(used) <= self._limit

    def close(self) -> None:
        self._client.close()


def make_rate_limiter(per_second: int, redis_url: str | None, redis_prefix: str) -> RateLimiter:
    """The limiter for `push_rate_limit_per_s` (0: none), shared through the service's Redis
    when it has one."""
    if per_second == 0:
        return Unlimited()
    if redis_url is None:
        return MemoryRateLimiter(per_second)
    return RedisRateLimiter(redis_url, redis_prefix, per_second)
