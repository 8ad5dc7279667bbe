"""unigate's crypto core: pure, synchronous, libsodium underneath (see docs/protocol.md)."""

from crypto.device import Device, DeviceState
from crypto.encoding import PROTOCOL_VERSION, associated_data
from crypto.errors import (
    AuthenticationError,
    CryptoError,
    DecodeError,
    DuplicateMessageError,
    GroupSessionError,
    IdentityMismatchError,
    InvalidInputError,
    InvalidKeyError,
    MessageGapTooLargeError,
    MissingMessageKeyError,
    MissingSessionError,
    RecipientSetError,
    ReplayedInitialMessageError,
    SessionMismatchError,
    SignatureError,
    StaleStateError,
    UnknownPrekeyError,
)
from crypto.group import (
    InboundGroupSession,
    OutboundGroupSession,
    RotationPolicy,
    RotationReason,
)
from crypto.keys import IdentityKeyPair, IdentityPublicKey
from crypto.prekeys import PrekeyBundle
from crypto.ratchet.session import Session
from crypto.ratchet.skipped import (
    MAX_RECEIVING_CHAINS,
    MAX_SKIP,
    MAX_SKIPPED_AGE,
    MAX_SKIPPED_KEYS,
)
from crypto.ratchet.state import SessionState
from crypto.seal import open_sealed, seal
from crypto.state import open_state, seal_state
from crypto.x3dh import InboundResult

__all__ = [
    "MAX_RECEIVING_CHAINS",
    "MAX_SKIP",
    "MAX_SKIPPED_AGE",
    "MAX_SKIPPED_KEYS",
    "PROTOCOL_VERSION",
    "AuthenticationError",
    "CryptoError",
    "DecodeError",
    "Device",
    "DeviceState",
    "DuplicateMessageError",
    "GroupSessionError",
    "IdentityKeyPair",
    "IdentityMismatchError",
    "IdentityPublicKey",
    "InboundGroupSession",
    "InboundResult",
    "InvalidInputError",
    "InvalidKeyError",
    "MessageGapTooLargeError",
    "MissingMessageKeyError",
    "MissingSessionError",
    "OutboundGroupSession",
    "PrekeyBundle",
    "RecipientSetError",
    "ReplayedInitialMessageError",
    "RotationPolicy",
    "RotationReason",
    "Session",
    "SessionMismatchError",
    "SessionState",
    "SignatureError",
    "StaleStateError",
    "UnknownPrekeyError",
    "associated_data",
    "open_sealed",
    "open_state",
    "seal",
    "seal_state",
]
