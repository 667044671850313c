"""A slow webhook receiver: one that answers at once but a byte at a time, which per-read
timeouts never cut off. Each attempt has one total deadline, so the push is neither sent twice
(its lease outlived) nor holds back other pushes, and a shutdown waits for it no longer than
the deadline. Real receivers on loopback drip their answers; the dispatch loops run on the
real clock."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from push_helpers import at, push_env
from service_helpers import Clock, Keys, event
from webhook_receiver import Receiver, Reply

from pasrec.service.push.runner import DispatchLoop
from pasrec.service.settings import Settings

SLOW_HEAD = Reply(200, drip_s=0.3, drip="head")  # ~50 bytes of status and headers: 15 s
REAL_TIME = {
    "push_timing": "fixed",
    "push_fixed_interval_s": 60.0,
    "push_fallback_delay_s": 60.0,
    "push_min_history": 1,
    "push_poll_interval_s": 0.1,
    "push_backoff_base_s": 600.0,  # no retry inside a test
}


def wait_until(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def ingest_due_in(env: Any, user: str, seconds: float) -> str:
    """Events that make the user's push due `seconds` from now (real time); the push's id."""
    last = time.time() - 60.0 + seconds
    body = {"events": [event(user, "50", last - 120), event(user, "100", last)]}
    assert env.client.post("/v1/events", json=body, headers=env.keys.ingest).status_code == 200
    env.planner.drain()
    return env.pending(user)["id"]


@contextmanager
def running(loops: list[DispatchLoop]) -> Iterator[None]:
    for loop in loops:
        loop.start()
    try:
        yield
    finally:
        for loop in loops:
            loop.stop()


def test_an_answer_dripping_in_is_cut_off_at_the_deadline(
    settings: Settings, clock: Clock, keys: Keys
) -> None:
    script = [SLOW_HEAD, Reply(503, drip_s=0.3, body=b"x" * 50)]
    with (
        Receiver(script) as receiver,
        push_env(settings, clock, keys, receiver.url, push_webhook_timeout_s=1.0) as env,
    ):
        env.ingest("1", [("50", 1_700_000_000.0), ("100", 1_700_000_600.0)])
        push = env.pending("1")
        started = time.monotonic()
        env.dispatch_at(at(push["due_at"]))
        assert time.monotonic() - started < 4.0
        cut = env.push(push["id"])
        assert cut["status"] == "pending" and cut["reason"] == "timeout"
        assert "1 s deadline" in cut["attempts_detail"][0]["error"]

        # A status line that arrived decides, even when the body is still dripping.
        started = time.monotonic()
        env.dispatch_at(at(cut["due_at"]))
        assert time.monotonic() - started < 4.0
        retried = env.push(push["id"])
        assert retried["reason"] == "http_503"
        assert retried["attempts_detail"][1]["error"].endswith("[body cut off]")
        env.dispatch_at(at(retried["due_at"]))
        assert env.push(push["id"])["status"] == "delivered"
        assert receiver.counts() == {push["id"]: 3}


def test_two_workers_send_a_slowly_answered_push_once(settings: Settings, keys: Keys) -> None:
    # The body of the 200 takes 8 s to arrive, far past the 3 s lease.
    script = [Reply(200, drip_s=0.5, body=b"x" * 16)]
    clock = Clock()  # real time
    overrides = {**REAL_TIME, "push_lease_s": 3.0, "push_webhook_timeout_s": 1.5}
    with (
        Receiver(script) as receiver,
        push_env(settings, clock, keys, receiver.url, **overrides) as env,
    ):
        push_id = ingest_due_in(env, "1", 0.0)
        with running([DispatchLoop(env.ctx), DispatchLoop(env.ctx)]):
            wait_until(lambda: env.push(push_id)["status"] == "delivered", 10, "delivery")
            time.sleep(4.0)  # past the lease: a second worker would have sent it again
        assert receiver.counts() == {push_id: 1}


def test_a_slow_receiver_holds_back_no_other_push_nor_the_shutdown(
    settings: Settings, keys: Keys
) -> None:
    clock = Clock()
    overrides = {**REAL_TIME, "push_lease_s": 6.0, "push_webhook_timeout_s": 2.5,
                 "push_concurrency": 4}  # fmt: skip
    with (
        Receiver([SLOW_HEAD]) as receiver,
        push_env(settings, clock, keys, receiver.url, **overrides) as env,
    ):
        slow = ingest_due_in(env, "slow", 0.0)
        other = ingest_due_in(env, "other", 1.0)
        loop = DispatchLoop(env.ctx)
        loop.start()
        try:
            wait_until(lambda: len(receiver.received) == 2, 10, "both requests")
        finally:
            stopping = time.monotonic()
            loop.stop()
            stopped_after = time.monotonic() - stopping
        first, second = receiver.received
        assert (first.push_id, second.push_id) == (slow, other)
        # The other push went out while the slow one was still in its attempt.
        assert second.at - first.at < 2.5
        assert env.push(other)["status"] == "delivered"
        # The shutdown waited for the slow attempt no longer than its deadline.
        assert stopped_after < 3.5
        cut = env.push(slow)
        assert cut["status"] == "pending" and cut["reason"] == "timeout"
