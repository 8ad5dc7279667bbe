"""Replies from a device: seal an outbound envelope to the edge, POST it with an idempotency
key, and follow what became of it.

* :func:`reply_ad` — the associated data of a reply: protocol version, the device's and the
  edge's identities, tenant, conversation, the reply's envelope id, the sending device and the
  edge as recipient. A reply moved to another conversation, tenant or envelope id, or claimed
  by another device, does not open.
* :func:`seal_reply` — ``crypto.seal`` to the single recipient ``b"edge"`` through the device's
  newest pairwise session with the roster's edge identity (the session the edge opened; the
  device answers in it, so the edge's ratchet turns). Colleagues' devices see the reply once
  the edge has sent it: the edge seals its record of the sent reply (direction ``out``) into the
  conversation like any envelope.
* :class:`ReplyTracker` — folds what a device receives (the edge's record of a reply with its
  platform message id, platform status envelopes, failure statuses) into one state per reply
  that never goes back (``read`` is not followed by ``delivered``), whatever the order.

Imports: ``crypto``, ``gateway.envelope``, ``gateway.wire`` and the client (no server code).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import msgspec

from crypto import seal
from crypto.encoding import associated_data
from gateway.client.device import DeviceError, LocalDevice
from gateway.client.http import GatewayHTTP, RequestFailed
from gateway.envelope import Envelope, Status, encode_msgpack
from gateway.wire import EDGE_DEVICE, Roster, device_key

__all__ = [
    "DELIVERY_RANK",
    "IDEMPOTENCY_HEADER",
    "MessageOut",
    "ReplyState",
    "ReplyTracker",
    "post_reply",
    "reply_ad",
    "seal_reply",
]

# A status only replaces a lower one: statuses arrive late, twice or out of order.
DELIVERY_RANK = {"queued": 0, "accepted": 1, "sent": 2, "delivered": 3, "read": 4,
                 "played": 5, "failed": 6}
IDEMPOTENCY_HEADER = "Idempotency-Key"


def reply_ad(tenant: str, conversation_id: str, envelope_id: str, device_id: str, *,
             device_identity: bytes, edge_identity: bytes) -> bytes:
    """Associated data of a reply sealed by ``device_id`` for the edge."""
    return associated_data(
        tenant=tenant.encode(),
        conversation=uuid.UUID(conversation_id).bytes,
        envelope=uuid.UUID(envelope_id).bytes,
        sender_device=device_key(device_id),
        recipient_device=EDGE_DEVICE,
        sender_identity=device_identity,
        recipient_identity=edge_identity,
    )


class _ToEdge:
    """``crypto.seal.PairwiseSession`` over the device's newest session with one edge."""

    def __init__(self, device: LocalDevice, edge_identity: bytes) -> None:
        sessions = device.sessions.get(edge_identity)
        if not sessions:
            raise DeviceError("no session with the edge yet (receive an envelope first)")
        self._session = sessions[0]

    def encrypt(self, plaintext: bytes, ad: bytes) -> bytes:
        return self._session.encrypt(plaintext, ad)

    def decrypt(self, message: bytes, ad: bytes) -> bytes:
        raise DeviceError("a device does not open its own replies")


def seal_reply(device: LocalDevice, roster: Roster, conversation_id: str,
               envelope: Envelope) -> bytes:
    """The sealed bytes to POST for ``envelope`` (direction ``out``, this device's tenant)."""
    if device.device_id is None:
        raise DeviceError("device is not registered yet")
    if envelope.direction != "out" or envelope.tenant != device.tenant:
        raise DeviceError("a reply is an outbound envelope of this device's tenant")
    if roster.identity_of(device.device_id) != device.identity_key:
        raise DeviceError("this device is not on the roster")
    ad = reply_ad(device.tenant, conversation_id, envelope.id, device.device_id,
                  device_identity=device.identity_key, edge_identity=roster.edge_identity)
    return seal(encode_msgpack(envelope), [EDGE_DEVICE], ad,
                sessions={EDGE_DEVICE: _ToEdge(device, roster.edge_identity)})


