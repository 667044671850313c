"""Subcommands that run the online service: serve, worker, migrate, apikey."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from cli.help_text import SERVE_SETTINGS, WORKER_SETTINGS, settings_epilog

if TYPE_CHECKING:
    from service.settings import Settings


def checked_settings() -> Settings:
    """Settings from the environment, with the checkpoint paths checked first: a wrong path is
    the usual first mistake, and inside the server it surfaces as a start-up traceback."""
    from service.settings import Settings

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
    from service.app import run_server

    run_server(checked_settings())
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from service.worker import run_worker

    run_worker(checked_settings())
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from service.migrate import upgrade
    from service.settings import Settings

    upgrade(Settings())
    print("database schema is up to date")
    return 0


def cmd_apikey(args: argparse.Namespace) -> int:
    import sys

    from service.auth import create_key, key_id_of, revoke_key
    from service.settings import Settings

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


def add_service_commands(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the HTTP API (settings from PASREC_* env vars)",
        description="Serve the HTTP API, and deliver pushes unless "
        "PASREC_PUSH_DISPATCHER_ENABLED=false.\n"
        "No options: everything is a PASREC_* setting (below). The checkpoint to serve comes\n"
        "from `pasrec train --out DIR` (DIR/checkpoint) or `pasrec demo --out DIR`\n"
        "(DIR/train/checkpoint); README.md's quick start serves one end to end.",
        epilog=settings_epilog(SERVE_SETTINGS),
    )
    serve.set_defaults(handler=cmd_serve)
    worker = sub.add_parser(
        "worker",
        help="run push dispatchers only, no HTTP API (settings from PASREC_* env vars)",
        description="Deliver due pushes (no HTTP API); settings as for `pasrec serve`.",
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
