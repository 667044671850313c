"""Push dispatcher throughput: N pushes due at once, delivered by 1 and by 4 `pasrec worker`
processes on Postgres (+ Redis) to a receiver on loopback.

    python bench/dispatcher.py --checkpoint runs/pasrec/checkpoint \
        --out docs/results/bench_dispatcher.json
    python bench/dispatcher.py --smoke --out /tmp/x.json        # seconds, CI

Each run gets a private Postgres schema and Redis prefix. Users get a short history of items
the checkpoint knows; the pushes are written `pending`, all due at the same instant, after the
workers are up, so the run measures claiming, regenerating the top-K, signing, POSTing and
recording, not start-up. The receiver counts every request by `webhook-id`: duplicates (an id
seen twice) and losses (an id never seen) are reported, as are pushes/s (from the due time to
the last first delivery) and the delivery lag (first receipt minus due time). Without
`--checkpoint` a tiny PASRec is trained on a MovieLens-100K slice first (about 30 s). No
thresholds: it measures and reports.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
from host import describe

from pasrec.service.settings import environment_without_settings

ROOT = Path(__file__).resolve().parents[1]
ML100K = ROOT.parent / "shared" / "data" / "ml-100k" / "ml-100k.inter"
PG_URL = os.environ.get("PASREC_TEST_POSTGRES_URL", "postgresql+psycopg://@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PASREC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
EVENTS_PER_USER = 8


class Receiver:
    """Counts requests per webhook-id with the time of the first one; answers 204."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.first: dict[str, float] = {}
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("content-length", 0)))
                now = time.time()
                push_id = self.headers["webhook-id"]
                with lock:
                    receiver.counts[push_id] += 1
                    receiver.first.setdefault(push_id, now)
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 256
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def machine() -> dict[str, Any]:
    engine = sa.create_engine(PG_URL)
    with engine.connect() as conn:
        postgres = conn.execute(sa.text("SHOW server_version")).scalar_one()
    engine.dispose()
    return describe(
        "workers, receiver, Postgres and Redis on the same machine",
        postgres=postgres,
        redis=redis.Redis.from_url(REDIS_URL).info("server")["redis_version"],
    )


def train_tiny(out: Path) -> Path:
    lines = ML100K.read_text().splitlines()
    keep = [lines[0]] + [row for row in lines[1:] if int(row.split("\t")[0]) <= 120]
    data = out / "slice.inter"
    data.write_text("\n".join(keep) + "\n")
    pasrec = Path(sys.executable).parent / "pasrec"
    cmd = [
        str(pasrec), "train", "--data", str(data), "--model", "pasrec", "--epochs", "1",
        "--hidden", "32", "--ddim-steps", "10", "--diffusion-steps", "100", "--truncate", "30",
        "--history-length", "10", "--device", "cpu", "--quiet", "--toi-head", "tpp",
        "--out", str(out / "pasrec"),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    return out / "pasrec" / "checkpoint"


def vocabulary(checkpoint: Path) -> list[str]:
    from pasrec.model.predictor import Predictor

    return list(Predictor.load(checkpoint, device="cpu").items)


def private_schema() -> tuple[str, str]:
    schema = f"pasrec_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    url = sa.engine.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return schema, url.render_as_string(hide_password=False)


def drop_schema(schema: str, prefix: str) -> None:
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def seed_users(url: str, users: int, items: list[str]) -> None:
    """Users with a short history ending a day ago (so no policy rule blocks their push)."""
    rng = random.Random(0)
    now = datetime.now(UTC)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO items (id, first_seen_at) VALUES (:id, :t)"),
            [{"id": item, "t": now} for item in items],
        )
        conn.execute(
            sa.text("INSERT INTO users (id, created_at, last_event_at) VALUES (:id, :t, :last)"),
            [{"id": f"u{u}", "t": now, "last": now - timedelta(days=1)} for u in range(users)],
        )
        rows = []
        for u in range(users):
            for n, item in enumerate(rng.sample(items, EVENTS_PER_USER)):
                ts = now - timedelta(days=1, minutes=EVENTS_PER_USER - n)
                rows.append({"e": f"u{u}:{n}", "u": f"u{u}", "i": item, "ts": ts, "t": now})
        conn.execute(
            sa.text(
                "INSERT INTO interactions (event_id, user_id, item_id, ts, ingested_at) "
                "VALUES (:e, :u, :i, :ts, :t)"
            ),
            rows,
        )
    engine.dispose()


def make_due(url: str, users: int, due: datetime) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO pushes (id, user_id, status, due_at, fallback, attempts, "
                "created_at, updated_at) VALUES (:id, :u, 'pending', :due, false, 0, :t, :t)"
            ),
            [
                {"id": str(uuid.uuid4()), "u": f"u{u}", "due": due, "t": datetime.now(UTC)}
                for u in range(users)
            ],
        )
    engine.dispose()


