"""Platform webhooks: ``POST /webhooks/{channel_id}`` (ingest) and ``GET`` (handshake).

POST: raw body (the sub-app's limit gives 413) → ``adapter.verify`` over the raw bytes (401)
→ ``adapter.parse`` of every item (400 with the adapter's reason) → the pipeline → 200 only
after the envelopes are committed; 503 + Retry-After when the batcher is saturated or the
inbox has no device to seal for. Nothing is stored on any of the refusals.

GET: the adapter's handshake (Meta ``hub.challenge``, X CRC); 405 for adapters without one.

One canonical log line per webhook (``webhook_handled``): channel, outcome and counts.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from adapters.errors import (
    AccountConfigError,
    HandshakeRefused,
    PayloadInvalid,
    SignatureInvalid,
)
from adapters.errors import PayloadTooLarge as AdapterTooLarge
from adapters.sdk import InboundRequest, SupportsHandshake
from gateway.api.context import CHANNELS, PIPELINE, ChannelRoute
from gateway.errors import (
    BadRequest,
    Forbidden,
    GatewayError,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from gateway.logging import bound, get_logger
from gateway.pipeline.ingest import prepare_items

__all__ = ["setup"]

routes = web.RouteTableDef()
log = get_logger("unigate.webhooks")


def _route(request: web.Request) -> ChannelRoute:
    route = request.config_dict[CHANNELS].get(request.match_info["channel_id"])
    if route is None:
        raise NotFound("no such channel")
    return route


async def _inbound(request: web.Request) -> InboundRequest:
    return InboundRequest(
        method=request.method, path=request.path, body=await request.read(),
        headers=request.headers, query=dict(request.query),
        query_string=request.query_string,
    )


async def _ingest(request: web.Request, route: ChannelRoute) -> tuple[int, int]:
    """Verify, parse, hand to the pipeline; ``(stored, duplicates)`` after the commit."""
    pipeline = request.config_dict[PIPELINE]
    inbound = await _inbound(request)
    try:
        route.adapter.verify(inbound, route.account)
        parsed = route.adapter.parse(inbound, route.account)
    except SignatureInvalid as exc:
        raise Unauthorized(exc.reason) from None
    except AdapterTooLarge as exc:
        raise PayloadTooLarge(exc.limit) from None
    except PayloadInvalid as exc:
        raise BadRequest(exc.reason) from None
    except AccountConfigError:
        raise GatewayError("channel secrets are not configured") from None
    items = prepare_items(pipeline.keys, route.tenant, route.channel_id, parsed)
    if not items:
        return 0, 0
    outcome = await pipeline.batcher.submit(route.tenant, items)
    return outcome.stored, outcome.duplicates


@routes.post("/{channel_id}")
async def receive(request: web.Request) -> web.Response:
    route = _route(request)
    metrics = request.config_dict[PIPELINE].metrics
    with bound(tenant_id=route.tenant, channel=route.channel_id):
        result, stored, duplicates = "error", 0, 0
        try:
            stored, duplicates = await _ingest(request, route)
            result = "accepted"
        except GatewayError as exc:
            result = exc.code
            raise
        except web.HTTPException as exc:
            result = f"http_{exc.status}"
            raise
        finally:
            metrics.webhook(route.platform, route.channel_id, result, stored, duplicates)
            # the middleware's request_handled is the info line; this one adds the outcome
            log.debug("webhook_handled", platform=route.platform, result=result, count=stored)
    return web.Response(body=msgspec.json.encode({"stored": stored, "duplicates": duplicates}),
                        content_type="application/json")


@routes.get("/{channel_id}")
async def handshake(request: web.Request) -> web.Response:
    route = _route(request)
    if not isinstance(route.adapter, SupportsHandshake):
        raise web.HTTPMethodNotAllowed("GET", ["POST"])
    try:
        answer = route.adapter.handshake(await _inbound(request), route.account)
    except HandshakeRefused as exc:
        raise Forbidden(exc.reason) from None
    except AccountConfigError:
        raise GatewayError("channel secrets are not configured") from None
    return web.Response(status=answer.status, body=answer.body,
                        content_type=answer.content_type.split(";")[0])


def setup(app: web.Application) -> None:
    app.add_routes(routes)
