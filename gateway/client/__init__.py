"""The Python device client: an agent or bot device of a tenant's inbox.

Keys are generated and kept here; the gateway only ever receives public keys, signatures and
acknowledgements, and only ever sends sealed bytes. Used by bots, the demo, the benchmark and
the end-to-end tests::

    async with DeviceClient(base_url, tenant="acme", admin_key=ADMIN_PUBLIC) as device:
        await device.register(enroll_token)          # publishes identity + prekeys
        # ... the tenant admin signs a roster that lists device.device_id ...
        async with device.stream() as stream:         # WebSocket, resumes from its cursor
            async for received in stream:             # Received(pos, conversation_id, seq,
                print(received.envelope)              #          channel_id, envelope)

Imports: ``crypto``, ``gateway.envelope`` and ``gateway.wire`` only (no server code).
"""

from __future__ import annotations

import aiohttp

from gateway.client.device import DeviceError, LocalDevice, Sealed
from gateway.client.http import GatewayHTTP, RequestFailed
from gateway.client.stream import DeviceStream, Received, StreamClosed
from gateway.envelope import Envelope
from gateway.wire import ConversationOut, HistoryPage, Roster

__all__ = [
    "DeviceClient",
    "DeviceError",
    "DeviceStream",
    "LocalDevice",
    "Received",
    "RequestFailed",
    "Sealed",
    "StreamClosed",
]


class DeviceClient:
    """One device talking to one gateway; an ``async with`` block owns its HTTP session."""

    def __init__(self, base_url: str, *, tenant: str, admin_key: bytes, kind: str = "agent",
                 device: LocalDevice | None = None,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.device = device or LocalDevice(tenant, admin_key, kind=kind)
        self._own_session = session is None
        self._session = session
        self._base_url = base_url
        self._http: GatewayHTTP | None = None

    async def __aenter__(self) -> DeviceClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @property
    def http(self) -> GatewayHTTP:
        if self._http is None:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            self._http = GatewayHTTP(self._base_url, self.device, self._session)
        return self._http

    @property
    def device_id(self) -> str:
        if self.device.device_id is None:
            raise DeviceError("device is not registered yet")
        return self.device.device_id

    @property
    def identity_key(self) -> bytes:
        return self.device.identity_key

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None
        self._http = None

    async def register(self, enroll_token: str) -> str:
        return await self.http.register(enroll_token)

    async def roster(self, version: int | None = None) -> Roster:
        return await self.http.roster(version)

    async def conversations(self, limit: int = 50) -> list[ConversationOut]:
        return await self.http.conversations(limit)

    async def history(self, conversation_id: str, after_seq: int = 0,
                      limit: int = 100) -> HistoryPage:
        return await self.http.history(conversation_id, after_seq, limit)

    async def open_history(self, page: HistoryPage) -> list[Envelope]:
        """Open every item of a history page (fetching the rosters they name). This device's
        own replies are left out: it is not a recipient of what it sealed (it keeps them)."""
        items = [Sealed(i.pos, page.conversation_id, i.seq, i.envelope_id, i.channel_id,
                        i.roster_version, i.sealed, i.author) for i in page.items
                 if i.author is None or i.author != self.device.device_id]
        for version in self.device.unknown_rosters(items):
            await self.http.roster(version)
        return [self.device.open(item) for item in items]

    def stream(self, *, reconnect: bool = True) -> DeviceStream:
        return DeviceStream(self.http, reconnect=reconnect)

    def __repr__(self) -> str:
        return f"DeviceClient({self.device!r})"
