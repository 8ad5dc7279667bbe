"""The aiohttp application factory: wiring only, no logic.

``create_app(config)`` returns a root app holding, under typed keys (:mod:`gateway.app_keys`),
the config, the metrics registry and — once started — the database. Resources live in cleanup
contexts, so each is released if and only if it was acquired:

1. :func:`database_context` — the embedded Postgres when no URL is configured, the asyncpg pool,
   pending migrations (``database.auto_migrate``), and the config's tenants/channels mirrored
   into their tables.
2. :func:`gateway.api.context.pipeline_context` — adapters, channel routes, the edge keys, the
   group-commit batcher and the LISTEN connection that wakes device streams.
3. :func:`gateway.api.context.polling_context` — the pollers of channels with
   ``poll_interval_s`` (pull-based delivery into the same pipeline).

The root app serves ``/healthz``, ``/readyz``, ``/metrics`` and ``/openapi.json``. Each API
surface is a sub-app under its own prefix with its own body limit (:data:`SURFACES`); a
surface's routes come from the setup functions listed for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass

from aiohttp import web

from gateway.api import (
    analytics,
    auth,
    conversations,
    devices,
    health,
    messages,
    notes,
    openapi,
    rosters,
    webhooks,
    workflow,
    ws,
)
from gateway.api.context import pipeline_context, polling_context
from gateway.api.middleware import body_limit, request_context
from gateway.app_keys import CONFIG, DATABASE, METRICS
from gateway.config import Config
from gateway.logging import get_logger
from gateway.metrics import Metrics
from gateway.store import tenants
from gateway.store.db import Database
from gateway.store.embedded import resolve_database
from gateway.store.migrate import migrate, schema_status

__all__ = ["SURFACES", "RouteSetup", "Surface", "create_app"]

RouteSetup = Callable[[web.Application], None]
log = get_logger("unigate.app")


@dataclass(frozen=True, slots=True)
class Surface:
    prefix: str
    limit: Callable[[Config], int]  # body limit, from the config
    setups: tuple[RouteSetup, ...] = ()  # functions adding this surface's routes


# The HTTP surfaces: platforms post webhooks to /webhooks, devices and admins use /v1.
SURFACES: tuple[Surface, ...] = (
    Surface("/webhooks", lambda config: config.server.webhook_max_bytes, (webhooks.setup,)),
    Surface("/v1", lambda config: config.server.api_max_bytes,
            (auth.setup, devices.setup, rosters.setup, conversations.setup, messages.setup,
             workflow.setup, notes.setup, analytics.setup, ws.setup)),
)


def create_app(config: Config, *,
               extra_routes: Mapping[str, Sequence[RouteSetup]] | None = None) -> web.Application:
    """The gateway app for ``config``; ``extra_routes`` adds route setups per surface prefix."""
    extra = dict(extra_routes or {})
    unknown = set(extra) - {surface.prefix for surface in SURFACES}
    if unknown:
        raise ValueError(f"no such API surface: {sorted(unknown)}")
    limits = [surface.limit(config) for surface in SURFACES]
    app = web.Application(middlewares=[request_context], client_max_size=max(limits))
    app[CONFIG] = config
    app[METRICS] = Metrics()
    app.cleanup_ctx.append(database_context)
    app.cleanup_ctx.append(pipeline_context)
    app.cleanup_ctx.append(polling_context)
    app.cleanup_ctx.append(messages.egress_context)
    app.add_routes(health.routes)
    app.add_routes(openapi.routes)
    for surface, limit in zip(SURFACES, limits, strict=True):
        sub = web.Application(middlewares=[body_limit(limit)], client_max_size=limit)
        # extra routes first: they take precedence over the surface's catch-alls
        for setup in (*extra.get(surface.prefix, ()), *surface.setups):
            setup(sub)
        app.add_subapp(surface.prefix, sub)
    return app


async def database_context(app: web.Application) -> AsyncIterator[None]:
    """Postgres for the app's lifetime (embedded or external), migrated and synced."""
    config = app[CONFIG].database
    url, embedded = await resolve_database(config)
    if embedded is not None:
        log.info("embedded_postgres_started", data_dir=str(embedded.data_dir))
    try:
        db = await Database.connect(
            url, min_size=config.pool_min, max_size=config.pool_max,
            statement_timeout_ms=config.statement_timeout_ms, slow_query_ms=config.slow_query_ms,
        )
        try:
            await _prepare(db, app[CONFIG])
            app[DATABASE] = db
            app[METRICS].watch_pool(db.pool_stats)
            yield
        finally:
            await db.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


async def _prepare(db: Database, config: Config) -> None:
    async with db.acquire() as conn:
        if config.database.auto_migrate:
            applied = await migrate(conn)
            if applied:
                log.info("migrations_applied", applied=len(applied))
        status = await schema_status(conn)
    if not status.usable:
        # keep serving /healthz; /readyz says 503 until `unigate migrate` runs
        log.warning("schema_not_current", version=status.current, pending=status.pending)
        return
    count = await tenants.sync_config(db, config.tenants)
    log.info("database_ready", version=status.current, count=count,
             url_kind="external" if config.database.url else "embedded")
