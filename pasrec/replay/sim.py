"""One replay run: the real service, a virtual clock, a real webhook receiver.

The service runs in this process (uvicorn on loopback, in a thread) on its own embedded
SQLite file, with `create_app(settings, clock)` given a virtual clock. Every interaction goes
through `POST /v1/events` over HTTP, so ingestion, (re)scheduling and the policy are the
production code paths. The service's own periodic dispatcher is off; instead the simulation
calls `Dispatcher.dispatch_due(now)` at each push's due time, which makes simulated weeks take
seconds while each push is still claimed, re-ranked, signed and POSTed to the receiver. Push
planning is off the ingestion request in the service; the simulation drains the planner
(`PushPlanner.drain`) after every posted batch, at the batch's virtual time, so each push is
planned exactly when a synchronous scheduler would have planned it.

Order within one instant: pushes due at or before an event's time are dispatched before the
event is posted (with day-granular data a push due "on the day" must not be cancelled by
that day's own visit). The passive reference asks `GET /v1/recommend/{user}?at=t` just before
posting the user's events at `t`: what a perfect clock would have pushed.

Each run starts from an empty store, so the strategies start from the same state: a fresh
embedded SQLite file and in-process cache by default, or, with a Postgres URL (and
optionally a Redis URL), a private schema in that database and a private Redis key prefix,
both migrated on start and removed afterwards (`pasrec.replay.isolated_store`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import func, select
from tqdm.auto import tqdm

from pasrec.replay.isolated_store import (
    check_postgres,
    check_redis,
    private_redis_prefix,
    private_schema,
    unique_name,
)
from pasrec.replay.scoring import PushRecord
from pasrec.replay.webhook_receiver import WebhookReceiver, new_secret
from pasrec.service.app import create_app
from pasrec.service.auth import create_key
from pasrec.service.context import ServiceContext
from pasrec.service.migrate import upgrade
from pasrec.service.models import Push, PushStatus
from pasrec.service.push.dispatcher import Dispatcher
from pasrec.service.push.planner import PushPlanner
from pasrec.service.settings import Settings

log = logging.getLogger(__name__)

Event = tuple[str, str, float]  # user, item, unix seconds
BATCH = 1000


class VirtualClock:
    """The service's "now", moved forward by the simulation only."""

    def __init__(self, start: float) -> None:
        self._now = datetime.fromtimestamp(start, UTC)

    def __call__(self) -> datetime:
        return self._now

    def advance(self, when: datetime) -> None:
        self._now = max(self._now, when)


@dataclass(frozen=True)
class ReplayStore:
    """Where the replayed service keeps its state: the embedded default when both are None."""

    database_url: str | None = None
    redis_url: str | None = None

    def __post_init__(self) -> None:
        if self.redis_url and not self.database_url:
            raise ValueError(
                "a Redis URL needs a Postgres URL too: the embedded SQLite store is per process "
                "and is only paired with the in-process cache"
            )

    def check(self) -> None:
        """Fail before any training, naming the server, when a configured one is unreachable."""
        if self.database_url:
            check_postgres(self.database_url)
        if self.redis_url:
            check_redis(self.redis_url)

    @property
    def description(self) -> str:
        if not self.database_url:
            return "embedded (SQLite + in-process cache)"
        return "PostgreSQL + " + ("Redis" if self.redis_url else "in-process cache")

    @contextmanager
    def fresh(self, name: str, work_dir: Path) -> Iterator[tuple[dict[str, Any], str]]:
        """(Settings fields, where the state lives) of an empty store for one run; a schema
        and key prefix are removed when the run ends."""
        if not self.database_url:
            db = work_dir / f"{name}.db"
            db.unlink(missing_ok=True)
            yield {"sqlite_path": db, "database_url": None, "redis_url": None}, f"sqlite {db}"
            return
        schema = unique_name(f"replay_{name}")
        with ExitStack() as stack:
            url = stack.enter_context(private_schema(self.database_url, schema))
            fields: dict[str, Any] = {"database_url": url, "auto_migrate": True, "redis_url": None}
            where = f"schema {schema}"
            if self.redis_url:
                prefix = unique_name(f"replay_{name}") + ":"
                stack.enter_context(private_redis_prefix(self.redis_url, prefix))
                fields |= {"redis_url": self.redis_url, "redis_prefix": prefix}
                where += f", redis prefix {prefix}"
            yield fields, where


