"""Load test of a running PASRec-push API: ingestion throughput and /recommend latency.

    python bench/load_service.py --url http://127.0.0.1:8000 --key "$PASREC_KEY" \
        --data ../shared/data/ml-100k/ml-100k.inter --out docs/results/bench_service.json
    python bench/load_service.py --smoke --url ... --key ... --out /tmp/x.json   # seconds, CI

The key needs the `ingest` and `read` scopes. Events are real MovieLens rows re-stamped to
end now (the service refuses far-future times) with ids unique to this run, so the script
can be rerun against the same database. No thresholds: it measures and reports.

    python bench/load_service.py --push-compare --batches 100 1000 --events 40000 \
        [--checkpoint DIR] --out docs/results/bench_ingest_push.json

`--push-compare` starts its own stacks instead (PostgreSQL and Redis from
`PASREC_TEST_POSTGRES_URL` / `PASREC_TEST_REDIS_URL`, a private schema each, see
`push_stack.py`): per batch size, ingestion with active push off, then on (an API-only
`pasrec serve` plus one `pasrec worker` planning the pushes), the on/off ratio of events/s,
and for push on the planning lag (the worker's histogram, p50/p99) and how long after the
last acknowledged batch the push outbox was empty. Without `--checkpoint` a tiny PASRec is
trained first (bench/dispatcher.py).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from host import describe


def load_events(path: Path, limit: int) -> list[dict[str, Any]]:
    rows = []
    with path.open() as handle:
        next(handle)  # RecBole header
        for line in handle:
            user, item, _rating, ts = line.rstrip("\n").split("\t")
            rows.append((user, item, float(ts)))
            if len(rows) == limit:
                break
    shift = time.time() - 3600 - max(ts for _, _, ts in rows)
    run = uuid.uuid4().hex[:8]
    return [
        {"event_id": f"bench-{run}-{n}", "user_id": u, "item_id": i, "timestamp": ts + shift}
        for n, (u, i, ts) in enumerate(rows)
    ]


def run_clients(clients: int, work) -> float:
    threads = [threading.Thread(target=work, args=(c,)) for c in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def bench_ingest(url: str, headers: dict, events: list[dict], clients: int, batch: int) -> dict:
    batches = [events[i : i + batch] for i in range(0, len(events), batch)]
    accepted = [0] * clients
    latencies: list[float] = []
    lock = threading.Lock()

    def work(client: int) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
            for body in batches[client::clients]:
                started = time.perf_counter()
                response = http.post("/v1/events", json={"events": body})
                response.raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - started)
                accepted[client] += response.json()["accepted"]

    seconds = run_clients(clients, work)
    return {
        "events": len(events),
        "accepted": sum(accepted),
        "batch_size": batch,
        "clients": clients,
        "seconds": seconds,
        "events_per_s": sum(accepted) / seconds,
        "batch_latency_ms_p50": 1000 * percentile(latencies, 50),
        "batch_latency_ms_p99": 1000 * percentile(latencies, 99),
    }


def bench_recommend(
    url: str, headers: dict, users: list[str], clients: int, n: int, k: int
) -> dict:
    latencies: list[float] = []
    fallbacks = [0]
    lock = threading.Lock()

    def work(client: int) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
            http.get(f"/v1/recommend/{users[client % len(users)]}", params={"k": k})  # warm
            for r in range(n):
                user = users[(client * n + r) % len(users)]
                started = time.perf_counter()
                response = http.get(f"/v1/recommend/{user}", params={"k": k})
                elapsed = time.perf_counter() - started
                response.raise_for_status()
                with lock:
                    latencies.append(elapsed)
                    fallbacks[0] += response.json()["fallback"] is not None

    seconds = run_clients(clients, work)
    return {
        "requests": len(latencies),
        "clients": clients,
        "k": k,
        "seconds": seconds,
        "requests_per_s": len(latencies) / seconds,
        "fallbacks": fallbacks[0],
        "latency_ms_p50": 1000 * percentile(latencies, 50),
        "latency_ms_p95": 1000 * percentile(latencies, 95),
        "latency_ms_p99": 1000 * percentile(latencies, 99),
        "latency_ms_mean": 1000 * statistics.fmean(latencies),
    }


def push_compare(args: argparse.Namespace) -> dict[str, Any]:
    """Ingestion with push off and on, per batch size, each on a fresh stack."""
    from dispatcher import train_tiny
    from push_stack import KEY, stack

    host = describe("client, API, worker, PostgreSQL and Redis on the same machine")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        if args.checkpoint is None:
            print("training a tiny checkpoint ...", flush=True)
            args.checkpoint = train_tiny(scratch)
        for batch in args.batches:
            for push in (False, True):
                with stack(args.checkpoint, push, free_port(), free_port(), scratch) as running:
                    load = os.getloadavg()[0]
                    events = load_events(args.data, args.events)
                    headers = {"Authorization": f"Bearer {KEY}"}
                    run = bench_ingest(running.url, headers, events, args.clients, batch)
                    run |= {"push": push, "load_avg_1m_before": load}
                    if push:
                        ended = time.perf_counter()
                        while running.outbox() and time.perf_counter() - ended < 900:
                            time.sleep(0.05)
                        run["outbox_drained_after_s"] = time.perf_counter() - ended
                        run["outbox_left"] = running.outbox()
                        run["planning_lag"] = running.planning_lag()
                runs.append(run)
                print(f"batch {batch}, push {'on' if push else 'off'}: "
                      f"{run['events_per_s']:.0f} events/s", flush=True)  # fmt: skip
    speed = {(run["batch_size"], run["push"]): run["events_per_s"] for run in runs}
    ratios = {str(batch): speed[batch, False] / speed[batch, True] for batch in args.batches}
    return {
        "bench": "ingest_push",
        "machine": host,
        "checkpoint": str(args.checkpoint),
        "runs": runs,
        "off_over_on": ratios,
    }


def print_push_compare(result: dict[str, Any]) -> None:
    host = result["machine"]
    print(f"machine: {host['cpu']} ({host['cores']} cores, load {host['load_avg_1m']:.1f})")
    print("| batch | push | events/s | batch p50 / p99 ms | load | lag p50 / p99 s | drained s |")
    print("|---|---|---|---|---|---|---|")
    for run in result["runs"]:
        lag = run.get("planning_lag")
        lags = "—" if lag is None else f"{lag['p50_s']:.2f} / {lag['p99_s']:.2f}"
        drained = f"{run['outbox_drained_after_s']:.1f}" if run["push"] else "—"
        print(
            f"| {run['batch_size']} | {'on' if run['push'] else 'off'} | "
            f"{run['events_per_s']:.0f} | {run['batch_latency_ms_p50']:.0f} / "
            f"{run['batch_latency_ms_p99']:.0f} | {run['load_avg_1m_before']:.1f} | {lags} | "
            f"{drained} |"
        )
    for batch, ratio in result["off_over_on"].items():
        print(f"batch {batch}: push off / push on = {ratio:.2f}x")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument(
        "--key",
        default=os.environ.get("PASREC_BENCH_KEY", ""),
        help="API key with ingest and read scopes (or PASREC_BENCH_KEY)",
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data/ml-100k/ml-100k.inter"))
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=100, help="per client")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("docs/results/bench_service.json"))
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds (CI)")
    parser.add_argument(
        "--push-compare",
        action="store_true",
        help="start stacks with push off and on and compare ingestion",
    )
    parser.add_argument(
        "--batches", type=int, nargs="+", default=[100, 1000], help="batch sizes of --push-compare"
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="--push-compare: checkpoint to serve (default: train a tiny one)",
    )
    args = parser.parse_args()  # fmt: skip
    if args.push_compare:
        result = push_compare(args)
        print_push_compare(result)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")
        return
    if args.smoke:
        args.events, args.batch, args.clients, args.requests = 200, 50, 2, 5

    # Before the run: the load of a shared machine.
    host = describe("client and server on the same machine")
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    ready = httpx.get(f"{args.url}/readyz", timeout=10).json()
    events = load_events(args.data, args.events)
    ingest = bench_ingest(args.url, headers, events, args.clients, args.batch)
    users = sorted({e["user_id"] for e in events})
    recommend = bench_recommend(args.url, headers, users, args.clients, args.requests, args.k)
    result = {
        "machine": host,
        "server": ready,
        "smoke": args.smoke,
        "ingest": ingest,
        "recommend": recommend,
    }

    print(f"machine: {host['cpu']} ({host['cores']} cores, load {host['load_avg_1m']:.1f})")
    print(f"server: {ready.get('checks')}")
    print("| measure | value |\n|---|---|")
    print(
        f"| ingestion, {args.clients} clients x batches of {args.batch} | "
        f"{ingest['events_per_s']:.0f} events/s |"
    )
    print(
        f"| batch latency p50 / p99 | {ingest['batch_latency_ms_p50']:.1f} / "
        f"{ingest['batch_latency_ms_p99']:.1f} ms |"
    )
    print(
        f"| /recommend at {args.clients} clients, p50 / p95 / p99 | "
        f"{recommend['latency_ms_p50']:.1f} / {recommend['latency_ms_p95']:.1f} / "
        f"{recommend['latency_ms_p99']:.1f} ms |"
    )
    print(f"| /recommend throughput | {recommend['requests_per_s']:.1f} req/s |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
