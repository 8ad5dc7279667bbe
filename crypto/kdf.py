"""Keyed-BLAKE2b key derivation and every domain-separation label of the protocol.

Each derivation is plain (keyed or unkeyed) BLAKE2b over ``label || data``: no salt and no
personalisation parameters, so libsodium.js ``crypto_generichash(out_len, label || data, key)``
computes the same bytes. Every label below is used for exactly one purpose; a label is never
a prefix of another label used under the same key with data of the same length.

``hashlib.blake2b`` is the same function as libsodium's ``crypto_generichash``
(``_sodium.blake2b`` documents and tests that); it is called directly here because the chain
step runs once per message and the extra argument checks of the wrapper are measurable.
"""

from __future__ import annotations

import hashlib

KEY_BYTES = 32

# X3DH: SK = BLAKE2b-256(LABEL_X3DH || 0xFF*32 || DH1 || DH2 || DH3 [|| DH4]), unkeyed.
LABEL_X3DH = b"unigate/v1/x3dh"
X3DH_PAD = b"\xff" * 32
# From SK (as the BLAKE2b key): the first root key and the two initial header keys.
LABEL_X3DH_ROOT = b"unigate/v1/x3dh/root"
LABEL_X3DH_HEADER_A = b"unigate/v1/x3dh/header-a"  # initiator's first sending header key
LABEL_X3DH_HEADER_B = b"unigate/v1/x3dh/header-b"  # responder's first sending header key
# Double Ratchet, keyed with the root key: (next root key || chain key), then next header key.
KDF_RK = b"unigate/v1/ratchet/root"
KDF_RK_HEADER = b"unigate/v1/ratchet/next-header"
# Double Ratchet, keyed with the chain key: one 64-byte output = next chain key || message key.
KDF_CK = b"unigate/v1/ratchet/chain"
# Signatures and identifiers (not keys, but labels all the same).
LABEL_SIGNED_PREKEY = b"unigate/v1/signed-prekey"
LABEL_SESSION_ID = b"unigate/v1/session-id"

_blake2b = hashlib.blake2b


def x3dh_secret(dh1: bytes, dh2: bytes, dh3: bytes, dh4: bytes = b"") -> bytes:
    """The X3DH shared secret SK from the three (or four) Diffie-Hellman outputs."""
    return _blake2b(LABEL_X3DH + X3DH_PAD + dh1 + dh2 + dh3 + dh4, digest_size=32).digest()


def x3dh_keys(secret: bytes) -> tuple[bytes, bytes, bytes]:
    """``(root key, header key A, header key B)`` from SK.

    Header key A is the initiator's first sending header key (the responder's first
    next-receiving one); header key B is the responder's first next-sending header key
    (the initiator's first next-receiving one).
    """
    return (
        _blake2b(LABEL_X3DH_ROOT, key=secret, digest_size=32).digest(),
        _blake2b(LABEL_X3DH_HEADER_A, key=secret, digest_size=32).digest(),
        _blake2b(LABEL_X3DH_HEADER_B, key=secret, digest_size=32).digest(),
    )


def kdf_rk(root_key: bytes, dh_output: bytes) -> tuple[bytes, bytes, bytes]:
    """KDF_RK of the header-encryption variant: ``(root key, chain key, next header key)``."""
    out = _blake2b(KDF_RK + dh_output, key=root_key, digest_size=64).digest()
    header = _blake2b(KDF_RK_HEADER + dh_output, key=root_key, digest_size=32).digest()
    return out[:32], out[32:], header


def kdf_ck(chain_key: bytes) -> bytes:
    """KDF_CK: 64 bytes, the next chain key (first half) and the message key (second half).

    One BLAKE2b call with a 64-byte output: its two halves are independent outputs of one
    PRF evaluation, which separates the two keys by position instead of by two constants.
    """
    return _blake2b(KDF_CK, key=chain_key, digest_size=64).digest()


def session_id(initiator_identity: bytes, responder_identity: bytes, base_key: bytes) -> bytes:
    """A public 32-byte name for a session: both identity keys and the initiator's base key."""
    return _blake2b(
        LABEL_SESSION_ID + initiator_identity + responder_identity + base_key, digest_size=32
    ).digest()
