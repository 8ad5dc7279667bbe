"""The only module that touches libsodium.

Every primitive the protocol uses lives here, as a plain function over ``bytes``:
X25519, Ed25519 (detached, strict), keyed BLAKE2b and XChaCha20-Poly1305-IETF (plus
ChaCha20-Poly1305-IETF, kept for the Wycheproof seam). Lengths are checked before libsodium
sees an argument; every failure is a :mod:`crypto.errors` exception, never a stray
``TypeError``/``ValueError`` and never a message with secret bytes in it.

Speed: the hot functions call PyNaCl's cffi layer (``nacl._sodium``) directly, skipping the
argument re-validation of ``nacl.bindings`` (about 2 µs per AEAD call). Keyed BLAKE2b uses
:func:`hashlib.blake2b`, which computes the same function as ``crypto_generichash``
(``tests/crypto/test_sodium.py`` proves it on random inputs).

Randomness: callers use ``_sodium.random_bytes(n)`` through the module attribute, so the
known-answer vector generator can swap in a seeded source with :func:`deterministic_random`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from nacl._sodium import ffi, lib

from crypto.errors import AuthenticationError, InvalidInputError, InvalidKeyError, SignatureError

# libsodium picks its CPU-specific implementations and seeds its RNG in sodium_init();
# PyNaCl only calls it from nacl.bindings, which this module deliberately bypasses.
if lib.sodium_init() < 0:  # pragma: no cover - only on a broken libsodium build
    raise ImportError("libsodium failed to initialise")

KEY_BYTES = 32
X25519_BYTES = 32
ED25519_PUBLIC_BYTES = 32
ED25519_SECRET_BYTES = 64
ED25519_SEED_BYTES = 32
SIGNATURE_BYTES = 64
XNONCE_BYTES = 24
IETF_NONCE_BYTES = 12
TAG_BYTES = 16
BLAKE2B_MAX_BYTES = 64

_blake2b = hashlib.blake2b
_aead_xenc = lib.crypto_aead_xchacha20poly1305_ietf_encrypt
_aead_xdec = lib.crypto_aead_xchacha20poly1305_ietf_decrypt
_aead_ienc = lib.crypto_aead_chacha20poly1305_ietf_encrypt
_aead_idec = lib.crypto_aead_chacha20poly1305_ietf_decrypt
_new = ffi.new
_buffer = ffi.buffer
_NULL = ffi.NULL
# What a non-bytes argument makes ``len()``, hashlib or cffi raise; caught only around calls,
# so the checks cost nothing on the fast path (zero-cost ``try`` since Python 3.11).
_NOT_BYTES = (TypeError, OverflowError, ValueError)

random_bytes: Callable[[int], bytes] = os.urandom


@contextmanager
def deterministic_random(seed: bytes) -> Iterator[None]:
    """Replace :func:`random_bytes` by a BLAKE2b counter stream (vector generation only)."""
    global random_bytes  # noqa: PLW0603 - the documented seam for known-answer vectors
    counter = 0

    def seeded(n: int) -> bytes:
        nonlocal counter
        out = b""
        while len(out) < n:
            out += _blake2b(counter.to_bytes(8, "big"), key=seed, digest_size=64).digest()
            counter += 1
        return out[:n]

    saved = random_bytes
    random_bytes = seeded
    try:
        yield
    finally:
        random_bytes = saved


def _need(
    value: object, length: int, what: str, error: type[Exception] = InvalidInputError
) -> None:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise error(f"{what} must be bytes")
    if len(value) != length:
        raise error(f"{what} must be {length} bytes")


def _need_bytes(value: object, what: str) -> None:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidInputError(f"{what} must be bytes")


# --------------------------------------------------------------------------- BLAKE2b


def blake2b(data: bytes, key: bytes = b"", size: int = 32) -> bytes:
    """Keyed (or unkeyed) BLAKE2b; identical to libsodium's ``crypto_generichash``."""
    try:
        if not 16 <= size <= BLAKE2B_MAX_BYTES:
            raise InvalidInputError("BLAKE2b output must be 16..64 bytes")
        if len(key) > BLAKE2B_MAX_BYTES:
            raise InvalidKeyError("BLAKE2b key must be at most 64 bytes")
        return _blake2b(data, key=key, digest_size=size).digest()
    except _NOT_BYTES:
        raise InvalidInputError("BLAKE2b data and key must be bytes, size an int") from None


