"""POST /v1/events: counts, idempotency, ordering and every kind of bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from service_helpers import Clock, Keys, event, make_keys, row_count, statements

from pasrec.service.app import create_app
from pasrec.service.settings import Settings
from pasrec.service.storage import NewEvent

T0 = 1_700_000_000.0
LAST_LOCAL = "9999-12-31T23:59:59-14:00"  # a valid local time whose UTC instant overflows


def post(client: TestClient, keys: Keys, events: list[dict]) -> dict:
    response = client.post("/v1/events", json={"events": events}, headers=keys.ingest)
    assert response.status_code == 200, response.text
    return response.json()


def test_batch_is_stored_and_counted(client: TestClient, keys: Keys, settings: Settings) -> None:
    known = "50"  # a catalogue item of the synthetic log, known to the checkpoint
    body = post(
        client,
        keys,
        [
            event("u1", known, T0, "e1"),
            event("u1", "not-in-model", T0 + 60, "e2"),
            event("u2", known, "2023-11-14T22:15:00+01:00", "e3"),
        ],
    )
    assert body == {"received": 3, "accepted": 3, "duplicates": 0, "unknown_items": 1}
    assert row_count(settings, "interactions") == 3
    assert row_count(settings, "users") == 2
    assert row_count(settings, "items") == 2


def test_same_batch_twice_stores_once(client: TestClient, keys: Keys, settings: Settings) -> None:
    batch = [event("u1", "50", T0 + i, f"e{i}") for i in range(5)]
    assert post(client, keys, batch)["accepted"] == 5
    again = post(client, keys, batch)
    assert again["accepted"] == 0 and again["duplicates"] == 5
    assert row_count(settings, "interactions") == 5


def test_events_without_id_are_deduplicated_by_content(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    first = post(client, keys, [event("u1", "50", T0), event("u1", "50", T0)])
    assert first["accepted"] == 1 and first["duplicates"] == 1
    second = post(client, keys, [event("u1", "50", T0), event("u1", "50", T0 + 1)])
    assert second["accepted"] == 1 and second["duplicates"] == 1
    assert row_count(settings, "interactions") == 2


def test_reused_event_id_with_other_content_is_rejected_whole(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    post(client, keys, [event("u1", "50", T0, "e1")])
    response = client.post(
        "/v1/events",
        json={"events": [event("u9", "7", T0, "fresh"), event("u1", "51", T0, "e1")]},
        headers=keys.ingest,
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "event_id_conflict"
    assert error["details"][0]["loc"] == "body.events[1].event_id"
    assert row_count(settings, "interactions") == 1  # "fresh" was not stored either
    assert row_count(settings, "users") == 1


def test_out_of_order_events_are_accepted_and_ordered(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    post(client, keys, [event("u1", "50", T0 + 200, "late")])
    post(client, keys, [event("u1", "100", T0 + 100, "early"), event("u1", "181", T0 + 300)])
    engine = sa.create_engine(settings.effective_database_url)
    with engine.connect() as conn:
        last = conn.execute(sa.text("SELECT last_event_at FROM users")).scalar_one()
    engine.dispose()
    response = client.get("/v1/users/u1/toi", headers=keys.read)
    assert response.status_code == 200
    assert response.json()["last_event_at"] == "2023-11-14T22:18:20Z"
    assert str(last).startswith("2023-11-14 22:18:20")


BAD_BODIES = [
    ("malformed JSON", b'{"events": [', 400, "not valid JSON"),
    ("not an object", b"[1, 2]", 422, "body"),
    ("missing field", {"events": [{"user_id": "u", "timestamp": T0}]}, 422, "item_id"),
    ("extra field", {"events": [{**event("u", "i", T0), "rating": 5}]}, 422, "rating"),
    ("extra top-level field", {"events": [event("u", "i", T0)], "x": 1}, 422, "body.x"),
    ("user_id wrong type", {"events": [event(["u"], "i", T0)]}, 422, "user_id"),  # type: ignore[arg-type]
    ("timestamp boolean", {"events": [event("u", "i", True)]}, 422, "boolean"),  # type: ignore[arg-type]
    ("timestamp words", {"events": [event("u", "i", "yesterday")]}, 422, "RFC 3339"),
    ("timestamp naive", {"events": [event("u", "i", "2024-01-01T00:00:00")]}, 422, "offset"),
    ("empty batch", {"events": []}, 422, "empty"),
    ("oversized id", {"events": [event("u" * 129, "i", T0)]}, 422, "128"),
    ("oversized event id", {"events": [event("u", "i", T0, "e" * 200)]}, 422, "event_id"),
    ("control character id", {"events": [event("u\x00", "i", T0)]}, 422, "control"),
    ("pre-1970 unix", {"events": [event("u", "i", -1)]}, 422, "1970"),
    ("pre-1970 text", {"events": [event("u", "i", "1969-12-31T23:59:59Z")]}, 422, "1970"),
    ("far future", {"events": [event("u", "i", T0 + 10 * 365 * 86400)]}, 422, "ahead"),
    ("past year 9999 in UTC", {"events": [event("u", "i", LAST_LOCAL)]}, 422, "too far"),
    ("reserved event id prefix", {"events": [event("u", "i", T0, "auto:x")]}, 422, "reserved"),
    ("space separator", {"events": [event("u", "i", "2024-05-01 12:00:00Z")]}, 422, "RFC 3339"),
    ("ISO week date", {"events": [event("u", "i", "2024-W18-3T12:00:00Z")]}, 422, "RFC 3339"),
    ("ordinal date", {"events": [event("u", "i", "2024-122T12:00:00Z")]}, 422, "RFC 3339"),
    ("leap second", {"events": [event("u", "i", "2016-12-31T23:59:60Z")]}, 422, "leap"),
    ("events missing", {}, 422, "events"),
]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [b[1:] for b in BAD_BODIES],
    ids=[b[0] for b in BAD_BODIES],
)
def test_bad_input_is_refused_and_nothing_is_lost(
    client: TestClient,
    keys: Keys,
    settings: Settings,
    clock: Clock,
    body: object,
    status: int,
    needle: str,
) -> None:
    clock.set(datetime.fromtimestamp(T0, UTC) + timedelta(days=1))
    post(client, keys, [event("kept", "50", T0, "kept-1")])
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(
        "/v1/events",
        content=content,
        headers={**keys.ingest, "Content-Type": "application/json"},
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert needle in error["message"] or any(needle in d["loc"] for d in error["details"])
    assert "Traceback" not in response.text
    assert row_count(settings, "interactions") == 1
    assert row_count(settings, "users") == 1


def test_one_bad_event_rejects_the_whole_batch(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    good = [event("u1", "50", T0 + i) for i in range(3)]
    bad = [*good, event("u1", "50", "not a time")]
    response = client.post("/v1/events", json={"events": bad}, headers=keys.ingest)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == "body.events[3].timestamp"
    assert row_count(settings, "interactions") == 0


def test_oversized_batch_and_body(settings: Settings, clock: Clock) -> None:
    settings.max_batch_events = 5
    settings.max_body_bytes = 500
    keys = make_keys(settings)
    with TestClient(create_app(settings, clock)) as client:
        batch = [event("u", "50", T0 + i) for i in range(6)]
        response = client.post("/v1/events", json={"events": batch}, headers=keys.ingest)
        assert response.status_code == 413
        assert "batch limit of 5" in response.json()["error"]["message"]
        huge = [event("u" * 100, "50", T0 + i) for i in range(5)]
        response = client.post("/v1/events", json={"events": huge}, headers=keys.ingest)
        assert response.status_code == 413
        assert "exceeds 500 bytes" in response.json()["error"]["message"]
    assert row_count(settings, "interactions") == 0


def test_future_skew_boundary(client: TestClient, keys: Keys, clock: Clock) -> None:
    now = datetime.fromtimestamp(T0, UTC)
    clock.set(now)
    inside = post(client, keys, [event("u", "50", T0 + 299)])
    assert inside["accepted"] == 1
    response = client.post(
        "/v1/events", json={"events": [event("u", "50", T0 + 301)]}, headers=keys.ingest
    )
    assert response.status_code == 422


def test_emoji_with_zero_width_joiners_is_an_id(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    # A ZWJ (U+200D) is a format character, not a control character: it glues emoji together.
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert post(client, keys, [event(family, "50", T0)])["accepted"] == 1
    response = client.get(f"/v1/users/{family}/toi", headers=keys.read)
    assert response.status_code == 200, response.text
    assert response.json()["user_id"] == family


def test_the_largest_batch_allowed_is_stored_and_resent(settings: Settings, clock: Clock) -> None:
    # 20,000 (the setting's maximum) rows of 5 columns are over the bind parameter limit of
    # one statement (65,535 on PostgreSQL, 32,766 on SQLite): that used to be a 503.
    largest = Settings.model_fields["max_batch_events"].metadata[-1].le
    settings.max_batch_events = largest
    settings.max_body_bytes = 64 * 1024 * 1024
    keys = make_keys(settings)
    batch = [event(f"u{i % 50}", str(i % 1000), T0 + i, f"e{i}") for i in range(largest)]
    with TestClient(create_app(settings, clock)) as client:
        assert post(client, keys, batch)["accepted"] == largest
        again = post(client, keys, batch)
        assert again["accepted"] == 0 and again["duplicates"] == largest
    assert row_count(settings, "interactions") == largest


def test_a_batch_is_written_in_a_fixed_number_of_statements(
    client: TestClient, keys: Keys, settings: Settings, backend: str
) -> None:
    # One INSERT per table (users, items, interactions) whatever the batch's size. On
    # PostgreSQL each is one statement whose text does not depend on the batch, so it is
    # compiled, converted and planned once: per-row statements (an executemany) and a
    # multi-row VALUES rebuilt for every batch made ingestion slow.
    post(client, keys, [event("warm", "50", T0)])  # the API key is verified and cached
    engine = client.app.state.ctx.engine
    big = [event(f"u{i % 300}", str(i % 700), T0 + i, f"e{i}") for i in range(1000)]
    small = [event("v", "51", T0, "f0"), event("w", "52", T0, "f1")]
    sent = {}
    for name, batch in (("big", big), ("small", small)):
        with statements(engine) as sent[name]:
            assert post(client, keys, batch)["accepted"] == len(batch)
        inserts = [s.sql.split()[2] for s in sent[name] if s.sql.startswith(("INSERT", "UPDATE"))]
        assert inserts == ["users", "items", "interactions"]
        assert len(sent[name]) <= 4  # with SQLite's BEGIN IMMEDIATE
    if backend == "postgres+redis":
        assert not any(s.many for s in sent["big"])
        assert [s.sql for s in sent["big"]] == [s.sql for s in sent["small"]]
    assert row_count(settings, "interactions") == 1003
    assert row_count(settings, "users") == 303


def test_rfc3339_lowercase_t_and_z_and_any_fraction(client: TestClient, keys: Keys) -> None:
    # RFC 3339 section 5.6 allows "t" and "z"; fractions may be longer than microseconds.
    stamps = ["2023-11-14t22:13:20z", "2023-11-14T23:13:20.0000001+01:00"]
    assert post(client, keys, [event("u", "50", s) for s in stamps])["accepted"] == 1
    last = client.get("/v1/users/u/toi", headers=keys.read).json()["last_event_at"]
    assert last == "2023-11-14T22:13:20Z"


def test_a_derived_event_id_cannot_be_claimed_by_a_client(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    # The id the service would derive for the id-less event below.
    derived = NewEvent("u", "50", datetime.fromtimestamp(T0, UTC)).key()
    claim = client.post(
        "/v1/events", json={"events": [event("u", "51", T0, derived)]}, headers=keys.ingest
    )
    assert claim.status_code == 422
    assert claim.json()["error"]["details"][0]["loc"] == "body.events[0].event_id"
    assert post(client, keys, [event("u", "50", T0)])["accepted"] == 1
