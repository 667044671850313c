"""What-if of push schedules in seconds: the decisions a replay's service makes, without it.

`pasrec replay` drives the real service and takes minutes per strategy. This reads the same
log, cutoff and user sample and, at every *decision point* (a user's distinct event time
after the cutoff, with at least `--min-history` events of items the checkpoint knows among
the last L: the users the service times itself), asks when each schedule would push:

- `fixed` (`--fixed-interval` days after the visit) and `user_median` (the median gap
  between the distinct times of the last L events, from `pasrec/service/push/timing.py` itself);
- `tpp_window`, from the checkpoint's tpp head through `Predictor.predict_next_time` (the
  service's own call), swept over the gate `push_min_timely_probability`;
- `median_gate`: the fallback delay (1 day) for users whose median gap is at most m days,
  no push otherwise, swept over m: a simple rule with the same power to stay silent.

A push at delay d is sent when the user has not come back before it (next gap >= d; a push
due at an event's instant goes out first, as in the replay), and is timely when the next
visit comes within the window after it; it is judged only when that window ends inside the
data. No caps, minimum gap or active window (none binds day-stamped pushes a day or more
apart), no pushes planned at the cutoff itself: its counts run a little below the replay's,
its shares close to them (docs/results/replay/README.md compares both).

    python bench/push_schedules.py --data ../shared/data/beauty --cutoff 0.9 \
        --max-users 7200 --checkpoint CKPT [--toi-checkpoint CLOCK] --out docs/results/...
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from pasrec.model.predictor import PairedPredictor, Predictor  # noqa: E402
from pasrec.replay.data import load_replay_data  # noqa: E402
from pasrec.replay.scoring import wilson_interval  # noqa: E402
from pasrec.service.cache import CachedEvent  # noqa: E402
from pasrec.service.history import UserHistory  # noqa: E402
from pasrec.service.push import timing  # noqa: E402
from pasrec.service.settings import Settings  # noqa: E402

DAY = 86400.0
GATES = (0.0, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6)
MEDIAN_LIMITS = (3.0, 7.0, 14.0, 21.0, 30.0, 60.0)


USER_MEDIAN = Settings(_env_file=None, push_timing="user_median")


def median_gap_push(history: list[tuple[str, float]]) -> float | None:
    """When the service's `user_median` timing pushes after this history (None: it has no
    gap to take a median of)."""
    events = [CachedEvent(at, index, item) for index, (item, at) in enumerate(history)]
    chosen = timing.next_time(USER_MEDIAN, UserHistory(events, frozenset()), None, True)
    return None if chosen is None else chosen.time


def decision_points(data, predictor, min_history: int) -> dict[str, Any]:
    """Histories (last L events, any item) at each eligible decision point, with the next
    gap in days (inf: no later visit) and the delay of the `user_median` push in days."""
    length = predictor.history_length
    by_user: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for user, item, at in zip(data.users, data.items, data.times, strict=True):
        by_user[user].append((str(item), float(at)))
    histories, times, gaps, medians = [], [], [], []
    for events in by_user.values():
        distinct = sorted({at for _, at in events})
        for index, at in enumerate(distinct):
            if at < data.cutoff:
                continue
            history = [e for e in events if e[1] <= at][-length:]
            if sum(predictor.known(item) for item, _ in history) < min_history:
                continue
            histories.append(history)
            times.append(at)
            later = distinct[index + 1] if index + 1 < len(distinct) else np.inf
            gaps.append((later - at) / DAY)
            pushed = median_gap_push(history)
            medians.append(np.nan if pushed is None else (pushed - at) / DAY)
    return {"histories": histories, "times": np.array(times), "gaps": np.array(gaps),
            "medians": np.array(medians)}  # fmt: skip


def outcome(points: dict[str, Any], delay: np.ndarray, send: np.ndarray, window: float,
            horizon: float, end: float) -> dict[str, Any]:  # fmt: skip
    """Counts of the pushes sent at `delay` days where `send` holds."""
    judged = send & (delay <= horizon) & (points["times"] + (delay + window) * DAY <= end)
    sent = judged & (points["gaps"] >= delay)
    timely = sent & (points["gaps"] <= delay + window)
    n, hits = int(sent.sum()), int(timely.sum())
    share = 100.0 * hits / n if n else None
    return {"pushes": n, "timely_pushes": hits, "spam": n - hits, "timely": share,
            "timely_ci95": wilson_interval(hits, n)}  # fmt: skip


def ranking_auc(score: np.ndarray, positive: np.ndarray) -> float | None:
    """P(score of a random positive > that of a random negative), ties counted half."""
    pos, neg = score[positive], score[~positive]
    if not len(pos) or not len(neg):
        return None
    order = np.argsort(np.concatenate((pos, neg)), kind="stable")
    ranks = np.empty(len(order))
    values = np.concatenate((pos, neg))[order]
    # Average ranks over ties.
    _, start, counts = np.unique(values, return_index=True, return_counts=True)
    ranks[order] = np.repeat(start + (counts + 1) / 2.0, counts)
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--cutoff", default="0.9")
    parser.add_argument("--max-users", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", required=True, help="items (which users are eligible)")
    parser.add_argument("--toi-checkpoint", help="the clock, when another checkpoint's")
    parser.add_argument("--window", type=float, default=7.0, help="days")
    parser.add_argument("--horizon", type=float, default=30.0, help="days")
    parser.add_argument("--fixed-interval", type=float, default=7.0, help="days")
    parser.add_argument("--fallback-delay", type=float, default=1.0, help="days")
    parser.add_argument("--min-history", type=int, default=3)
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args()

    items = Predictor.load(args.checkpoint, "cpu", horizon_days=int(args.horizon),
                           window_days=args.window)  # fmt: skip
    predictor = items
    if args.toi_checkpoint:
        clock = Predictor.load(args.toi_checkpoint, "cpu", horizon_days=int(args.horizon),
                               window_days=args.window)  # fmt: skip
        predictor = PairedPredictor(items, clock)
    data = load_replay_data(args.data, args.cutoff, max_users=args.max_users, seed=args.seed)
    points = decision_points(data, items, args.min_history)
    predicted = []
    histories = points["histories"]
    for start in tqdm(range(0, len(histories), 512), desc="tpp head"):
        predicted += predictor.predict_next_time(histories[start : start + 512])
    if any(p is None or p.window_start is None for p in predicted):
        raise SystemExit("the clock has no tpp head: no window or P(timely) to sweep")
    times, medians = points["times"], points["medians"]
    window_delay = np.array(
        [(p.window_start - t) / DAY for p, t in zip(predicted, times, strict=True)]
    )
    p_timely = np.array([p.p_timely for p in predicted])
    everyone = np.ones(len(times), dtype=bool)
    # Threshold-free: how well each score ranks the pushes a one-day delay would send (the
    # delay nearly every tpp_window push has) into timely and not.
    day_one = (points["gaps"] >= args.fallback_delay) & (
        times + (args.fallback_delay + args.window) * DAY <= data.end
    )
    day_one_timely = points["gaps"][day_one] <= args.fallback_delay + args.window
    median_score = -np.nan_to_num(medians, nan=np.inf)
    run = lambda delay, send: outcome(points, delay, send, args.window, args.horizon, data.end)  # noqa: E731
    result: dict[str, Any] = {
        "data": args.data, "cutoff": args.cutoff, "max_users": args.max_users,
        "checkpoint": args.checkpoint, "toi_checkpoint": args.toi_checkpoint,
        "window_days": args.window, "horizon_days": args.horizon,
        "decision_points": len(times),
        "auc_day_one": {
            "p_timely": ranking_auc(p_timely[day_one], day_one_timely),
            "minus_median_gap": ranking_auc(median_score[day_one], day_one_timely),
            "pushes": int(day_one.sum()),
        },
        "tpp_window_delay_days": {
            "median": float(np.median(window_delay)),
            "one_day_pct": float((window_delay <= 1.0).mean() * 100),
        },
        "fixed": run(np.full(len(times), args.fixed_interval), everyone),
        "user_median": run(np.nan_to_num(medians, nan=np.inf), ~np.isnan(medians)),
        "tpp_window": {f"{g:g}": run(window_delay, p_timely >= g) for g in GATES},
        "median_gate": {
            f"{m:g}": run(np.full(len(times), args.fallback_delay), medians <= m)
            for m in MEDIAN_LIMITS
        },
    }  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "push_schedules.json").write_text(json.dumps(result, indent=2))
    (out / "push_schedules.md").write_text(markdown(result))
    plot(result, out / "push_schedules.png")
    print(markdown(result))


def _row(name: str, row: dict[str, Any]) -> str:
    if row["timely"] is None:
        return f"| {name} | 0 | – | – | 0 |"
    low, high = row["timely_ci95"]
    return (f"| {name} | {row['pushes']:,} | {row['timely_pushes']:,} | {row['timely']:.2f} "
            f"[{low:.2f}, {high:.2f}] | {row['spam']:,} |")  # fmt: skip


def _auc(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# Push schedules, what-if: {result['data']}, cutoff {result['cutoff']}, "
        f"{result['max_users']} users, window {result['window_days']:g} days",
        "",
        f"{result['decision_points']:,} decision points (eligible users' distinct visit times "
        "after the cutoff). Pushes: sent and judged; timely % with its Wilson 95 % interval.",
        "",
        "How well a score ranks the pushes a one-day delay sends (AUC, timely vs not, over "
        f"{result['auc_day_one']['pushes']:,}): the clock's P(timely) "
        f"{_auc(result['auc_day_one']['p_timely'])}, minus the user's median gap "
        f"{_auc(result['auc_day_one']['minus_median_gap'])}. The tpp_window delay is one day "
        f"for {result['tpp_window_delay_days']['one_day_pct']:.1f} % of the points.",
        "",
        "| schedule | pushes | timely pushes | timely % | spam pushes |",
        "|---|---|---|---|---|",
        _row("fixed", result["fixed"]),
        _row("user_median", result["user_median"]),
    ]
    lines += [_row(f"tpp_window, P(timely) >= {g}", r) for g, r in result["tpp_window"].items()]
    lines += [_row(f"1 day if median gap <= {m} d", r) for m, r in result["median_gate"].items()]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path) -> None:
    """Timely share against the number of pushes: the gate's sweep as a curve per rule."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label, colour in (("tpp_window", "tpp_window, gate P(timely) >= g", "C0"),
                               ("median_gate", "1 day if median gap <= m days", "C1")):  # fmt: skip
        rows = [(name, r) for name, r in result[key].items() if r["timely"] is not None]
        ax.plot([r["pushes"] for _, r in rows], [r["timely"] for _, r in rows], "o-",
                color=colour, label=label)  # fmt: skip
        for name, r in rows:
            ax.annotate(name, (r["pushes"], r["timely"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
    for key, marker in (("fixed", "s"), ("user_median", "D")):
        row = result[key]
        if row["timely"] is not None:
            ax.plot(row["pushes"], row["timely"], marker, color="k", label=key)
    ax.set_xlabel("pushes sent (judged)")
    ax.set_ylabel(f"timely pushes (%, next visit within {result['window_days']:g} days)")
    ax.set_title("Push schedules: timeliness against volume")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
