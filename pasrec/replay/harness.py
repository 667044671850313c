"""`pasrec replay`: train (or take) a checkpoint on the events before a cutoff, replay the rest
through the real service once per timing strategy, and score every delivered push.

Strategies (one service run each, same users, same events, same policy):
`toi` (PASRec's time of interest), `tpp_median` and `tpp_window` (need a tpp head), `fixed`
(a fixed interval after the last activity), `user_median` (the user's median gap), and
`passive` (recommend at the real next interaction: the upper bound of a perfect clock, taken
during the first run).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pasrec.model.checkpoint import load_checkpoint
from pasrec.replay.data import ReplayData, load_replay_data
from pasrec.replay.report import plot_timeline, plot_tradeoff, write_outputs
from pasrec.replay.scoring import PushRecord, Timelines, score_pushes
from pasrec.replay.sim import ReplayStore, RunResult, simulate
from pasrec.replay.strategies import STRATEGIES
from pasrec.training.pipeline import DataOptions, run_training
from pasrec.training.trainer import TrainConfig

DAY = 86400.0


@dataclass
class ReplayOptions:
    data: str
    cutoff: str
    out: Path
    windows_days: list[float] = field(default_factory=lambda: [7.0])
    strategies: list[str] = field(default_factory=lambda: list(STRATEGIES))
    checkpoint: Path | None = None
    # The next times of the model strategies from this checkpoint instead (the service's
    # PASREC_TOI_MODEL_PATH): one model's clock with another's items.
    toi_checkpoint: Path | None = None
    format: str | None = None
    name: str | None = None
    max_users: int | None = None
    k: int = 10
    fixed_interval_days: float = 7.0
    # The tpp_window strategy skips pushes the head gives less chance of being timely.
    min_timely_probability: float = 0.0
    # Training when no checkpoint is given: a small PASRec, with the tpp head unless told not.
    hidden: int = 64
    tpp_head: bool = True
    epochs: int = 20
    max_minutes: float | None = None
    history_length: int | None = None
    model_overrides: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    progress: bool = True
    timeline_users: int = 4
    # The replayed service's store: the embedded default unless a Postgres URL is given.
    database_url: str | None = None
    redis_url: str | None = None


def parse_window(text: str) -> float:
    """`7d`, `36h`, `30` (days) -> days."""
    text = text.strip().lower()
    if text.endswith("d"):
        return float(text[:-1])
    if text.endswith("h"):
        return float(text[:-1]) / 24
    return float(text)


def train_before_cutoff(data: ReplayData, opts: ReplayOptions) -> Path:
    path = data.write_before(opts.out / "train" / "before_cutoff.inter")
    # The clock that holds up after the cutoff: every replayed time lies past the training
    # span, where a head on absolute-time features is uninformative (docs/results/replay/).
    clock = {"tpp_inputs": "gaps", "tpp_target": "later_day"} if opts.tpp_head else {}
    overrides = {
        "hidden": opts.hidden,
        "toi_head": "tpp" if opts.tpp_head else "none",
        **clock,
        **opts.model_overrides,
    }
    cfg = TrainConfig(
        epochs=opts.epochs, max_minutes=opts.max_minutes, seed=opts.seed,
        progress=opts.progress, patience=5,
    )  # fmt: skip
    data_opts = DataOptions(path=str(path), history_length=opts.history_length)
    results = run_training(data_opts, "pasrec", overrides, cfg, opts.out / "train")
    return Path(results["checkpoint"])


def run_replay(
    opts: ReplayOptions, on_push: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """The whole replay; `on_push` sees each push of the first strategy as it arrives."""
    unknown = sorted(set(opts.strategies) - set(STRATEGIES))
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; choose from {list(STRATEGIES)}")
    store = ReplayStore(opts.database_url, opts.redis_url)
    store.check()
    data = load_replay_data(opts.data, opts.cutoff, opts.format, opts.name, opts.max_users,
                            opts.seed)  # fmt: skip
    timing = None if opts.toi_checkpoint is None else load_checkpoint(opts.toi_checkpoint, "cpu")
    if timing is not None and not timing.config.toi:
        raise ValueError(
            f"--toi-checkpoint {opts.toi_checkpoint} ({timing.name}) has no time-of-interest "
            "module: it cannot give the pushes' times"
        )
    checkpoint = opts.checkpoint or train_before_cutoff(data, opts)
    ckpt = load_checkpoint(checkpoint, "cpu")
    timing = timing or ckpt
    strategies = list(opts.strategies)
    if timing.config.toi_head != "tpp":  # no distribution to take a median or window of
        strategies = [s for s in strategies if s not in ("tpp_median", "tpp_window")]
    timed = [s for s in strategies if s != "passive"] or ["toi"]
    mask = data.before
    before = list(zip(data.users[mask].tolist(), data.items[mask].tolist(),
                      data.times[mask].tolist(), strict=True))  # fmt: skip
    later = data.later_events()
    work = opts.out / "runs"
    work.mkdir(parents=True, exist_ok=True)
    horizon_s = max(opts.windows_days) * DAY
    runs: dict[str, RunResult] = {}
    for index, strategy in enumerate(timed):
        runs[strategy] = simulate(
            strategy, before, later, data.cutoff, checkpoint, work, horizon_s, store, opts.k,
            opts.fixed_interval_days * DAY, with_passive="passive" in strategies and index == 0,
            on_push=on_push if index == 0 else None, progress=opts.progress,
            toi_checkpoint=opts.toi_checkpoint, target_window_s=min(opts.windows_days) * DAY,
            min_timely_probability=opts.min_timely_probability,
        )  # fmt: skip
    pushes: dict[str, list[PushRecord]] = {
        s: runs[s].pushes for s in strategies if s in runs and s != "passive"
    }
    if "passive" in strategies:
        pushes["passive"] = runs[timed[0]].passive
    known = set(ckpt.item_vocab)
    known_share = 100.0 * sum(item in known for _, item, _ in later) / max(len(later), 1)
    return summarise(opts, data, checkpoint, ckpt.name, later, known_share, runs, pushes, store)


def summarise(
    opts: ReplayOptions,
    data: ReplayData,
    checkpoint: Path,
    model_name: str,
    later: list[tuple[str, str, float]],
    known_share: float,
    runs: dict[str, RunResult],
    pushes: dict[str, list[PushRecord]],
    store: ReplayStore,
) -> dict[str, Any]:
    timelines = Timelines(later)
    users = len(np.unique(data.users))
    weeks = (data.end - data.cutoff) / (7 * DAY)

    def tables(keep: Callable[[PushRecord], bool]) -> dict[str, dict[str, dict[str, Any]]]:
        return {
            f"{w:g}d": {
                s: score_pushes([p for p in records if keep(p)], timelines, w * DAY, opts.k,
                                data.end, users, weeks)  # fmt: skip
                for s, records in pushes.items()
            }
            for w in opts.windows_days
        }

    windows = tables(lambda p: True)
    result: dict[str, Any] = {
        "data": opts.data,
        "cutoff": opts.cutoff,
        "cutoff_iso": datetime.fromtimestamp(data.cutoff, UTC).isoformat(),
        "users": users,
        "later_events": len(later),
        # No push can name an item the checkpoint never saw: the ceiling on push relevance.
        "later_events_known_item": known_share,
        "weeks": weeks,
        "k": opts.k,
        "checkpoint": str(checkpoint),
        "toi_checkpoint": None if opts.toi_checkpoint is None else str(opts.toi_checkpoint),
        "model": model_name,
        "store": store.description,
        "policy": (
            f"service defaults (min gap, weekly cap, active window, fallback delay), horizon "
            f"{max(opts.windows_days):g} days, no quiet hours, no return-probability gate; "
            f"fixed interval {opts.fixed_interval_days:g} days; tpp_window aims at "
            f"{min(opts.windows_days):g} days"
            + (
                f" and skips pushes with P(timely) < {opts.min_timely_probability:g}"
                if opts.min_timely_probability
                else ""
            )
        ),
        "windows": windows,
        # The pushes each strategy timed itself, without the fallback delay's (users with too
        # little history get the same delay under every strategy).
        "timed_windows": tables(lambda p: not p.fallback),
        "runs": {
            s: {"receiver": r.receiver, "statuses": r.statuses, "wall_s": r.wall_s,
                "store": r.store}
            for s, r in runs.items()
        },
        "options": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in asdict(opts).items()
            if k not in ("database_url", "redis_url")  # may hold credentials
        },
    }
    write_outputs(result, opts.out)
    panels = {"all pushes": windows, "strategy-timed pushes": result["timed_windows"]}
    plot_tradeoff(panels, opts.k, opts.out / "tradeoff.png")
    busiest = _busiest_users(later, opts.timeline_users)
    if busiest:
        plot_timeline(later, pushes, busiest, data.cutoff, opts.out / "timeline.png")
    (opts.out / "pushes.json").write_text(
        json.dumps({s: [asdict(p) for p in records] for s, records in pushes.items()})
    )
    return result


def _busiest_users(later: list[tuple[str, str, float]], count: int) -> list[str]:
    """Users with a middling number of later events: enough to show a rhythm, few enough to
    read (the very busiest users' marks overlap)."""
    counts: dict[str, int] = {}
    for user, _, _ in later:
        counts[user] = counts.get(user, 0) + 1
    ranked = sorted(counts, key=lambda u: (-counts[u], u))
    middle = [u for u in ranked if 3 <= counts[u] <= 12] or ranked
    return middle[:count]