class MessageOut(msgspec.Struct, frozen=True, kw_only=True):
    """The gateway's view of one reply (``POST``/``GET /v1/conversations/{id}/messages``)."""

    message_id: str
    conversation_id: str
    envelope_id: str
    state: str  # queued | sending | sent | failed
    delivery: str  # queued | accepted | sent | delivered | read | failed
    attempts: int
    platform_message_id: str | None = None
    error_code: str | None = None
    reason: str | None = None
    suggestion: str | None = None
    created: bool = False


async def post_reply(http: GatewayHTTP, roster: Roster, conversation_id: str,
                     envelope: Envelope, idempotency_key: str) -> MessageOut:
    """Seal ``envelope`` and POST it; repeat with the same key after any doubt (never sends
    twice). The same key must carry the same sealed bytes: keep them (``envelope.id`` too)."""
    sealed = seal_reply(http.device, roster, conversation_id, envelope)
    return await post_sealed(http, conversation_id, envelope.id, sealed,
                             idempotency_key=idempotency_key, roster_version=roster.version)


async def post_sealed(http: GatewayHTTP, conversation_id: str, envelope_id: str, sealed: bytes,
                      *, idempotency_key: str, roster_version: int) -> MessageOut:
    body = {"envelope_id": envelope_id, "roster_version": roster_version, "sealed": sealed}
    return await _call(http, "POST", f"/v1/conversations/{conversation_id}/messages",
                       body=body, headers={IDEMPOTENCY_HEADER: idempotency_key})


async def get_reply(http: GatewayHTTP, conversation_id: str, message_id: str) -> MessageOut:
    return await _call(http, "GET", f"/v1/conversations/{conversation_id}/messages/{message_id}")


async def _call(http: GatewayHTTP, method: str, path: str, *, body: Any = None,
                headers: dict[str, str] | None = None) -> MessageOut:
    sent = {"Authorization": f"Bearer {await http.token()}", **(headers or {})}
    data = None
    if body is not None:
        data = msgspec.json.encode(body)
        sent["Content-Type"] = "application/json"
    async with http.session.request(method, http.base_url + path, data=data,
                                    headers=sent) as response:
        raw = await response.read()
        if response.status >= 400:
            try:
                code = str(msgspec.json.decode(raw)["error"]["code"])
            except (msgspec.DecodeError, KeyError, TypeError):
                code = "http_error"
            raise RequestFailed(response.status, code)
    return msgspec.json.decode(raw, type=MessageOut)


@dataclass(slots=True)
class ReplyState:
    envelope_id: str
    platform_message_id: str | None = None
    delivery: str = "queued"
    error_code: str | None = None
    seen: list[str] = field(default_factory=list)  # every status as it arrived


class ReplyTracker:
    """Per reply (by envelope id), the best status known, from envelopes in any order."""

    def __init__(self) -> None:
        self.replies: dict[str, ReplyState] = {}
        self._by_platform_id: dict[str, str] = {}
        self._early: dict[str, list[Status]] = {}  # statuses that came before their record

    def expect(self, envelope_id: str) -> ReplyState:
        return self.replies.setdefault(envelope_id, ReplyState(envelope_id))

    def observe(self, envelope: Envelope) -> ReplyState | None:
        """Fold one received envelope in; the reply it concerns, if any."""
        content = envelope.content
        if envelope.direction == "out" and not isinstance(content, Status):
            state = self.expect(envelope.id)
            if envelope.platform_message_id:
                state.platform_message_id = envelope.platform_message_id
                self._by_platform_id[envelope.platform_message_id] = envelope.id
                self._raise(state, "sent")
                for early in self._early.pop(envelope.platform_message_id, []):
                    self._apply(state, early)
            return state
        if not isinstance(content, Status):
            return None
        target = self._by_platform_id.get(content.target)
        if target is None and (envelope.direction == "out" or content.target in self.replies):
            target = content.target  # the edge's failure status names the reply's envelope id
            self.expect(target)
        if target is None:
            self._early.setdefault(content.target, []).append(content)
            return None
        state = self.replies[target]
        self._apply(state, content)
        return state

    def _apply(self, state: ReplyState, status: Status) -> None:
        state.seen.append(status.status)
        if status.status == "failed" and status.error is not None:
            state.error_code = str(status.error.code)
        self._raise(state, status.status)

    @staticmethod
    def _raise(state: ReplyState, delivery: str) -> None:
        if DELIVERY_RANK.get(delivery, -1) > DELIVERY_RANK.get(state.delivery, -1):
            state.delivery = delivery
