"""``GET /v1/stream``: a device's sealed envelopes over a WebSocket, in order, resumable.

Protocol (MessagePack binary frames, :mod:`gateway.wire`):

1. server → ``Challenge(nonce)``; device → ``Auth(tenant, device_id, signature)`` over
   :func:`gateway.wire.auth_message` within :data:`AUTH_TIMEOUT_S` (else close 4401);
2. server → ``Ready(acked_pos)``: the stream resumes after the device's acknowledged position;
3. server → ``EnvelopeFrame`` for every envelope sealed to this device, in stream order
   (per conversation that is sequence order), pushed as soon as a commit wakes the stream —
   in this process directly, in any other through LISTEN/NOTIFY — with a poll as fallback;
4. device → ``Ack(pos)``: everything up to ``pos`` is processed; the position and the
   per-conversation cursors are stored. Unacknowledged frames are sent again after a
   reconnect (at-least-once; the client skips positions it has processed).

At most :data:`MAX_IN_FLIGHT` frames are unacknowledged at a time. One stream per device: a
new connection of the same device closes the old one with 4409 — in any gateway process
(the claim travels over NOTIFY).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections import deque
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from gateway.api.auth import check_signature
from gateway.api.context import PIPELINE
from gateway.app_keys import DATABASE
from gateway.errors import GatewayError
from gateway.logging import bound, get_logger
from gateway.pipeline.fanout import stream_claim
from gateway.pipeline.runtime import Pipeline
from gateway.store import device_streams, devices, envelopes
from gateway.store.db import Database
from gateway.store.devices import DeviceRow
from gateway.wire import (
    Ack,
    Auth,
    Challenge,
    EnvelopeFrame,
    Ready,
    WireError,
    decode_frame,
    encode_frame,
)

__all__ = ["STREAMS", "setup"]

AUTH_TIMEOUT_S = 10.0
MAX_IN_FLIGHT = 1024
PAGE = 256
CLOSE_UNAUTHORIZED = 4401
CLOSE_PROTOCOL = 4400
CLOSE_DISPLACED = 4409

routes = web.RouteTableDef()
log = get_logger("unigate.stream")
STREAMS = web.AppKey("unigate.streams", set[web.WebSocketResponse])


@dataclass(slots=True)
class _State:
    acked_pos: int
    sent_pos: int
    in_flight: deque[tuple[int, uuid.UUID, int]] = field(default_factory=deque)
    room: asyncio.Event = field(default_factory=asyncio.Event)


async def _authenticate(ws: web.WebSocketResponse, db: Database) -> DeviceRow | None:
    nonce = secrets.token_bytes(32)
    await ws.send_bytes(encode_frame(Challenge(nonce=nonce)))
    try:
        async with asyncio.timeout(AUTH_TIMEOUT_S):
            msg = await ws.receive()
        if msg.type != WSMsgType.BINARY:
            return None
        frame = decode_frame(msg.data)
        if not isinstance(frame, Auth):
            return None
        device = await devices.get_device(db, frame.tenant, uuid.UUID(frame.device_id))
        if device is None or not device.active:
            return None
        check_signature(device, nonce, frame.signature)
    except (TimeoutError, WireError, ValueError, GatewayError):
        return None
    return device


async def _send_loop(ws: web.WebSocketResponse, pipeline: Pipeline, device: DeviceRow,
                     state: _State) -> None:
    sub = pipeline.hub.subscribe(device.tenant_id)
    try:
        while not ws.closed:
            if len(state.in_flight) >= MAX_IN_FLIGHT:
                state.room.clear()
                await state.room.wait()
                continue
            room = min(PAGE, MAX_IN_FLIGHT - len(state.in_flight))
            rows = await envelopes.stream_after(pipeline.db, device.tenant_id,
                                                device.device_id, state.sent_pos, room)
            for row in rows:
                await ws.send_bytes(encode_frame(EnvelopeFrame(
                    pos=row.stream_pos, conversation_id=str(row.conversation_id), seq=row.seq,
                    envelope_id=str(row.envelope_id), channel_id=row.channel_id,
                    roster_version=row.roster_version, sealed=row.sealed,
                    author=str(row.author_device) if row.author_device else None)))
                state.in_flight.append((row.stream_pos, row.conversation_id, row.seq))
                state.sent_pos = row.stream_pos
            pipeline.metrics.frames.inc(len(rows))
            if len(rows) < room:
                await sub.wait(pipeline.settings.stream_poll_s)
    except (ConnectionError, asyncio.CancelledError):
        raise
    except Exception as exc:  # a failed read must not leave a silent, half-open stream
        log.error("stream_failed", error=type(exc).__name__, exc_info=exc)
        await ws.close(code=1011, message=b"internal error")
    finally:
        pipeline.hub.unsubscribe(sub)


async def _acknowledge(db: Database, device: DeviceRow, state: _State, pos: int) -> None:
    # The device processes its stream in order, so "done up to pos" covers every frame sent
    # on this connection up to there; a pos beyond what was sent here (frames it processed
    # on an earlier connection) acknowledges no more than was sent.
    pos = min(pos, state.sent_pos)
    if pos <= state.acked_pos:
        return
    cursors: dict[uuid.UUID, int] = {}
    while state.in_flight and state.in_flight[0][0] <= pos:
        _, conversation_id, seq = state.in_flight.popleft()
        cursors[conversation_id] = max(seq, cursors.get(conversation_id, 0))
    await device_streams.record_ack(db, device.tenant_id, device.device_id, pos, cursors)
    state.acked_pos = pos
    state.room.set()


@routes.get("/stream")
async def stream(request: web.Request) -> web.WebSocketResponse:
    pipeline = request.config_dict[PIPELINE]
    db = request.config_dict[DATABASE]
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=64 * 1024)
    await ws.prepare(request)
    device = await _authenticate(ws, db)
    if device is None:
        await ws.close(code=CLOSE_UNAUTHORIZED, message=b"unauthorized")
        return ws
    tenant, device_id, token = device.tenant_id, str(device.device_id), secrets.token_hex(8)
    closing: set[asyncio.Task[bool]] = set()

    def displaced() -> None:
        task = asyncio.create_task(ws.close(code=CLOSE_DISPLACED, message=b"connected elsewhere"))
        closing.add(task)
        task.add_done_callback(closing.discard)

    pipeline.hub.register_stream(tenant, device_id, token, displaced)
    await db.notify(stream_claim(tenant, device_id, token))
    request.app[STREAMS].add(ws)
    with bound(tenant_id=device.tenant_id, device_id=str(device.device_id)):
        acked = await device_streams.acked_position(db, device.tenant_id, device.device_id)
        state = _State(acked_pos=acked, sent_pos=acked)
        await ws.send_bytes(encode_frame(Ready(acked_pos=acked)))
        log.info("stream_opened", count=acked)
        sender = asyncio.create_task(_send_loop(ws, pipeline, device, state))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.BINARY:
                    continue
                try:
                    frame = decode_frame(msg.data)
                except WireError:
                    await ws.close(code=CLOSE_PROTOCOL, message=b"bad frame")
                    break
                if isinstance(frame, Ack):
                    await _acknowledge(db, device, state, frame.pos)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await sender
            pipeline.hub.unregister_stream(tenant, device_id, token)
            request.app[STREAMS].discard(ws)
            log.info("stream_closed", count=state.acked_pos)
    return ws


async def _close_all(app: web.Application) -> None:
    for ws in list(app[STREAMS]):
        await ws.close(code=1001, message=b"server shutdown")


def setup(app: web.Application) -> None:
    app[STREAMS] = set()
    app.on_shutdown.append(_close_all)
    app.add_routes(routes)