@dataclass
class RunResult:
    strategy: str
    pushes: list[PushRecord]
    store: str = ""
    """Where the run's state lived (removed afterwards unless embedded)."""
    passive: list[PushRecord] = field(default_factory=list)
    receiver: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0


@contextmanager
def running_service(settings: Settings, clock: VirtualClock) -> Iterator[tuple[str, Any]]:
    """(base URL, ServiceContext) of the app served on a free loopback port."""
    app = create_app(settings, clock)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the service did not start; see its log above")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", app.state.ctx
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def replay_settings(
    store: dict[str, Any], checkpoint: Path, webhook_url: str, secret: str, strategy: str,
    horizon_s: float, k: int, fixed_interval_s: float, toi_checkpoint: Path | None = None,
    target_window_s: float = 7 * 86400.0, min_timely_probability: float = 0.0,
) -> Settings:  # fmt: skip
    """One policy for every strategy. Quiet hours are off (public logs are stamped in UTC,
    often at midnight, so quiet hours would shift every push by hours) and so is the tpp
    return-probability gate (it would apply to the model's strategies only); the horizon is
    the longest scoring window. `min_timely_probability` gates `tpp_window` only: the
    model's own say on when not to push, the one thing the other schedules cannot offer."""
    return Settings(
        _env_file=None,
        **store,
        model_path=checkpoint,
        toi_model_path=toi_checkpoint,
        device="cpu",
        auth_enabled=True,
        api_keys=[],
        log_level="WARNING",
        push_webhook_url=webhook_url,
        push_webhook_secret=secret,
        push_dispatcher_enabled=False,
        push_timing=strategy if strategy != "passive" else "toi",
        push_fixed_interval_s=fixed_interval_s,
        push_target_window_s=target_window_s,
        push_quiet_start=None,
        push_quiet_end=None,
        push_horizon_s=horizon_s,
        push_min_return_probability=0.0,
        push_min_timely_probability=min_timely_probability,
        push_rate_limit_per_s=0,
        push_k=k,
        max_batch_events=BATCH,
    )


def _next_due(ctx: ServiceContext) -> datetime | None:
    with ctx.engine.connect() as conn:
        due = conn.execute(
            select(func.min(Push.due_at)).where(Push.status == PushStatus.PENDING)
        ).scalar_one()
    if due is not None and due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    return due


def _statuses(ctx: ServiceContext) -> dict[str, int]:
    """Pushes by final status and reason, e.g. `skipped:user_active`."""
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(Push.status, Push.reason, func.count()).group_by(Push.status, Push.reason)
        ).all()
    out = {}
    for status, reason, count in rows:
        name = str(getattr(status, "value", status))
        out[name if reason is None else f"{name}:{reason}"] = int(count)
    return dict(sorted(out.items()))


def _post(client: httpx.Client, events: Sequence[Event], ids: Sequence[str]) -> None:
    body = {
        "events": [
            {"event_id": eid, "user_id": u, "item_id": i, "timestamp": t}
            for (u, i, t), eid in zip(events, ids, strict=True)
        ]
    }
    response = client.post("/v1/events", json=body)
    if response.status_code != 200:
        raise RuntimeError(f"POST /v1/events: {response.status_code} {response.text[:500]}")


def _passive(
    client: httpx.Client, pool: ThreadPoolExecutor, users: Sequence[str], at: float, k: int
) -> list[PushRecord]:
    def ask(user_id: str) -> PushRecord:
        response = client.get(f"/v1/recommend/{user_id}", params={"k": k, "at": at})
        response.raise_for_status()
        items = tuple(entry["item_id"] for entry in response.json()["items"])
        return PushRecord(user_id, at, items)

    return list(pool.map(ask, users))


