"""A local webhook receiver for replays and the demo: a real HTTP server on loopback that
checks each push's Standard Webhooks signature, dedupes on `webhook-id` (the push id, the
receiver's idempotency key) and keeps what arrived.

It verifies with the Standard Webhooks reference library rather than the service's signing
code, so a replay also checks that what the service sends is what a third-party receiver
accepts.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


def new_secret() -> str:
    """A fresh `whsec_` secret (32 random bytes)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class Received:
    """Everything the receiver saw, under one lock."""

    pushes: dict[str, dict[str, Any]] = field(default_factory=dict)  # push id -> payload data
    deliveries: int = 0  # valid POSTs, duplicates included
    duplicates: int = 0
    rejected: int = 0  # bad signature or body
    lock: threading.Lock = field(default_factory=threading.Lock)


class WebhookReceiver:
    """`with WebhookReceiver(secret) as receiver:` serves on `receiver.url` until the block ends."""

    def __init__(
        self, secret: str, on_push: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        self.secret = secret
        self._webhook = Webhook(secret)
        self.received = Received()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                status = receiver._accept(headers, body)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per push would drown the replay's own output

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._on_push = on_push
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/push"

    def _accept(self, headers: dict[str, str], body: bytes) -> int:
        """`headers` with lower-case names."""
        try:
            data = self._webhook.verify(body, headers)["data"]
            msg_id = headers["webhook-id"]  # the library has checked that it is there
        except (WebhookVerificationError, ValueError, KeyError, TypeError):
            data = None  # ValueError: a malformed signature entry or body
        with self.received.lock:
            if data is None:
                self.received.rejected += 1
                return 400
            self.received.deliveries += 1
            if msg_id in self.received.pushes:
                self.received.duplicates += 1
                return 200
            self.received.pushes[msg_id] = data
        if self._on_push is not None:
            self._on_push(data)
        return 200

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
