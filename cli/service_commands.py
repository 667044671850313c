"""Subcommands that run the online service: serve, worker, migrate, apikey."""

from __future__ import annotations

import argparse


def cmd_serve(args: argparse.Namespace) -> int:
    from service.app import run_server
    from service.settings import Settings

    run_server(Settings())
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from service.settings import Settings
    from service.worker import run_worker

    run_worker(Settings())
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from service.migrate import upgrade
    from service.settings import Settings

    upgrade(Settings())
    print("database schema is up to date")
    return 0


def cmd_apikey(args: argparse.Namespace) -> int:
    from service.auth import create_key
    from service.settings import Settings

    key = create_key(Settings(), args.name, args.scopes)
    print(key)
    return 0


def add_service_commands(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="run the HTTP API (settings from PASREC_* env vars)")
    serve.set_defaults(handler=cmd_serve)
    worker = sub.add_parser(
        "worker", help="run push dispatchers only, no HTTP API (settings from PASREC_* env vars)"
    )
    worker.set_defaults(handler=cmd_worker)
    migrate = sub.add_parser("migrate", help="upgrade the database schema to the latest")
    migrate.set_defaults(handler=cmd_migrate)
    apikey = sub.add_parser("apikey", help="create an API key (printed once)")
    apikey.add_argument("--name", required=True)
    apikey.add_argument("--scopes", nargs="+", choices=("ingest", "read", "admin"), required=True)
    apikey.set_defaults(handler=cmd_apikey)