def simulate(
    strategy: str,
    before: Sequence[Event],
    later: Sequence[Event],
    cutoff: float,
    checkpoint: Path,
    work_dir: Path,
    horizon_s: float,
    store: ReplayStore = ReplayStore(),
    k: int = 10,
    fixed_interval_s: float = 7 * 86400.0,
    with_passive: bool = False,
    on_push: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = True,
    toi_checkpoint: Path | None = None,
    target_window_s: float = 7 * 86400.0,
    min_timely_probability: float = 0.0,
) -> RunResult:
    """Replay `later` (chronological) after loading `before` as history, under one strategy."""
    started = time.perf_counter()
    secret = new_secret()
    clock = VirtualClock(cutoff)
    passive: list[PushRecord] = []
    with (
        WebhookReceiver(secret, on_push) as receiver,
        store.fresh(strategy, work_dir) as (fields, where),
    ):
        settings = replay_settings(
            fields, checkpoint, receiver.url, secret, strategy, horizon_s, k, fixed_interval_s,
            toi_checkpoint, target_window_s, min_timely_probability,
        )
        # Migrated here, quietly: the service would warn once per strategy that it migrates
        # an empty store, which is news for a server but not for a store made for the run.
        upgrade(settings)
        with running_service(settings, clock) as (url, ctx):
            key = create_key(settings, "replay", ["ingest", "read", "admin"])
            dispatcher = Dispatcher(ctx, worker_id=f"replay-{strategy}", rng=random.Random(0))
            planner = PushPlanner(ctx, worker_id=f"replay-{strategy}")
            headers = {"Authorization": f"Bearer {key}"}
            with (
                httpx.Client(base_url=url, headers=headers, timeout=120) as client,
                ThreadPoolExecutor(8) as pool,
            ):

                def drain(until: datetime) -> None:
                    while (due := _next_due(ctx)) is not None and due <= until:
                        clock.advance(due)
                        dispatcher.dispatch_due(max(due, clock()))

                # History up to the cutoff, posted "at" the cutoff: it schedules the first
                # pushes of users whose last visit is recent enough for the horizon.
                for start in range(0, len(before), BATCH):
                    chunk = before[start : start + BATCH]
                    _post(client, chunk, [f"b{start + j}" for j in range(len(chunk))])
                    planner.drain()
                known = {u for u, _, _ in before}
                groups = groupby(enumerate(later), key=lambda pair: pair[1][2])
                total = len({t for _, _, t in later})
                for at, group in tqdm(
                    groups, total=total, desc=f"replay {strategy}", disable=not progress
                ):
                    rows = list(group)
                    when = datetime.fromtimestamp(at, UTC)
                    drain(when)
                    clock.advance(when)
                    if with_passive:
                        users = sorted({u for _, (u, _, _) in rows if u in known})
                        passive.extend(_passive(client, pool, users, at, k))
                    for start in range(0, len(rows), BATCH):
                        chunk = rows[start : start + BATCH]
                        _post(client, [e for _, e in chunk], [f"l{i}" for i, _ in chunk])
                        planner.drain()
                    known.update(u for _, (u, _, _) in rows)
                if later:
                    drain(datetime.fromtimestamp(later[-1][2], UTC))
            dispatcher.close()
            statuses = _statuses(ctx)
    pushes = [
        PushRecord(
            data["user_id"],
            datetime.fromisoformat(data["generated_at"]).timestamp(),
            tuple(entry["item_id"] for entry in data["items"]),
            fallback=data["predicted_at"] is None,
        )
        for data in receiver.received.pushes.values()
    ]
    pushes.sort(key=lambda p: (p.at, p.user_id))
    counts = {
        "unique": len(receiver.received.pushes),
        "deliveries": receiver.received.deliveries,
        "duplicates": receiver.received.duplicates,
        "rejected": receiver.received.rejected,
    }
    return RunResult(
        strategy, pushes, where, passive, counts, statuses, time.perf_counter() - started
    )
