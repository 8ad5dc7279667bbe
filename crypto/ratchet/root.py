"""The root chain: one Diffie-Hellman ratchet half-step.

``KDF_RK(rk, DH(own secret, remote public))`` gives the next root key, the chain key of the
new chain, and the header key of the chain after it (header-encryption variant: the header
key of a chain is always derived one step ahead, so the receiver can recognise the first
message of a new chain before it knows the new ratchet key).

X3DH uses :func:`ratchet_half_step` for the initiator's first sending chain; the session
inlines the same two BLAKE2b calls on its hot path (the tests pin them to this function).
"""

from __future__ import annotations

from crypto import _sodium
from crypto.kdf import kdf_rk


def ratchet_half_step(root_key: bytes, own_secret: bytes,
                      remote_public: bytes) -> tuple[bytes, bytes, bytes]:
    """``(next root key, chain key, next header key)``; low-order keys raise InvalidKeyError."""
    return kdf_rk(root_key, _sodium.x25519(own_secret, remote_public))

