"""One exception tree for the crypto core.

Every public failure of ``crypto`` is a :class:`CryptoError`, named by its cause. Messages
carry counts and limits, never key bytes, plaintext or ciphertext.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base of every error the crypto core raises."""


class InvalidKeyError(CryptoError):
    """A key has the wrong length or is unusable (low order, non-canonical, all-zero DH)."""


class InvalidInputError(CryptoError):
    """An argument has the wrong type or length (nonce, tag, message, associated data)."""


class AuthenticationError(CryptoError):
    """An AEAD tag did not verify: wrong key, wrong associated data or tampered bytes."""


class SignatureError(AuthenticationError):
    """An Ed25519 signature did not verify."""


class DecodeError(CryptoError):
    """Bytes that should hold a message or state could not be decoded."""


class DuplicateMessageError(CryptoError):
    """The message was already decrypted once; plaintext is never returned twice."""


class MessageGapTooLargeError(CryptoError):
    """Accepting the message would skip more message keys than the limit allows."""

    def __init__(self, gap: int, limit: int) -> None:
        super().__init__(f"message gap {gap} exceeds the limit of {limit}")
        self.gap = gap
        self.limit = limit


class MissingMessageKeyError(CryptoError):
    """The key for an old message is gone (evicted, expired or its chain was dropped)."""

    def __init__(self, index: int) -> None:
        super().__init__(f"no message key kept for index {index}")
        self.index = index


class UnknownPrekeyError(CryptoError):
    """An initial message names a prekey this device does not hold (or no longer holds)."""


class IdentityMismatchError(CryptoError):
    """A message or bundle is bound to a different identity key than the session's."""


class ReplayedInitialMessageError(CryptoError):
    """An initial (prekey) message was already accepted once."""


class StaleStateError(CryptoError):
    """A stored state is older than the newest one seen: it must be re-keyed, not reused."""

    def __init__(self, version: int, newest: int) -> None:
        super().__init__(f"state version {version} is older than the newest seen ({newest})")
        self.version = version
        self.newest = newest


class RecipientSetError(CryptoError):
    """A sealed message does not match the expected recipient device list."""


class GroupSessionError(CryptoError):
    """A group message does not fit the group session (wrong session id, index replayed)."""


class SessionMismatchError(CryptoError):
    """A prekey message belongs to another session (a different base key) than this one."""


class MissingSessionError(RecipientSetError):
    """Listed devices have no pairwise session; ``missing`` names them (never the message)."""

    def __init__(self, missing: tuple[bytes, ...]) -> None:
        super().__init__(f"{len(missing)} listed device(s) have no session")
        self.missing = missing
