"""Load test of a running PASRec-push API: ingestion throughput and /recommend latency.

    python bench/load_service.py --url http://127.0.0.1:8000 --key "$PASREC_KEY" \
        --data ../shared/data/ml-100k/ml-100k.inter --out docs/results/bench_service.json
    python bench/load_service.py --smoke --url ... --key ... --out /tmp/x.json   # seconds, CI

The key needs the `ingest` and `read` scopes. Events are real MovieLens rows re-stamped to
end now (the service refuses far-future times) with ids unique to this run, so the script
can be rerun against the same database. No thresholds: it measures and reports.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
    args = parser.parse_args()  # fmt: skip
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
