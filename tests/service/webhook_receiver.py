"""A real webhook receiver for the push tests: an HTTP server on loopback, in a thread, that
records every request and answers from a script."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    """Hold the request open (no answer) until the receiver stops."""
    drip_s: float = 0.0
    """Send the answer one byte every `drip_s` seconds: a receiver that is alive but slow,
    which per-read timeouts never cut off."""
    drip: Literal["head", "body"] = "body"
    """What drips: the status line and headers, or only the body (the headers go at once)."""
    body: bytes = b"ok"


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def push_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self, script: list[Reply] | None = None) -> None:
        self.script: deque[Reply] = deque(script or [])
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.received.append(Received(headers, body, time.time()))
                    reply = receiver.script.popleft() if receiver.script else Reply()
                if reply.hang:
                    receiver._release.wait(60)
                    return
                if reply.drip_s:
                    self._drip(reply)
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def _drip(self, reply: Reply) -> None:
                head = f"HTTP/1.1 {reply.status} Slow\r\ncontent-length: {len(reply.body)}\r\n"
                head += "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items()) + "\r\n"
                if reply.drip == "head":
                    slow, fast = head.encode() + reply.body, b""
                else:
                    slow, fast = reply.body, head.encode()
                self.close_connection = True
                try:
                    self.wfile.write(fast)
                    for byte in slow:
                        if receiver._release.wait(reply.drip_s):
                            return
                        self.wfile.write(bytes([byte]))
                except OSError:
                    pass  # the sender gave up and closed the connection

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def counts(self) -> Counter[str]:
        """Requests per webhook-id."""
        with self._lock:
            return Counter(r.push_id for r in self.received)

    def wait_for(self, n: int, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver got {len(self.received)} requests, wanted {n}")
            time.sleep(0.02)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
