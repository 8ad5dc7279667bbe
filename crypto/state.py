"""State at rest: serialized session state sealed with the edge's storage key.

Every state object serializes losslessly with ``to_bytes()`` (msgpack of its ``to_state()``
Struct). Before it reaches storage it is sealed here::

    blob = format (1, 0x01) || version (u64 BE) || nonce (24) || XChaCha20-Poly1305 ciphertext

under the 32-byte storage key, associated data
``VERSION_BYTE || encode(LABEL_STATE, kind, record, version as u64 BE)``. ``kind`` names what
is stored (``"session"``, ``"device"``, ``"group-outbound"``, ...) and ``record`` which row it
is (for example tenant, device and peer ids), so a blob moved to another row or kind fails to
open. ``version`` is a counter the owner increases on every write.

Rollback (P35): restoring an older state would let a message decrypt twice, or make a sender
reuse a message key. :func:`open_state` refuses a blob older than the newest version the
caller has seen (:class:`StaleStateError`): the caller then re-keys (archives the session,
starts a new one), it never reuses the stale state.
"""

from __future__ import annotations

import struct

from crypto import _sodium
from crypto.encoding import VERSION_BYTE, encode
from crypto.errors import DecodeError, InvalidInputError, InvalidKeyError, StaleStateError

LABEL_STATE = b"unigate/v1/state"
STATE_FORMAT = 1
MAX_VERSION = 0xFFFFFFFFFFFFFFFF

_HEADER = struct.Struct(">BQ")
_U64 = struct.Struct(">Q")
_NONCE_AT = _HEADER.size
_CIPHERTEXT_AT = _NONCE_AT + _sodium.XNONCE_BYTES
MIN_BLOB_BYTES = _CIPHERTEXT_AT + _sodium.TAG_BYTES


def _state_ad(kind: str, record: bytes, version: int) -> bytes:
    if not isinstance(kind, str) or not kind:
        raise InvalidInputError("state kind must be a non-empty string")
    return VERSION_BYTE + encode(LABEL_STATE, kind.encode(), record, _U64.pack(version))


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != _sodium.KEY_BYTES:
        raise InvalidKeyError("storage key must be 32 bytes")


def seal_state(state_bytes: bytes, key: bytes, version: int, *, kind: str,
               record: bytes = b"") -> bytes:
    """Seal serialized state for storage as ``version`` of (``kind``, ``record``)."""
    _check_key(key)
    if not isinstance(version, int) or not 0 <= version <= MAX_VERSION:
        raise InvalidInputError("state version must be 0..2**64-1")
    nonce = _sodium.random_bytes(_sodium.XNONCE_BYTES)
    ciphertext = _sodium.aead_encrypt(key, nonce, state_bytes, _state_ad(kind, record, version))
    return _HEADER.pack(STATE_FORMAT, version) + nonce + ciphertext


def state_version(blob: bytes) -> int:
    """The version a sealed blob claims (authenticated only by :func:`open_state`)."""
    if not isinstance(blob, bytes) or len(blob) < MIN_BLOB_BYTES:
        raise DecodeError("sealed state too short")
    form, version = _HEADER.unpack_from(blob)
    if form != STATE_FORMAT:
        raise DecodeError("unsupported sealed state format")
    return int(version)


def open_state(blob: bytes, key: bytes, newest_seen_version: int, *, kind: str,
               record: bytes = b"") -> tuple[bytes, int]:
    """Open a sealed state: ``(state_bytes, version)``.

    :class:`~crypto.errors.AuthenticationError` if the key, kind, record or any byte is
    wrong; :class:`~crypto.errors.StaleStateError` if it authenticates but its version is
    below ``newest_seen_version`` (a restored backup or a replayed write).
    """
    _check_key(key)
    version = state_version(blob)
    state_bytes = _sodium.aead_decrypt(key, blob[_NONCE_AT:_CIPHERTEXT_AT],
                                       blob[_CIPHERTEXT_AT:], _state_ad(kind, record, version))
    if version < newest_seen_version:
        raise StaleStateError(version, newest_seen_version)
    return state_bytes, version
