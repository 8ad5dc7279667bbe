"""Session: the Double Ratchet with header encryption (Signal spec §4 variant).

Usage (sessions come from :class:`crypto.device.Device`)::

    from crypto import Device, Session, associated_data

    alice, bob = Device.generate(now=t), Device.generate(now=t)
    session = alice.create_outbound_session(bob.bundle())
    ad = associated_data(tenant=b"t", conversation=b"c", envelope=b"e1",
                         sender_device=b"a1", recipient_device=b"b1")
    message = session.encrypt(b"hello", ad)          # bytes on the wire
    result = bob.create_inbound_session(message, ad)  # InboundResult(session, plaintext)
    reply = result.session.encrypt(b"hi", ad2)
    assert session.decrypt(reply, ad2) == b"hi"
    blob = session.to_bytes()                         # msgpack of Session.to_state()
    session = Session.from_bytes(blob)

Rules this module keeps (docs/protocol.md has the normative text):

* ``encrypt`` commits the advanced sending chain before it returns; persist the session
  before the ciphertext leaves the process.
* ``decrypt`` computes in locals and commits only after the body AEAD opened: a failed
  decrypt leaves ``to_bytes()`` byte-identical. Header keys are tried in the order HKr, NHKr,
  then the header keys of older receiving chains (at most ``MAX_RECEIVING_CHAINS + 1``
  trials); a header must authenticate before any chain key is derived.
* A message key is used once: a second delivery raises DuplicateMessageError (or
  MissingMessageKeyError if its key was evicted or aged out), never plaintext twice.
* Every AEAD call has its own random 24-byte nonce (one 48-byte draw per message gives the
  header and the body nonce), so a restored stale state never reuses a keystream.
"""

from __future__ import annotations

import hashlib
import struct

import msgspec

from crypto import _sodium, kdf
from crypto.errors import (
    AuthenticationError,
    DecodeError,
    IdentityMismatchError,
    InvalidInputError,
    MessageGapTooLargeError,
    SessionMismatchError,
)
from crypto.keys import RedactedStruct, fingerprint
from crypto.ratchet import chain as chains
from crypto.ratchet.header import (
    HEADER,
    MAX_INDEX,
    MESSAGE_OVERHEAD,
    NONCE_BYTES,
    PREFIX_BYTES,
    PREFIX_MESSAGE,
    PREFIX_PREKEY,
    SEALED_HEADER_BYTES,
    X3DH_HEADER,
    header_ad,
)
from crypto.ratchet.root import full_step
from crypto.ratchet.skipped import MAX_SKIP, ReceivingChain, ReceivingChainState, SkippedKeys

STATE_VERSION = 1

_blake2b = hashlib.blake2b
_seal = _sodium.aead_encrypt
_open = _sodium.aead_open
_KDF_CK = kdf.KDF_CK
_PACK = HEADER.pack
_UNPACK = HEADER.unpack
_PREKEY_START = PREFIX_BYTES + X3DH_HEADER.size


class SessionState(RedactedStruct, kw_only=True):
    """Lossless serialized form of a :class:`Session` (``b""`` stands for "none yet")."""

    version: int = STATE_VERSION
    initiator: bool
    local_identity: bytes
    remote_identity: bytes
    base_key: bytes
    x3dh_header: bytes  # the prekey-message prefix, until the peer's first reply opened
    root_key: bytes
    ratchet_secret: bytes
    ratchet_public: bytes
    remote_ratchet: bytes
    sending_chain: bytes
    sending_index: int
    previous_sending: int
    receiving_chain: bytes
    receiving_index: int
    header_send: bytes
    next_header_send: bytes
    header_receive: bytes
    next_header_receive: bytes
    step: int
    chains: list[ReceivingChainState] = msgspec.field(default_factory=list)


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(SessionState)


