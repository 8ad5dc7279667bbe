"""Admin-signed device rosters over HTTP.

    POST /v1/rosters/{tenant}       publish {"version", "payload", "signature"}: accepted only
                                    if the tenant's admin key (config) signed it, it names this
                                    edge, and its version is newer than every stored one and
                                    not older than the edge's roster mark (409)
    GET  /v1/roster                 the newest stored roster of the caller's tenant (device token)
    GET  /v1/roster/{version}       one version (devices open history sealed under older ones)

The admin signature is the authorisation to publish: the server cannot make a roster, and the
edge re-verifies every roster it uses (``gateway.edge.RosterBook``), so a row written straight
into the database is ignored.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from gateway.api.auth import decode_body, require_device
from gateway.api.context import PIPELINE
from gateway.app_keys import DATABASE
from gateway.edge import StoredRoster
from gateway.errors import BadRequest, Conflict, NotFound
from gateway.logging import get_logger
from gateway.store import roster_versions, rosters
from gateway.wire import RosterOut, WireError

__all__ = ["setup"]

routes = web.RouteTableDef()
log = get_logger("unigate.rosters")


def _json(value: object, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(value), status=status,
                        content_type="application/json")


@routes.post("/rosters/{tenant}")
async def publish(request: web.Request) -> web.Response:
    tenant = request.match_info["tenant"]
    body = decode_body(await request.read(), RosterOut)
    pipeline = request.config_dict[PIPELINE]
    book = pipeline.rosters
    if book.admin_key(tenant) is None:
        raise NotFound("no such tenant")
    try:
        roster = book.verify(tenant, StoredRoster(body.version, body.payload, body.signature))
    except WireError as exc:
        raise BadRequest(str(exc)) from None
    if roster.version < pipeline.marks.roster_floor(tenant):  # after a database restore
        raise Conflict("roster version is older than the newest this edge has sealed under")
    await rosters.publish_roster(request.config_dict[DATABASE], tenant, roster.version,
                                 body.payload, body.signature)
    log.info("roster_published", tenant_id=tenant, version=roster.version,
             count=len(roster.devices))
    return _json({"version": roster.version, "devices": len(roster.devices)}, 201)


@routes.get("/roster")
async def newest(request: web.Request) -> web.Response:
    claims, _ = await require_device(request)
    row = await rosters.latest_roster(request.config_dict[DATABASE], claims.tenant)
    if row is None:
        raise NotFound("no roster yet")
    return _json(RosterOut(version=row.version, payload=row.payload, signature=row.signature))


@routes.get("/roster/{version}")
async def at_version(request: web.Request) -> web.Response:
    claims, _ = await require_device(request)
    try:
        version = int(request.match_info["version"])
    except ValueError:
        raise NotFound("no such roster") from None
    row = await roster_versions.roster_at(request.config_dict[DATABASE], claims.tenant, version)
    if row is None:
        raise NotFound("no such roster")
    return _json(RosterOut(version=row.version, payload=row.payload, signature=row.signature))


def setup(app: web.Application) -> None:
    app.add_routes(routes)
