"""The device protocol: what the gateway and a device client exchange, and what each signs.

A leaf module (msgspec, the standard library and ``crypto``'s public API only), shared by the
server side (``gateway.api``, ``gateway.edge``) and the device client (``gateway.client``), so
both build the same bytes from one definition:

* the **roster** an admin signs: which devices may read a tenant's inbox, and which edge
  identity seals for them (:class:`Roster`, :func:`roster_signing_bytes`, :func:`verify_roster`);
* the **auth message** a device signs to answer a nonce challenge (:func:`auth_message`);
* the **associated data** of every sealed envelope (:func:`sealing_ad`): protocol version, the
  edge identity, tenant, conversation, envelope id and sequence number, so a ciphertext moved
  to another conversation, position or tenant fails to open;
* the **WebSocket frames** (MessagePack, tagged union :data:`Frame`) and the JSON bodies of
  the REST API (bytes travel as base64 in JSON, as msgspec encodes them).

Bytes are the unit of every identity: device ids on the wire are UUID strings, inside sealed
messages their 16 raw bytes (:func:`device_key`).
"""

from __future__ import annotations

import uuid
from typing import Literal, TypeAlias

import msgspec

from crypto import IdentityKeyPair, IdentityPublicKey, associated_data
from crypto.encoding import VERSION_BYTE, encode
from crypto.errors import CryptoError
from gateway.envelope import Status, SystemEvent

__all__ = [
    "EDGE_DEVICE",
    "NOT_A_REPLY",
    "Ack",
    "Auth",
    "BundleOut",
    "Challenge",
    "ConversationOut",
    "DeviceRegistration",
    "EnvelopeFrame",
    "ErrorFrame",
    "Frame",
    "HistoryItem",
    "HistoryPage",
    "PrekeyUpload",
    "Ready",
    "Roster",
    "RosterDevice",
    "RosterOut",
    "SessionToken",
    "SignedPrekeyIn",
    "WireError",
    "auth_message",
    "decode_frame",
    "device_key",
    "encode_frame",
    "reply_ad",
    "sealing_ad",
    "sign_roster",
    "verify_roster",
]

LABEL_ROSTER = b"unigate/v1/roster"
LABEL_AUTH = b"unigate/v1/device-auth"
# The edge's device id inside associated data and sealed messages (it is not a UUID: one edge
# identity serves every tenant; its key is what devices check, via the signed roster).
EDGE_DEVICE = b"edge"
# what only the edge writes (its records of sends, platform events): never a device's reply
NOT_A_REPLY = (Status, SystemEvent)
MAX_ROSTER_DEVICES = 1024


class WireError(ValueError):
    """A protocol object that is malformed, unsigned or signed by the wrong key."""


def device_key(device_id: uuid.UUID | str) -> bytes:
    """A device id as it appears inside sealed messages (16 raw bytes)."""
    return (device_id if isinstance(device_id, uuid.UUID) else uuid.UUID(device_id)).bytes


