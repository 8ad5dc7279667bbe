"""Typed key classes with redacted ``repr``: one Ed25519 identity per device, X25519 key pairs.

Identity: a device has ONE Ed25519 key. It signs (prekeys, group messages) as is, and takes
part in X3DH through its X25519 (Montgomery) form, derived with libsodium's
``crypto_sign_ed25519_{pk,sk}_to_curve25519``. The conversion costs a few scalar operations,
so both forms are computed once, when the key object is built, and cached on it.

No ``repr``/``str`` here shows secret bytes: secrets print as ``<secret>``, public keys as a
short hex fingerprint (the first 8 bytes of the key, which is public anyway).
"""

from __future__ import annotations

from typing import Any

import msgspec

from crypto import _sodium
from crypto.errors import InvalidKeyError

PUBLIC_KEY_BYTES = 32


def fingerprint(public: bytes) -> str:
    """A short, public, printable name for a public key."""
    return bytes(public[:8]).hex()


class RedactedStruct(msgspec.Struct):
    """Base for serialized state that holds secrets: ``repr``/``str``/rich show no field."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<redacted>)"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return []


class IdentityPublicKey:
    """A device's public identity: the Ed25519 key and its cached X25519 form."""

    __slots__ = ("ed25519", "x25519")

    def __init__(self, ed25519: bytes) -> None:
        if not isinstance(ed25519, bytes) or len(ed25519) != PUBLIC_KEY_BYTES:
            raise InvalidKeyError("identity key must be 32 bytes")
        self.ed25519 = ed25519
        self.x25519 = _sodium.ed25519_public_to_x25519(ed25519)

    def verify(self, message: bytes, signature: bytes) -> None:
        """Strict Ed25519 verification; :class:`~crypto.errors.SignatureError` on failure."""
        _sodium.ed25519_verify(self.ed25519, message, signature)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IdentityPublicKey):
            return NotImplemented
        return _sodium.equal(self.ed25519, other.ed25519)

    def __hash__(self) -> int:
        return hash(self.ed25519)

    def __repr__(self) -> str:
        return f"IdentityPublicKey({fingerprint(self.ed25519)})"


class IdentityKeyPair:
    """A device's identity key pair (Ed25519) with its X25519 form cached for X3DH."""

    __slots__ = ("_secret", "_x25519_secret", "public")

    def __init__(self, secret: bytes) -> None:
        """Build from a 64-byte Ed25519 secret key (``seed || public``)."""
        if not isinstance(secret, bytes) or len(secret) != _sodium.ED25519_SECRET_BYTES:
            raise InvalidKeyError("identity secret key must be 64 bytes")
        public, checked = _sodium.ed25519_seed_keypair(secret[:32])
        if not _sodium.equal(checked, secret):
            raise InvalidKeyError("identity secret key does not match its public half")
        self._secret = secret
        self._x25519_secret = _sodium.ed25519_secret_to_x25519(secret)
        self.public = IdentityPublicKey(public)

    @classmethod
    def generate(cls) -> IdentityKeyPair:
        """A fresh identity from ``_sodium.random_bytes`` (seedable for test vectors)."""
        return cls(_sodium.ed25519_keypair()[1])

    @classmethod
    def from_seed(cls, seed: bytes) -> IdentityKeyPair:
        """The identity whose Ed25519 key pair derives from a 32-byte seed (RFC 8032 §5.1.5).

        For identities kept as a seed outside device state (the edge's configured key).
        """
        return cls(_sodium.ed25519_seed_keypair(seed)[1])

    @property
    def ed25519(self) -> bytes:
        """The public Ed25519 key (32 bytes) that names this device."""
        return self.public.ed25519

    def sign(self, message: bytes) -> bytes:
        """Detached Ed25519 signature."""
        return _sodium.ed25519_sign(self._secret, message)

    def dh(self, remote_x25519: bytes) -> bytes:
        """X25519 with the identity's Montgomery form (X3DH DH1 / DH2)."""
        return _sodium.x25519(self._x25519_secret, remote_x25519)

    def secret_bytes(self) -> bytes:
        """The 64-byte Ed25519 secret, for serialized device state only."""
        return self._secret

    def __repr__(self) -> str:
        return f"IdentityKeyPair(public={fingerprint(self.public.ed25519)}, secret=<secret>)"

    __str__ = __repr__


class X25519KeyPair:
    """An X25519 key pair (prekeys, X3DH ephemeral keys, ratchet keys)."""

    __slots__ = ("_secret", "public")

    def __init__(self, secret: bytes, public: bytes | None = None) -> None:
        if not isinstance(secret, bytes) or len(secret) != _sodium.X25519_BYTES:
            raise InvalidKeyError("X25519 secret key must be 32 bytes")
        derived = _sodium.x25519_public(secret)
        if public is not None and not _sodium.equal(derived, public):
            raise InvalidKeyError("X25519 public key does not match its secret")
        self._secret = secret
        self.public = derived

    @classmethod
    def generate(cls) -> X25519KeyPair:
        """A fresh key pair from ``_sodium.random_bytes`` (seedable for test vectors)."""
        public, secret = _sodium.x25519_keypair()
        pair = cls.__new__(cls)
        pair._secret = secret
        pair.public = public
        return pair

    @classmethod
    def from_trusted(cls, secret: bytes, public: bytes) -> X25519KeyPair:
        """Rebuild from stored state without recomputing the public key (about 14 µs);
        the state was authenticated when it was opened, its lengths checked when decoded."""
        pair = cls.__new__(cls)
        pair._secret = secret
        pair.public = public
        return pair

    def dh(self, remote_public: bytes) -> bytes:
        """X25519 shared secret; low-order remote points raise InvalidKeyError."""
        return _sodium.x25519(self._secret, remote_public)

    def secret_bytes(self) -> bytes:
        """The 32-byte secret, for serialized state only."""
        return self._secret

    def __repr__(self) -> str:
        return f"X25519KeyPair(public={fingerprint(self.public)}, secret=<secret>)"

    __str__ = __repr__
