"""The device's WebSocket stream: authenticate, receive sealed envelopes in order, open them,
acknowledge, and resume after a reconnect without loss or duplicates.

Acknowledgements are cumulative and batched: the stream acknowledges the last message it
handed out when the application asks for the next one and none is waiting, or every
:data:`ACK_EVERY` messages. Frames at or below the highest position already handed out are
skipped (the server re-sends unacknowledged frames after a reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from crypto import CryptoError
from gateway.client.device import DeviceError, LocalDevice, Sealed
from gateway.client.http import GatewayHTTP
from gateway.envelope import Envelope
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

__all__ = ["ACK_EVERY", "DeviceStream", "Received", "StreamClosed"]

ACK_EVERY = 64
CLOSE_DISPLACED = 4409
RECONNECT_S = (0.05, 0.2, 0.5, 1.0, 2.0)


class StreamClosed(Exception):
    """The server closed the stream and reconnecting is off (``code`` is the close code)."""

    def __init__(self, code: int | None) -> None:
        self.code = code
        super().__init__(f"stream closed ({code})")


@dataclass(frozen=True, slots=True)
class Received:
    """One delivered envelope; ``envelope`` is None when it could not be opened (``error``)."""

    pos: int
    conversation_id: str
    seq: int
    channel_id: str
    envelope: Envelope | None
    error: str | None = None

    def __repr__(self) -> str:
        return f"Received(pos={self.pos}, conversation={self.conversation_id}, seq={self.seq})"


class DeviceStream:
    """``async with DeviceStream(...) as stream: async for received in stream: ...``"""

    def __init__(self, http: GatewayHTTP, *, reconnect: bool = True) -> None:
        self._http = http
        self._device: LocalDevice = http.device
        self._reconnect = reconnect
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._unacked = 0
        self._frames: asyncio.Queue[EnvelopeFrame | _Closed] = asyncio.Queue()
        self._pump_task: asyncio.Task[None] | None = None
        self.acked_pos = 0
        self.connects = 0

    async def __aenter__(self) -> DeviceStream:
        await self._connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None and not ws.closed:
            with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                await self._flush(ws)
                await ws.close()
        task, self._pump_task = self._pump_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ------------------------------------------------------------------ connection
    async def _connect(self) -> None:
        url = self._http.base_url.replace("http", "ws", 1) + "/v1/stream"
        ws = await self._http.session.ws_connect(url, max_msg_size=4 * 1024 * 1024)
        try:
            challenge = decode_frame(await ws.receive_bytes())
            if not isinstance(challenge, Challenge):
                raise WireError("expected a challenge")
            await ws.send_bytes(encode_frame(Auth(
                tenant=self._device.tenant, device_id=self._device.device_id or "",
                signature=self._device.sign_challenge(challenge.nonce))))
            ready = decode_frame(await ws.receive_bytes())
            if not isinstance(ready, Ready):
                raise WireError("expected ready")
        except (TypeError, WireError):
            code = ws.close_code
            await ws.close()
            raise StreamClosed(code) from None
        self._ws = ws
        self._frames = asyncio.Queue()
        self._pump_task = asyncio.create_task(self._pump(ws, self._frames))
        self.connects += 1
        self.acked_pos = max(self.acked_pos, ready.acked_pos)
        self._device.processed_pos = max(self._device.processed_pos, ready.acked_pos)

    async def _flush(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        pos = self._device.processed_pos
        if self._unacked or pos > self.acked_pos:  # skipped re-sent frames need an ack too
            await ws.send_bytes(encode_frame(Ack(pos=pos)))
            self.acked_pos = max(self.acked_pos, pos)
        self._unacked = 0

    async def _pump(self, ws: aiohttp.ClientWebSocketResponse,
                    frames: asyncio.Queue[EnvelopeFrame | _Closed]) -> None:
        """Read frames into ``frames`` until the socket closes, then put a :class:`_Closed`."""
        code: int | None = None
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    frame = decode_frame(msg.data)
                    if isinstance(frame, EnvelopeFrame):
                        frames.put_nowait(frame)
            code = ws.close_code
        except (aiohttp.ClientError, ConnectionError, WireError):
            code = None
        finally:
            frames.put_nowait(_Closed(code))

    async def _next_frame(self) -> EnvelopeFrame:
        failures = 0
        while True:
            ws = self._ws
            if ws is None:
                raise StreamClosed(None)
            if self._unacked and self._frames.empty():
                with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                    await self._flush(ws)
            item = await self._frames.get()
            if isinstance(item, EnvelopeFrame):
                return item
            self._ws = None
            if not self._reconnect or item.code == CLOSE_DISPLACED:
                raise StreamClosed(item.code)
            while self._ws is None:
                await asyncio.sleep(RECONNECT_S[min(failures, len(RECONNECT_S) - 1)])
                failures += 1
                with contextlib.suppress(aiohttp.ClientError, ConnectionError, StreamClosed):
                    await self._connect()

    # ------------------------------------------------------------------ iteration
    def __aiter__(self) -> AsyncIterator[Received]:
        return self

    async def __anext__(self) -> Received:
        while True:
            frame = await self._next_frame()
            if frame.pos <= self._device.processed_pos:
                self._unacked += 1  # re-sent after a reconnect: acknowledge, do not repeat
                continue
            received = await self._open(frame)
            self._device.processed_pos = frame.pos
            self._unacked += 1
            if self._unacked >= ACK_EVERY and self._ws is not None:
                await self._flush(self._ws)
            return received

    async def _open(self, frame: EnvelopeFrame) -> Received:
        item = Sealed(frame.pos, frame.conversation_id, frame.seq, frame.envelope_id,
                      frame.channel_id, frame.roster_version, frame.sealed, frame.author)
        try:
            if frame.roster_version not in self._device.rosters:
                await self._http.roster(frame.roster_version)
            envelope = self._device.open(item)
        except (CryptoError, DeviceError, WireError) as exc:
            return Received(frame.pos, frame.conversation_id, frame.seq, frame.channel_id,
                            None, type(exc).__name__)
        return Received(frame.pos, frame.conversation_id, frame.seq, frame.channel_id, envelope)


@dataclass(frozen=True, slots=True)
class _Closed:
    code: int | None
