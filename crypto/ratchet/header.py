"""Wire layout of ratchet messages and the encrypted ratchet header (Signal spec §4 variant).

A message is::

    version (1) || kind (1) || [X3DH header (72), kind = PREKEY only]
    || header nonce (24) || sealed header (40 + 16) || body nonce (24) || body (len + 16)

The ratchet header ``ratchet key (32) || pn (u32 BE) || n (u32 BE)`` is sealed with
XChaCha20-Poly1305 under the sending header key, associated data ``header_ad`` (version and
both identity keys, sender first). The X3DH header is ``identity key (32, Ed25519) ||
base key (32, X25519) || signed prekey id (u32 BE) || one-time prekey id (u32 BE, 0 = none)``.
Every length is fixed by the kind byte, so the layout needs no length fields.
"""

from __future__ import annotations

import struct

from crypto.encoding import VERSION_BYTE

KIND_MESSAGE = 0
KIND_PREKEY = 1
PREFIX_MESSAGE = VERSION_BYTE + bytes([KIND_MESSAGE])
PREFIX_PREKEY = VERSION_BYTE + bytes([KIND_PREKEY])
PREFIX_BYTES = 2

NONCE_BYTES = 24
TAG_BYTES = 16
HEADER = struct.Struct(">32sII")  # ratchet public key, pn, n
X3DH_HEADER = struct.Struct(">32s32sII")  # identity key, base key, signed prekey id, OTK id
SEALED_HEADER_BYTES = NONCE_BYTES + HEADER.size + TAG_BYTES  # 80
MESSAGE_OVERHEAD = PREFIX_BYTES + SEALED_HEADER_BYTES + NONCE_BYTES + TAG_BYTES  # 122
PREKEY_OVERHEAD = MESSAGE_OVERHEAD + X3DH_HEADER.size  # 194
MAX_INDEX = 0xFFFFFFFF


def header_ad(sender_identity: bytes, recipient_identity: bytes) -> bytes:
    """The fixed associated data of one direction: version, sender and recipient identity.

    The body's associated data extends it with the message bytes from the kind byte up to
    the body nonce, then the caller's ``ad``; every part before the caller's bytes has a
    length fixed by the kind byte, so the concatenation is unambiguous.
    """
    return VERSION_BYTE + sender_identity + recipient_identity


def x3dh_prefix(identity_key: bytes, base_key: bytes, signed_prekey_id: int,
                one_time_prekey_id: int) -> bytes:
    """The bytes a prekey message starts with: version, kind and the X3DH header."""
    return PREFIX_PREKEY + X3DH_HEADER.pack(
        identity_key, base_key, signed_prekey_id, one_time_prekey_id
    )
