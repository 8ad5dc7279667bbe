"""Operational endpoints on the root app: liveness, readiness, Prometheus metrics.

* ``GET /healthz`` — the process is up and its event loop answers (no dependencies checked).
* ``GET /readyz`` — Postgres answers within :data:`READY_TIMEOUT_S` and its schema is one this
  build can run on (all migrations applied, or a newer compatible schema). 503 otherwise, so a
  load balancer stops routing here.
* ``GET /metrics`` — Prometheus text format.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.app_keys import DATABASE, METRICS
from gateway.errors import MigrationError
from gateway.logging import get_logger
from gateway.metrics import CONTENT_TYPE
from gateway.store.migrate import schema_status

__all__ = ["routes"]

READY_TIMEOUT_S = 2.0
routes = web.RouteTableDef()
log = get_logger("unigate.health")


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    db = request.config_dict[DATABASE]
    try:
        async with asyncio.timeout(READY_TIMEOUT_S), db.acquire() as conn:
            status = await schema_status(conn)
    except MigrationError:
        log.error("schema_history_mismatch")
        return web.json_response({"status": "unavailable", "database": "ok",
                                  "schema": "history_mismatch"}, status=503)
    except Exception as exc:  # any failure means "not ready"; the reason goes to the log
        log.warning("readiness_failed", error=type(exc).__name__)
        return web.json_response({"status": "unavailable", "database": "unreachable"},
                                 status=503)
    body = {"status": "ready" if status.usable else "unavailable", "database": "ok",
            "schema_version": status.current, "schema_latest": status.latest}
    return web.json_response(body, status=200 if status.usable else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = request.config_dict[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
