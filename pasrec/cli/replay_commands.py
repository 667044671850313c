"""Subcommands that replay time through the real service: `replay` and `demo`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def cmd_replay(args: argparse.Namespace) -> int:
    from pasrec.replay.harness import ReplayOptions, parse_window, run_replay
    from pasrec.replay.report import markdown

    opts = ReplayOptions(
        data=args.data, cutoff=args.cutoff, out=Path(args.out),
        windows_days=[parse_window(w) for w in args.window],
        strategies=args.strategies, checkpoint=Path(args.checkpoint) if args.checkpoint else None,
        toi_checkpoint=Path(args.toi_checkpoint) if args.toi_checkpoint else None,
        format=args.format, name=args.name, max_users=args.max_users, k=args.k,
        fixed_interval_days=parse_window(args.fixed_interval),
        min_timely_probability=args.min_timely_probability, hidden=args.hidden,
        epochs=args.epochs, max_minutes=args.max_minutes, history_length=args.history_length,
        seed=args.seed, progress=not args.quiet, database_url=args.database_url,
        redis_url=args.redis_url,
    )  # fmt: skip
    print(markdown(run_replay(opts)))
    return 0


def probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text!r}")
    return value


def cmd_demo(args: argparse.Namespace) -> int:
    from pasrec.replay.demo import run_demo

    run_demo(Path(args.out), args.data, args.users, args.epochs, args.seed)
    return 0


def add_replay_commands(sub: argparse._SubParsersAction) -> None:
    from pasrec.replay.strategies import STRATEGIES

    rep = sub.add_parser(
        "replay", help="replay later events through the real service and score its pushes"
    )
    rep.add_argument("--data", required=True, help="interaction log (any format `train` reads)")
    rep.add_argument("--format", help="override format detection")
    rep.add_argument("--name", help="data set name inside a directory")
    rep.add_argument(
        "--cutoff", required=True, help="ISO date, or a fraction of the time span (0.9)"
    )
    rep.add_argument(
        "--window", nargs="+", default=["7d"], help="scoring windows, e.g. 7d 30d (the push "
        "horizon is the longest)"
    )  # fmt: skip
    rep.add_argument("--checkpoint", help="use this checkpoint instead of training one")
    rep.add_argument(
        "--toi-checkpoint",
        help="next times from this checkpoint, items from --checkpoint (PASREC_TOI_MODEL_PATH)",
    )
    rep.add_argument(
        "--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES),
        help="push-timing strategies to replay, one run each",
    )  # fmt: skip
    rep.add_argument("--fixed-interval", default="7d", help="interval of the `fixed` strategy")
    rep.add_argument(
        "--min-timely-probability", type=probability, default=0.0,
        help="tpp_window skips pushes the tpp head gives a lower chance of being timely "
        "(PASREC_PUSH_MIN_TIMELY_PROBABILITY); default 0: none skipped",
    )  # fmt: skip
    rep.add_argument("--max-users", type=int, help="a seeded sample of this many users")
    rep.add_argument("--k", type=int, default=10, help="items per push")
    rep.add_argument("--hidden", type=int, default=64, help="hidden size when training")
    rep.add_argument("--epochs", type=int, default=20, help="epochs when training")
    rep.add_argument("--max-minutes", type=float, help="training wall-time budget")
    rep.add_argument("--history-length", type=int, help="L when training")
    rep.add_argument(
        "--database-url", default=os.environ.get("PASREC_DATABASE_URL") or None,
        help="replay against this PostgreSQL (a private schema per strategy, dropped after); "
        "default $PASREC_DATABASE_URL, unset: the embedded SQLite store",
    )  # fmt: skip
    rep.add_argument(
        "--redis-url", default=os.environ.get("PASREC_REDIS_URL") or None,
        help="with --database-url: the history cache in this Redis (a private key prefix, "
        "deleted after); default $PASREC_REDIS_URL",
    )  # fmt: skip
    rep.add_argument("--seed", type=int, default=0, help="seed of sampling and training")
    rep.add_argument("--quiet", action="store_true", help="no progress bars")
    rep.add_argument("--out", required=True, help="output directory")
    rep.set_defaults(handler=cmd_replay)

    demo = sub.add_parser(
        "demo", help="train on synthetic data, run the service and watch its pushes arrive"
    )
    demo.add_argument("--data", help="an interaction log instead of the synthetic data")
    demo.add_argument("--users", type=int, default=300, help="synthetic users")
    demo.add_argument("--epochs", type=int, default=10, help="training epochs")
    demo.add_argument("--seed", type=int, default=0, help="seed of data and training")
    demo.add_argument("--out", default="runs/demo", help="output directory")
    demo.set_defaults(handler=cmd_demo)
