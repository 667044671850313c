"""Subcommands that run the online service: serve, worker, migrate, apikey, requeue."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pasrec.cli.help_text import SERVE_SETTINGS, WORKER_SETTINGS, settings_epilog

if TYPE_CHECKING:
    from pasrec.service.settings import Settings


def checked_settings() -> Settings:
    """Settings from the environment, with the checkpoint paths checked first: a wrong path is
    the usual first mistake, and inside the server it surfaces as a start-up traceback."""
    from pasrec.service.settings import Settings

    settings = Settings()
    for name in ("model_path", "toi_model_path"):
        path: Path | None = getattr(settings, name)
        if path is None or (path / "config.json").is_file():
            continue
        nested = path / "checkpoint"
        hint = (
            f"; did you mean {nested}?"
            if (nested / "config.json").is_file()
            else " (`pasrec train --out DIR` writes DIR/checkpoint)"
        )
        raise ValueError(f"PASREC_{name.upper()}={path} is not a checkpoint directory{hint}")
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    from pasrec.service.app import run_server

    run_server(checked_settings())
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from pasrec.service.worker import run_worker

    run_worker(checked_settings())
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from pasrec.service.migrate import upgrade
    from pasrec.service.settings import Settings

    upgrade(Settings())
    print("database schema is up to date")
    return 0


def cmd_apikey(args: argparse.Namespace) -> int:
    import sys

    from pasrec.service.auth import create_key, key_id_of, revoke_key
    from pasrec.service.settings import Settings

    if args.revoke:
        key_id = key_id_of(args.revoke)
        if not revoke_key(Settings(), key_id):
            print(f"pasrec apikey: no active database key with id {key_id!r}", file=sys.stderr)
            return 1
        print(f"revoked {key_id}")
        return 0
    if not args.name or not args.scopes:
        print("pasrec apikey: error: creating a key needs --name and --scopes", file=sys.stderr)
        return 2
    print(create_key(Settings(), args.name, args.scopes))
    return 0


def cmd_requeue(args: argparse.Namespace) -> int:
    import sys
    from datetime import UTC, datetime

    from pasrec.service.db import make_engine, read_tx
    from pasrec.service.push.requeue import requeue_many
    from pasrec.service.push.store import dead_push_ids
    from pasrec.service.settings import Settings

    if bool(args.push_ids) == args.all_dead:
        print("pasrec requeue: error: give push ids or --all-dead (not both)", file=sys.stderr)
        return 2
    engine = make_engine(Settings())
    try:
        ids = args.push_ids
        if not ids:
            with read_tx(engine) as conn:
                ids = dead_push_ids(conn, args.user, args.limit)
        results = requeue_many(engine, ids, datetime.now(UTC))
    finally:
        engine.dispose()
    for result in results:
        print(f"{result.push_id}\t{result.outcome}\t{result.message}")
    if args.all_dead:
        print(f"{sum(r.ok for r in results)} of {len(results)} dead pushes requeued")
    return 0 if all(r.ok for r in results) else 1


def add_service_commands(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the HTTP API (settings from PASREC_* env vars)",
        description="Serve the HTTP API, and plan and deliver pushes unless "
        "PASREC_PUSH_DISPATCHER_ENABLED=false.\n"
        "No options: everything is a PASREC_* setting (below). The checkpoint to serve comes\n"
        "from `pasrec train --out DIR` (DIR/checkpoint) or `pasrec demo --out DIR`\n"
        "(DIR/train/checkpoint); README.md's quick start serves one end to end.",
        epilog=settings_epilog(SERVE_SETTINGS),
    )
    serve.set_defaults(handler=cmd_serve)
    worker = sub.add_parser(
        "worker",
        help="run push planning and dispatching only, no HTTP API (settings from PASREC_* env "
        "vars)",
        description="Plan the pushes of users with new events and deliver due pushes (no HTTP "
        "API); settings as for `pasrec serve`.",
        epilog=settings_epilog(WORKER_SETTINGS),
    )
    worker.set_defaults(handler=cmd_worker)
    migrate = sub.add_parser("migrate", help="upgrade the database schema to the latest")
    migrate.set_defaults(handler=cmd_migrate)
    apikey = sub.add_parser(
        "apikey", help="create an API key (printed once), or revoke one with --revoke"
    )
    apikey.add_argument("--name", help="a label for the key (1-64 characters)")
    apikey.add_argument(
        "--scopes", nargs="+", choices=("ingest", "read", "admin"), help="what the key may do"
    )
    apikey.add_argument(
        "--revoke", metavar="KEY_OR_ID", help="revoke a database key: the key or its id"
    )
    apikey.set_defaults(handler=cmd_apikey)
    requeue = sub.add_parser(
        "requeue",
        help="put dead pushes back in the queue, due now (idempotent per push)",
        description="Requeue dead pushes once their receiver is back. Each keeps its id (the "
        "webhook-id), gets a fresh attempt budget and is regenerated from the user's latest "
        "history when sent. A push already queued is left alone; a push that is not dead, or "
        "whose user has another pending push, is reported and left. Exit status 1 when any "
        "push was not requeued.",
    )
    requeue.add_argument("push_ids", nargs="*", metavar="PUSH_ID", help="pushes to requeue")
    requeue.add_argument("--all-dead", action="store_true", help="requeue every dead push")
    requeue.add_argument("--user", help="with --all-dead: only this user's dead pushes")
    requeue.add_argument(
        "--limit", type=int, default=1000, help="with --all-dead: at most this many (oldest first)"
    )
    requeue.set_defaults(handler=cmd_requeue)
