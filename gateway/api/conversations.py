"""Conversation lists and ciphertext history for devices (session token).

    GET /v1/conversations?limit=50&before=<ms>          newest first, with the caller's cursor
    GET /v1/conversations/{id}/envelopes?after_seq=0&limit=100
                                                        sealed envelopes by sequence number

Everything is scoped to the tenant in the caller's token: another tenant's conversation id
is answered 404, exactly like an unknown one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
from aiohttp import web

from gateway.api.auth import require_device
from gateway.app_keys import DATABASE
from gateway.errors import BadRequest, NotFound
from gateway.store import conversations, envelopes
from gateway.wire import ConversationOut, HistoryItem, HistoryPage

__all__ = ["setup"]

MAX_LIMIT = 500
routes = web.RouteTableDef()


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be within {low}..{high}")
    return value


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _json(value: object) -> web.Response:
    return web.Response(body=msgspec.json.encode(value), content_type="application/json")


@routes.get("/conversations")
async def list_conversations(request: web.Request) -> web.Response:
    claims, device = await require_device(request)
    limit = _int(request, "limit", 50, 1, MAX_LIMIT)
    before_ms = _int(request, "before", 0, 0, 2**53)
    before = datetime.fromtimestamp(before_ms / 1000, UTC) if before_ms else None
    rows = await conversations.list_conversations(request.config_dict[DATABASE], claims.tenant,
                                                  device.device_id, before=before, limit=limit)
    items = [ConversationOut(conversation_id=str(r.conversation_id), channel_id=r.channel_id,
                             status=r.status, last_seq=r.last_seq, acked_seq=r.acked_seq,
                             updated_at_ms=_ms(r.updated_at)) for r in rows]
    return _json({"conversations": items,
                  "next_before": items[-1].updated_at_ms if len(items) == limit else None})


@routes.get("/conversations/{conversation_id}/envelopes")
async def history(request: web.Request) -> web.Response:
    claims, _ = await require_device(request)
    try:
        conversation_id = uuid.UUID(request.match_info["conversation_id"])
    except ValueError:
        raise NotFound("no such conversation") from None
    db = request.config_dict[DATABASE]
    if await conversations.get_conversation(db, claims.tenant, conversation_id) is None:
        raise NotFound("no such conversation")
    after = _int(request, "after_seq", 0, 0, 2**62)
    limit = _int(request, "limit", 100, 1, MAX_LIMIT)
    rows = await envelopes.history_page(db, claims.tenant, conversation_id, after, limit)
    items = [HistoryItem(seq=r.seq, pos=r.stream_pos, envelope_id=str(r.envelope_id),
                         channel_id=r.channel_id, roster_version=r.roster_version,
                         sealed=r.sealed,
                         author=str(r.author_device) if r.author_device else None)
             for r in rows]
    return _json(HistoryPage(conversation_id=str(conversation_id), items=items,
                             next_after_seq=items[-1].seq if len(items) == limit else None))


def setup(app: web.Application) -> None:
    app.add_routes(routes)
