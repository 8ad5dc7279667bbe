"""The device's own state: keys (they never leave it), verified rosters, the sessions the edge
opened with it, and what it has already processed.

:meth:`LocalDevice.open` turns one sealed envelope (stream frame or history item) into an
:class:`~gateway.envelope.Envelope`:

1. the roster the envelope names must be one this device verified with the tenant admin key,
   and must list this device; the edge identity comes from that roster;
2. the associated data is rebuilt from the frame's tenant, conversation, envelope id and
   sequence number, so a ciphertext moved anywhere else fails to open;
3. ``crypto.open_sealed`` opens it through the edge's pairwise session (a prekey message from
   the roster's edge identity opens a new one);
4. the sealed recipient list (authenticated by the open) must be a subset of that roster.

A colleague's reply (``Sealed.author`` set) was sealed by that device, not the edge, when it
was queued: it opens through this device's pairwise session with the author (a prekey message
from the author's roster identity opens a new one), under :func:`gateway.wire.reply_ad`, and
its recipient list must be exactly the edge plus every device of the roster but the author; it
must be an outbound envelope with the frame's envelope id, neither a status nor a system event
(those only the edge writes), naming no other sender than its author. A device is not a
recipient of its own replies (it keeps what it wrote).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from crypto import DecodeError, Device, MissingSessionError, Session, open_sealed
from crypto.seal import sealed_recipients
from gateway.envelope import Envelope, decode_msgpack
from gateway.wire import (
    EDGE_DEVICE,
    NOT_A_REPLY,
    DeviceRegistration,
    Roster,
    SignedPrekeyIn,
    WireError,
    auth_message,
    device_key,
    reply_ad,
    sealing_ad,
    verify_roster,
)

__all__ = ["DeviceError", "LocalDevice", "PairChannel", "Sealed"]

MAX_EDGE_SESSIONS = 8  # sessions kept per edge identity (the newest first)


class _Snapshot(msgspec.Struct, kw_only=True):
    tenant: str
    admin_key: bytes
    kind: str
    device_id: str | None
    device: bytes
    sessions: list[tuple[bytes, list[bytes]]]
    rosters: list[Roster]
    processed_pos: int

    def __repr__(self) -> str:
        return "_Snapshot(<secret>)"


_snapshot_encode = msgspec.msgpack.Encoder().encode
_snapshot_decode = msgspec.msgpack.Decoder(_Snapshot).decode


class DeviceError(Exception):
    """A sealed envelope this device cannot accept (message names the reason, no content)."""


@dataclass(frozen=True, slots=True)
class Sealed:
    """What the gateway delivers about one sealed envelope."""

    pos: int
    conversation_id: str
    seq: int
    envelope_id: str
    channel_id: str
    roster_version: int
    sealed: bytes
    author: str | None = None  # the colleague device that sealed it; None: the edge

    def __repr__(self) -> str:
        return f"Sealed(pos={self.pos}, conversation={self.conversation_id}, seq={self.seq})"


class PairChannel:
    """``crypto.seal.PairwiseSession`` over this device's sessions with one peer identity
    (the edge or a colleague device): it sends in the newest session, and opens with the
    session a message belongs to or, for a prekey message from that identity, a new one."""

    def __init__(self, device: LocalDevice, peer_identity: bytes) -> None:
        self._device = device
        self._peer = peer_identity

    def encrypt(self, plaintext: bytes, ad: bytes) -> bytes:
        sessions = self._device.sessions.get(self._peer)
        if not sessions:
            raise MissingSessionError((self._peer,))
        return sessions[0].encrypt(plaintext, ad)

    def decrypt(self, message: bytes, ad: bytes) -> bytes:
        sessions = self._device.sessions.setdefault(self._peer, [])
        for session in sessions:
            if session.matches(message):
                return session.decrypt(message, ad)
        try:
            result = self._device.crypto.create_inbound_session(
                message, ad, expected_identity=self._peer)
        except DecodeError:  # not a prekey message: one of the session we answer in
            if not sessions:
                raise MissingSessionError((self._peer,)) from None
            return sessions[0].decrypt(message, ad)
        sessions.insert(0, result.session)
        del sessions[MAX_EDGE_SESSIONS:]
        return result.plaintext


class LocalDevice:
    """One agent or bot device: its crypto ``Device`` plus what it learned from the gateway."""

    def __init__(self, tenant: str, admin_key: bytes, *, kind: str = "agent",
                 crypto: Device | None = None, one_time_prekeys: int = 50) -> None:
        self.tenant = tenant
        self.admin_key = admin_key
        self.kind = kind
        self.crypto = crypto or Device.generate(now=time.time(),
                                                one_time_prekeys=one_time_prekeys)
        self.device_id: str | None = None
        self.rosters: dict[int, Roster] = {}
        self.sessions: dict[bytes, list[Session]] = {}
        self.processed_pos = 0  # highest stream position handed to the application

    # ------------------------------------------------------------------ keys
    @property
    def identity_key(self) -> bytes:
        return self.crypto.identity_key

    def registration(self) -> DeviceRegistration:
        """The public keys to publish (identity, signed prekey, last-resort, one-time pool)."""
        state = self.crypto.prekeys.to_state()
        spk = state.signed[-1]
        return DeviceRegistration(
            kind="bot" if self.kind == "bot" else "agent",
            identity_key=self.identity_key,
            signed_prekey=SignedPrekeyIn(key_id=spk.key_id, public_key=spk.public,
                                         signature=spk.signature),
            last_resort=(state.last_resort.key_id, state.last_resort.public),
            one_time_prekeys=self.crypto.prekeys.one_time_prekeys(),
        )

    def sign_challenge(self, nonce: bytes) -> bytes:
        if self.device_id is None:
            raise DeviceError("device is not registered yet")
        return self.crypto.sign(auth_message(self.tenant, self.device_id, nonce))

    # ------------------------------------------------------------------ rosters
    def accept_roster(self, version: int, payload: bytes, signature: bytes) -> Roster:
        """Verify a roster with the tenant admin key and remember it."""
        roster = verify_roster(payload, signature, self.admin_key, self.tenant)
        if roster.version != version:
            raise WireError("roster version differs from what the server said")
        self.rosters[roster.version] = roster
        return roster

    # ------------------------------------------------------------------ opening
    def open(self, item: Sealed) -> Envelope:
        """Open one sealed envelope (see the module doc); DeviceError or CryptoError if not."""
        if self.device_id is None:
            raise DeviceError("device is not registered yet")
        roster = self.rosters.get(item.roster_version)
        if roster is None:
            raise DeviceError("envelope names a roster this device has not verified")
        if roster.identity_of(self.device_id) != self.identity_key:
            raise DeviceError("this device is not on the roster the envelope was sealed for")
        if item.author is not None:
            return self._open_reply(item, roster, self.device_id, item.author)
        ad = sealing_ad(self.tenant, item.conversation_id, item.envelope_id, item.seq,
                        roster.edge_identity)
        me = device_key(self.device_id)
        plaintext = open_sealed(item.sealed, me, PairChannel(self, roster.edge_identity), ad)
        allowed = set(roster.device_keys())
        if not set(sealed_recipients(item.sealed)) <= allowed:
            raise DeviceError("envelope was sealed to a device that is not on the roster")
        envelope = decode_msgpack(plaintext)
        if envelope.tenant != self.tenant:
            raise DeviceError("envelope belongs to another tenant")
        return envelope

    def _open_reply(self, item: Sealed, roster: Roster, me: str, author: str) -> Envelope:
        """A colleague's reply, sealed by its device to the edge and the rest of the roster."""
        if author == me:
            raise DeviceError("a device is not a recipient of its own replies")
        identity = roster.identity_of(author)
        if identity is None:
            raise DeviceError("the reply's author is not on the roster it names")
        ad = reply_ad(self.tenant, item.conversation_id, item.envelope_id, author,
                      device_identity=identity, edge_identity=roster.edge_identity)
        expected = {EDGE_DEVICE, *roster.device_keys()} - {device_key(author)}
        plaintext = open_sealed(item.sealed, device_key(me), PairChannel(self, identity), ad,
                                expected=expected)
        envelope = decode_msgpack(plaintext)
        if (envelope.tenant != self.tenant or envelope.direction != "out"
                or envelope.id != item.envelope_id):
            raise DeviceError("the reply does not match where it was delivered")
        if isinstance(envelope.content, NOT_A_REPLY):
            raise DeviceError("a device's reply cannot be a status or a system event")
        if envelope.sender is not None and envelope.sender.id not in ("", author):
            raise DeviceError("the reply names another sender than its author")
        return envelope

    # ------------------------------------------------------------------ persistence
    def to_bytes(self) -> bytes:
        """The whole device state (SECRET: private keys and sessions) for the device's own
        storage; :meth:`from_bytes` restores it, including the stream position."""
        return _snapshot_encode(_Snapshot(
            tenant=self.tenant, admin_key=self.admin_key, kind=self.kind,
            device_id=self.device_id, device=self.crypto.to_bytes(),
            sessions=[(edge, [s.to_bytes() for s in sessions])
                      for edge, sessions in self.sessions.items()],
            rosters=list(self.rosters.values()), processed_pos=self.processed_pos))

    @classmethod
    def from_bytes(cls, data: bytes) -> LocalDevice:
        snap = _snapshot_decode(data)
        device = cls(snap.tenant, snap.admin_key, kind=snap.kind,
                     crypto=Device.from_bytes(snap.device))
        device.device_id = snap.device_id
        device.sessions = {edge: [Session.from_bytes(s) for s in blobs]
                           for edge, blobs in snap.sessions}
        device.rosters = {r.version: r for r in snap.rosters}
        device.processed_pos = snap.processed_pos
        return device

    def unknown_rosters(self, items: Iterable[Sealed]) -> set[int]:
        return {i.roster_version for i in items if i.roster_version not in self.rosters}

    def __repr__(self) -> str:
        return f"LocalDevice({self.tenant}, {self.device_id}, {self.kind})"
