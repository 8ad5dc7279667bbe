"""Symmetric-key chains: one KDF_CK step per message key (sending and receiving alike).

A chain key moves only forward: ``KDF_CK(ck)`` gives 64 bytes, the next chain key (first
half) and the message key (second half). The session inlines :func:`advance` on its hot path
(one BLAKE2b call); :func:`skip` derives the keys of messages not yet received.
"""

from __future__ import annotations

import hashlib

from crypto.kdf import KDF_CK

_blake2b = hashlib.blake2b


def advance(chain_key: bytes) -> tuple[bytes, bytes]:
    """``(next chain key, message key)``: one KDF_CK step."""
    out = _blake2b(KDF_CK, key=chain_key, digest_size=64).digest()
    return out[:32], out[32:]


def skip(chain_key: bytes, count: int) -> tuple[bytes, list[bytes]]:
    """Advance ``count`` steps; return the chain key after them and their message keys."""
    keys: list[bytes] = []
    append = keys.append
    for _ in range(count):
        out = _blake2b(KDF_CK, key=chain_key, digest_size=64).digest()
        append(out[32:])
        chain_key = out[:32]
    return chain_key, keys
