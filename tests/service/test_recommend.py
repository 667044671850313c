"""GET /v1/recommend and GET /v1/users/{id}/toi against a real tiny checkpoint."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from service_helpers import Clock, Keys, event, make_keys, read_slice, row_count

from pasrec.model.predictor import Predictor
from pasrec.service.app import create_app
from pasrec.service.settings import Settings


@pytest.fixture(scope="module")
def user_history(data_slice: Path) -> list[tuple[str, float]]:
    """A real user of the slice with a long history (longer than the model's L=10)."""
    users = read_slice(data_slice)
    return users["1"][:40]


def ingest_history(client: TestClient, keys: Keys, user: str, history) -> None:
    events = [event(user, item, ts, f"{user}-{i}") for i, (item, ts) in enumerate(history)]
    response = client.post("/v1/events", json={"events": events}, headers=keys.ingest)
    assert response.status_code == 200, response.text


def test_personalised_top_k_excludes_everything_seen(
    client: TestClient, keys: Keys, user_history, checkpoint: Path
) -> None:
    ingest_history(client, keys, "alice", user_history)
    response = client.get("/v1/recommend/alice?k=7", headers=keys.read)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["fallback"] is None
    assert len(body["items"]) == 7
    recommended = {i["item_id"] for i in body["items"]}
    # Seen items include those older than the model's window of 10.
    assert not recommended & {item for item, _ in user_history}
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    predictor = Predictor.load(checkpoint, device="cpu")
    assert body["model_version"] == predictor.version
    next_time = body["next_time"]
    assert next_time is not None
    assert next_time["unix"] >= user_history[-1][1] - 86400
    assert set(next_time["quantiles"]) == {"0.1", "0.25", "0.5", "0.75", "0.9"}
    assert all(0.0 <= p <= 1.0 for p in next_time["p_within_days"].values())
    # The tpp_window time: from the day after the last event's day on, within the horizon.
    window = datetime.fromisoformat(next_time["window_start"]).timestamp()
    last_midnight = user_history[-1][1] // 86400 * 86400
    assert last_midnight + 86400 <= window <= last_midnight + 365 * 86400
    assert window % 86400 == 0
    assert 0.0 <= next_time["p_timely"] <= 1.0


def test_exclude_seen_false_matches_the_model(
    client: TestClient, keys: Keys, user_history, checkpoint: Path
) -> None:
    ingest_history(client, keys, "bob", user_history)
    response = client.get("/v1/recommend/bob?k=20&exclude_seen=false", headers=keys.read)
    assert response.status_code == 200
    got = [i["item_id"] for i in response.json()["items"]]
    predictor = Predictor.load(checkpoint, device="cpu")
    expected = predictor.recommend([user_history[-predictor.history_length :]], k=20)[0]
    assert got == [item for item, _ in expected]


def test_at_is_used_and_echoed(client: TestClient, keys: Keys, user_history) -> None:
    ingest_history(client, keys, "carol", user_history)
    later = user_history[-1][1] + 30 * 86400
    as_text = datetime.fromtimestamp(later, UTC).isoformat()
    by_unix = client.get(f"/v1/recommend/carol?at={later}", headers=keys.read).json()
    by_text = client.get("/v1/recommend/carol", params={"at": as_text}, headers=keys.read).json()
    assert by_unix["at"] == by_text["at"] == as_text.replace("+00:00", "Z")
    assert by_unix["items"] == by_text["items"]


def test_unknown_user_gets_flagged_popularity_and_nothing_is_written(
    client: TestClient, keys: Keys, settings: Settings, checkpoint: Path
) -> None:
    response = client.get("/v1/recommend/nobody?k=5", headers=keys.read)
    assert response.status_code == 200
    body = response.json()
    assert body["fallback"] == "popularity"
    assert "unknown user" in body["fallback_reason"]
    predictor = Predictor.load(checkpoint, device="cpu")
    assert [i["item_id"] for i in body["items"]] == [i for i, _ in predictor.popular(5)]
    assert body["next_time"] is None
    assert row_count(settings, "users") == 0


def test_user_with_only_unknown_items_gets_fallback_without_seen_items(
    client: TestClient, keys: Keys, checkpoint: Path
) -> None:
    predictor = Predictor.load(checkpoint, device="cpu")
    top = predictor.popular(1)[0][0]
    events = [event("dave", "brand-new", 1e9, "d1")]
    client.post("/v1/events", json={"events": events}, headers=keys.ingest)
    body = client.get("/v1/recommend/dave?k=3", headers=keys.read).json()
    assert body["fallback"] == "popularity"
    assert "known to the model" in body["fallback_reason"]
    assert [i["item_id"] for i in body["items"]] == [i for i, _ in predictor.popular(3)]
    # Once the user has seen the most popular item, the fallback leaves it out.
    client.post("/v1/events", json={"events": [event("erin", "x", 1e9)]}, headers=keys.ingest)
    client.post("/v1/events", json={"events": [event("erin", top, 1e9 + 1)]}, headers=keys.ingest)
    erin = client.get("/v1/recommend/erin?k=3", headers=keys.read).json()
    assert erin["fallback"] is None
    assert top not in [i["item_id"] for i in erin["items"]]


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("k=0", "query.k"),
        ("k=101", "query.k"),
        ("k=ten", "query.k"),
        ("at=soon", "query.at"),
        ("at=-5", "query.at"),
        ("exclude_seen=maybe", "query.exclude_seen"),
    ],
)
def test_bad_parameters(client: TestClient, keys: Keys, query: str, loc: str) -> None:
    response = client.get(f"/v1/recommend/someone?{query}", headers=keys.read)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["details"][0]["loc"] == loc
    assert error["message"].startswith(loc)


