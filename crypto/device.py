"""Device: one identity key, its prekeys, and the doors to new sessions (vodozemac's Account).

The device state (identity secret, prekey secrets, replay cache) serializes losslessly with
:meth:`Device.to_state` / :meth:`Device.to_bytes`; seal it at rest like session state. Every
method that changes the device says so; persist the device after calling it.
"""

from __future__ import annotations

import msgspec

from crypto.errors import DecodeError
from crypto.keys import IdentityKeyPair, IdentityPublicKey, RedactedStruct, fingerprint
from crypto.prekeys import PrekeyBundle, PrekeyState, PrekeyStore
from crypto.ratchet.session import Session
from crypto.x3dh import InboundResult, create_inbound, create_outbound

DEVICE_STATE_VERSION = 1


class DeviceState(RedactedStruct, kw_only=True):
    version: int = DEVICE_STATE_VERSION
    identity_secret: bytes
    prekeys: PrekeyState


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(DeviceState)


class Device:
    """A device's long-term keys: identity (Ed25519), signed/one-time/last-resort prekeys."""

    __slots__ = ("_identity", "_prekeys")

    def __init__(self, identity: IdentityKeyPair, prekeys: PrekeyStore) -> None:
        self._identity = identity
        self._prekeys = prekeys

    @classmethod
    def generate(cls, *, now: float, one_time_prekeys: int = 0) -> Device:
        """A fresh device: identity, a signed prekey, a last-resort key, and a pool."""
        identity = IdentityKeyPair.generate()
        device = cls(identity, PrekeyStore.create(identity, now))
        device.generate_one_time_prekeys(one_time_prekeys)
        return device

    # ------------------------------------------------------------------ identity

    @property
    def identity_key(self) -> bytes:
        """The public Ed25519 identity key (32 bytes) that names this device."""
        return self._identity.ed25519

    @property
    def identity(self) -> IdentityPublicKey:
        return self._identity.public

    def sign(self, message: bytes) -> bytes:
        """Detached Ed25519 signature by the identity key (callers domain-separate)."""
        return self._identity.sign(message)

    # ------------------------------------------------------------------ prekeys (change state)

    @property
    def prekeys(self) -> PrekeyStore:
        return self._prekeys

    def bundle(self) -> PrekeyBundle:
        """Hand out a bundle; its one-time prekey is never handed out again."""
        return self._prekeys.claim_bundle(self._identity)

    def generate_one_time_prekeys(self, count: int) -> list[tuple[int, bytes]]:
        return self._prekeys.generate_one_time_prekeys(count)

    def rotate_signed_prekey(self, now: float) -> None:
        self._prekeys.rotate_signed_prekey(self._identity, now)

    def maintain(self, now: float) -> bool:
        """Rotate the signed prekey when due, expire old ones; True if it rotated."""
        return self._prekeys.maintain(self._identity, now)

    # ------------------------------------------------------------------ sessions

    def create_outbound_session(self, bundle: PrekeyBundle, *,
                                expected_identity: bytes | None = None) -> Session:
        """A session towards a peer device from its bundle (the device does not change)."""
        return create_outbound(self._identity, bundle, expected_identity=expected_identity)

    def create_inbound_session(self, prekey_message: bytes, ad: bytes, *,
                               expected_identity: bytes | None = None) -> InboundResult:
        """Open a session from an initial message; on success the one-time prekey is consumed
        and the base key recorded (persist the device), on failure nothing changes."""
        return create_inbound(self._identity, self._prekeys, prekey_message, ad,
                              expected_identity=expected_identity)

    # ------------------------------------------------------------------ state

    def to_state(self) -> DeviceState:
        return DeviceState(identity_secret=self._identity.secret_bytes(),
                           prekeys=self._prekeys.to_state())

    @classmethod
    def from_state(cls, state: DeviceState) -> Device:
        if not isinstance(state, DeviceState) or state.version != DEVICE_STATE_VERSION:
            raise DecodeError("unsupported device state version")
        return cls(IdentityKeyPair(state.identity_secret), PrekeyStore(state.prekeys))

    def to_bytes(self) -> bytes:
        return _ENCODER.encode(self.to_state())

    @classmethod
    def from_bytes(cls, data: bytes) -> Device:
        try:
            state = _DECODER.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError, TypeError, ValueError):
            raise DecodeError("not a serialized device") from None
        return cls.from_state(state)

    def __repr__(self) -> str:
        return f"Device(identity={fingerprint(self.identity_key)}, prekeys={self._prekeys!r})"

    __str__ = __repr__
