"""One signed webhook POST and what its answer means for the push.

2xx: delivered. 408, 429, 5xx, timeouts and connection errors: worth retrying (with the
receiver's Retry-After when it gives one). Anything else, redirects included: refused for
good, since sending the same request again would get the same answer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx

from service.push import signing

Kind = Literal["delivered", "retry", "failed"]
_RETRYABLE = {408, 429}
_ERROR_BODY_CHARS = 200


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    reason: str
    """`http_<status>`, `timeout` or `connection_error`."""
    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    retry_after_s: float | None = None


class WebhookSender:
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
        # The signature timestamp is real time even when a simulation drives the service
        # clock: receivers compare it with their own clock to refuse replays.
        self._wall_clock = wall_clock
        self._client = httpx.Client(
            timeout=timeout_s,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=False,
        )

    def send(self, push_id: str, body: bytes) -> Outcome:
        headers = signing.headers(self._key, push_id, math.floor(self._wall_clock()), body)
        headers["content-type"] = "application/json"
        headers["user-agent"] = "pasrec-push"
        started = time.perf_counter()
        try:
            response = self._client.post(self._url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            return Outcome("retry", "timeout", latency_ms=_ms(started), error=_describe(exc))
        except httpx.HTTPError as exc:
            return Outcome(
                "retry", "connection_error", latency_ms=_ms(started), error=_describe(exc)
            )
        latency = _ms(started)
        status = response.status_code
        reason = f"http_{status}"
        if 200 <= status < 300:
            return Outcome("delivered", reason, status, latency)
        error = f"HTTP {status}: {response.text[:_ERROR_BODY_CHARS]}"
        if status in _RETRYABLE or status >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"), self._wall_clock())
            return Outcome("retry", reason, status, latency, error, retry_after)
        return Outcome("failed", reason, status, latency, error)

    def close(self) -> None:
        self._client.close()


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