class Session:
    """One pairwise Double Ratchet session with header encryption."""

    __slots__ = (
        "_ad_receive", "_ad_send", "_base_key", "_body_ad_send", "_header_receive",
        "_header_send", "_initiator", "_local_identity", "_next_header_receive",
        "_next_header_send", "_previous_sending", "_ratchet_public", "_ratchet_secret",
        "_receiving_chain", "_receiving_index", "_remote_identity", "_remote_ratchet",
        "_root_key", "_send_prefix", "_sending_chain", "_sending_index", "_skipped",
    )

    def __init__(self, state: SessionState) -> None:
        """Build from a state; use :meth:`from_state` for untrusted input (it validates)."""
        self._initiator = state.initiator
        self._local_identity = state.local_identity
        self._remote_identity = state.remote_identity
        self._base_key = state.base_key
        self._root_key = state.root_key
        self._ratchet_secret = state.ratchet_secret
        self._ratchet_public = state.ratchet_public
        self._remote_ratchet = state.remote_ratchet
        self._sending_chain = state.sending_chain
        self._sending_index = state.sending_index
        self._previous_sending = state.previous_sending
        self._receiving_chain = state.receiving_chain
        self._receiving_index = state.receiving_index
        self._header_send = state.header_send
        self._next_header_send = state.next_header_send
        self._header_receive = state.header_receive
        self._next_header_receive = state.next_header_receive
        self._skipped = SkippedKeys.from_state(state.chains, state.step)
        self._ad_send = header_ad(state.local_identity, state.remote_identity)
        self._ad_receive = header_ad(state.remote_identity, state.local_identity)
        self._set_send_prefix(state.x3dh_header or PREFIX_MESSAGE)

    def _set_send_prefix(self, prefix: bytes) -> None:
        self._send_prefix = prefix
        self._body_ad_send = self._ad_send + prefix[1:]

    # ------------------------------------------------------------------ public names

    @property
    def session_id(self) -> bytes:
        """Public 32-byte name, equal on both sides (identities and the base key)."""
        if self._initiator:
            return kdf.session_id(self._local_identity, self._remote_identity, self._base_key)
        return kdf.session_id(self._remote_identity, self._local_identity, self._base_key)

    @property
    def local_identity(self) -> bytes:
        return self._local_identity

    @property
    def remote_identity(self) -> bytes:
        """The peer's Ed25519 identity key; check it against the authenticated roster."""
        return self._remote_identity

    @property
    def has_received(self) -> bool:
        """Whether a message from the peer has opened (the X3DH header is no longer sent)."""
        return self._send_prefix == PREFIX_MESSAGE

    def matches(self, message: bytes) -> bool:
        """Whether ``message`` is a prekey message of this session (same identity, base key)."""
        if len(message) < _PREKEY_START or message[:PREFIX_BYTES] != PREFIX_PREKEY:
            return False
        identity, base_key, _, _ = X3DH_HEADER.unpack_from(message, PREFIX_BYTES)
        return bool(identity == self._remote_identity and base_key == self._base_key)

    # ------------------------------------------------------------------ encrypt

    def encrypt(self, plaintext: bytes, ad: bytes) -> bytes:
        """Encrypt one message; the session state advances before this returns."""
        out = _blake2b(_KDF_CK, key=self._sending_chain, digest_size=64).digest()
        nonces = _sodium.random_bytes(48)
        header_nonce = nonces[:24]
        try:
            head = header_nonce + _seal(
                self._header_send, header_nonce,
                _PACK(self._ratchet_public, self._previous_sending, self._sending_index),
                self._ad_send,
            )
            body = _seal(out[32:], nonces[24:], plaintext, self._body_ad_send + head + ad)
        except TypeError:
            raise InvalidInputError("plaintext and associated data must be bytes") from None
        except struct.error:
            raise InvalidInputError("sending chain exhausted; the peer must reply") from None
        self._sending_chain = out[:32]
        self._sending_index += 1
        return self._send_prefix + head + nonces[24:] + body

    # ------------------------------------------------------------------ decrypt

    def decrypt(self, message: bytes, ad: bytes) -> bytes:
        """Decrypt one message; on any failure raise a CryptoError and change nothing."""
        try:
            if message[:PREFIX_BYTES] == PREFIX_MESSAGE:
                start = PREFIX_BYTES
            elif message[:PREFIX_BYTES] == PREFIX_PREKEY:
                start = self._check_prekey_message(message)
            else:
                raise DecodeError("not a ratchet message of this protocol version")
            body_at = start + SEALED_HEADER_BYTES
            if len(message) < body_at + NONCE_BYTES + 16:
                raise DecodeError("message too short")
            header_key = self._header_receive
            if header_key:
                header = _open(header_key, message[start:start + 24],
                               message[start + 24:body_at], self._ad_receive)
                if header is not None:
                    ratchet_key, _, n = _UNPACK(header)
                    if n == self._receiving_index and ratchet_key == self._remote_ratchet:
                        out = _blake2b(_KDF_CK, key=self._receiving_chain,
                                       digest_size=64).digest()
                        plaintext = _open(out[32:], message[body_at:body_at + 24],
                                          message[body_at + 24:],
                                          self._ad_receive + message[1:body_at] + ad)
                        if plaintext is None:
                            raise AuthenticationError("message body failed to authenticate")
                        self._receiving_chain = out[:32]
                        self._receiving_index = n + 1
                        return plaintext
                    return self._decrypt_current(message, ad, body_at, ratchet_key, n)
            return self._decrypt_other(message, ad, start, body_at)
        except TypeError:
            raise InvalidInputError("message and associated data must be bytes") from None

    def _check_prekey_message(self, message: bytes) -> int:
        if len(message) < _PREKEY_START:
            raise DecodeError("prekey message too short")
        identity, base_key, _, _ = X3DH_HEADER.unpack_from(message, PREFIX_BYTES)
        if identity != self._remote_identity:
            raise IdentityMismatchError("prekey message names another identity key")
        if base_key != self._base_key:
            raise SessionMismatchError("prekey message belongs to another session")
        return _PREKEY_START

    def _open_body(self, message: bytes, ad: bytes, body_at: int, key: bytes) -> bytes:
        plaintext = _open(key, message[body_at:body_at + 24], message[body_at + 24:],
                          self._ad_receive + message[1:body_at] + ad)
        if plaintext is None:
            raise AuthenticationError("message body failed to authenticate")
        return plaintext

    def _decrypt_current(self, message: bytes, ad: bytes, body_at: int,
                         ratchet_key: bytes, n: int) -> bytes:
        """HKr opened the header but ``n`` is not the next index: skipped or ahead."""
        if ratchet_key != self._remote_ratchet:
            raise AuthenticationError("header ratchet key does not match its chain")
        skipped = self._skipped
        current = skipped.chains[-1]
        index = self._receiving_index
        if n < index:
            plaintext = self._open_body(message, ad, body_at, skipped.key_for(current, n))
            skipped.consume(current, n)
            return plaintext
        if n - index > MAX_SKIP:
            raise MessageGapTooLargeError(n - index, MAX_SKIP)
        chain_key, keys = chains.skip(self._receiving_chain, n - index)
        chain_key, message_key = chains.advance(chain_key)
        plaintext = self._open_body(message, ad, body_at, message_key)
        skipped.add(current, index, keys)
        skipped.enforce_cap()
        self._receiving_chain = chain_key
        self._receiving_index = n + 1
        return plaintext

    def _decrypt_other(self, message: bytes, ad: bytes, start: int, body_at: int) -> bytes:
        """NHKr (a DH step), then the header keys of older chains, newest first."""
        nonce, sealed = message[start:start + 24], message[start + 24:body_at]
        header = _open(self._next_header_receive, nonce, sealed, self._ad_receive)
        if header is not None:
            return self._decrypt_new_chain(message, ad, body_at, header)
        skipped = self._skipped
        older = skipped.chains[-2::-1] if self._header_receive else skipped.chains[::-1]
        for old in older:
            header = _open(old.header_key, nonce, sealed, self._ad_receive)
            if header is not None:
                _, _, n = _UNPACK(header)
                plaintext = self._open_body(message, ad, body_at, skipped.key_for(old, n))
                skipped.consume(old, n)
                return plaintext
        raise AuthenticationError("no header key of this session opens the message")

    def _decrypt_new_chain(self, message: bytes, ad: bytes, body_at: int,
                           header: bytes) -> bytes:
        ratchet_key, pn, n = _UNPACK(header)
        old_index = self._receiving_index
        old_keys: list[bytes] = []
        if self._receiving_chain and pn > old_index:
            if pn - old_index > MAX_SKIP:
                raise MessageGapTooLargeError(pn - old_index, MAX_SKIP)
            _, old_keys = chains.skip(self._receiving_chain, pn - old_index)
        if n > MAX_SKIP:
            raise MessageGapTooLargeError(n, MAX_SKIP)
        root_key, receiving, next_receiving, sending, next_sending, public, secret = full_step(
            self._root_key, self._ratchet_secret, ratchet_key
        )
        receiving, new_keys = chains.skip(receiving, n)
        receiving, message_key = chains.advance(receiving)
        plaintext = self._open_body(message, ad, body_at, message_key)
        # Authenticated: commit everything.
        skipped = self._skipped
        if old_keys:
            skipped.add(skipped.chains[-1], old_index, old_keys)
        current = skipped.start_chain(self._next_header_receive)
        skipped.add(current, 0, new_keys)
        skipped.enforce_cap()
        self._root_key = root_key
        self._remote_ratchet = ratchet_key
        self._ratchet_public, self._ratchet_secret = public, secret
        self._receiving_chain, self._receiving_index = receiving, n + 1
        self._header_receive, self._next_header_receive = self._next_header_receive, next_receiving
        self._previous_sending, self._sending_index = self._sending_index, 0
        self._sending_chain = sending
        self._header_send, self._next_header_send = self._next_header_send, next_sending
        if self._send_prefix != PREFIX_MESSAGE:
            self._set_send_prefix(PREFIX_MESSAGE)
        return plaintext

    # ------------------------------------------------------------------ state

    def to_state(self) -> SessionState:
        """A snapshot of the whole session (later changes do not show through it)."""
        return SessionState(
            initiator=self._initiator,
            local_identity=self._local_identity,
            remote_identity=self._remote_identity,
            base_key=self._base_key,
            x3dh_header=b"" if self._send_prefix == PREFIX_MESSAGE else self._send_prefix,
            root_key=self._root_key,
            ratchet_secret=self._ratchet_secret,
            ratchet_public=self._ratchet_public,
            remote_ratchet=self._remote_ratchet,
            sending_chain=self._sending_chain,
            sending_index=self._sending_index,
            previous_sending=self._previous_sending,
            receiving_chain=self._receiving_chain,
            receiving_index=self._receiving_index,
            header_send=self._header_send,
            next_header_send=self._next_header_send,
            header_receive=self._header_receive,
            next_header_receive=self._next_header_receive,
            step=self._skipped.step,
            chains=self._skipped.to_state(),
        )

    @classmethod
    def from_state(cls, state: SessionState) -> Session:
        """Rebuild a session, refusing states that break the session's invariants."""
        _validate(state)
        return cls(state)

    def to_bytes(self) -> bytes:
        """``to_state()`` as msgpack (deterministic: same state, same bytes)."""
        return _ENCODER.encode(self.to_state())

    @classmethod
    def from_bytes(cls, data: bytes) -> Session:
        try:
            state = _DECODER.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError, TypeError):
            raise DecodeError("not a serialized session") from None
        return cls.from_state(state)

    def __repr__(self) -> str:
        return (f"Session(id={fingerprint(self.session_id)}, "
                f"remote={fingerprint(self._remote_identity)}, sent={self._sending_index}, "
                f"received={self._receiving_index})")

    __str__ = __repr__


