"""Standard Webhooks signatures (https://www.standardwebhooks.com): the receiver recomputes
HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}` with the shared secret."""

from __future__ import annotations

import base64
import hashlib
import hmac


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,<base64 HMAC-SHA256>`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of a signed message; `msg_id` doubles as the idempotency key."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(key, msg_id, timestamp, body),
    }
