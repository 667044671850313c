"""One signed webhook POST and what its answer means for the push.

2xx: delivered. 408, 429, 5xx, timeouts and connection errors: worth retrying (with the
receiver's Retry-After when it gives one). Anything else, redirects included: refused for
good, since sending the same request again would get the same answer.

Every attempt has one total deadline (`push_webhook_timeout_s`) from connecting to the end of
the answer. httpx's own timeouts bound each network read, so a receiver dripping a byte every
few seconds would keep a request open indefinitely, past the push's lease (another worker then
sends it again) and past a shutdown. The requests therefore run on an event loop of their own,
where a deadline cancels the whole exchange. The status line decides the outcome: the body is
read (for the error message, and to keep the connection alive) only while the deadline allows.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal, TypeVar

import httpx

from pasrec.service.push import signing

Kind = Literal["delivered", "retry", "failed"]
T = TypeVar("T")
_RETRYABLE = {408, 429}
_ERROR_BODY_CHARS = 200
_BODY_BYTES_READ = 4096


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    reason: str
    """`http_<status>`, `timeout` or `connection_error`."""
    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    retry_after_s: float | None = None


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: httpx.Headers
    text: str


class WebhookSender:
    """Sends from any thread; each call blocks its caller for at most the deadline."""

    def __init__(
        self,
        url: str,
        key: bytes,
        timeout_s: float,
        max_connections: int,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = url
        self._key = key
        self._deadline_s = timeout_s
        # The signature timestamp is real time even when a simulation drives the service
        # clock: receivers compare it with their own clock to refuse replays.
        self._wall_clock = wall_clock
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="webhook-io", daemon=True
        )
        self._thread.start()
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._client = self._run(_make_client(timeout_s, limits))

    def send(self, push_id: str, body: bytes) -> Outcome:
        headers = signing.headers(self._key, push_id, math.floor(self._wall_clock()), body)
        headers["content-type"] = "application/json"
        headers["user-agent"] = "pasrec-push"
        started = time.perf_counter()
        try:
            answer = self._run(self._post(body, headers))
        except TimeoutError:
            error = f"no complete answer within the {self._deadline_s:g} s deadline"
            return Outcome("retry", "timeout", latency_ms=_ms(started), error=error)
        except httpx.TimeoutException as exc:
            return Outcome("retry", "timeout", latency_ms=_ms(started), error=_describe(exc))
        except httpx.HTTPError as exc:
            return Outcome(
                "retry", "connection_error", latency_ms=_ms(started), error=_describe(exc)
            )
        return self._judge(answer, _ms(started))

    def close(self) -> None:
        self._run(self._client.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result()

    async def _post(self, body: bytes, headers: dict[str, str]) -> _Answer:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._deadline_s
        async with asyncio.timeout_at(deadline):
            request = self._client.build_request("POST", self._url, content=body, headers=headers)
            response = await self._client.send(request, stream=True)
        try:
            text = await _first_text(response, deadline)
        finally:
            await response.aclose()
        return _Answer(response.status_code, response.headers, text)

    def _judge(self, answer: _Answer, latency: float) -> Outcome:
        status = answer.status
        reason = f"http_{status}"
        if 200 <= status < 300:
            return Outcome("delivered", reason, status, latency)
        error = f"HTTP {status}: {answer.text[:_ERROR_BODY_CHARS]}"
        if status in _RETRYABLE or status >= 500:
            retry_after = parse_retry_after(answer.headers.get("retry-after"), self._wall_clock())
            return Outcome("retry", reason, status, latency, error, retry_after)
        return Outcome("failed", reason, status, latency, error)


async def _make_client(timeout_s: float, limits: httpx.Limits) -> httpx.AsyncClient:
    # Built on the sender's loop, where its connections will live.
    return httpx.AsyncClient(timeout=timeout_s, limits=limits, follow_redirects=False)


async def _first_text(response: httpx.Response, deadline: float) -> str:
    """The start of the body, as much as arrives before the deadline. Read even after a 2xx:
    a connection whose answer was read to its end is kept alive for the next push."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout_at(deadline):
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= _BODY_BYTES_READ:
                    break
    except (TimeoutError, httpx.HTTPError):
        chunks.append(b" [body cut off]")
    return b"".join(chunks).decode("utf-8", "replace")


def parse_retry_after(value: str | None, now_unix: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - now_unix, 0.0)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
