"""Model reload: swapping checkpoints (of different model classes) without dropping requests."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from service_helpers import Clock, Keys, LiveServer, event, make_keys, read_slice

from pasrec.model.predictor import Predictor
from pasrec.service.app import create_app
from pasrec.service.settings import Settings


def test_reload_to_another_model_class_and_back(
    client: TestClient, keys: Keys, settings: Settings, checkpoint: Path, checkpoint_no_toi: Path
) -> None:
    pasrec = Predictor.load(checkpoint, device="cpu").version
    other = Predictor.load(checkpoint_no_toi, device="cpu").version
    client.post("/v1/events", json={"events": [event("u", "50", 1e9)]}, headers=keys.ingest)

    response = client.post(
        "/v1/admin/model/reload", json={"path": str(checkpoint_no_toi)}, headers=keys.admin
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "model_version": other,
        "model_name": "preferdiff",
        "previous_version": pasrec,
        "path": str(checkpoint_no_toi),
        "toi_path": None,
    }
    recommended = client.get("/v1/recommend/u?k=3", headers=keys.read).json()
    assert recommended["model_version"] == other
    assert recommended["next_time"] is None and len(recommended["items"]) == 3
    toi = client.get("/v1/users/u/toi", headers=keys.read).json()
    assert toi["next_time"] is None and "no time-of-interest module" in toi["reason"]

    # No body: back to PASREC_MODEL_PATH.
    back = client.post("/v1/admin/model/reload", headers=keys.admin)
    assert back.status_code == 200 and back.json()["model_version"] == pasrec
    metrics = client.get("/metrics").text
    assert f'pasrec_model_info{{model="pasrec",version="{pasrec}"}} 1.0' in metrics
    assert other not in metrics
    engine = sa.create_engine(settings.effective_database_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT version, model_name FROM model_versions"))
        served = {version: name for version, name in rows}
    engine.dispose()
    assert served == {pasrec: "pasrec", other: "preferdiff"}


def test_items_of_one_checkpoint_with_the_next_times_of_another(
    client: TestClient, keys: Keys, settings: Settings, checkpoint: Path, checkpoint_no_toi: Path
) -> None:
    """PreferDiff ranks, PASRec's tpp head tells the time: every answer about items is the
    first checkpoint's, every answer about time the second's."""
    ranker = Predictor.load(checkpoint_no_toi, device="cpu")
    clock = Predictor.load(checkpoint, device="cpu")
    history = [("50", 1e9), ("172", 1e9 + 86400.0), ("133", 1e9 + 3 * 86400.0)]
    events = [event("u", item, ts) for item, ts in history]
    client.post("/v1/events", json={"events": events}, headers=keys.ingest).raise_for_status()

    paired = client.post(
        "/v1/admin/model/reload",
        json={"path": str(checkpoint_no_toi), "toi_path": str(checkpoint)},
        headers=keys.admin,
    )
    assert paired.status_code == 200, paired.text
    assert paired.json()["model_version"] == f"{ranker.version}+toi.{clock.version}"
    assert paired.json()["model_name"] == "preferdiff+toi:pasrec"
    assert paired.json()["toi_path"] == str(checkpoint)

    body = client.get("/v1/recommend/u?k=5", headers=keys.read).json()
    expected_items = ranker.recommend([history], 5, exclude=[{i for i, _ in history}])[0]
    assert [entry["item_id"] for entry in body["items"]] == [i for i, _ in expected_items]
    expected_time = clock.predict_next_time([history])[0]
    assert expected_time is not None and expected_time.quantiles is not None
    toi = client.get("/v1/users/u/toi", headers=keys.read).json()
    assert toi["next_time"]["time"] == body["next_time"]["time"]
    assert toi["next_time"]["unix"] == pytest.approx(expected_time.time)
    assert toi["next_time"]["quantiles"], "the tpp head of the ToI checkpoint answers"

    # A ToI checkpoint without a ToI module is refused by name; the pair keeps serving.
    refused = client.post(
        "/v1/admin/model/reload",
        json={"path": str(checkpoint), "toi_path": str(checkpoint_no_toi)},
        headers=keys.admin,
    )
    assert refused.status_code == 422, refused.text
    message = refused.json()["error"]["message"]
    assert str(checkpoint_no_toi) in message and "no time-of-interest module" in message
    kept = client.get("/v1/recommend/u?k=5", headers=keys.read).json()
    assert kept["model_version"] == paired.json()["model_version"]

    # PASREC_TOI_MODEL_PATH is the default of a reload without a body.
    settings.toi_model_path = checkpoint
    again = client.post("/v1/admin/model/reload", headers=keys.admin).json()
    assert again["model_version"] == f"{clock.version}+toi.{clock.version}"


def test_bad_checkpoints_are_refused_and_the_old_model_keeps_serving(
    client: TestClient, keys: Keys, checkpoint: Path, tmp_path: Path
) -> None:
    version = Predictor.load(checkpoint, device="cpu").version
    tampered = tmp_path / "tampered"
    shutil.copytree(checkpoint, tampered)
    weights = tampered / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-100:] = bytes(100)
    weights.write_bytes(bytes(data))
    for path in (tampered, tmp_path / "missing"):
        response = client.post(
            "/v1/admin/model/reload", json={"path": str(path)}, headers=keys.admin
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_checkpoint" and str(path) in error["message"]
    body = client.get("/v1/recommend/u", headers=keys.read).json()
    assert body["model_version"] == version


def test_reload_under_load_drops_nothing(
    settings: Settings, checkpoint: Path, checkpoint_no_toi: Path, data_slice: Path
) -> None:
    keys = make_keys(settings)
    history = read_slice(data_slice)["2"][:20]
    events = [event("u2", item, ts) for item, ts in history]
    failures: list[str] = []
    answered: dict[str, int] = {}
    stop = threading.Event()

    with LiveServer(settings) as url:
        httpx.post(
            f"{url}/v1/events", json={"events": events}, headers=keys.ingest
        ).raise_for_status()

        def hammer() -> None:
            with httpx.Client(base_url=url, headers=keys.read, timeout=30) as http:
                while not stop.is_set():
                    response = http.get("/v1/recommend/u2?k=5")
                    if response.status_code != 200:
                        failures.append(response.text)
                        continue
                    version = response.json()["model_version"]
                    answered[version] = answered.get(version, 0) + 1

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for thread in threads:
            thread.start()
        reloads = 0
        with httpx.Client(base_url=url, headers=keys.admin, timeout=60) as admin:
            # Keep swapping until plenty of requests have been answered around the swaps.
            while reloads < 4 or sum(answered.values()) < 40:
                path = (checkpoint_no_toi, checkpoint)[reloads % 2]
                admin.post("/v1/admin/model/reload", json={"path": str(path)}).raise_for_status()
                reloads += 1
                time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert len(answered) == 2


def _reload(client: TestClient, keys: Keys, path: str) -> tuple[int, dict]:
    response = client.post("/v1/admin/model/reload", json={"path": path}, headers=keys.admin)
    return response.status_code, response.json()


def _without_incident(message: str, path: str) -> str:
    return message.replace(repr(path), "<path>").rsplit("(incident", 1)[0]


def test_reload_paths_stay_inside_the_model_dir_and_errors_reveal_no_paths(
    settings: Settings, clock: Clock, checkpoint: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(checkpoint, models / "good")
    (models / "broken").mkdir()
    (models / "broken" / "config.json").write_text("{}")
    shutil.copytree(checkpoint, tmp_path / "outside")
    (models / "link").symlink_to(tmp_path / "outside")
    settings.model_dir = models
    keys = make_keys(settings)
    with TestClient(create_app(settings, clock)) as client:
        status, body = _reload(client, keys, "good")
        assert status == 200, body
        assert body["path"] == str((models / "good").resolve())

        # Outside: an existing checkpoint and a path that does not exist answer alike.
        refused = {}
        for path in (str(tmp_path / "outside"), "../outside", "link", "/no/such/dir", "a\x00b"):
            status, body = _reload(client, keys, path)
            assert status == 422 and body["error"]["code"] == "path_not_allowed", (path, body)
            refused[path] = body["error"]["message"]
        assert set(refused.values()) == {"body.path: the path is not inside PASREC_MODEL_DIR"}

        # Inside: missing, broken and tampered differ only in the path they echo.
        tampered = models / "tampered"
        shutil.copytree(checkpoint, tampered)
        (tampered / "vocab.json").write_text((tampered / "vocab.json").read_text() + " ")
        messages = set()
        for path in ("missing", "broken", "tampered"):
            status, body = _reload(client, keys, path)
            assert status == 422 and body["error"]["code"] == "invalid_checkpoint", body
            assert str(models) not in body["error"]["message"]
            messages.add(_without_incident(body["error"]["message"], path))
        assert len(messages) == 1
        assert client.get("/readyz").status_code == 200


def test_without_a_model_dir_only_the_configured_checkpoints_reload(
    settings: Settings, clock: Clock, checkpoint: Path
) -> None:
    settings.model_dir = None
    keys = make_keys(settings)
    with TestClient(create_app(settings, clock)) as client:
        status, body = _reload(client, keys, str(checkpoint))
        assert status == 422 and "PASREC_MODEL_DIR" in body["error"]["message"]
        assert body["error"]["details"][0]["loc"] == "body.path"
        assert client.post("/v1/admin/model/reload", headers=keys.admin).status_code == 200
