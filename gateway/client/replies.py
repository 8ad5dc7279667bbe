"""Replies from a device: seal an outbound envelope to the edge and to the device's colleagues,
POST it with an idempotency key, and follow what became of it.

* :func:`gateway.wire.reply_ad` — the associated data of a reply: protocol version, the
  device's and the edge's identities, tenant, conversation, the reply's envelope id, the sending
  device and the edge as recipient. A reply moved to another conversation, tenant or envelope
  id, or claimed by another device, does not open.
* :func:`seal_reply` — ``crypto.seal`` to ``b"edge"`` (through the device's newest pairwise
  session with the roster's edge identity: the session the edge opened; the device answers in
  it, so the edge's ratchet turns) **and** to every other device of the roster (device-to-device
  sessions, :mod:`gateway.client.peers`). The gateway stores that copy in the conversation when
  it queues the reply, so colleagues see the reply at once, as its author wrote it; the edge
  opens its own key slot just before sending.
* :class:`ReplyTracker` — folds what a device receives (a colleague's reply, the edge's
  ``sent`` status naming the reply's envelope id and the platform message id, platform status
  envelopes, failure statuses) into one state per reply that never goes back (``read`` is not
  followed by ``delivered``), whatever the order.

Imports: ``crypto``, ``gateway.envelope``, ``gateway.wire`` and the client (no server code).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from crypto import seal
from gateway.client.device import DeviceError, PairChannel
from gateway.client.http import GatewayHTTP, RequestFailed
from gateway.client.peers import colleagues, peer_channels
from gateway.envelope import Envelope, Status, encode_msgpack
from gateway.wire import EDGE_DEVICE, Roster, reply_ad

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


async def seal_reply(http: GatewayHTTP, roster: Roster, conversation_id: str,
                     envelope: Envelope) -> bytes:
    """The sealed bytes to POST for ``envelope`` (direction ``out``, this device's tenant):
    one body for the edge and every colleague on ``roster`` (the newest roster: the gateway
    refuses a reply sealed for an older one)."""
    device = http.device
    if device.device_id is None:
        raise DeviceError("device is not registered yet")
    if envelope.direction != "out" or envelope.tenant != device.tenant:
        raise DeviceError("a reply is an outbound envelope of this device's tenant")
    peers = colleagues(http, roster)
    if not device.sessions.get(roster.edge_identity):
        raise DeviceError("no session with the edge yet (receive an envelope first)")
    sessions: dict[bytes, PairChannel] = {EDGE_DEVICE: PairChannel(device, roster.edge_identity)}
    sessions.update(await peer_channels(http, peers))
    ad = reply_ad(device.tenant, conversation_id, envelope.id, device.device_id,
                  device_identity=device.identity_key, edge_identity=roster.edge_identity)
    return seal(encode_msgpack(envelope), list(sessions), ad, sessions=sessions)


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
    # window_closed where the channel names its re-engagement template: send this instead
    suggested_template: str | None = None
    suggested_language: str | None = None
    created: bool = False


async def post_reply(http: GatewayHTTP, roster: Roster, conversation_id: str,
                     envelope: Envelope, idempotency_key: str) -> MessageOut:
    """Seal ``envelope`` and POST it; when the roster changed meanwhile (409
    ``roster_changed``: nothing was queued), seal it again for the newest roster, once. After
    a doubt about the outcome, POST the same sealed bytes again with the same key
    (:func:`post_sealed`: never sends twice); the same key with other bytes is refused."""
    sealed = await seal_reply(http, roster, conversation_id, envelope)
    try:
        return await post_sealed(http, conversation_id, envelope.id, sealed,
                                 idempotency_key=idempotency_key,
                                 roster_version=roster.version)
    except RequestFailed as exc:
        if exc.code != "roster_changed":
            raise
    newest = await http.roster()
    sealed = await seal_reply(http, newest, conversation_id, envelope)
    return await post_sealed(http, conversation_id, envelope.id, sealed,
                             idempotency_key=idempotency_key, roster_version=newest.version)


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
            return self.expect(envelope.id)  # a colleague's reply, as it was queued
        if not isinstance(content, Status):
            return None
        if envelope.direction == "out" and content.status == "sent" and content.correlation:
            # the edge sent reply ``correlation``; the platform calls it ``target``
            state = self.expect(content.correlation)
            self._apply(state, content)
            platform_id = envelope.platform_message_id
            if platform_id:
                state.platform_message_id = platform_id
                self._by_platform_id[platform_id] = state.envelope_id
                for early in self._early.pop(platform_id, []):
                    self._apply(state, early)
            return state
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