def statuses(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT status, count(*) FROM pushes GROUP BY status")).all()
    engine.dispose()
    return {status: count for status, count in rows}


def start_workers(n: int, url: str, prefix: str, hook: str, args: argparse.Namespace,
                  logs: Path) -> list[subprocess.Popen[bytes]]:  # fmt: skip
    env = environment_without_settings()
    env.update(
        PASREC_DATABASE_URL=url,
        PASREC_REDIS_URL=REDIS_URL,
        PASREC_REDIS_PREFIX=prefix,
        PASREC_MODEL_PATH=str(args.checkpoint),
        PASREC_DEVICE="cpu",
        PASREC_PUSH_WEBHOOK_URL=hook,
        PASREC_PUSH_WEBHOOK_SECRET=SECRET,
        PASREC_PUSH_POLL_INTERVAL_S="0.1",
        PASREC_PUSH_CLAIM_BATCH=str(args.claim_batch),
        PASREC_PUSH_CONCURRENCY=str(args.concurrency),
        PASREC_PUSH_RATE_LIMIT_PER_S="0",
        PASREC_PUSH_QUIET_START="",
        PASREC_PUSH_QUIET_END="",
        PASREC_LOG_LEVEL="INFO",
    )
    pasrec = Path(sys.executable).parent / "pasrec"
    procs = []
    for w in range(n):
        with (logs / f"worker{w}.log").open("w") as out:
            procs.append(subprocess.Popen([str(pasrec), "worker"], env=env, stdout=out,
                                          stderr=out))  # fmt: skip
    return procs


def wait_ready(procs: list[subprocess.Popen[bytes]], logs: Path) -> None:
    """Until every worker has loaded the model and started its dispatcher."""
    deadline = time.monotonic() + 180
    pending = set(range(len(procs)))
    while pending:
        for w in sorted(pending):
            log = (logs / f"worker{w}.log").read_text()
            if procs[w].poll() is not None:
                raise SystemExit(f"worker {w} exited:\n{log[-3000:]}")
            if "push dispatcher" in log:
                pending.discard(w)
        if time.monotonic() > deadline:
            raise SystemExit("workers did not start within 180 s")
        time.sleep(0.2)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run_once(args: argparse.Namespace, workers: int, items: list[str], logs: Path) -> dict:
    schema, url = private_schema()
    prefix = f"pasrec-bench:{uuid.uuid4().hex[:8]}:"
    receiver = Receiver()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        from pasrec.service.migrate import upgrade
        from pasrec.service.settings import Settings

        upgrade(Settings(database_url=url, _env_file=None))
        seed_users(url, args.pushes, items)
        procs = start_workers(workers, url, prefix, receiver.url, args, logs)
        wait_ready(procs, logs)
        due = datetime.now(UTC) + timedelta(seconds=2)
        make_due(url, args.pushes, due)
        deadline = time.monotonic() + args.timeout
        while len(receiver.first) < args.pushes and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # late duplicates would arrive now
        final = statuses(url)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(60)
        receiver.close()
        drop_schema(schema, prefix)
    lags = [t - due.timestamp() for t in receiver.first.values()]
    span = max(lags) if lags else float("nan")
    return {
        "workers": workers,
        "pushes": args.pushes,
        "received_distinct": len(receiver.first),
        "duplicates": sum(c - 1 for c in receiver.counts.values()),
        "losses": args.pushes - len(receiver.first),
        "pushes_per_s": len(lags) / span if lags else 0.0,
        "seconds": span,
        "lag_p50_s": percentile(lags, 50) if lags else None,
        "lag_p99_s": percentile(lags, 99) if lags else None,
        "final_statuses": final,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--checkpoint", type=Path, help="default: train a tiny one first")
    parser.add_argument("--concurrency", type=int, default=8, help="deliveries per worker")
    parser.add_argument("--claim-batch", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run")
    parser.add_argument("--smoke", action="store_true", help="200 pushes, 1 and 2 workers")
    parser.add_argument("--out", type=Path, default=Path("docs/results/bench_dispatcher.json"))
    args = parser.parse_args()
    if args.smoke:
        args.pushes, args.workers = 200, [1, 2]
    host = machine()  # before the run: the load of a shared machine
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        if args.checkpoint is None:
            print("training a tiny checkpoint ...", flush=True)
            args.checkpoint = train_tiny(scratch)
        items = vocabulary(args.checkpoint)
        runs = [run_once(args, w, items, scratch) for w in args.workers]
    result = {
        "bench": "dispatcher",
        "when": datetime.now(UTC).isoformat(),
        "machine": host,
        "checkpoint": str(args.checkpoint),
        "settings": {
            "concurrency_per_worker": args.concurrency,
            "claim_batch": args.claim_batch,
            "events_per_user": EVENTS_PER_USER,
        },  # fmt: skip
        "runs": runs,
    }
    print(f"machine: {host['cpu']} ({host['cores']} cores, load {host['load_avg_1m']:.1f})")
    print(f"{'workers':>7} {'pushes':>7} {'push/s':>8} {'p50 lag s':>10} {'p99 lag s':>10} "
          f"{'dupes':>6} {'lost':>5}")  # fmt: skip
    for run in runs:
        print(
            f"{run['workers']:>7} {run['pushes']:>7} {run['pushes_per_s']:>8.1f} "
            f"{run['lag_p50_s']:>10.2f} {run['lag_p99_s']:>10.2f} {run['duplicates']:>6} "
            f"{run['losses']:>5}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
