"""``unigate serve`` and ``unigate migrate``.

    unigate serve   [--config FILE] [--host H] [--port P]
    unigate migrate [--config FILE] [--status]

Both read the config as :func:`gateway.config.load_config` does (``--config``, else
``$UNIGATE_CONFIG``, else defaults; then ``UNIGATE__…`` / ``DATABASE_URL`` overrides). Without a
database URL both use the embedded Postgres under the user's state directory. Exit codes:
0 ok, 2 configuration invalid, 3 database schema problem.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import asyncpg
from aiohttp import web

from gateway.config import Config, ConfigError, load_config
from gateway.edge_state import EdgeMarks
from gateway.errors import MigrationError
from gateway.logging import configure, get_logger
from gateway.store.embedded import resolve_database
from gateway.store.migrate import migrate, schema_status

__all__ = ["register"]

EXIT_CONFIG = 2
EXIT_SCHEMA = 3
log = get_logger("unigate.cli")


def register(subparsers: Any) -> None:
    """Add ``serve`` and ``migrate`` (once, though the CLI table lists this module twice)."""
    if "serve" in subparsers.choices:
        return
    serve = subparsers.add_parser("serve", help="run the gateway HTTP server")
    serve.add_argument("--config", metavar="FILE", help="TOML config (default $UNIGATE_CONFIG)")
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")
    serve.set_defaults(func=run_serve)
    mig = subparsers.add_parser("migrate", help="apply pending database migrations")
    mig.add_argument("--config", metavar="FILE", help="TOML config (default $UNIGATE_CONFIG)")
    mig.add_argument("--status", action="store_true", help="only report the schema version")
    mig.set_defaults(func=run_migrate)


def _load(args: argparse.Namespace) -> Config | None:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"unigate: configuration invalid: {exc}", file=sys.stderr)
        return None
    configure(config.logging.level, config.logging.format)
    return config


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_serve(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return EXIT_CONFIG
    from gateway.app import create_app

    try:  # a corrupted edge state file stops here, before Postgres starts
        EdgeMarks.check(config)
    except ConfigError as exc:
        print(f"unigate: cannot start: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    host = args.host or config.server.host
    port = config.server.port if args.port is None else args.port
    loop = _new_loop()
    log.info("server_starting", host=host, port=port)
    web.run_app(
        create_app(config), host=host, port=port, loop=loop, access_log=None,
        shutdown_timeout=config.server.shutdown_timeout_s,
        print=lambda line: print(line, file=sys.stderr),
    )
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return EXIT_CONFIG
    try:
        return asyncio.run(_migrate(config, status_only=args.status))
    except MigrationError as exc:
        print(f"unigate: {exc}", file=sys.stderr)
        return EXIT_SCHEMA


async def _migrate(config: Config, *, status_only: bool) -> int:
    url, embedded = await resolve_database(config.database)
    try:
        conn = await asyncpg.connect(url)
        try:
            applied = [] if status_only else await migrate(conn)
            status = await schema_status(conn)
        finally:
            await conn.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
    verb = "applied " + ", ".join(f"v{v}" for v in applied) if applied else "nothing to apply"
    if status_only:
        verb = f"{status.pending} pending"
    print(f"schema v{status.current} (this build knows v{status.latest}): {verb}")
    return 0 if status.usable else EXIT_SCHEMA
