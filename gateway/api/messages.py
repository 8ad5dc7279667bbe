"""Replies from devices (session token), and the egress worker's place in the app.

    POST /v1/conversations/{id}/messages        header Idempotency-Key (1..128 characters)
         ReplyIn {envelope_id, roster_version, sealed}  -> 202 MessageOut (200 for a repeat)
    GET  /v1/conversations/{id}/messages/{message_id}   -> MessageOut

``sealed`` is the reply envelope sealed by the device for the edge and every other device of
the newest roster (``gateway.client.replies.seal_reply``); ``roster_version`` names that
roster. In one transaction the gateway queues the outbox row and stores the sealed bytes in the
conversation (next seq, direction out, author = the device, recipients = its colleagues), so
colleagues see the reply when it is queued, before it is sent. A reply sealed for an older
roster is 409 ``roster_changed`` (seal again); one that leaves out a colleague, names a device
that is not on the roster, or is not sealed to the edge is 400.

The outbox row is keyed by (tenant, device, Idempotency-Key): a retried POST answers the first
row and never sends twice (nor stores a second copy); the same key with other bytes is 409.
``delivery`` folds the platform's status webhooks for the sent message (sent → delivered →
read, never backwards) with the row's own state.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import msgspec
from aiohttp import web

from crypto import CryptoError
from crypto.seal import sealed_recipients
from gateway.api.auth import decode_body, require_device
from gateway.api.context import CHANNELS, HTTP_SESSION, PIPELINE
from gateway.app_keys import CONFIG, DATABASE, METRICS
from gateway.client.replies import DELIVERY_RANK, IDEMPOTENCY_HEADER, MessageOut
from gateway.errors import BadRequest, Conflict, NotFound, RosterChanged, Unavailable
from gateway.pipeline.egress import Egress, EgressSettings
from gateway.pipeline.ingest import NO_ROSTER_RETRY_S
from gateway.pipeline.outcomes import open_outcome
from gateway.pipeline.runtime import Pipeline
from gateway.store import devices, envelopes, outbound, outbox
from gateway.store.db import Database
from gateway.store.devices import DeviceRow
from gateway.wire import EDGE_DEVICE, device_key

__all__ = ["EGRESS", "EGRESS_SETTINGS", "ReplyIn", "egress_context", "setup"]

EGRESS = web.AppKey("unigate.egress", Egress)
EGRESS_SETTINGS = web.AppKey("unigate.egress_settings", EgressSettings)
MAX_KEY_CHARS = 128
STATES = {"pending": "queued", "leased": "sending", "sent": "sent", "dead": "failed"}
# statuses a platform reports for a sent message, looked up by their dedupe digests
REPORTED = ("accepted", "sent", "delivered", "read", "played", "failed")
routes = web.RouteTableDef()


class ReplyIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    envelope_id: str
    roster_version: int
    sealed: bytes


def _conversation_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["conversation_id"])
    except ValueError:
        raise NotFound("no such conversation") from None


def _json(value: object, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(value), status=status,
                        content_type="application/json")


@routes.post("/conversations/{conversation_id}/messages")
async def post_message(request: web.Request) -> web.Response:
    claims, device = await require_device(request)
    conversation_id = _conversation_id(request)
    key = request.headers.get(IDEMPOTENCY_HEADER, "")
    if not 1 <= len(key) <= MAX_KEY_CHARS:
        raise BadRequest("Idempotency-Key header (1..128 characters) required")
    reply = decode_body(await request.read(), ReplyIn)
    try:
        envelope_id = uuid.UUID(reply.envelope_id)
    except ValueError:
        raise BadRequest("envelope_id must be a UUID") from None
    try:
        recipients = sealed_recipients(reply.sealed)
    except CryptoError:
        raise BadRequest("sealed reply does not decode") from None
    if EDGE_DEVICE not in recipients:
        raise BadRequest("a reply is sealed to the edge (and the author's colleagues)")
    db = request.config_dict[DATABASE]
    pipeline = request.config_dict[PIPELINE]
    target = await outbound.target_of(db, claims.tenant, conversation_id)
    if target is None:
        raise NotFound("no such conversation")
    async with db.transaction():
        row, created = await outbox.enqueue(
            db, tenant_id=claims.tenant, device_id=device.device_id, idempotency_key=key,
            conversation_id=conversation_id, channel_id=target.channel_id,
            envelope_id=envelope_id, sealed=reply.sealed)
        if created and await outbound.envelope_exists(db, claims.tenant, envelope_id):
            raise Conflict("envelope_id is already used in this tenant")
        copied = created and await _store_copy(pipeline, device, target, reply,
                                               envelope_id=envelope_id, recipients=recipients)
    if copied:
        pipeline.hub.wake([claims.tenant])
    if created:
        request.config_dict[EGRESS].wake()
    view = await outbound.get_message(db, claims.tenant, conversation_id, row.outbox_id)
    if view is None:  # pragma: no cover - the row was just read
        raise Conflict("reply vanished; retry")
    out = await _message_out(request, claims.tenant, view)
    return _json(msgspec.structs.replace(out, created=created), 202 if created else 200)


@routes.get("/conversations/{conversation_id}/messages/{message_id}")
async def get_message(request: web.Request) -> web.Response:
    claims, _ = await require_device(request)
    conversation_id = _conversation_id(request)
    try:
        message_id = uuid.UUID(request.match_info["message_id"])
    except ValueError:
        raise NotFound("no such message") from None
    view = await outbound.get_message(request.config_dict[DATABASE], claims.tenant,
                                      conversation_id, message_id)
    if view is None:
        raise NotFound("no such message")
    return _json(await _message_out(request, claims.tenant, view))


async def _store_copy(pipeline: Pipeline, device: DeviceRow, target: outbound.ConversationTarget,
                      reply: ReplyIn, *, envelope_id: uuid.UUID,
                      recipients: list[bytes]) -> bool:
    """Check the reply's recipients against the newest roster and store the device's sealed
    copy for its colleagues (inside the queuing transaction); False when it has none."""
    db, tenant = pipeline.db, device.tenant_id
    roster = await pipeline.ingestor.roster(tenant)
    if roster is None:
        raise Unavailable(NO_ROSTER_RETRY_S, "the inbox has no roster yet")
    if reply.roster_version != roster.version:
        raise RosterChanged()
    me = device_key(device.device_id)
    on_roster = set(roster.device_keys())
    if me not in on_roster:
        raise BadRequest("the sending device is not on the roster")
    if len(set(recipients)) != len(recipients) or set(recipients) != (
            on_roster - {me}) | {EDGE_DEVICE}:
        raise BadRequest("a reply is sealed to the edge and every other device on the roster")
    colleagues = sorted(uuid.UUID(bytes=k) for k in on_roster - {me})
    if not colleagues:
        return False
    # the colleagues' sealing locks, then the conversation: the order every writer takes them
    await devices.lock_devices(db, tenant, colleagues)
    await outbound.lock_conversation(db, tenant, target.conversation_id)
    (pos,) = await envelopes.next_stream_positions(db, 1)
    await outbound.store_copy(db, tenant, target.conversation_id, envelope_id=envelope_id,
                              channel_id=target.channel_id, author=device.device_id,
                              sealed=reply.sealed, stream_pos=pos,
                              roster_version=roster.version, recipients=colleagues)
    return True


async def _message_out(request: web.Request, tenant: str,
                       view: outbound.MessageView) -> MessageOut:
    storage = request.config_dict[CONFIG].edge.key_bytes("storage_key")
    outcome = (open_outcome(storage, tenant, view.outbox_id, view.outcome_sealed)
               if view.outcome_sealed is not None else None)
    state = STATES[view.status]
    delivery = "failed" if state == "failed" else "queued"
    pmid = outcome.platform_message_id if outcome is not None else None
    if state == "sent":
        delivery = "sent"
        if pmid:
            delivery = await best_status(request.config_dict[DATABASE], request, tenant,
                                         view.channel_id, pmid) or "sent"
    return MessageOut(
        message_id=str(view.outbox_id), conversation_id=str(view.conversation_id),
        envelope_id=str(view.envelope_id), state=state, delivery=delivery,
        attempts=view.attempts, platform_message_id=pmid,
        error_code=outcome.code if outcome is not None and outcome.code else view.error_code,
        reason=outcome.reason if outcome is not None else None,
        suggestion=outcome.suggestion if outcome is not None else None,
        suggested_template=outcome.template_name if outcome is not None else None,
        suggested_language=outcome.template_language if outcome is not None else None)


async def best_status(db: Database, request: web.Request, tenant: str, channel_id: str,
                      platform_message_id: str) -> str | None:
    """The highest status the platform reported for a message (webhooks stored so far, in
    whatever order and however often they came)."""
    keys = request.config_dict[PIPELINE].keys
    digests = {keys.dedupe_digest(tenant, channel_id, f"status:{platform_message_id}:{s}"): s
               for s in REPORTED}
    present = await outbound.present_digests(db, tenant, channel_id, list(digests))
    found = [digests[d] for d in present]
    return max(found, key=lambda s: DELIVERY_RANK[s]) if found else None


async def egress_context(app: web.Application) -> AsyncIterator[None]:
    """The egress worker for the app's lifetime (after the pipeline, stopped before it)."""
    egress = Egress(app[PIPELINE], app[CHANNELS], app[HTTP_SESSION],
                    app.get(EGRESS_SETTINGS), registry=app[METRICS].registry)
    app[EGRESS] = egress
    egress.start()
    try:
        yield
    finally:
        await egress.stop()


def setup(app: web.Application) -> None:
    app.add_routes(routes)
