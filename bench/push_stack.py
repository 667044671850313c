"""A throw-away service stack for `load_service.py --push-compare`: `pasrec serve` (API only)
on a private PostgreSQL schema and Redis prefix, with active push off, or on with one
`pasrec worker` planning the pushes; plus what the bench reads back (the push outbox, the
worker's planning-lag histogram)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa
from dispatcher import REDIS_URL, SECRET, drop_schema, private_schema

from pasrec.service.settings import environment_without_settings

PASREC = Path(sys.executable).parent / "pasrec"
KEY = "bench-push-key-0123456789"


@dataclass
class Stack:
    url: str
    database_url: str
    metrics_url: str | None
    """The worker's Prometheus endpoint; None with push off."""

    def outbox(self) -> int:
        engine = sa.create_engine(self.database_url)
        with engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM push_outbox")).scalar_one()
        engine.dispose()
        return count

    def planning_lag(self) -> dict[str, float | None]:
        """p50/p99 of the worker's planning-lag histogram, interpolated within buckets as
        Prometheus's histogram_quantile does, and the number of observations."""
        assert self.metrics_url is not None
        buckets: list[tuple[float, float]] = []
        for line in httpx.get(self.metrics_url, timeout=10).text.splitlines():
            if line.startswith("pasrec_push_planning_lag_seconds_bucket"):
                bound = line.split('le="', 1)[1].split('"', 1)[0]
                buckets.append((float(bound), float(line.rsplit(" ", 1)[1])))
        total = buckets[-1][1] if buckets else 0.0
        return {
            "observations": total,
            "p50_s": histogram_quantile(buckets, 0.5),
            "p99_s": histogram_quantile(buckets, 0.99),
        }


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Cumulative (upper bound, count) buckets, the last one +Inf."""
    total = buckets[-1][1] if buckets else 0.0
    if total == 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower  # beyond the largest finite bucket: its bound is all we know
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = bound, count
    return lower


def _env(database_url: str, prefix: str, checkpoint: Path, push: bool) -> dict[str, str]:
    env = environment_without_settings()
    env.update(
        PASREC_DATABASE_URL=database_url,
        PASREC_REDIS_URL=REDIS_URL,
        PASREC_REDIS_PREFIX=prefix,
        PASREC_MODEL_PATH=str(checkpoint),
        PASREC_DEVICE="cpu",
        PASREC_LOG_LEVEL="WARNING",
        PASREC_API_KEYS=json.dumps([{"name": "bench", "scopes": ["ingest", "read"], "key": KEY}]),
    )
    if push:
        env.update(
            PASREC_PUSH_WEBHOOK_URL="http://127.0.0.1:9/",
            PASREC_PUSH_WEBHOOK_SECRET=SECRET,
            # The API replica only ingests; the worker plans. Its dispatcher polls once an
            # hour, so no delivery competes with planning for the cores (bench/dispatcher.py
            # measures delivery).
            PASREC_PUSH_DISPATCHER_ENABLED="false",
            PASREC_PUSH_POLL_INTERVAL_S="3600",
        )
    return env


@contextmanager
def _process(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, env=env, stdout=sink, stderr=sink)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def _wait(ready: Callable[[], bool], proc: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + 180
    while not ready():
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start within 180 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def stack(
    checkpoint: Path, push: bool, port: int, metrics_port: int, logs: Path
) -> Iterator[Stack]:
    schema, database_url = private_schema()
    prefix = f"pasrec-bench:{schema}:"
    try:
        env = _env(database_url, prefix, checkpoint, push)
        subprocess.run([str(PASREC), "migrate"], env=env, check=True, capture_output=True)
        url = f"http://127.0.0.1:{port}"
        with ExitStack() as running:
            log = logs / f"serve-{schema}.log"
            api = running.enter_context(
                _process([str(PASREC), "serve"], env | {"PASREC_PORT": str(port)}, log)
            )
            _wait(lambda: _answers(f"{url}/readyz"), api, log, "pasrec serve")
            metrics_url = None
            if push:
                metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
                log = logs / f"worker-{schema}.log"
                worker_env = env | {"PASREC_WORKER_METRICS_PORT": str(metrics_port)}
                worker = running.enter_context(_process([str(PASREC), "worker"], worker_env, log))
                # The metrics port opens once the model is loaded, just before the loops start.
                _wait(lambda: _answers(metrics_url), worker, log, "pasrec worker")
            yield Stack(url, database_url, metrics_url)
    finally:
        drop_schema(schema, prefix)