# --------------------------------------------------------------------------- roster
class RosterDevice(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    device_id: str  # UUID as the gateway assigned it at registration
    identity_key: bytes  # the device's Ed25519 public identity key
    kind: Literal["agent", "bot"] = "agent"


class Roster(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The devices that may read a tenant's inbox, and the edge that seals for them."""

    tenant: str
    version: int
    issued_at_ms: int
    edge_identity: bytes  # the edge's Ed25519 public identity key
    devices: list[RosterDevice]

    def device_keys(self) -> list[bytes]:
        return [device_key(d.device_id) for d in self.devices]

    def identity_of(self, device_id: str) -> bytes | None:
        return next((d.identity_key for d in self.devices if d.device_id == device_id), None)

    def __repr__(self) -> str:
        return f"Roster({self.tenant}, v{self.version}, devices={len(self.devices)})"


_msgpack_encode = msgspec.msgpack.Encoder().encode
_roster_decoder = msgspec.msgpack.Decoder(Roster)


def roster_signing_bytes(payload: bytes) -> bytes:
    """What the admin key signs: the roster payload under its own label."""
    return VERSION_BYTE + encode(LABEL_ROSTER, payload)


def sign_roster(roster: Roster, admin: IdentityKeyPair) -> tuple[bytes, bytes]:
    """``(payload, signature)`` for a roster; the payload is its MessagePack encoding."""
    _check_roster(roster)
    payload = _msgpack_encode(roster)
    return payload, admin.sign(roster_signing_bytes(payload))


def verify_roster(payload: bytes, signature: bytes, admin_key: bytes, tenant: str) -> Roster:
    """The roster in ``payload`` if ``admin_key`` signed it for ``tenant``; else WireError."""
    try:
        IdentityPublicKey(admin_key).verify(roster_signing_bytes(payload), signature)
    except CryptoError:
        raise WireError("roster signature does not verify with the tenant admin key") from None
    try:
        roster = _roster_decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        raise WireError("roster payload is malformed") from None
    if roster.tenant != tenant:
        raise WireError("roster was signed for another tenant")
    _check_roster(roster)
    return roster


def _check_roster(roster: Roster) -> None:
    if roster.version <= 0 or len(roster.edge_identity) != 32:
        raise WireError("roster needs a positive version and a 32-byte edge identity")
    if len(roster.devices) > MAX_ROSTER_DEVICES:
        raise WireError("roster lists too many devices")
    ids = []
    for device in roster.devices:
        try:
            parsed = uuid.UUID(device.device_id)
        except ValueError:
            raise WireError("roster device id is not a UUID") from None
        if str(parsed) != device.device_id:  # one spelling: ids are compared and locked as text
            raise WireError("roster device ids are lower-case hyphenated UUIDs")
        ids.append(parsed)
        if len(device.identity_key) != 32:
            raise WireError("roster identity keys are 32 bytes")
    if len(set(ids)) != len(ids):
        raise WireError("roster lists a device twice")


# --------------------------------------------------------------------------- signed bytes
def auth_message(tenant: str, device_id: str, nonce: bytes) -> bytes:
    """What a device signs with its identity key to answer the challenge ``nonce``."""
    return VERSION_BYTE + encode(LABEL_AUTH, tenant.encode(), device_key(device_id), nonce)


def sealing_ad(tenant: str, conversation_id: str, envelope_id: str, seq: int,
               edge_identity: bytes) -> bytes:
    """Associated data of an envelope the edge sealed for a tenant's devices (per-device
    parts are appended by ``crypto.seal``)."""
    return associated_data(
        tenant=tenant.encode(),
        conversation=uuid.UUID(conversation_id).bytes,
        envelope=uuid.UUID(envelope_id).bytes + seq.to_bytes(8, "big"),
        sender_device=EDGE_DEVICE,
        recipient_device=b"",
        sender_identity=edge_identity,
    )


def reply_ad(tenant: str, conversation_id: str, envelope_id: str, device_id: str, *,
             device_identity: bytes, edge_identity: bytes) -> bytes:
    """Associated data of a reply sealed by ``device_id`` (for the edge, which sends it, and
    the device's colleagues on the roster, who open the same bytes)."""
    return associated_data(
        tenant=tenant.encode(),
        conversation=uuid.UUID(conversation_id).bytes,
        envelope=uuid.UUID(envelope_id).bytes,
        sender_device=device_key(device_id),
        recipient_device=EDGE_DEVICE,
        sender_identity=device_identity,
        recipient_identity=edge_identity,
    )


# --------------------------------------------------------------------------- WebSocket frames
class _Frame(msgspec.Struct, tag_field="t", frozen=True, kw_only=True):
    pass


class Challenge(_Frame, tag="challenge", frozen=True):
    """Server → device, first frame: sign :func:`auth_message` over this nonce."""

    nonce: bytes


class Auth(_Frame, tag="auth", frozen=True):
    """Device → server: who it is and its signature over the challenge."""

    tenant: str
    device_id: str
    signature: bytes


class Ready(_Frame, tag="ready", frozen=True):
    """Server → device: authenticated; the stream resumes after ``acked_pos``."""

    acked_pos: int


class EnvelopeFrame(_Frame, tag="env", frozen=True):
    """Server → device: one sealed envelope, in stream order."""

    pos: int
    conversation_id: str
    seq: int
    envelope_id: str
    channel_id: str
    roster_version: int
    sealed: bytes
    author: str | None = None  # the device that sealed it (a colleague's reply); None: the edge


class Ack(_Frame, tag="ack", frozen=True):
    """Device → server: everything up to and including ``pos`` is processed."""

    pos: int


class ErrorFrame(_Frame, tag="error", frozen=True):
    code: str
    reason: str


Frame: TypeAlias = Challenge | Auth | Ready | EnvelopeFrame | Ack | ErrorFrame
_frame_decoder = msgspec.msgpack.Decoder(Frame)


def encode_frame(frame: Frame) -> bytes:
    return _msgpack_encode(frame)


def decode_frame(data: bytes) -> Frame:
    try:
        frame: Frame = _frame_decoder.decode(data)
        return frame
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        raise WireError("not a stream frame") from None


# --------------------------------------------------------------------------- REST bodies (JSON)
class _Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class SignedPrekeyIn(_Body, frozen=True):
    key_id: int
    public_key: bytes
    signature: bytes


class DeviceRegistration(_Body, frozen=True, kw_only=True):
    """``POST /v1/devices`` with an enrolment token: a device publishes its public keys."""

    kind: Literal["agent", "bot"] = "agent"
    identity_key: bytes
    signed_prekey: SignedPrekeyIn
    last_resort: tuple[int, bytes]
    one_time_prekeys: list[tuple[int, bytes]] = []


class PrekeyUpload(_Body, frozen=True, kw_only=True):
    """``POST /v1/devices/me/prekeys``: more one-time prekeys and/or a rotated signed prekey."""

    one_time_prekeys: list[tuple[int, bytes]] = []
    signed_prekey: SignedPrekeyIn | None = None


class SessionToken(_Body, frozen=True):
    token: str
    expires_in: int
    device_id: str


class BundleOut(_Body, frozen=True):
    device_id: str
    identity_key: bytes
    signed_prekey_id: int
    signed_prekey: bytes
    signed_prekey_signature: bytes
    one_time_prekey_id: int
    one_time_prekey: bytes


class RosterOut(_Body, frozen=True):
    version: int
    payload: bytes
    signature: bytes


class ConversationOut(_Body, frozen=True):
    conversation_id: str
    channel_id: str
    status: str
    last_seq: int
    acked_seq: int
    updated_at_ms: int


class HistoryItem(_Body, frozen=True):
    seq: int
    pos: int
    envelope_id: str
    channel_id: str
    roster_version: int
    sealed: bytes
    author: str | None = None  # as in EnvelopeFrame


class HistoryPage(_Body, frozen=True, kw_only=True):
    conversation_id: str
    items: list[HistoryItem]
    next_after_seq: int | None = None
