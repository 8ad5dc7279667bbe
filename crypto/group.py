"""Group sessions (sender keys): one signed, forward-only chain per sending device.

A sending device holds an :class:`OutboundGroupSession`: a 32-byte chain key, the index of the
next message and an Ed25519 signing key whose public half is the session id. Its
:meth:`~OutboundGroupSession.session_key` (signed) travels to every member device over the
pairwise sessions; each builds an :class:`InboundGroupSession` from it. Per message the sender
does one BLAKE2b step, one AEAD and one signature, whatever the number of members.

Chain step: ``BLAKE2b-512(key=chain_key, LABEL_GROUP_CHAIN)`` split into the next chain key
(first 32 bytes) and the message key (last 32). Advancing is one-way; the receiver keeps the
chain at its next expected index plus a bounded store of skipped message keys, so messages
may arrive out of order, each decrypts at most once, and an old key is deleted once used.

Wire layouts (big-endian) are specified in docs/protocol.md, "Group sessions".
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import struct
from collections.abc import Sequence
from typing import TypeVar

import msgspec

from crypto import _sodium
from crypto.encoding import PROTOCOL_VERSION, VERSION_BYTE
from crypto.errors import (
    CryptoError,
    DecodeError,
    DuplicateMessageError,
    GroupSessionError,
    InvalidInputError,
    MessageGapTooLargeError,
    MissingMessageKeyError,
)
from crypto.keys import RedactedStruct, fingerprint

LABEL_GROUP_CHAIN = b"unigate/v1/group/chain"
LABEL_GROUP_SESSION_KEY = b"unigate/v1/group/session-key"

# A message may jump at most this far ahead of the next expected index (pre-authentication
# work is MAX_GROUP_SKIP BLAKE2b steps, about 1 ms). Same bound as the pairwise ratchet.
MAX_GROUP_SKIP = 2000
# Skipped message keys kept per inbound session, oldest (lowest index) evicted first. Each is
# a forward-secrecy hole until used, so the store stays small; 1000 covers heavy reordering.
MAX_GROUP_SKIPPED_KEYS = 1000
MAX_INDEX = 0xFFFFFFFF

SESSION_ID_BYTES = 32
SIGNATURE_BYTES = _sodium.SIGNATURE_BYTES
NONCE_BYTES = _sodium.XNONCE_BYTES
TAG_BYTES = _sodium.TAG_BYTES
_INDEX_AT = 1 + SESSION_ID_BYTES  # 33
HEADER_BYTES = _INDEX_AT + 4  # version || session id || index
_NONCE_END = HEADER_BYTES + NONCE_BYTES  # 61
MESSAGE_OVERHEAD = _NONCE_END + TAG_BYTES + SIGNATURE_BYTES  # 141
_KEY_END = HEADER_BYTES + 32  # version || session id || index || chain key
SESSION_KEY_BYTES = _KEY_END + SIGNATURE_BYTES  # 133

_U32 = struct.Struct(">I")
_pack_u32 = _U32.pack
_unpack_u32 = _U32.unpack_from
_blake2b = hashlib.blake2b
_aead_encrypt = _sodium.aead_encrypt
_aead_decrypt = _sodium.aead_decrypt
_sign = _sodium.ed25519_sign
_verify_signed = _sodium.ed25519_verify_signed


class RotationReason(enum.Enum):
    """Why an outbound group session must be replaced before its next message."""

    ROSTER_CHANGED = "roster_changed"
    MESSAGE_LIMIT = "message_limit"
    AGE_LIMIT = "age_limit"


class RotationPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Rotation rules as data: after ``max_messages`` messages or ``max_age`` seconds.

    Megolm's defaults (100 messages, one week) bound how much history one leaked chain key
    opens; a roster change always rotates, so a removed device learns no later key.
    """

    max_messages: int = 100
    max_age: float = 7 * 24 * 3600.0


DEFAULT_ROTATION = RotationPolicy()


class OutboundGroupState(RedactedStruct, forbid_unknown_fields=True, tag="outbound_group"):
    """Serialized :class:`OutboundGroupSession` (secret: seed and chain key)."""

    signing_seed: bytes
    chain_key: bytes
    index: int
    created_at: float
    roster_version: int
    policy: RotationPolicy = DEFAULT_ROTATION


