"""Health, readiness, metrics, error hygiene."""

from __future__ import annotations

import re

import sqlalchemy as sa
from fastapi.testclient import TestClient
from service_helpers import Clock, Keys, event, free_port

from pasrec.service.app import create_app
from pasrec.service.settings import Settings


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert checks["database"] == "ok" and checks["cache"] == "ok"
    assert checks["model"].startswith("ok: pasrec-")


def test_readyz_reports_an_unreachable_cache(settings: Settings, clock: Clock) -> None:
    settings.redis_url = f"redis://127.0.0.1:{free_port()}/0"
    with TestClient(create_app(settings, clock)) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["cache"] == "unreachable"


def test_metrics_count_requests_events_and_inference(client: TestClient, keys: Keys) -> None:
    batch = {"events": [event("u", "50", 1e9, "a"), event("u", "nope", 1e9 + 5, "b")]}
    client.post("/v1/events", json=batch, headers=keys.ingest)
    client.post("/v1/events", json=batch, headers=keys.ingest)
    client.get("/v1/recommend/u", headers=keys.read)
    client.get("/v1/recommend/stranger", headers=keys.read)
    client.get("/v1/recommend/u", headers={})
    text = client.get("/metrics").text

    def value(pattern: str) -> float:
        match = re.search(rf"^{pattern} ([0-9.e+]+)$", text, re.MULTILINE)
        assert match, pattern
        return float(match.group(1))

    assert value(r'pasrec_events_total\{outcome="accepted"\}') == 2
    assert value(r'pasrec_events_total\{outcome="duplicate"\}') == 2
    assert value(r'pasrec_events_total\{outcome="unknown_item"\}') == 1
    route = r'method="GET",route="/v1/recommend/\{user_id\}"'
    assert value(rf'pasrec_http_requests_total\{{{route},status="200"\}}') == 2
    assert value(rf'pasrec_http_requests_total\{{{route},status="401"\}}') == 1
    assert value(rf"pasrec_http_request_seconds_count\{{{route}\}}") == 3
    assert value(r"pasrec_inference_seconds_count") >= 1
    assert value(r'pasrec_recommend_fallbacks_total\{reason="unknown_user"\}') == 1


def test_unknown_route_and_method_are_json(client: TestClient, keys: Keys) -> None:
    missing = client.get("/v2/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = client.get("/v1/events", headers=keys.ingest)
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


def test_chunked_body_over_the_limit(settings: Settings, clock: Clock, keys: Keys) -> None:
    settings.max_body_bytes = 1000

    def chunks():
        yield b'{"events": ['
        for i in range(50):
            yield (b"," if i else b"") + b'{"user_id": "u", "item_id": "i", "timestamp": 1}'
        yield b"]}"

    with TestClient(create_app(settings, clock)) as client:
        response = client.post(
            "/v1/events",
            content=chunks(),
            headers={**keys.ingest, "Content-Type": "application/json"},
        )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_openapi_documents_the_api(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/v1/events", "/v1/recommend/{user_id}", "/v1/users/{user_id}/toi"):
        assert path in spec["paths"]
    assert "/v1/admin/model/reload" in spec["paths"]
    schemes = spec["components"]["securitySchemes"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schemes)


def test_database_outage_is_a_retryable_503(client: TestClient, keys: Keys) -> None:
    # Point ingestion at a port nobody listens on: a real connection failure.
    dead = sa.create_engine(f"postgresql+psycopg://@127.0.0.1:{free_port()}/x")
    client.app.state.ctx.engine = dead
    response = client.post(
        "/v1/events", json={"events": [event("u", "50", 1e9)]}, headers=keys.ingest
    )
    dead.dispose()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "1"
