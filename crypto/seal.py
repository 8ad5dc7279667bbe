"""Sealing one envelope for many devices: the body is encrypted once, keys travel per device.

:func:`seal` encrypts the envelope once under a fresh 32-byte body key (XChaCha20-Poly1305,
random 24-byte nonce, the caller's associated data). The *body* is the msgpack array
``[version, recipients, nonce, ciphertext]``. The body key travels to every listed device
inside that device's pairwise :class:`~crypto.ratchet.session.Session`, and that message's
associated data binds the body's BLAKE2b-256 digest and the device id (:func:`device_ad`).
A device recomputes the digest of the body it got and its pairwise message opens only if it
matches what the sender authenticated for it, so no recipient (all of them know the body
key) can forge a body, or a recipient list, for the others. Because the digest is checked by
the pairwise AEAD itself, a swapped body fails *before* the pairwise session changes: the
genuine body still opens later.

Complete or refused (P44): :func:`seal` refuses the whole message if a listed device has no
session or is listed twice; :func:`open_sealed` refuses a message whose authenticated
recipient list does not contain the opener, or differs from the device list it expects.

Wire layout and rules: docs/protocol.md, "Sealing for many devices".
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

import msgspec

from crypto import _sodium
from crypto.encoding import PROTOCOL_VERSION
from crypto.errors import (
    DecodeError,
    InvalidInputError,
    MissingSessionError,
    RecipientSetError,
)

LABEL_SEAL_DIGEST = b"unigate/v1/seal/body-digest"
BODY_KEY_BYTES = 32
DIGEST_BYTES = 32
MAX_DEVICE_ID_BYTES = 255
# One message to a conversation's devices; far above any roster we expect, low enough that a
# sealed message cannot be used to make every recipient parse an unbounded list.
MAX_RECIPIENTS = 1024

_blake2b = hashlib.blake2b
_aead_encrypt = _sodium.aead_encrypt
_aead_decrypt = _sodium.aead_decrypt
_LENGTH = [bytes((length,)) for length in range(MAX_DEVICE_ID_BYTES + 1)]


class PairwiseSession(Protocol):
    """What sealing needs of a pairwise session (:class:`crypto.Session` is one)."""

    def encrypt(self, plaintext: bytes, ad: bytes) -> bytes: ...

    def decrypt(self, message: bytes, ad: bytes) -> bytes: ...


class SealedBody(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """The part encrypted once and digested: msgpack ``[version, recipients, nonce, ct]``."""

    version: int
    recipients: list[bytes]
    nonce: bytes
    ciphertext: bytes

    def __repr__(self) -> str:
        return (f"SealedBody(version={self.version}, devices={len(self.recipients)}, "
                f"ciphertext=<{len(self.ciphertext)} bytes>)")

    __str__ = __repr__


class SealedMessage(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """The wire form: msgpack ``[body (bin, msgpack of SealedBody), keys (bin per device)]``.

    ``keys[i]`` is the pairwise Session message for ``recipients[i]``: the 32-byte body key,
    associated data ``device_ad(ad, body_digest(body), recipients[i])``.
    """

    body: bytes
    keys: list[bytes]

    def __repr__(self) -> str:
        return f"SealedMessage(body=<{len(self.body)} bytes>, devices={len(self.keys)})"

    __str__ = __repr__


_encode = msgspec.msgpack.Encoder().encode
_decode_message = msgspec.msgpack.Decoder(SealedMessage).decode
_decode_body = msgspec.msgpack.Decoder(SealedBody).decode


def device_ad(ad: bytes, digest: bytes, device_id: bytes) -> bytes:
    """Associated data of one device's key message:
    ``ad || body digest (32) || device id || len(device id) (1)``.

    Read from the end, the length, the id and the fixed-size digest are unambiguous, so
    different (ad, digest, device) triples never share an encoding.
    """
    if not 0 < len(device_id) <= MAX_DEVICE_ID_BYTES or len(digest) != DIGEST_BYTES:
        raise InvalidInputError("device id must be 1..255 bytes, digest 32 bytes")
    return b"".join((ad, digest, device_id, _LENGTH[len(device_id)]))


def body_digest(body: bytes) -> bytes:
    """The 32-byte BLAKE2b digest of the encoded body that each device checks."""
    return _blake2b(body, key=LABEL_SEAL_DIGEST, digest_size=DIGEST_BYTES).digest()


def _check_recipients(recipients: Sequence[bytes]) -> None:
    if not 0 < len(recipients) <= MAX_RECIPIENTS:
        raise RecipientSetError(f"a sealed message needs 1..{MAX_RECIPIENTS} recipients")
    for device_id in recipients:
        if not isinstance(device_id, bytes) or not 0 < len(device_id) <= MAX_DEVICE_ID_BYTES:
            raise RecipientSetError("device ids must be 1..255 bytes")
    if len(set(recipients)) != len(recipients):
        raise RecipientSetError("a device is listed twice")


def seal(envelope: bytes, recipients: Sequence[bytes], ad: bytes, *,
         sessions: Mapping[bytes, PairwiseSession]) -> bytes:
    """Encrypt ``envelope`` once for every device in ``recipients`` (in that order).

    ``sessions`` maps device id to that device's pairwise session. Refused as a whole, no
    session touched, if the list is malformed (:class:`RecipientSetError`) or a listed device
    has no session (:class:`MissingSessionError`, whose ``missing`` names them); the
    sessions of all listed devices advance by one message on success.
    """
    _check_recipients(recipients)
    missing = [device_id for device_id in recipients if device_id not in sessions]
    if missing:
        raise MissingSessionError(tuple(missing))
    body_key = _sodium.random_bytes(BODY_KEY_BYTES)
    nonce = _sodium.random_bytes(_sodium.XNONCE_BYTES)
    try:
        ciphertext = _aead_encrypt(body_key, nonce, envelope, ad)
        body = _encode(SealedBody(PROTOCOL_VERSION, list(recipients), nonce, ciphertext))
        prefix = ad + body_digest(body)
        keys = [sessions[device_id].encrypt(body_key, prefix + device_id + _LENGTH[len(device_id)])
                for device_id in recipients]
    except TypeError:
        raise InvalidInputError("envelope and associated data must be bytes") from None
    return _encode(SealedMessage(body, keys))


def _decode(sealed: bytes) -> tuple[SealedMessage, SealedBody]:
    try:
        message = _decode_message(sealed)
        body = _decode_body(message.body)
    except (msgspec.DecodeError, TypeError, ValueError):  # ValueError: bad UTF-8
        raise DecodeError("not a sealed message") from None
    if body.version != PROTOCOL_VERSION:
        raise DecodeError("unsupported sealed message version")
    if len(message.keys) != len(body.recipients) or len(body.nonce) != _sodium.XNONCE_BYTES:
        raise DecodeError("sealed message is malformed")
    return message, body


def sealed_recipients(sealed: bytes) -> list[bytes]:
    """The recipient list a sealed message claims (for routing; authenticated only when a
    device opens it)."""
    return _decode(sealed)[1].recipients


def open_sealed(sealed: bytes, device_id: bytes, session: PairwiseSession, ad: bytes, *,
                expected: Collection[bytes] | None = None) -> bytes:
    """Open the envelope as ``device_id``, whose pairwise session with the sender is
    ``session``.

    ``expected`` is the device list this device knows for the conversation (the
    authenticated roster); the sealed list must equal it as a set. Raises
    :class:`RecipientSetError` when the opener is not listed or the lists differ,
    :class:`AuthenticationError` when the body (or ``ad``) is not what the sender sealed for
    this device; ``session`` advances only when the envelope is returned.
    """
    message, body = _decode(sealed)
    recipients = body.recipients
    try:
        position = recipients.index(device_id)
    except ValueError:
        raise RecipientSetError("this device is not a recipient of the sealed message") from None
    if expected is not None and recipients != expected:
        listed = set(recipients)
        if len(listed) != len(recipients) or listed != (
            expected if isinstance(expected, set | frozenset) else set(expected)
        ):
            raise RecipientSetError("sealed recipients differ from the expected device list")
    try:
        body_key = session.decrypt(message.keys[position], b"".join(
            (ad, body_digest(message.body), device_id, _LENGTH[len(device_id)])))
    except (TypeError, IndexError):
        raise InvalidInputError("device id and associated data must be bytes") from None
    if len(body_key) != BODY_KEY_BYTES:
        raise DecodeError("sealed body key has the wrong length")
    return _aead_decrypt(body_key, body.nonce, body.ciphertext, ad)


__all__ = [
    "PairwiseSession",
    "SealedBody",
    "SealedMessage",
    "body_digest",
    "device_ad",
    "open_sealed",
    "seal",
    "sealed_recipients",
]