def _validate(state: SessionState) -> None:
    if not isinstance(state, SessionState) or state.version != STATE_VERSION:
        raise DecodeError("unsupported session state version")
    required = (state.local_identity, state.remote_identity, state.base_key, state.root_key,
                state.ratchet_secret, state.ratchet_public, state.remote_ratchet,
                state.sending_chain, state.header_send, state.next_header_send,
                state.next_header_receive)
    if any(len(value) != 32 for value in required):
        raise DecodeError("session state holds a malformed key")
    received = len(state.receiving_chain) == 32
    if (received != (len(state.header_receive) == 32)
            or (not received and (state.receiving_chain or state.header_receive))):
        raise DecodeError("session state holds a malformed receiving chain")
    if received != bool(state.chains) or (
        received and state.chains[-1].header_key != state.header_receive
    ):
        raise DecodeError("session state's current chain does not match its header key")
    if state.x3dh_header and (len(state.x3dh_header) != _PREKEY_START
                              or state.x3dh_header[:PREFIX_BYTES] != PREFIX_PREKEY):
        raise DecodeError("session state holds a malformed X3DH header")
    counters = (state.sending_index, state.previous_sending, state.receiving_index, state.step)
    if any(not 0 <= value <= MAX_INDEX + 1 for value in counters):
        raise DecodeError("session state holds a counter out of range")


def new_session(state: SessionState) -> Session:
    """Build a session from a freshly computed (trusted) state; used by X3DH."""
    return Session(state)


__all__ = ["MESSAGE_OVERHEAD", "ReceivingChain", "Session", "SessionState", "new_session"]
