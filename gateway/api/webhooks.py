"""Platform webhooks: ``POST /webhooks/{channel_id}`` (ingest) and ``GET`` (handshake).

POST: raw body (the sub-app's limit gives 413) → ``adapter.verify`` over the raw bytes (401)
→ ``adapter.parse`` of every item (400 with the adapter's reason) → the pipeline → 200 only
after the envelopes are committed; 503 + Retry-After when the batcher is saturated or the
inbox has no device to seal for. Nothing is stored on any of the refusals.

GET: the adapter's handshake (Meta ``hub.challenge``, X CRC); 405 for adapters without one.

Shared callbacks: one Meta app (or X app) posts for every number / Page / user it serves to
one URL, several accounts in one POST. After the URL's channel verified the signature, the
adapter's optional ``addressed_account_ids`` names the accounts the POST is for; every other
configured channel of the same adapter that owns one of them (``Account.ids()``) *and* whose
own secret verifies the same signature gets the POST parsed as its account, into its own
tenant. Ids no such channel owns are counted (``unigate_webhook_unknown_accounts``) and logged
as ``webhook_unknown_account`` (counts only); the POST is still answered 200, so the platform
does not retry it forever.

One canonical log line per webhook (``webhook_handled``): channel, outcome and counts.
"""

from __future__ import annotations

import asyncio

import msgspec
from aiohttp import web

from adapters.errors import (
    AccountConfigError,
    HandshakeRefused,
    PayloadInvalid,
    SignatureInvalid,
)
from adapters.errors import PayloadTooLarge as AdapterTooLarge
from adapters.sdk import InboundRequest, SupportsAccountIds, SupportsHandshake
from gateway.api.context import ACCOUNT_OWNERS, CHANNELS, PIPELINE, ChannelRoute
from gateway.envelope import Envelope
from gateway.errors import (
    BadRequest,
    Forbidden,
    GatewayError,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from gateway.logging import bound, get_logger
from gateway.pipeline.ingest import IngestResult, prepare_items

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


def _verified(route: ChannelRoute, inbound: InboundRequest) -> bool:
    """True when ``route``'s own secret verifies the POST (a sibling on the same app)."""
    try:
        route.adapter.verify(inbound, route.account)
    except (SignatureInvalid, AccountConfigError, AdapterTooLarge, PayloadInvalid):
        return False
    return True


def _targets(request: web.Request, route: ChannelRoute,
             inbound: InboundRequest) -> tuple[list[ChannelRoute], int]:
    """The channels a POST verified for ``route`` is for, and how many of the account ids it
    names no channel of the same app owns."""
    if not isinstance(route.adapter, SupportsAccountIds):
        return [route], 0
    owners = request.config_dict[ACCOUNT_OWNERS]
    targets, unknown = [route], 0
    for account_id in route.adapter.addressed_account_ids(inbound):
        if route.account.owns(account_id):
            continue
        owned = False
        for other in owners.get((route.platform, account_id), ()):
            if any(other is t for t in targets):
                owned = True
            elif _verified(other, inbound):
                targets.append(other)
                owned = True
        unknown += not owned
    return targets, unknown


def _parse(route: ChannelRoute, inbound: InboundRequest) -> list[Envelope]:
    try:
        parsed: list[Envelope] = route.adapter.parse(inbound, route.account)
    except AdapterTooLarge as exc:
        raise PayloadTooLarge(exc.limit) from None
    except PayloadInvalid as exc:
        raise BadRequest(exc.reason) from None
    except AccountConfigError:
        raise GatewayError("channel secrets are not configured") from None
    return parsed


def _consume(future: asyncio.Future[IngestResult]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: the request already failed for another reason


async def _ingest(request: web.Request, route: ChannelRoute) -> dict[str, tuple[int, int]]:
    """Verify, route, parse, hand to the pipeline; ``{channel: (stored, duplicates)}`` of
    every channel the POST was for, after the commit."""
    pipeline = request.config_dict[PIPELINE]
    inbound = await _inbound(request)
    try:
        route.adapter.verify(inbound, route.account)
    except SignatureInvalid as exc:
        raise Unauthorized(exc.reason) from None
    except AdapterTooLarge as exc:
        raise PayloadTooLarge(exc.limit) from None
    except PayloadInvalid as exc:
        raise BadRequest(exc.reason) from None
    except AccountConfigError:
        raise GatewayError("channel secrets are not configured") from None
    targets, unknown = _targets(request, route, inbound)
    if unknown:
        pipeline.metrics.unknown_accounts.labels(route.platform, route.channel_id).inc(unknown)
        log.warning("webhook_unknown_account", platform=route.platform, count=unknown)
    batches = []
    for t in targets:  # a watermark receipt adds one status per reply it covers
        parsed = await pipeline.watermarks.expand(t.tenant, t.channel_id, _parse(t, inbound))
        batches.append((t, prepare_items(pipeline.keys, t.tenant, t.channel_id, parsed)))
    futures: dict[str, asyncio.Future[IngestResult]] = {}
    for target, items in batches:
        if items:  # a later refusal (503) must not leave an earlier future unobserved
            futures[target.channel_id] = pipeline.batcher.submit(target.tenant, items)
            futures[target.channel_id].add_done_callback(_consume)
    counts = {target.channel_id: (0, 0) for target in targets}
    for channel_id, future in futures.items():  # all queued already: they commit together
        outcome = await future
        counts[channel_id] = (outcome.stored, outcome.duplicates)
    return counts


@routes.post("/{channel_id}")
async def receive(request: web.Request) -> web.Response:
    route = _route(request)
    metrics = request.config_dict[PIPELINE].metrics
    with bound(tenant_id=route.tenant, channel=route.channel_id):
        result, counts = "error", {}
        try:
            counts = await _ingest(request, route)
            result = "accepted"
        except GatewayError as exc:
            result = exc.code
            raise
        except web.HTTPException as exc:
            result = f"http_{exc.status}"
            raise
        finally:
            metrics.webhook(route.platform, route.channel_id, result,
                            *counts.get(route.channel_id, (0, 0)))
            for channel_id, (routed_stored, routed_dups) in counts.items():
                if channel_id != route.channel_id:  # a sibling on the same app callback
                    metrics.webhook(route.platform, channel_id, "routed", routed_stored,
                                    routed_dups)
            stored = sum(c[0] for c in counts.values())
            duplicates = sum(c[1] for c in counts.values())
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
