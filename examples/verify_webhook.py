"""A webhook receiver that verifies PASRec-push's Standard Webhooks signatures.

Run it, then point the service at it:

    python examples/verify_webhook.py --port 9000 --secret "$PASREC_PUSH_WEBHOOK_SECRET"
    PASREC_PUSH_WEBHOOK_URL=http://127.0.0.1:9000/ pasrec serve

Each accepted push is printed once; a repeated `webhook-id` (a retry of a push whose first
answer was lost) is acknowledged but not processed again. It verifies with the Standard
Webhooks library; receivers in other languages can use theirs with the same `whsec_...`
secret.
"""

from __future__ import annotations

import argparse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# The Standard Webhooks reference library (`pip install standardwebhooks`): it checks the
# HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`, every `v1,...` entry of the
# signature header (key rotation) and a 5-minute tolerance on the timestamp.
from standardwebhooks import Webhook, WebhookVerificationError


def serve(port: int, secret: str) -> None:
    webhook = Webhook(secret)
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            try:
                payload = webhook.verify(body, dict(self.headers.items()))
            except (WebhookVerificationError, ValueError) as exc:  # ValueError: malformed
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
