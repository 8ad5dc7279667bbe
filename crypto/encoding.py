"""One unambiguous length-prefixed encoding for associated data and signed payloads.

``encode(*fields)`` is ``u16 field count || (u32 length || bytes)*`` (big-endian), so no two
different field lists share an encoding. ``PROTOCOL_VERSION`` prefixes every associated data
and every message, which makes a downgrade or a cross-version replay fail to open.
"""

from __future__ import annotations

import struct

from crypto.errors import DecodeError, InvalidInputError

PROTOCOL_VERSION = 1
VERSION_BYTE = bytes([PROTOCOL_VERSION])

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_MAX_FIELD = 0xFFFFFFFF
_MAX_FIELDS = 0xFFFF


def encode(*fields: bytes) -> bytes:
    """Length-prefix each field and the count; injective over lists of byte strings."""
    if len(fields) > _MAX_FIELDS:
        raise InvalidInputError("too many fields to encode")
    parts = [_U16.pack(len(fields))]
    for field in fields:
        if not isinstance(field, bytes | bytearray | memoryview):
            raise InvalidInputError("encoded fields must be bytes")
        if len(field) > _MAX_FIELD:
            raise InvalidInputError("encoded field too long")
        parts.append(_U32.pack(len(field)))
        parts.append(bytes(field))
    return b"".join(parts)


def decode(data: bytes) -> list[bytes]:
    """Inverse of :func:`encode`; :class:`DecodeError` on any trailing or missing byte."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError("encoded list must be bytes")
    if len(data) < 2:
        raise DecodeError("encoded list too short")
    (count,) = _U16.unpack_from(data, 0)
    offset = 2
    fields: list[bytes] = []
    for _ in range(count):
        if offset + 4 > len(data):
            raise DecodeError("encoded list truncated")
        (length,) = _U32.unpack_from(data, offset)
        offset += 4
        if offset + length > len(data):
            raise DecodeError("encoded field truncated")
        fields.append(bytes(data[offset : offset + length]))
        offset += length
    if offset != len(data):
        raise DecodeError("trailing bytes after encoded list")
    return fields


def associated_data(
    *,
    tenant: bytes,
    conversation: bytes,
    envelope: bytes,
    sender_device: bytes,
    recipient_device: bytes,
    sender_identity: bytes = b"",
    recipient_identity: bytes = b"",
) -> bytes:
    """The protocol's associated data: version, both identities, tenant, conversation,
    envelope id, sender and recipient device ids, in one fixed order."""
    return VERSION_BYTE + encode(
        sender_identity, recipient_identity, tenant, conversation, envelope,
        sender_device, recipient_device,
    )
