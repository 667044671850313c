"""The history cache (in-process and Redis), and that Redis losing its data loses no history."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from service_helpers import LiveServer, event, free_port, make_keys, read_slice

from pasrec.service.cache import CachedEvent, HistoryCache, MemoryHistoryCache, RedisHistoryCache
from pasrec.service.settings import Settings


@pytest.fixture(params=["memory", "redis"])
def cache(request: pytest.FixtureRequest) -> Iterator[HistoryCache]:
    if request.param == "memory":
        yield MemoryHistoryCache(max_users=100)
        return
    url = request.getfixturevalue("redis_available")
    prefix = f"pasrec-test:{uuid.uuid4().hex[:10]}:"
    cache = RedisHistoryCache(url, prefix, ttl_s=60)
    yield cache
    cache.close()
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def ev(i: int, ts: float | None = None, item: str | None = None) -> CachedEvent:
    return CachedEvent(ts if ts is not None else 1000.0 + i, i, item or f"item{i}")


def test_miss_until_filled(cache: HistoryCache) -> None:
    assert cache.get("u", 5) is None
    cache.append({"u": [ev(1)]}, 5)
    assert cache.get("u", 5) is None  # partial entries are never served
    cache.fill("u", [ev(0), ev(1)], {"item0", "item1", "old"}, 5)
    got = cache.get("u", 5)
    assert got is not None
    assert got.events == [ev(0), ev(1)]
    assert got.seen == {"item0", "item1", "old"}


def test_bounded_to_length_but_seen_is_complete(cache: HistoryCache) -> None:
    cache.fill("u", [], set(), 3)
    cache.append({"u": [ev(i) for i in range(6)]}, 3)
    got = cache.get("u", 3)
    assert got is not None
    assert [e.id for e in got.events] == [3, 4, 5]
    assert got.seen == {f"item{i}" for i in range(6)}
    # A longer history than was cached is a miss (rebuilt from the database).
    assert cache.get("u", 4) is None


def test_ordering_by_time_then_id(cache: HistoryCache) -> None:
    cache.fill("u", [ev(5, ts=2000.0)], {"item5"}, 10)
    cache.append({"u": [ev(7, ts=1500.0), ev(6, ts=2000.0), ev(9, ts=1500.0)]}, 10)
    got = cache.get("u", 10)
    assert got is not None
    assert [e.id for e in got.events] == [7, 9, 5, 6]


def test_rebuild_racing_with_ingestion_keeps_both(cache: HistoryCache) -> None:
    # The rebuild read the database before event 2 committed; ingestion wrote it first.
    cache.append({"u": [ev(2)]}, 10)
    cache.fill("u", [ev(0), ev(1)], {"item0", "item1"}, 10)
    got = cache.get("u", 10)
    assert got is not None
    assert [e.id for e in got.events] == [0, 1, 2] and "item2" in got.seen


def test_memory_cache_evicts_least_recent_users() -> None:
    cache = MemoryHistoryCache(max_users=2)
    for user in ("a", "b"):
        cache.fill(user, [ev(1)], {"item1"}, 5)
    cache.get("a", 5)
    cache.fill("c", [ev(1)], {"item1"}, 5)
    assert cache.get("b", 5) is None
    assert cache.get("a", 5) is not None and cache.get("c", 5) is not None


def test_unreachable_redis_reads_as_a_miss() -> None:
    cache = RedisHistoryCache(f"redis://127.0.0.1:{free_port()}/0", "x:", ttl_s=60)
    cache.append({"u": [ev(1)]}, 5)
    cache.fill("u", [ev(1)], {"item1"}, 5)
    assert cache.get("u", 5) is None
    assert cache.ping() is False


class OwnRedis:
    """A redis-server process of this test alone, so it may be flushed and restarted."""

    def __init__(self, tmp: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary, self.tmp, self.port = binary, tmp, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.tmp)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def keys(self) -> list[bytes]:
        client = redis.Redis.from_url(self.url)
        try:
            return list(client.scan_iter())
        finally:
            client.close()


@pytest.mark.parametrize("backend", ["postgres+redis"])
@pytest.mark.parametrize("loss", ["flush", "restart"])
def test_redis_losing_its_data_loses_no_history(
    settings: Settings, tmp_path: Path, data_slice: Path, loss: str
) -> None:
    own = OwnRedis(tmp_path)
    own.start()
    settings.redis_url = own.url
    keys = make_keys(settings)
    history = read_slice(data_slice)["3"][:30]
    first, second = history[:20], history[20:]
    try:
        with LiveServer(settings) as url, httpx.Client(base_url=url, timeout=30) as http:

            def post(events: list[tuple[str, float]]) -> None:
                body = {"events": [event("u3", item, ts) for item, ts in events]}
                http.post("/v1/events", json=body, headers=keys.ingest).raise_for_status()

            def recommend() -> dict:
                response = http.get("/v1/recommend/u3?k=10", headers=keys.read)
                response.raise_for_status()
                return response.json()

            post(first)
            before = recommend()
            assert own.keys(), "the history should be cached in Redis"
            if loss == "flush":
                redis.Redis.from_url(own.url).flushall()
            else:
                own.stop()
                own.start()
            assert own.keys() == []
            rebuilt = recommend()
            assert own.keys(), "the miss should have refilled Redis from the database"
            assert (
                rebuilt["items"] == before["items"] and rebuilt["next_time"] == before["next_time"]
            )
            post(second)
            after = recommend()
            toi = http.get("/v1/users/u3/toi", headers=keys.read).json()
        assert toi["last_event_at"].startswith(
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(max(ts for _, ts in history)))
        )
        seen = {item for item, _ in history}
        assert not {i["item_id"] for i in after["items"]} & seen
        assert after["items"] != before["items"]
    finally:
        own.stop()