class InboundGroupState(RedactedStruct, forbid_unknown_fields=True, tag="inbound_group"):
    """Serialized :class:`InboundGroupSession` (secret: chain key and skipped keys).

    ``skipped`` lists ``(index, message key)`` in increasing index order; ``floor`` is the
    lowest index whose key might still be held (below it: before the session key, or evicted).
    """

    session_id: bytes
    first_index: int
    floor: int
    next_index: int
    chain_key: bytes
    skipped: list[tuple[int, bytes]]


_encoder = msgspec.msgpack.Encoder()
_outbound_decoder = msgspec.msgpack.Decoder(OutboundGroupState)
_inbound_decoder = msgspec.msgpack.Decoder(InboundGroupState)
_State = TypeVar("_State", OutboundGroupState, InboundGroupState)


def _decode_state(decoder: msgspec.msgpack.Decoder[_State], data: bytes, side: str) -> _State:
    try:
        return decoder.decode(data)
    except (msgspec.DecodeError, TypeError, ValueError):  # ValueError: bad UTF-8
        raise DecodeError(f"{side} group state could not be decoded") from None


def _check_framing(message: bytes) -> bytes:
    if not isinstance(message, bytes) or len(message) < MESSAGE_OVERHEAD or (
            message[0] != PROTOCOL_VERSION):
        raise DecodeError("not a group message")
    return message


def group_message_session_id(message: bytes) -> bytes:
    """The session id a group message names (to pick the inbound session); not verified."""
    return _check_framing(message)[1:_INDEX_AT]


def group_message_index(message: bytes) -> int:
    """The chain index a group message claims; not verified."""
    return int(_unpack_u32(_check_framing(message), _INDEX_AT)[0])


class OutboundGroupSession:
    """The sending side of a group session: chain key, next index, signing key."""

    __slots__ = ("_chain", "_index", "_prefix", "_secret", "created_at", "policy",
                 "roster_version", "session_id")

    def __init__(self, signing_seed: bytes, chain_key: bytes, index: int, *, created_at: float,
                 roster_version: int, policy: RotationPolicy = DEFAULT_ROTATION) -> None:
        if len(chain_key) != 32:
            raise GroupSessionError("group chain key must be 32 bytes")
        if not 0 <= index <= MAX_INDEX + 1:
            raise GroupSessionError("group message index out of range")
        public, secret = _sodium.ed25519_seed_keypair(bytes(signing_seed))
        self._secret = secret
        self._chain = bytes(chain_key)
        self._index = index
        self.session_id = public
        self._prefix = VERSION_BYTE + public
        self.created_at = float(created_at)
        self.roster_version = roster_version
        self.policy = policy

    @classmethod
    def create(cls, *, now: float, roster_version: int,
               policy: RotationPolicy = DEFAULT_ROTATION) -> OutboundGroupSession:
        """A fresh session (random signing key and chain key) at index 0."""
        seed = _sodium.random_bytes(32)
        chain_key = _sodium.random_bytes(32)
        return cls(seed, chain_key, 0, created_at=now, roster_version=roster_version,
                   policy=policy)

    @property
    def message_index(self) -> int:
        """The index the next message will carry."""
        return self._index

    def session_key(self) -> bytes:
        """The signed export members need: version, session id, index, chain key, signature.

        Secret: send it only inside pairwise sessions to the current member devices.
        """
        body = self._prefix + _pack_u32(self._index) + self._chain
        return body + _sign(self._secret, LABEL_GROUP_SESSION_KEY + body)

    def encrypt(self, plaintext: bytes, ad: bytes) -> bytes:
        """One group message: header, random nonce, AEAD ciphertext, Ed25519 signature."""
        index = self._index
        if index > MAX_INDEX:
            raise GroupSessionError("group session exhausted; rotate it")
        out = _blake2b(LABEL_GROUP_CHAIN, key=self._chain, digest_size=64).digest()
        nonce = _sodium.random_bytes(NONCE_BYTES)
        try:
            body = b"".join((self._prefix, _pack_u32(index), nonce,
                             _aead_encrypt(out[32:], nonce, plaintext, ad)))
            signature = _sign(self._secret, b"".join((body, ad, _pack_u32(len(ad)))))
        except TypeError:
            raise InvalidInputError("plaintext and associated data must be bytes") from None
        self._chain = out[:32]
        self._index = index + 1
        return body + signature

    def rotation_reason(self, now: float, roster_version: int) -> RotationReason | None:
        """Why this session must be replaced before sending again, or ``None``."""
        if roster_version != self.roster_version:
            return RotationReason.ROSTER_CHANGED
        if self._index >= self.policy.max_messages:
            return RotationReason.MESSAGE_LIMIT
        if now - self.created_at >= self.policy.max_age:
            return RotationReason.AGE_LIMIT
        return None

    def needs_rotation(self, now: float, roster_version: int) -> bool:
        """True when the roster changed or the message/age limit of the policy is reached."""
        return self.rotation_reason(now, roster_version) is not None

    def to_state(self) -> OutboundGroupState:
        return OutboundGroupState(
            signing_seed=self._secret[:32], chain_key=self._chain, index=self._index,
            created_at=self.created_at, roster_version=self.roster_version, policy=self.policy,
        )

    @classmethod
    def from_state(cls, state: OutboundGroupState) -> OutboundGroupSession:
        if len(state.signing_seed) != 32:
            raise DecodeError("outbound group state: bad signing seed")
        try:
            return cls(state.signing_seed, state.chain_key, state.index,
                       created_at=state.created_at, roster_version=state.roster_version,
                       policy=state.policy)
        except CryptoError:
            raise DecodeError("outbound group state is invalid") from None

    def to_bytes(self) -> bytes:
        return _encoder.encode(self.to_state())

    @classmethod
    def from_bytes(cls, data: bytes) -> OutboundGroupSession:
        return cls.from_state(_decode_state(_outbound_decoder, data, "outbound"))

    def __repr__(self) -> str:
        return (f"OutboundGroupSession(session_id={fingerprint(self.session_id)}, "
                f"index={self._index})")

    __str__ = __repr__


