"""The replay/demo receiver (pasrec/replay/webhook_receiver.py) verifies with the Standard
Webhooks library: it accepts what the service signs once per push id and refuses anything else."""

from __future__ import annotations

import json
import time

import httpx
from pydantic import SecretStr

from pasrec.replay.webhook_receiver import WebhookReceiver, new_secret
from pasrec.service.push.signing import headers as signed_headers
from pasrec.service.settings import signing_key


def test_receiver_accepts_signed_pushes_once_and_refuses_the_rest() -> None:
    secret = new_secret()
    key = signing_key(SecretStr(secret))
    body = json.dumps({"type": "push", "data": {"push_id": "p1", "items": []}}).encode()
    signed = signed_headers(key, "p1", int(time.time()), body)
    old = signed_headers(key, "p1", int(time.time()) - 3600, body)

    def post(headers: dict[str, str], content: bytes) -> int:
        return httpx.post(receiver.url, headers=headers, content=content).status_code

    with WebhookReceiver(secret) as receiver:
        assert post(signed, body) == 200
        assert post(signed, body) == 200  # a retry: acknowledged, not kept twice
        assert post(signed, body.replace(b"p1", b"p2")) == 400  # tampered
        assert post(old, body) == 400  # outside the library's 5-minute tolerance
        assert post({"webhook-id": "p1"}, body) == 400
    got = receiver.received
    assert list(got.pushes) == ["p1"]
    assert (got.deliveries, got.duplicates, got.rejected) == (2, 1, 3)

