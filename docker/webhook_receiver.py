"""Demo push receiver: verifies Standard Webhooks signatures, dedupes on `webhook-id`, prints
each push as one JSON line and counts them.

Written the way a customer's endpoint would be, against the specification rather than the
sender's code (standard library only, so it runs in a bare `python:3.11-slim` container):

    WEBHOOK_SECRET=whsec_... python docker/webhook_receiver.py --port 9000

`POST <any path>`: a push; 204 when the signature holds (also for a repeat, which is counted
but not printed again), 401 when it does not, 400 when a header is missing.
`GET /deliveries`: `{"unique": n, "requests": m, "by_id": {webhook-id: times received}}`.
`GET /healthz`: 200.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The specification's recommended replay window.
TOLERANCE_S = 5 * 60


class SignatureError(ValueError):
    """The request is not signed with the shared secret (or is too old/new to trust)."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret."""
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("WEBHOOK_SECRET must be whsec_<base64>") from None


def verify(key: bytes, headers: dict[str, str], body: bytes, now: float) -> str:
    """Check a request's `webhook-*` headers; returns its `webhook-id`."""
    try:
        msg_id = headers["webhook-id"]
        stamp = headers["webhook-timestamp"]
        offered = headers["webhook-signature"]
    except KeyError as missing:
        raise KeyError(f"missing header {missing.args[0]}") from None
    try:
        sent_at = int(stamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not an integer") from None
    if abs(now - sent_at) > TOLERANCE_S:
        raise SignatureError("webhook-timestamp outside the tolerance window")
    signed = f"{msg_id}.{stamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    # Several space-separated `v1,<sig>` entries are allowed (secret rotation).
    for entry in offered.split():
        version, _, candidate = entry.partition(",")
        if version == "v1" and hmac.compare_digest(candidate, expected):
            return msg_id
    raise SignatureError("no webhook-signature entry matches")


class Deliveries:
    def __init__(self) -> None:
        self.by_id: Counter[str] = Counter()
        self.lock = threading.Lock()

    def add(self, msg_id: str) -> bool:
        """Count a verified request; True the first time this id is seen."""
        with self.lock:
            self.by_id[msg_id] += 1
            return self.by_id[msg_id] == 1

    def summary(self) -> dict[str, object]:
        with self.lock:
            return {
                "unique": len(self.by_id),
                "requests": sum(self.by_id.values()),
                "by_id": dict(self.by_id),
            }


def make_server(host: str, port: int, key: bytes, quiet: bool = False) -> ThreadingHTTPServer:
    deliveries = Deliveries()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                msg_id = verify(key, headers, body, time.time())
            except KeyError as err:
                self._answer(400, {"error": str(err)})
                return
            except SignatureError as err:
                self._answer(401, {"error": str(err)})
                return
            if deliveries.add(msg_id) and not quiet:
                print(json.dumps({"webhook-id": msg_id, "push": json.loads(body)}), flush=True)
            self._answer(204, None)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/deliveries":
                self._answer(200, deliveries.summary())
            elif self.path == "/healthz":
                self._answer(200, {"status": "ok"})
            else:
                self._answer(404, {"error": "not found"})

        def _answer(self, status: int, payload: object) -> None:
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            if data:
                self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: object) -> None:
            pass  # one JSON line per push is the whole output

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=9000, help="0: any free port (printed)")
    parser.add_argument("--quiet", action="store_true", help="count pushes, print none")
    args = parser.parse_args()
    secret = os.environ.get("WEBHOOK_SECRET", "")
    if not secret:
        sys.exit("webhook_receiver: set WEBHOOK_SECRET (the service's PASREC_PUSH_WEBHOOK_SECRET)")
    server = make_server(args.host, args.port, secret_key(secret), args.quiet)
    print(f"listening on {args.host}:{server.server_address[1]}", file=sys.stderr, flush=True)
    # As a container's PID 1, SIGTERM would otherwise be ignored until docker kills us.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