def generichash(data: bytes, key: bytes = b"", size: int = 32) -> bytes:
    """libsodium's ``crypto_generichash`` itself (used to prove :func:`blake2b` equal to it).

    PyNaCl's cffi layer exports it as ``crypto_generichash_blake2b_salt_personal``; with no
    salt and no personalization (NULL: libsodium zero-fills both) that is plain BLAKE2b.
    """
    _need_bytes(data, "generichash data")
    _need_bytes(key, "generichash key")
    if not isinstance(size, int) or not 16 <= size <= BLAKE2B_MAX_BYTES:
        raise InvalidInputError("generichash output must be 16..64 bytes")
    if len(key) > BLAKE2B_MAX_BYTES:
        raise InvalidKeyError("generichash key must be at most 64 bytes")
    out = _new("unsigned char[]", size)
    rc = lib.crypto_generichash_blake2b_salt_personal(
        out, size, bytes(data), len(data), bytes(key) or _NULL, len(key), _NULL, _NULL
    )
    if rc != 0:
        raise InvalidInputError("generichash failed")
    result: bytes = _buffer(out, size)[:]
    return result


# --------------------------------------------------------------------------- AEAD


def aead_encrypt(key: bytes, nonce: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """XChaCha20-Poly1305-IETF: ciphertext with its full 16-byte tag appended."""
    try:
        if len(key) != KEY_BYTES or len(nonce) != XNONCE_BYTES:
            _need(key, KEY_BYTES, "AEAD key", InvalidKeyError)
            _need(nonce, XNONCE_BYTES, "XChaCha20 nonce")
        size = len(plaintext) + TAG_BYTES
        out = _new("unsigned char[]", size)
        _aead_xenc(out, _NULL, plaintext, len(plaintext), ad, len(ad), _NULL, nonce, key)
    except _NOT_BYTES:
        raise InvalidInputError("AEAD arguments must be bytes") from None
    result: bytes = _buffer(out, size)[:]
    return result


def aead_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    """Open an XChaCha20-Poly1305-IETF ciphertext; :class:`AuthenticationError` if it fails."""
    try:
        size = len(ciphertext) - TAG_BYTES
        if len(key) != KEY_BYTES or len(nonce) != XNONCE_BYTES or size < 0:
            _need(key, KEY_BYTES, "AEAD key", InvalidKeyError)
            _need(nonce, XNONCE_BYTES, "XChaCha20 nonce")
            raise InvalidInputError("ciphertext shorter than its 16-byte tag")
        out = _new("unsigned char[]", size or 1)
        rc = _aead_xdec(out, _NULL, _NULL, ciphertext, len(ciphertext), ad, len(ad), nonce, key)
    except _NOT_BYTES:
        raise InvalidInputError("AEAD arguments must be bytes") from None
    if rc != 0:
        raise AuthenticationError("AEAD authentication failed")
    result: bytes = _buffer(out, size)[:]
    return result


def aead_open(key: bytes, nonce: bytes, ciphertext: bytes, ad: bytes) -> bytes | None:
    """:func:`aead_decrypt` for trial decryption: ``None`` instead of raising when it fails.

    The ratchet tries several header keys per message; a miss is an expected outcome there,
    not an exception. Wrong key or nonce lengths still raise.
    """
    try:
        size = len(ciphertext) - TAG_BYTES
        if len(key) != KEY_BYTES or len(nonce) != XNONCE_BYTES or size < 0:
            _need(key, KEY_BYTES, "AEAD key", InvalidKeyError)
            _need(nonce, XNONCE_BYTES, "XChaCha20 nonce")
            return None
        out = _new("unsigned char[]", size or 1)
        rc = _aead_xdec(out, _NULL, _NULL, ciphertext, len(ciphertext), ad, len(ad), nonce, key)
    except _NOT_BYTES:
        raise InvalidInputError("AEAD arguments must be bytes") from None
    if rc != 0:
        return None
    result: bytes = _buffer(out, size)[:]
    return result


def aead_open_first(keys: tuple[bytes, ...], nonce: bytes, ciphertext: bytes,
                    ad: bytes) -> tuple[int, bytes] | None:
    """Trial decryption under several keys, in order: ``(index of the key that opened,
    plaintext)``, or ``None`` if none did.

    The same as calling :func:`aead_open` per key until one succeeds, in one Python call:
    the ratchet's header trials (HKr and NHKr, in the order docs/protocol.md gives) cost one
    libsodium call each, not one wrapper each.
    """
    try:
        size = len(ciphertext) - TAG_BYTES
        if len(nonce) != XNONCE_BYTES or size < 0:
            _need(nonce, XNONCE_BYTES, "XChaCha20 nonce")
            return None
        out = _new("unsigned char[]", size or 1)
        length, ad_length = len(ciphertext), len(ad)
        for index, key in enumerate(keys):
            if len(key) != KEY_BYTES:
                _need(key, KEY_BYTES, "AEAD key", InvalidKeyError)
            if _aead_xdec(out, _NULL, _NULL, ciphertext, length, ad, ad_length, nonce, key) == 0:
                result: bytes = _buffer(out, size)[:]
                return index, result
    except _NOT_BYTES:
        raise InvalidInputError("AEAD arguments must be bytes") from None
    return None


def ietf_aead_encrypt(key: bytes, nonce: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """ChaCha20-Poly1305-IETF (RFC 8439), 12-byte nonce. Not used by the protocol itself."""
    _need(key, KEY_BYTES, "AEAD key", InvalidKeyError)
    _need(nonce, IETF_NONCE_BYTES, "ChaCha20 nonce")
    _need_bytes(plaintext, "plaintext")
    _need_bytes(ad, "associated data")
    size = len(plaintext) + TAG_BYTES
    out = _new("unsigned char[]", size)
    _aead_ienc(out, _NULL, bytes(plaintext), len(plaintext), bytes(ad), len(ad), _NULL,
               bytes(nonce), bytes(key))
    result: bytes = _buffer(out, size)[:]
    return result


def ietf_aead_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    """Open a ChaCha20-Poly1305-IETF ciphertext; :class:`AuthenticationError` if it fails."""
    _need(key, KEY_BYTES, "AEAD key", InvalidKeyError)
    _need(nonce, IETF_NONCE_BYTES, "ChaCha20 nonce")
    _need_bytes(ciphertext, "ciphertext")
    _need_bytes(ad, "associated data")
    size = len(ciphertext) - TAG_BYTES
    if size < 0:
        raise InvalidInputError("ciphertext shorter than its 16-byte tag")
    out = _new("unsigned char[]", size or 1)
    rc = _aead_idec(out, _NULL, _NULL, bytes(ciphertext), len(ciphertext), bytes(ad), len(ad),
                    bytes(nonce), bytes(key))
    if rc != 0:
        raise AuthenticationError("AEAD authentication failed")
    result: bytes = _buffer(out, size)[:]
    return result


# --------------------------------------------------------------------------- X25519


def x25519_public(secret: bytes) -> bytes:
    """The X25519 public key of a 32-byte secret (clamped by libsodium)."""
    try:
        if len(secret) != X25519_BYTES:
            _need(secret, X25519_BYTES, "X25519 secret key", InvalidKeyError)
        out = _new("unsigned char[]", X25519_BYTES)
        rc = lib.crypto_scalarmult_base(out, secret)
    except _NOT_BYTES:
        raise InvalidKeyError("X25519 secret key must be bytes") from None
    if rc != 0:
        raise InvalidKeyError("X25519 secret key is unusable")
    result: bytes = _buffer(out, X25519_BYTES)[:]
    return result


def x25519_keypair() -> tuple[bytes, bytes]:
    """A fresh ``(public, secret)`` X25519 key pair."""
    secret = random_bytes(X25519_BYTES)
    return x25519_public(secret), secret


def x25519(secret: bytes, public: bytes) -> bytes:
    """X25519 shared secret. Low-order peer points (all-zero output) are rejected."""
    try:
        if len(secret) != X25519_BYTES or len(public) != X25519_BYTES:
            _need(secret, X25519_BYTES, "X25519 secret key", InvalidKeyError)
            _need(public, X25519_BYTES, "X25519 public key", InvalidKeyError)
        out = _new("unsigned char[]", X25519_BYTES)
        rc = lib.crypto_scalarmult(out, secret, public)
    except _NOT_BYTES:
        raise InvalidKeyError("X25519 keys must be bytes") from None
    if rc != 0:
        raise InvalidKeyError("X25519 produced an all-zero shared secret (low-order point)")
    result: bytes = _buffer(out, X25519_BYTES)[:]
    return result


# --------------------------------------------------------------------------- Ed25519


def ed25519_seed_keypair(seed: bytes) -> tuple[bytes, bytes]:
    """``(public, secret)`` Ed25519 key pair from a 32-byte seed; secret is seed||public."""
    _need(seed, ED25519_SEED_BYTES, "Ed25519 seed", InvalidKeyError)
    pk = _new("unsigned char[]", ED25519_PUBLIC_BYTES)
    sk = _new("unsigned char[]", ED25519_SECRET_BYTES)
    lib.crypto_sign_seed_keypair(pk, sk, bytes(seed))
    public: bytes = _buffer(pk, ED25519_PUBLIC_BYTES)[:]
    secret: bytes = _buffer(sk, ED25519_SECRET_BYTES)[:]
    return public, secret


def ed25519_keypair() -> tuple[bytes, bytes]:
    """A fresh ``(public, secret)`` Ed25519 key pair."""
    return ed25519_seed_keypair(random_bytes(ED25519_SEED_BYTES))


def ed25519_sign(secret: bytes, message: bytes) -> bytes:
    """Detached 64-byte Ed25519 signature."""
    try:
        if len(secret) != ED25519_SECRET_BYTES:
            _need(secret, ED25519_SECRET_BYTES, "Ed25519 secret key", InvalidKeyError)
        size = SIGNATURE_BYTES + len(message)
        out = _new("unsigned char[]", size)
        lib.crypto_sign(out, _NULL, message, len(message), secret)
    except _NOT_BYTES:
        raise InvalidInputError("Ed25519 arguments must be bytes") from None
    result: bytes = _buffer(out, SIGNATURE_BYTES)[:]
    return result


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> None:
    """Strict Ed25519 verification (canonical S, no small-order R or A); raises on failure."""
    _need(public, ED25519_PUBLIC_BYTES, "Ed25519 public key", InvalidKeyError)
    _need_bytes(message, "signed message")
    _need_bytes(signature, "Ed25519 signature")
    if len(signature) != SIGNATURE_BYTES:
        raise SignatureError("Ed25519 signature must be 64 bytes")
    signed = bytes(signature) + bytes(message)
    out = _new("unsigned char[]", len(signed))
    rc = lib.crypto_sign_open(out, _NULL, signed, len(signed), bytes(public))
    if rc != 0:
        raise SignatureError("Ed25519 signature did not verify")


def ed25519_verify_signed(public: bytes, signed: bytes) -> None:
    """:func:`ed25519_verify` over ``signature || message`` already joined by the caller.

    The group-message hot path builds that one buffer itself, so nothing is copied again.
    """
    try:
        if len(public) != ED25519_PUBLIC_BYTES or len(signed) < SIGNATURE_BYTES:
            _need(public, ED25519_PUBLIC_BYTES, "Ed25519 public key", InvalidKeyError)
            raise SignatureError("Ed25519 signed message shorter than a signature")
        out = _new("unsigned char[]", len(signed))
        rc = lib.crypto_sign_open(out, _NULL, signed, len(signed), public)
    except _NOT_BYTES:
        raise InvalidInputError("Ed25519 arguments must be bytes") from None
    if rc != 0:
        raise SignatureError("Ed25519 signature did not verify")


def ed25519_public_to_x25519(public: bytes) -> bytes:
    """The X25519 (Montgomery) form of an Ed25519 public key; rejects invalid points."""
    _need(public, ED25519_PUBLIC_BYTES, "Ed25519 public key", InvalidKeyError)
    out = _new("unsigned char[]", X25519_BYTES)
    if lib.crypto_sign_ed25519_pk_to_curve25519(out, bytes(public)) != 0:
        raise InvalidKeyError("Ed25519 public key is not a valid point")
    result: bytes = _buffer(out, X25519_BYTES)[:]
    return result


def ed25519_secret_to_x25519(secret: bytes) -> bytes:
    """The X25519 secret scalar matching :func:`ed25519_public_to_x25519`."""
    _need(secret, ED25519_SECRET_BYTES, "Ed25519 secret key", InvalidKeyError)
    out = _new("unsigned char[]", X25519_BYTES)
    lib.crypto_sign_ed25519_sk_to_curve25519(out, bytes(secret))
    result: bytes = _buffer(out, X25519_BYTES)[:]
    return result


# --------------------------------------------------------------------------- helpers


def equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison of two byte strings."""
    try:
        return hmac.compare_digest(a, b)
    except TypeError:
        raise InvalidInputError("compared values must be bytes") from None
