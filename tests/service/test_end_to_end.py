"""A real `python -m pasrec.service` (uvicorn) process on loopback, serving a checkpoint trained by
the test session on synthetic data."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from service_helpers import event, free_port, make_keys, read_slice, service_process

from pasrec.model.predictor import Predictor
from pasrec.service.settings import Settings, environment_without_settings

pytestmark = pytest.mark.slow


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    env = environment_without_settings()
    env.update(
        PASREC_HOST="127.0.0.1",
        PASREC_PORT=str(port),
        PASREC_MODEL_PATH=str(settings.model_path),
        PASREC_SQLITE_PATH=str(settings.sqlite_path),
        PASREC_DATABASE_URL=settings.database_url or "",
        PASREC_REDIS_URL=settings.redis_url or "",
        PASREC_REDIS_PREFIX=settings.redis_prefix,
    )
    log = tmp_path / "server.log"
    with service_process(env, tmp_path, log) as proc:
        yield f"http://127.0.0.1:{port}", log
    # uvicorn shuts down gracefully on SIGTERM, then exits by that signal.
    assert proc.returncode in (0, -signal.SIGTERM), log.read_text()
    assert "Application shutdown complete" in log.read_text()


def test_events_in_recommendations_out(
    server: tuple[str, Path], settings: Settings, data_slice: Path, checkpoint: Path
) -> None:
    url, log = server
    keys = make_keys(settings)
    users = read_slice(data_slice)
    chosen = ["5", "10", "42", "77", "118"]
    seen: dict[str, set[str]] = {}
    with httpx.Client(base_url=url, timeout=30) as http:
        for user in chosen:
            history = users[user][:25]
            seen[user] = {item for item, _ in history}
            # Newest first: the service must order them itself.
            body = {"events": [event(user, i, ts, f"{user}:{n}") for n, (i, ts) in
                               reversed(list(enumerate(history)))]}  # fmt: skip
            response = http.post("/v1/events", json=body, headers=keys.ingest)
            assert response.status_code == 200, response.text
            assert response.json()["accepted"] == len(history)
        version = Predictor.load(checkpoint, device="cpu").version
        for user in chosen:
            response = http.get(f"/v1/recommend/{user}", params={"k": 20}, headers=keys.read)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["fallback"] is None and body["model_version"] == version
            items = [i["item_id"] for i in body["items"]]
            assert len(items) == 20 and not set(items) & seen[user]
        stranger = http.get("/v1/recommend/nobody", headers=keys.read).json()
        assert stranger["fallback"] == "popularity"
        metrics = http.get("/metrics").text
        assert 'pasrec_events_total{outcome="accepted"} 125.0' in metrics
    assert "serving pasrec-" in log.read_text()
