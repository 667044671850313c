"""Eight concurrent clients posting overlapping batches over real HTTP."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa
from service_helpers import LiveServer, event, make_keys, read_slice

from pasrec.model.predictor import Predictor
from pasrec.service.settings import Settings

CLIENTS = 8
EVENTS = 600
BATCH = 50


def test_overlapping_batches_lose_and_duplicate_nothing(settings: Settings) -> None:
    keys = make_keys(settings)
    # 600 distinct events over 40 users; every client posts all of them, shuffled into its
    # own batches, so each event arrives 8 times, often at the same moment.
    universe = [
        event(f"user{i % 40}", str(1 + i % 97), 1_000_000_000 + i * 37, f"ev-{i}")
        for i in range(EVENTS)
    ]
    totals = {"accepted": 0, "duplicates": 0}
    errors: list[str] = []
    lock = threading.Lock()

    def client(seed: int, url: str) -> None:
        events = universe[:]
        random.Random(seed).shuffle(events)
        with httpx.Client(base_url=url, headers=keys.ingest, timeout=60) as http:
            for start in range(0, EVENTS, BATCH):
                response = http.post("/v1/events", json={"events": events[start : start + BATCH]})
                with lock:
                    if response.status_code != 200:
                        errors.append(response.text)
                        continue
                    body = response.json()
                    totals["accepted"] += body["accepted"]
                    totals["duplicates"] += body["duplicates"]

    with LiveServer(settings) as url:
        threads = [threading.Thread(target=client, args=(s, url)) for s in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with httpx.Client(base_url=url, headers=keys.read) as http:
            recent = http.get("/v1/users/user7/toi").json()

    assert errors == []
    assert totals == {"accepted": EVENTS, "duplicates": EVENTS * (CLIENTS - 1)}
    engine = sa.create_engine(settings.effective_database_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*), count(DISTINCT event_id) FROM interactions"))
        assert tuple(rows.one()) == (EVENTS, EVENTS)
        users = conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one()
    engine.dispose()
    assert users == 40
    last_of_user7 = max(e["timestamp"] for e in universe if e["user_id"] == "user7")
    # Served from the cache, which concurrent ingestion must have kept complete.
    expected = datetime.fromtimestamp(last_of_user7, UTC).isoformat().replace("+00:00", "Z")
    assert recent["last_event_at"] == expected


def test_concurrent_recommendations_share_model_calls(
    settings: Settings, data_slice: Path, checkpoint: Path
) -> None:
    settings.batch_wait_ms = 20.0
    keys = make_keys(settings)
    users = read_slice(data_slice)
    chosen = [str(u) for u in range(1, 9)]
    results: dict[str, list[list[str]]] = {u: [] for u in chosen}
    barrier = threading.Barrier(len(chosen))

    with LiveServer(settings) as url:
        body = {"events": [event(u, i, t) for u in chosen for i, t in users[u][:15]]}
        httpx.post(f"{url}/v1/events", json=body, headers=keys.ingest).raise_for_status()

        def client(user: str) -> None:
            with httpx.Client(base_url=url, headers=keys.read, timeout=60) as http:
                for _ in range(5):
                    barrier.wait()
                    response = http.get(f"/v1/recommend/{user}?k=5&exclude_seen=false")
                    response.raise_for_status()
                    results[user].append([i["item_id"] for i in response.json()["items"]])

        threads = [threading.Thread(target=client, args=(u,)) for u in chosen]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        metrics = httpx.get(f"{url}/metrics").text

    for user in chosen:
        assert all(len(set(r)) == 5 for r in results[user])
    calls = _metric(metrics, "pasrec_inference_batch_size_count")
    answered = _metric(metrics, "pasrec_inference_batch_size_sum")
    assert answered == 40 and calls < 40


def test_batched_answer_is_the_single_answer(checkpoint: Path, data_slice: Path) -> None:
    # The engine batches unrelated users; each must get what the model gives them alone.
    predictor = Predictor.load(checkpoint, device="cpu")
    users = read_slice(data_slice)
    histories = [users[str(u)][:15] for u in range(1, 9)]
    batched = predictor.recommend(histories, k=5)
    alone = [predictor.recommend([h], k=5)[0] for h in histories]
    assert [[i for i, _ in r] for r in batched] == [[i for i, _ in r] for r in alone]


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} missing")
