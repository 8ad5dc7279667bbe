"""The root chain: one Diffie-Hellman ratchet half-step.

``KDF_RK(rk, DH(own secret, remote public))`` gives the next root key, the chain key of the
new chain, and the header key of the chain after it (header-encryption variant: the header
key of a chain is always derived one step ahead, so the receiver can recognise the first
message of a new chain before it knows the new ratchet key).
"""

from __future__ import annotations

from crypto import _sodium
from crypto.kdf import kdf_rk


def ratchet_half_step(root_key: bytes, own_secret: bytes,
                      remote_public: bytes) -> tuple[bytes, bytes, bytes]:
    """``(next root key, chain key, next header key)``; low-order keys raise InvalidKeyError."""
    return kdf_rk(root_key, _sodium.x25519(own_secret, remote_public))


def full_step(root_key: bytes, own_secret: bytes,
              remote_public: bytes) -> tuple[bytes, bytes, bytes, bytes, bytes, bytes, bytes]:
    """A receiving half-step with the old key pair, a fresh key pair, a sending half-step.

    Returns ``(root key, receiving chain, next receiving header key, sending chain,
    next sending header key, new public, new secret)``; nothing is stored, so a caller can
    drop the result if the message then fails to authenticate.
    """
    root_key, receiving, next_receiving = ratchet_half_step(root_key, own_secret, remote_public)
    public, secret = _sodium.x25519_keypair()
    root_key, sending, next_sending = ratchet_half_step(root_key, secret, remote_public)
    return root_key, receiving, next_receiving, sending, next_sending, public, secret
