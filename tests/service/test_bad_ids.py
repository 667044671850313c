"""Ids and times the database or the calendar cannot hold are a 422 naming the parameter.

A NUL byte reached PostgreSQL as a DataError (a 500 that also dropped the keep-alive
connection) and a local time late on 9999-12-31 overflowed when converted to UTC.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from service_helpers import Keys, event, row_count

from pasrec.service.settings import Settings

T0 = 1_700_000_000.0

# (method, url, scope, loc)
NUL_REQUESTS = [
    ("GET", "/v1/recommend/u%00x", "read", "path.user_id"),
    ("GET", "/v1/users/u%00x/toi", "read", "path.user_id"),
    ("GET", "/v1/pushes?user_id=u%00x", "read", "query.user_id"),
    ("GET", "/v1/pushes/p%00x", "read", "path.push_id"),
    ("POST", "/v1/pushes/p%00x/cancel", "admin", "path.push_id"),
]


@pytest.mark.parametrize(
    ("method", "url", "scope", "loc"), NUL_REQUESTS, ids=[r[1] for r in NUL_REQUESTS]
)
def test_nul_in_an_id_is_422_naming_the_parameter(
    client: TestClient, keys: Keys, method: str, url: str, scope: str, loc: str
) -> None:
    response = client.request(method, url, headers=getattr(keys, scope))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"][0]["loc"] == loc
    assert error["message"].startswith(f"{loc}: must not contain control characters")
    assert "U+0000" in error["message"]


def test_at_past_the_last_utc_instant_is_422(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    client.post("/v1/events", json={"events": [event("u", "50", T0)]}, headers=keys.ingest)
    response = client.get(
        "/v1/recommend/u", params={"at": "9999-12-31T23:59:59-14:00"}, headers=keys.read
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"] == "query.at: is too far in the future"
    assert row_count(settings, "interactions") == 1
