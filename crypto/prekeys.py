"""Prekeys: the signed prekey (rotated with a grace window), the one-time pool, the last-resort
key, the public bundle, and the replay cache of accepted initial messages.

Everything is pure: time comes in as ``now`` (seconds, any monotonic-enough clock the caller
keeps, usually Unix time), and the store changes only through its methods, which callers
persist (sealed) like any other state.

Ids: one counter per device numbers every prekey (signed, one-time, last-resort), starting at
1; id 0 in a bundle or an initial message means "no one-time prekey" (the 3-DH path).
"""

from __future__ import annotations

import struct

import msgspec

from crypto import encoding
from crypto.errors import (
    DecodeError,
    InvalidInputError,
    InvalidKeyError,
    ReplayedInitialMessageError,
    UnknownPrekeyError,
)
from crypto.kdf import LABEL_SIGNED_PREKEY
from crypto.keys import IdentityKeyPair, IdentityPublicKey, RedactedStruct, X25519KeyPair

NO_PREKEY = 0
MAX_PREKEY_ID = 0xFFFFFFFF
# Rotate the signed prekey weekly; keep a retired one for another week so initial messages
# built from a bundle fetched just before the rotation still open (X3DH spec: weekly-monthly).
SIGNED_PREKEY_LIFETIME = 7 * 24 * 3600.0
SIGNED_PREKEY_GRACE = 7 * 24 * 3600.0
# Retired signed prekeys kept at most, whatever the clock says (bounds the state).
MAX_RETIRED_SIGNED_PREKEYS = 3
# Private one-time prekeys held at most (each costs 64 bytes of state). python-x3dh refills to
# 100; a larger pool only helps against draining, which the server rate-limits anyway.
MAX_ONE_TIME_PREKEYS = 100
# Base keys of accepted initial messages, remembered while their signed prekey is accepted.
# Trade-off: the cap bounds the state (about 40 bytes per entry); if more than this many
# sessions are opened within one signed-prekey lifetime + grace, the oldest entries fall out
# and a replay of such an old last-resort / 3-DH message would be caught only by rotating the
# signed prekey. One-time-prekey replays stay refused regardless (the key is gone).
REPLAY_CACHE_SIZE = 2048

_ID = struct.Struct(">I")


class PrekeyBundle(msgspec.Struct, frozen=True, kw_only=True):
    """What an initiator fetches to open a session with a device (all public)."""

    identity_key: bytes
    signed_prekey_id: int
    signed_prekey: bytes
    signed_prekey_signature: bytes
    one_time_prekey_id: int = NO_PREKEY
    one_time_prekey: bytes = b""


class SignedPrekeyState(RedactedStruct, kw_only=True):
    key_id: int
    secret: bytes
    public: bytes
    signature: bytes
    created_at: float
    retired_at: float | None = None


class OneTimePrekeyState(RedactedStruct, kw_only=True):
    key_id: int
    secret: bytes
    public: bytes
    handed_out: bool = False


class PrekeyState(RedactedStruct, kw_only=True):
    next_id: int
    signed: list[SignedPrekeyState]  # current one last
    one_time: list[OneTimePrekeyState]
    last_resort: OneTimePrekeyState
    # (signed prekey id, base key) of accepted initial messages, oldest first
    seen_base_keys: list[tuple[int, bytes]] = msgspec.field(default_factory=list)


def signed_prekey_payload(identity_key: bytes, key_id: int, public: bytes) -> bytes:
    """The domain-separated bytes an identity key signs to vouch for a signed prekey."""
    return encoding.VERSION_BYTE + encoding.encode(
        LABEL_SIGNED_PREKEY, identity_key, _ID.pack(key_id), public
    )


