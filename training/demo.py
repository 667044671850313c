"""`pasrec demo`: the whole product on one machine in about two minutes, nothing to install or
download. Synthetic data (or `--data`), a small PASRec trained on the first 75% of its events, the
real service on the embedded default, a webhook receiver that prints pushes as they arrive,
the remaining time replayed at high speed, and the replay table."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from training.loaders import load_interactions
from training.replay import ReplayOptions, run_replay, train_before_cutoff
from training.replay_data import load_replay_data
from training.replay_report import markdown
from training.synthetic import SyntheticConfig, write_synthetic

PRINTED_PUSHES = 12
CUTOFF_SHARE = 0.75
# Fast enough for the 2-minute budget, good enough to show the shape of the results.
DEMO_MODEL = {"ddim_steps": 20, "guidance": 2.0, "eta": 0.8}


class PushPrinter:
    """Prints the first pushes in full, then counts the rest (receiver threads call it)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, data: dict[str, Any]) -> None:
        with self._lock:
            self.count += 1
            if self.count > self.limit:
                return
            when = datetime.fromisoformat(data["generated_at"]).astimezone(UTC)
            items = ", ".join(entry["item_id"] for entry in data["items"][:4])
            print(
                f"  push {self.count:>3} [{when:%Y-%m-%d %H:%M}] -> {data['user_id']}: "
                f"{items}, ...",
                flush=True,
            )
            if self.count == self.limit:
                print("  ... (further pushes are counted, not printed)", flush=True)


def run_demo(out: Path, data: str | None, users: int, epochs: int, seed: int) -> dict[str, Any]:
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    if data is None:
        data = str(write_synthetic(demo_config(users, seed), out / "synthetic.inter"))
        print(f"1/3 synthetic data: {users} users -> {data} (see docs/synthetic.md)", flush=True)
    else:
        print(f"1/3 data: {data}", flush=True)
    cutoff = _cutoff_at_event_share(data, CUTOFF_SHARE)
    print(
        f"2/3 training a small PASRec ({epochs} epochs, hidden 64) on the events before "
        f"{cutoff} ({CUTOFF_SHARE:.0%} of them)",
        flush=True,
    )
    printer = PushPrinter(PRINTED_PUSHES)
    opts = ReplayOptions(
        data=data, cutoff=cutoff, out=out, windows_days=[7.0, 30.0],
        strategies=["toi", "fixed", "user_median", "passive"], epochs=epochs, hidden=64,
        tpp_head=False, history_length=10, model_overrides=DEMO_MODEL, seed=seed,
        progress=False, max_minutes=1.0,
    )  # fmt: skip
    opts.checkpoint = train_before_cutoff(load_replay_data(data, opts.cutoff), opts)
    print("3/3 replaying the rest through the service, once per strategy; the `toi` pushes "
          "as they arrive:", flush=True)  # fmt: skip
    result = run_replay(opts, on_push=printer)
    print(f"\n{printer.count} pushes reached the receiver for the `toi` strategy.\n")
    print(markdown(result))
    print(f"demo finished in {time.perf_counter() - started:.0f} s; outputs in {out}/ "
          "(replay.md, replay.json, timeline.png, tradeoff.png)")  # fmt: skip
    return result


def demo_config(users: int, seed: int) -> SyntheticConfig:
    """The generator's defaults with arrivals spread over a year, so every stretch of time
    has active users (the defaults bunch arrivals to keep gaps large against the span)."""
    return SyntheticConfig(users=users, seed=seed, start_spread_days=365.0)


def _cutoff_at_event_share(path: str, share: float) -> str:
    """The time before which `share` of the events lie, as an ISO datetime."""
    times = np.sort(np.asarray(load_interactions(path).timestamps, dtype=np.int64))
    at = int(times[int(share * (len(times) - 1))])
    return datetime.fromtimestamp(at, UTC).isoformat()