class InboundGroupSession:
    """The receiving side of one sender's group session."""

    __slots__ = ("_chain", "_first", "_floor", "_next", "_prefix", "_skipped", "session_id")

    def __init__(self, session_id: bytes, chain_key: bytes, index: int) -> None:
        self.session_id = session_id
        self._prefix = VERSION_BYTE + session_id
        self._chain = chain_key
        self._first = index
        self._floor = index
        self._next = index
        self._skipped: dict[int, bytes] = {}

    @classmethod
    def from_session_key(cls, session_key: bytes) -> InboundGroupSession:
        """Import a session key received over a pairwise session; its signature is checked."""
        if not isinstance(session_key, bytes) or len(session_key) != SESSION_KEY_BYTES:
            raise DecodeError("group session key must be 133 bytes")
        if session_key[0] != PROTOCOL_VERSION:
            raise DecodeError("unsupported group session key version")
        body = session_key[:_KEY_END]
        session_id = session_key[1:_INDEX_AT]
        _sodium.ed25519_verify(session_id, LABEL_GROUP_SESSION_KEY + body,
                               session_key[_KEY_END:])
        index = _unpack_u32(session_key, _INDEX_AT)[0]
        return cls(session_id, session_key[HEADER_BYTES:_KEY_END], index)

    @property
    def first_known_index(self) -> int:
        """The index the imported session key started at."""
        return self._first

    def decrypt(self, message: bytes, ad: bytes) -> tuple[bytes, int]:
        """Verify, decrypt and consume one group message: ``(plaintext, index)``.

        Cheap checks (session id, replay, gap) run first, then the signature, then the AEAD;
        the session changes only after all of them passed.
        """
        try:
            if len(message) < MESSAGE_OVERHEAD or not message.startswith(self._prefix):
                raise self._misfit(message)
            index: int = _unpack_u32(message, _INDEX_AT)[0]
            skipped: Sequence[tuple[int, bytes]] = ()
            if index == self._next:
                step: bytes | None = _blake2b(LABEL_GROUP_CHAIN, key=self._chain,
                                              digest_size=64).digest()
            elif index > self._next:
                skipped, step = self._skip_to(index)
            else:
                step = None
                key = self._old_key(index)
            if step is not None:
                key = step[32:]
            _verify_signed(self.session_id, b"".join(
                (message[-SIGNATURE_BYTES:], message[:-SIGNATURE_BYTES], ad,
                 _pack_u32(len(ad)))))
        except (TypeError, AttributeError, struct.error):
            raise InvalidInputError("group message and associated data must be bytes") from None
        plaintext = _aead_decrypt(key, message[HEADER_BYTES:_NONCE_END],
                                  message[_NONCE_END:-SIGNATURE_BYTES], ad)
        if step is None:
            del self._skipped[index]
        else:
            if skipped:
                self._store(skipped)
            self._chain = step[:32]
            self._next = index + 1
        return plaintext, index

    @staticmethod
    def _misfit(message: bytes) -> CryptoError:
        """The error for a message this session cannot even look at."""
        if not isinstance(message, bytes):
            return InvalidInputError("group message must be bytes")
        _check_framing(message)
        return GroupSessionError("group message belongs to another session")

    def _skip_to(self, index: int) -> tuple[list[tuple[int, bytes]], bytes]:
        """Step the chain (in locals) up to ``index``: the skipped keys worth keeping (at
        most the cap, the newest) and the step output for ``index`` itself."""
        gap = index - self._next
        if gap > MAX_GROUP_SKIP:
            raise MessageGapTooLargeError(gap, MAX_GROUP_SKIP)
        keep_from = index - MAX_GROUP_SKIPPED_KEYS
        chain = self._chain
        skipped: list[tuple[int, bytes]] = []
        for position in range(self._next, index):
            out = _blake2b(LABEL_GROUP_CHAIN, key=chain, digest_size=64).digest()
            chain = out[:32]
            if position >= keep_from:
                skipped.append((position, out[32:]))
        return skipped, _blake2b(LABEL_GROUP_CHAIN, key=chain, digest_size=64).digest()

    def _old_key(self, index: int) -> bytes:
        key = self._skipped.get(index)
        if key is None:
            if index < self._floor:
                raise MissingMessageKeyError(index)
            raise DuplicateMessageError("group message index already decrypted")
        return key

    def _store(self, skipped: Sequence[tuple[int, bytes]]) -> None:
        """Keep the new skipped keys; evict the oldest beyond the cap, raising the floor."""
        store = self._skipped
        if skipped[0][0] > self._next:
            self._floor = skipped[0][0]  # the keys below were stepped over and never kept
        store.update(skipped)
        excess = len(store) - MAX_GROUP_SKIPPED_KEYS
        if excess > 0:
            for old in list(itertools.islice(store, excess)):
                del store[old]
            self._floor = next(iter(store))

    def to_state(self) -> InboundGroupState:
        return InboundGroupState(
            session_id=self.session_id, first_index=self._first, floor=self._floor,
            next_index=self._next, chain_key=self._chain, skipped=list(self._skipped.items()),
        )

    @classmethod
    def from_state(cls, state: InboundGroupState) -> InboundGroupSession:
        _check_inbound_state(state)
        session = cls(state.session_id, state.chain_key, state.first_index)
        session._floor = state.floor
        session._next = state.next_index
        session._skipped = dict(state.skipped)
        return session

    def to_bytes(self) -> bytes:
        return _encoder.encode(self.to_state())

    @classmethod
    def from_bytes(cls, data: bytes) -> InboundGroupSession:
        return cls.from_state(_decode_state(_inbound_decoder, data, "inbound"))

    def __repr__(self) -> str:
        return (f"InboundGroupSession(session_id={fingerprint(self.session_id)}, "
                f"first_index={self._first}, next_index={self._next})")

    __str__ = __repr__


def _check_inbound_state(state: InboundGroupState) -> None:
    """Bounds a stored inbound session must satisfy (a decoded blob is untrusted input)."""
    ok = (
        len(state.session_id) == SESSION_ID_BYTES and len(state.chain_key) == 32
        and 0 <= state.first_index <= state.floor <= state.next_index <= MAX_INDEX + 1
        and len(state.skipped) <= MAX_GROUP_SKIPPED_KEYS
    )
    previous = state.floor - 1
    for index, key in state.skipped if ok else ():
        if not previous < index < state.next_index or len(key) != 32:
            ok = False
            break
        previous = index
    if not ok:
        raise DecodeError("inbound group state is out of bounds")