def verify_bundle(bundle: PrekeyBundle) -> IdentityPublicKey:
    """Check a bundle's shape and signed-prekey signature; return the identity it names."""
    if not isinstance(bundle, PrekeyBundle):
        raise InvalidInputError("expected a PrekeyBundle")
    if not 0 < bundle.signed_prekey_id <= MAX_PREKEY_ID:
        raise InvalidInputError("signed prekey id out of range")
    if not 0 <= bundle.one_time_prekey_id <= MAX_PREKEY_ID:
        raise InvalidInputError("one-time prekey id out of range")
    if len(bundle.signed_prekey) != 32:
        raise InvalidKeyError("signed prekey must be 32 bytes")
    if (bundle.one_time_prekey_id == NO_PREKEY) != (bundle.one_time_prekey == b""):
        raise InvalidInputError("one-time prekey id and key must come together")
    if bundle.one_time_prekey and len(bundle.one_time_prekey) != 32:
        raise InvalidKeyError("one-time prekey must be 32 bytes")
    identity = IdentityPublicKey(bundle.identity_key)
    payload = signed_prekey_payload(
        bundle.identity_key, bundle.signed_prekey_id, bundle.signed_prekey
    )
    identity.verify(payload, bundle.signed_prekey_signature)
    return identity


class PrekeyStore:
    """A device's private prekeys and its replay cache of accepted initial messages."""

    __slots__ = ("_seen", "_state")

    def __init__(self, state: PrekeyState) -> None:
        """Wrap a state (from :meth:`create` or a decoded :class:`PrekeyState`), checking it.
        The store takes ownership: it changes ``state`` in place."""
        if not state.signed or len(state.signed) > MAX_RETIRED_SIGNED_PREKEYS + 1:
            raise DecodeError("prekey state must hold 1..4 signed prekeys")
        if len(state.one_time) > MAX_ONE_TIME_PREKEYS:
            raise DecodeError("prekey state holds too many one-time prekeys")
        if len(state.seen_base_keys) > REPLAY_CACHE_SIZE:
            raise DecodeError("prekey state holds too many replay entries")
        keys: list[SignedPrekeyState | OneTimePrekeyState] = [
            *state.signed, *state.one_time, state.last_resort
        ]
        if any(len(k.secret) != 32 or len(k.public) != 32 for k in keys):
            raise DecodeError("prekey state holds a malformed key")
        if any(not 0 < k.key_id < state.next_id <= MAX_PREKEY_ID + 1 for k in keys):
            raise DecodeError("prekey state holds an id out of range")
        self._state = state
        self._seen = {base_key: spk_id for spk_id, base_key in state.seen_base_keys}

    @classmethod
    def create(cls, identity: IdentityKeyPair, now: float) -> PrekeyStore:
        """A fresh store: a signed prekey (id 1) and a last-resort key (id 2), no pool yet."""
        spk = _new_signed(identity, 1, now)
        last_resort = _new_one_time(2)
        return cls(PrekeyState(next_id=3, signed=[spk], one_time=[], last_resort=last_resort))

    # ------------------------------------------------------------------ publishing

    @property
    def current_signed_prekey_id(self) -> int:
        return self._state.signed[-1].key_id

    def one_time_prekeys(self) -> list[tuple[int, bytes]]:
        """``(id, public key)`` of every one-time prekey still held (for upload)."""
        return [(k.key_id, k.public) for k in self._state.one_time]

    def generate_one_time_prekeys(self, count: int) -> list[tuple[int, bytes]]:
        """Add up to ``count`` fresh one-time prekeys (the pool stays within its cap)."""
        room = max(0, min(count, MAX_ONE_TIME_PREKEYS - len(self._state.one_time)))
        fresh = [_new_one_time(self._allocate_id()) for _ in range(room)]
        self._state.one_time.extend(fresh)
        return [(k.key_id, k.public) for k in fresh]

    def claim_bundle(self, identity: IdentityKeyPair) -> PrekeyBundle:
        """A bundle with a one-time prekey never handed out before, or the last-resort key.

        The claimed key stays private here until an initial message naming it decrypts;
        it is only marked as handed out, so no second bundle carries it.
        """
        spk = self._state.signed[-1]
        otk = next((k for k in self._state.one_time if not k.handed_out), None)
        if otk is None:
            otk = self._state.last_resort
        else:
            otk.handed_out = True
        return PrekeyBundle(
            identity_key=identity.ed25519,
            signed_prekey_id=spk.key_id,
            signed_prekey=spk.public,
            signed_prekey_signature=spk.signature,
            one_time_prekey_id=otk.key_id,
            one_time_prekey=otk.public,
        )

    # ------------------------------------------------------------------ rotation

    def rotate_signed_prekey(self, identity: IdentityKeyPair, now: float) -> None:
        """Retire the current signed prekey (kept for the grace window) and sign a new one."""
        self._state.signed[-1].retired_at = now
        self._state.signed.append(_new_signed(identity, self._allocate_id(), now))
        self.expire(now)

    def maintain(self, identity: IdentityKeyPair, now: float) -> bool:
        """Rotate when the current signed prekey is older than its lifetime; drop expired
        retired ones. Returns whether a rotation happened."""
        rotated = now - self._state.signed[-1].created_at >= SIGNED_PREKEY_LIFETIME
        if rotated:
            self.rotate_signed_prekey(identity, now)
        else:
            self.expire(now)
        return rotated

    def expire(self, now: float) -> None:
        """Drop retired signed prekeys past the grace window (and their replay entries)."""
        signed = self._state.signed
        kept = [
            k for k in signed[:-1]
            if k.retired_at is not None and now - k.retired_at < SIGNED_PREKEY_GRACE
        ][-MAX_RETIRED_SIGNED_PREKEYS:]
        kept.append(signed[-1])
        if len(kept) != len(signed):
            self._state.signed = kept
            alive = {k.key_id for k in kept}
            self._seen = {b: i for b, i in self._seen.items() if i in alive}

    # ------------------------------------------------------------------ inbound X3DH

    def signed_prekey(self, key_id: int) -> X25519KeyPair:
        for k in self._state.signed:
            if k.key_id == key_id:
                return _pair(k.secret, k.public)
        raise UnknownPrekeyError("signed prekey not available")

    def one_time_prekey(self, key_id: int) -> X25519KeyPair:
        """The one-time (or last-resort) prekey with this id, without consuming it."""
        if key_id == self._state.last_resort.key_id:
            k = self._state.last_resort
            return _pair(k.secret, k.public)
        for k in self._state.one_time:
            if k.key_id == key_id:
                return _pair(k.secret, k.public)
        raise UnknownPrekeyError("one-time prekey not available (already used or unknown)")

    def check_replay(self, base_key: bytes) -> None:
        """Refuse an initial message whose base key was already accepted."""
        if base_key in self._seen:
            raise ReplayedInitialMessageError("initial message was already accepted")

    def commit_inbound(self, signed_prekey_id: int, one_time_prekey_id: int,
                       base_key: bytes) -> None:
        """After the first message decrypted: consume the one-time prekey (never the
        last-resort one) and remember the base key against replays."""
        if one_time_prekey_id not in (NO_PREKEY, self._state.last_resort.key_id):
            self._state.one_time = [
                k for k in self._state.one_time if k.key_id != one_time_prekey_id
            ]
        self._seen[base_key] = signed_prekey_id
        while len(self._seen) > REPLAY_CACHE_SIZE:
            del self._seen[next(iter(self._seen))]

    # ------------------------------------------------------------------ state

    def to_state(self) -> PrekeyState:
        """A snapshot: later changes to the store do not show through it."""
        state = self._state
        return PrekeyState(
            next_id=state.next_id,
            signed=[msgspec.structs.replace(k) for k in state.signed],
            one_time=[msgspec.structs.replace(k) for k in state.one_time],
            last_resort=msgspec.structs.replace(state.last_resort),
            seen_base_keys=[(i, b) for b, i in self._seen.items()],
        )

    def _allocate_id(self) -> int:
        key_id = self._state.next_id
        if key_id > MAX_PREKEY_ID:
            raise InvalidInputError("prekey ids exhausted")
        self._state.next_id = key_id + 1
        return key_id

    def __repr__(self) -> str:
        return (f"PrekeyStore(signed_prekey_id={self.current_signed_prekey_id}, "
                f"one_time={len(self._state.one_time)})")


def _new_signed(identity: IdentityKeyPair, key_id: int, now: float) -> SignedPrekeyState:
    pair = X25519KeyPair.generate()
    signature = identity.sign(signed_prekey_payload(identity.ed25519, key_id, pair.public))
    return SignedPrekeyState(key_id=key_id, secret=pair.secret_bytes(), public=pair.public,
                             signature=signature, created_at=now)


def _new_one_time(key_id: int) -> OneTimePrekeyState:
    pair = X25519KeyPair.generate()
    return OneTimePrekeyState(key_id=key_id, secret=pair.secret_bytes(), public=pair.public)


def _pair(secret: bytes, public: bytes) -> X25519KeyPair:
    return X25519KeyPair.from_trusted(secret, public)

