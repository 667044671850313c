"""A webhook receiver that verifies PASRec-push's Standard Webhooks signatures (stdlib only).

Run it, then point the service at it:

    python examples/verify_webhook.py --port 9000 --secret "$PASREC_PUSH_WEBHOOK_SECRET"
    PASREC_PUSH_WEBHOOK_URL=http://127.0.0.1:9000/ pasrec serve

Each accepted push is printed once; a repeated `webhook-id` (a retry of a push whose first
answer was lost) is acknowledged but not processed again. Receivers in other languages can
use any Standard Webhooks library with the same `whsec_...` secret.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_S = 300


class InvalidSignature(ValueError):
    pass


def verify(
    secret: str,
    headers: dict[str, str],
    body: bytes,
    now: float | None = None,
    tolerance_s: float = TOLERANCE_S,
) -> Any:
    """The parsed body if the headers sign it with `secret`; raises InvalidSignature if not.

    1. Take `webhook-id`, `webhook-timestamp` and `webhook-signature`.
    2. Refuse timestamps more than `tolerance_s` from now (replayed or delayed messages).
    3. HMAC-SHA256 `{id}.{timestamp}.{raw body}` with the base64-decoded part of the secret
       after `whsec_`, base64 the digest, and compare it in constant time with each `v1,...`
       entry of the (space-separated) signature header.
    """
    lower = {name.lower(): value for name, value in headers.items()}
    msg_id = lower.get("webhook-id")
    stamp = lower.get("webhook-timestamp")
    signatures = lower.get("webhook-signature")
    if not (msg_id and stamp and signatures):
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        sent = int(stamp)
    except ValueError:
        raise InvalidSignature("webhook-timestamp is not an integer") from None
    if abs((time.time() if now is None else now) - sent) > tolerance_s:
        raise InvalidSignature("webhook-timestamp is outside the tolerance")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{sent}.".encode() + body, hashlib.sha256).digest()
    expected = base64.b64encode(digest).decode()
    for entry in signatures.split():
        version, _, value = entry.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return json.loads(body)
    raise InvalidSignature("no matching v1 signature")


def serve(port: int, secret: str) -> None:
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            try:
                payload = verify(secret, dict(self.headers.items()), body)
            except InvalidSignature as exc:
                self.send_response(401)  # a 4xx other than 408/429: the sender will not retry
                self.end_headers()
                print(f"refused: {exc}", flush=True)
                return
            push_id = self.headers["webhook-id"]
            if push_id not in seen:
                seen.add(push_id)
                data = payload["data"]
                items = ", ".join(i["item_id"] for i in data["items"])
                print(f"push {push_id} for user {data['user_id']}: {items}", flush=True)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    print(f"listening on http://127.0.0.1:{port}/", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", required=True, help="whsec_<base64>, as given to the service")
    args = parser.parse_args()
    serve(args.port, args.secret)


if __name__ == "__main__":
    main()
