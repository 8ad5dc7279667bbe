"""Session: the Double Ratchet with header encryption (Signal spec §4 variant).

Usage (sessions come from :class:`crypto.device.Device`)::

    from crypto import Device, Session, associated_data

    now = time.time()  # the library keeps no clock
    alice, bob = Device.generate(now=now), Device.generate(now=now, one_time_prekeys=10)
    session = alice.create_outbound_session(bob.bundle())   # bundle: from the server
    ad = associated_data(tenant=b"t", conversation=b"c", envelope=b"e1",
                         sender_device=b"a1", recipient_device=b"b1")
    message = session.encrypt(b"hello", ad)           # bytes on the wire (a prekey message)
    result = bob.create_inbound_session(message, ad)  # InboundResult(session, plaintext)
    ad2 = associated_data(tenant=b"t", conversation=b"c", envelope=b"e2",
                          sender_device=b"b1", recipient_device=b"a1")
    reply = result.session.encrypt(b"hi", ad2)
    assert session.decrypt(reply, ad2) == b"hi"
    blob = session.to_bytes()                         # msgpack of Session.to_state()
    session = Session.from_bytes(blob)                # seal blob at rest (crypto.state)

Rules (docs/protocol.md, "Double Ratchet with header encryption", is normative):
``encrypt`` commits before it returns, so persist the session before the message leaves;
``decrypt`` computes in locals and commits only after the body AEAD opened, so a failed
decrypt leaves ``to_bytes()`` byte-identical; header keys are tried HKr and NHKr (NHKr
first once we have sent since the last DH step we received), then older chains, and
authenticate the header before any chain key is derived; a message key is used
once (DuplicateMessageError / MissingMessageKeyError, never plaintext twice); every AEAD has
a fresh random 24-byte nonce. The sending half of a DH step runs in the next ``encrypt``
("pending" ratchet, as vodozemac activates its ratchet): same keys as the spec's
DHRatchetHE, but a decrypt never draws randomness.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

from crypto import _sodium, kdf
from crypto.errors import (
    AuthenticationError,
    DecodeError,
    IdentityMismatchError,
    InvalidInputError,
    MessageGapTooLargeError,
    SessionMismatchError,
)
from crypto.keys import fingerprint
from crypto.ratchet import chain as chains
from crypto.ratchet.header import (
    HEADER,
    NONCE_BYTES,
    PREFIX_BYTES,
    PREFIX_MESSAGE,
    PREFIX_PREKEY,
    SEALED_HEADER_BYTES,
    X3DH_HEADER,
    header_ad,
)
from crypto.ratchet.skipped import MAX_SKIP, SkippedKeys
from crypto.ratchet.state import (
    ENCODER,
    PREKEY_PREFIX_BYTES,
    SessionState,
    decode_state,
    validate_state,
)

_blake2b = hashlib.blake2b
_seal = _sodium.aead_encrypt
_open = _sodium.aead_open
_open_first = _sodium.aead_open_first
_x25519 = _sodium.x25519
_x25519_public = _sodium.x25519_public
_KDF_CK = kdf.KDF_CK
_KDF_RK = kdf.KDF_RK
_KDF_RK_HEADER = kdf.KDF_RK_HEADER
_PACK = HEADER.pack
_UNPACK = HEADER.unpack
_TAG = 16
_join = b"".join


class Session:
    """One pairwise Double Ratchet session with header encryption."""

    __slots__ = (
        "_ad_receive", "_ad_send", "_base_key", "_body_ad_send", "_header_receive",
        "_header_send", "_initiator", "_local_identity", "_new_chain_trial",
        "_next_header_receive", "_next_header_send", "_previous_sending", "_ratchet_public",
        "_ratchet_secret", "_receiving_chain", "_receiving_index", "_remote_identity",
        "_remote_ratchet", "_root_key", "_send_prefix", "_sending_chain", "_sending_index",
        "_skipped", "_trial_keys",
    )

    def __init__(self, state: SessionState) -> None:
        """Build from a trusted state; use :meth:`from_state` for stored input (it checks)."""
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
        self._set_trial_keys()

    def _set_trial_keys(self) -> None:
        """Header keys tried first: HKr and NHKr, NHKr first once we have sent on a chain of
        our own since the last DH step we received (the peer's next message most likely
        starts a new chain then). Only the number of failed trials depends on the order:
        both keys must authenticate the header, so the outcome is the same."""
        self._trial_keys: tuple[bytes, ...]
        if not self._header_receive:
            self._trial_keys = (self._next_header_receive,)
            self._new_chain_trial = 0
        elif self._sending_chain:
            self._trial_keys = (self._next_header_receive, self._header_receive)
            self._new_chain_trial = 0
        else:
            self._trial_keys = (self._header_receive, self._next_header_receive)
            self._new_chain_trial = 1

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
        if len(message) < PREKEY_PREFIX_BYTES or message[:PREFIX_BYTES] != PREFIX_PREKEY:
            return False
        identity, base_key, _, _ = X3DH_HEADER.unpack_from(message, PREFIX_BYTES)
        return bool(identity == self._remote_identity and base_key == self._base_key)

    # ------------------------------------------------------------------ encrypt

    def encrypt(self, plaintext: bytes, ad: bytes) -> bytes:
        """Encrypt one message; the session state advances before this returns."""
        chain_key = self._sending_chain
        if not chain_key:
            return self._encrypt_after_step(plaintext, ad)
        out = _blake2b(_KDF_CK, key=chain_key, digest_size=64).digest()
        nonces = _sodium.random_bytes(48)
        header_nonce = nonces[:24]
        try:
            head = header_nonce + _seal(
                self._header_send, header_nonce,
                _PACK(self._ratchet_public, self._previous_sending, self._sending_index),
                self._ad_send,
            )
            body_nonce = nonces[24:]
            body = _seal(out[32:], body_nonce, plaintext, _join((self._body_ad_send, head, ad)))
        except TypeError:
            raise InvalidInputError("plaintext and associated data must be bytes") from None
        except struct.error:
            raise InvalidInputError("sending chain exhausted; the peer must reply") from None
        self._sending_chain = out[:32]
        self._sending_index += 1
        return _join((self._send_prefix, head, body_nonce, body))

    def _encrypt_after_step(self, plaintext: bytes, ad: bytes) -> bytes:
        """First message after a DH step on receive: the sending half-step, then encrypt."""
        fresh = _sodium.random_bytes(80)
        secret = fresh[48:]
        public = _x25519_public(secret)
        root_key = self._root_key
        dh = _x25519(secret, self._remote_ratchet)
        out = _blake2b(_KDF_RK + dh, key=root_key, digest_size=64).digest()
        next_header = _blake2b(_KDF_RK_HEADER + dh, key=root_key, digest_size=32).digest()
        step = _blake2b(_KDF_CK, key=out[32:], digest_size=64).digest()
        header_nonce = fresh[:24]
        body_nonce = fresh[24:48]
        try:
            head = header_nonce + _seal(
                self._header_send, header_nonce, _PACK(public, self._previous_sending, 0),
                self._ad_send,
            )
            body = _seal(step[32:], body_nonce, plaintext, _join((self._body_ad_send, head, ad)))
        except TypeError:
            raise InvalidInputError("plaintext and associated data must be bytes") from None
        self._root_key = out[:32]
        self._ratchet_secret = secret
        self._ratchet_public = public
        self._next_header_send = next_header
        self._sending_chain = step[:32]
        self._sending_index = 1
        self._trial_keys = (self._next_header_receive, self._header_receive)
        self._new_chain_trial = 0
        return _join((self._send_prefix, head, body_nonce, body))

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
            if len(message) < body_at + NONCE_BYTES + _TAG:
                raise DecodeError("message too short")
            nonce = message[start:start + 24]
            sealed = message[start + 24:body_at]
            found = _open_first(self._trial_keys, nonce, sealed, self._ad_receive)
            if found is None:
                return self._decrypt_older(message, ad, body_at, nonce, sealed)
            which, header = found
            if which == self._new_chain_trial:
                return self._decrypt_new_chain(message, ad, body_at, header)
            ratchet_key, _, n = _UNPACK(header)
            if n == self._receiving_index and ratchet_key == self._remote_ratchet:
                out = _blake2b(_KDF_CK, key=self._receiving_chain, digest_size=64).digest()
                plaintext = _open(out[32:], message[body_at:body_at + 24],
                                  message[body_at + 24:],
                                  _join((self._ad_receive, message[1:body_at], ad)))
                if plaintext is None:
                    raise AuthenticationError("message body failed to authenticate")
                self._receiving_chain = out[:32]
                self._receiving_index = n + 1
                return plaintext
            return self._decrypt_current(message, ad, body_at, ratchet_key, n)
        except TypeError:
            raise InvalidInputError("message and associated data must be bytes") from None

    def _check_prekey_message(self, message: bytes) -> int:
        if len(message) < PREKEY_PREFIX_BYTES:
            raise DecodeError("prekey message too short")
        identity, base_key, _, _ = X3DH_HEADER.unpack_from(message, PREFIX_BYTES)
        if identity != self._remote_identity:
            raise IdentityMismatchError("prekey message names another identity key")
        if base_key != self._base_key:
            raise SessionMismatchError("prekey message belongs to another session")
        return PREKEY_PREFIX_BYTES

    def _open_body(self, message: bytes, ad: bytes, body_at: int, key: bytes) -> bytes:
        plaintext = _open(key, message[body_at:body_at + 24], message[body_at + 24:],
                          _join((self._ad_receive, message[1:body_at], ad)))
        if plaintext is None:
            raise AuthenticationError("message body failed to authenticate")
        return plaintext

    def _decrypt_current(self, message: bytes, ad: bytes, body_at: int,
                         ratchet_key: bytes, n: int) -> bytes:
        """HKr opened the header but ``n`` is not the next index: skipped, or ahead."""
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

    def _decrypt_older(self, message: bytes, ad: bytes, body_at: int, nonce: bytes,
                       sealed: bytes) -> bytes:
        """Neither HKr nor NHKr: the header keys of older chains, newest first."""
        skipped = self._skipped
        older = skipped.chains[-2::-1] if self._header_receive else skipped.chains[::-1]
        found = _open_first(tuple(chain.header_key for chain in older), nonce, sealed,
                            self._ad_receive)
        if found is not None:
            which, header = found
            chain = older[which]
            _, _, n = _UNPACK(header)
            plaintext = self._open_body(message, ad, body_at, skipped.key_for(chain, n))
            skipped.consume(chain, n)
            return plaintext
        raise AuthenticationError("no header key of this session opens the message")

    def _decrypt_new_chain(self, message: bytes, ad: bytes, body_at: int,
                           header: bytes) -> bytes:
        """NHKr opened the header: the receiving half of a DH step, then the message.

        KDF_RK (:func:`crypto.kdf.kdf_rk`) is inlined here and in :meth:`encrypt`'s step;
        the tests pin both against the KDF module.
        """
        ratchet_key, pn, n = _UNPACK(header)
        old_index = self._receiving_index
        old_keys: Sequence[bytes] = ()
        if self._receiving_chain and pn > old_index:
            if pn - old_index > MAX_SKIP:
                raise MessageGapTooLargeError(pn - old_index, MAX_SKIP)
            _, old_keys = chains.skip(self._receiving_chain, pn - old_index)
        if n > MAX_SKIP:
            raise MessageGapTooLargeError(n, MAX_SKIP)
        root_key = self._root_key
        dh = _x25519(self._ratchet_secret, ratchet_key)
        out = _blake2b(_KDF_RK + dh, key=root_key, digest_size=64).digest()
        next_header = _blake2b(_KDF_RK_HEADER + dh, key=root_key, digest_size=32).digest()
        receiving = out[32:]
        new_keys: Sequence[bytes] = ()
        if n:
            receiving, new_keys = chains.skip(receiving, n)
        step = _blake2b(_KDF_CK, key=receiving, digest_size=64).digest()
        plaintext = _open(step[32:], message[body_at:body_at + 24], message[body_at + 24:],
                          _join((self._ad_receive, message[1:body_at], ad)))
        if plaintext is None:
            raise AuthenticationError("message body failed to authenticate")
        # Authenticated: commit. The sending half-step waits for the next encrypt.
        skipped = self._skipped
        if old_keys:
            skipped.add(skipped.chains[-1], old_index, old_keys)
        current = skipped.start_chain(self._next_header_receive)
        if new_keys:
            skipped.add(current, 0, new_keys)
        if skipped.count:
            skipped.enforce_cap()
        self._root_key = out[:32]
        self._remote_ratchet = ratchet_key
        self._receiving_chain = step[:32]
        self._receiving_index = n + 1
        self._header_receive = self._next_header_receive
        self._next_header_receive = next_header
        self._trial_keys = (self._header_receive, next_header)
        self._new_chain_trial = 1
        self._previous_sending = self._sending_index
        self._sending_index = 0
        self._sending_chain = self._ratchet_secret = self._ratchet_public = b""
        self._header_send = self._next_header_send
        self._next_header_send = b""
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
        validate_state(state)
        return cls(state)

    def to_bytes(self) -> bytes:
        """``to_state()`` as msgpack (deterministic: same state, same bytes)."""
        return ENCODER.encode(self.to_state())

    @classmethod
    def from_bytes(cls, data: bytes) -> Session:
        return cls.from_state(decode_state(data))

    def __repr__(self) -> str:
        return (f"Session(id={fingerprint(self.session_id)}, "
                f"remote={fingerprint(self._remote_identity)}, sent={self._sending_index}, "
                f"received={self._receiving_index})")

    __str__ = __repr__