def test_oversized_user_id(client: TestClient, keys: Keys) -> None:
    response = client.get("/v1/recommend/" + "u" * 129, headers=keys.read)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == "path.user_id"


def test_time_of_interest(client: TestClient, keys: Keys, user_history) -> None:
    ingest_history(client, keys, "fay", user_history)
    body = client.get("/v1/users/fay/toi", headers=keys.read).json()
    assert body["reason"] is None
    quantiles = body["next_time"]["quantiles"]
    ordered = [quantiles[q] for q in ("0.1", "0.25", "0.5", "0.75", "0.9")]
    assert ordered == sorted(ordered)
    missing = client.get("/v1/users/ghost/toi", headers=keys.read)
    assert missing.status_code == 404
    assert "ghost" in missing.json()["error"]["message"]


def test_no_model_loaded_is_503_and_not_ready(base_settings: Settings, clock: Clock) -> None:
    keys = make_keys(base_settings)
    with TestClient(create_app(base_settings, clock)) as client:
        response = client.get("/v1/recommend/alice", headers=keys.read)
        assert response.status_code == 503
        assert "no model is loaded" in response.json()["error"]["message"]
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["model"] == "not loaded"
        # Ingestion still works without a model; every item counts as unknown.
        accepted = client.post(
            "/v1/events", json={"events": [event("a", "50", 1e9)]}, headers=keys.ingest
        ).json()
        assert accepted["accepted"] == 1 and accepted["unknown_items"] == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_engine_uses_the_gpu_when_present(
    settings: Settings, clock: Clock, user_history, checkpoint: Path
) -> None:
    settings.device = "auto"
    keys = make_keys(settings)
    with TestClient(create_app(settings, clock)) as client:
        assert client.app.state.ctx.inference.current.predictor.device.type == "cuda"
        ingest_history(client, keys, "gpu", user_history)
        body = client.get("/v1/recommend/gpu?k=5", headers=keys.read).json()
    assert body["fallback"] is None and len(body["items"]) == 5
    assert not {i["item_id"] for i in body["items"]} & {i for i, _ in user_history}
