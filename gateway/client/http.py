"""The device's HTTP calls to the gateway (JSON bodies of :mod:`gateway.wire`).

Only public keys, signatures and sealed bytes travel; the private keys stay in
:class:`~gateway.client.device.LocalDevice`.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, TypeVar

import aiohttp
import msgspec

from gateway.client.device import LocalDevice
from gateway.wire import (
    BundleOut,
    ConversationOut,
    HistoryPage,
    PrekeyUpload,
    Roster,
    RosterOut,
    SessionToken,
)

__all__ = ["GatewayHTTP", "RequestFailed"]

T = TypeVar("T")
TOKEN_MARGIN_S = 30


class RequestFailed(Exception):
    """The gateway answered with an error status (``status``, ``code`` from its error body)."""

    def __init__(self, status: int, code: str) -> None:
        self.status = status
        self.code = code
        super().__init__(f"gateway answered {status} ({code})")


class _Conversations(msgspec.Struct, frozen=True):
    conversations: list[ConversationOut]
    next_before: int | None = None


class GatewayHTTP:
    def __init__(self, base_url: str, device: LocalDevice, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url.rstrip("/")
        self.device = device
        self.session = session
        self._token: str | None = None
        self._token_expires = 0.0

    async def _call(self, method: str, path: str, type_: type[T], *, body: Any = None,
                    token: str | None = None, params: dict[str, str] | None = None) -> T:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = msgspec.json.encode(body) if body is not None else None
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with self.session.request(method, self.base_url + path, data=data,
                                        headers=headers, params=params) as response:
            raw = await response.read()
            if response.status >= 400:
                code = "http_error"
                with contextlib.suppress(msgspec.DecodeError, KeyError, TypeError):
                    code = msgspec.json.decode(raw)["error"]["code"]
                raise RequestFailed(response.status, str(code))
        return msgspec.json.decode(raw, type=type_)

    # ------------------------------------------------------------------ enrolment and auth
    async def register(self, enroll_token: str) -> str:
        """Publish the device's public keys with a tenant enrolment token; its device id."""
        answer = await self._call("POST", "/v1/devices", dict[str, Any],
                                  body=self.device.registration(), token=enroll_token)
        self.device.device_id = str(answer["device_id"])
        return self.device.device_id

    async def token(self) -> str:
        """A session token (challenge signed with the identity key), renewed before expiry."""
        if self._token is not None and time.time() < self._token_expires - TOKEN_MARGIN_S:
            return self._token
        who = {"tenant": self.device.tenant, "device_id": self.device.device_id}
        challenge = await self._call("POST", "/v1/auth/challenge", dict[str, Any], body=who)
        nonce = msgspec.json.decode(msgspec.json.encode(challenge["nonce"]), type=bytes)
        answer = await self._call("POST", "/v1/auth/session", SessionToken, body={
            **who, "nonce": nonce, "signature": self.device.sign_challenge(nonce)})
        self._token, self._token_expires = answer.token, time.time() + answer.expires_in
        return answer.token

    # ------------------------------------------------------------------ keys
    async def prekey_status(self) -> dict[str, Any]:
        return await self._call("GET", "/v1/devices/me/prekeys", dict[str, Any],
                                token=await self.token())

    async def replenish_prekeys(self, count: int = 50) -> dict[str, Any]:
        """Generate and upload ``count`` fresh one-time prekeys."""
        fresh = self.device.crypto.generate_one_time_prekeys(count)
        return await self._call("POST", "/v1/devices/me/prekeys", dict[str, Any],
                                body=PrekeyUpload(one_time_prekeys=fresh),
                                token=await self.token())

    async def claim_bundle(self, device_id: str) -> BundleOut:
        return await self._call("POST", f"/v1/devices/{device_id}/bundle", BundleOut,
                                token=await self.token())

    async def roster(self, version: int | None = None) -> Roster:
        """A roster (the newest, or one version), verified with the tenant admin key."""
        path = "/v1/roster" if version is None else f"/v1/roster/{version}"
        row = await self._call("GET", path, RosterOut, token=await self.token())
        return self.device.accept_roster(row.version, row.payload, row.signature)

    # ------------------------------------------------------------------ conversations
    async def conversations(self, limit: int = 50) -> list[ConversationOut]:
        page = await self._call("GET", "/v1/conversations", _Conversations,
                                params={"limit": str(limit)}, token=await self.token())
        return page.conversations

    async def history(self, conversation_id: str, after_seq: int = 0,
                      limit: int = 100) -> HistoryPage:
        return await self._call("GET", f"/v1/conversations/{conversation_id}/envelopes",
                                HistoryPage, params={"after_seq": str(after_seq),
                                                     "limit": str(limit)},
                                token=await self.token())
