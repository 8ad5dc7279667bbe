"""The serialized form of a ratchet session, and the checks a decoded one must pass.

``b""`` stands for "none": a responder has no receiving chain before the first message, and
after each DH step on receive the sending half-step waits for the next ``encrypt`` (the
"pending" sending ratchet), so the sending chain, the ratchet key pair and the next sending
header key are empty until then.
"""

from __future__ import annotations

import msgspec

from crypto.errors import DecodeError
from crypto.keys import RedactedStruct
from crypto.ratchet.header import MAX_INDEX, PREFIX_BYTES, PREFIX_PREKEY, X3DH_HEADER
from crypto.ratchet.skipped import ReceivingChainState

STATE_VERSION = 1
PREKEY_PREFIX_BYTES = PREFIX_BYTES + X3DH_HEADER.size


class SessionState(RedactedStruct, kw_only=True):
    """Lossless serialized form of a :class:`~crypto.ratchet.session.Session`."""

    version: int = STATE_VERSION
    initiator: bool
    local_identity: bytes
    remote_identity: bytes
    base_key: bytes
    x3dh_header: bytes  # the prekey-message prefix, until the peer's first reply opened
    root_key: bytes
    ratchet_secret: bytes
    ratchet_public: bytes
    remote_ratchet: bytes
    sending_chain: bytes
    sending_index: int
    previous_sending: int
    receiving_chain: bytes
    receiving_index: int
    header_send: bytes
    next_header_send: bytes
    header_receive: bytes
    next_header_receive: bytes
    step: int
    chains: list[ReceivingChainState] = msgspec.field(default_factory=list)


ENCODER = msgspec.msgpack.Encoder()
DECODER = msgspec.msgpack.Decoder(SessionState)


def decode_state(data: bytes) -> SessionState:
    try:
        return DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError, ValueError):
        raise DecodeError("not a serialized session") from None


def validate_state(state: SessionState) -> None:
    """Refuse a state that breaks a session invariant (sizes, caps, chain consistency)."""
    if not isinstance(state, SessionState) or state.version != STATE_VERSION:
        raise DecodeError("unsupported session state version")
    required = (state.local_identity, state.remote_identity, state.base_key, state.root_key,
                state.remote_ratchet, state.header_send, state.next_header_receive)
    if any(len(value) != 32 for value in required):
        raise DecodeError("session state holds a malformed key")
    sending = (state.sending_chain, state.ratchet_secret, state.ratchet_public,
               state.next_header_send)
    pending = not state.sending_chain
    if any(len(value) != (0 if pending else 32) for value in sending):
        raise DecodeError("session state holds a malformed sending ratchet")
    received = len(state.receiving_chain) == 32
    if (received != (len(state.header_receive) == 32)
            or (not received and (state.receiving_chain or state.header_receive))
            or (pending and not received)):
        raise DecodeError("session state holds a malformed receiving chain")
    if received != bool(state.chains) or (
        received and state.chains[-1].header_key != state.header_receive
    ):
        raise DecodeError("session state's current chain does not match its header key")
    if state.x3dh_header and (len(state.x3dh_header) != PREKEY_PREFIX_BYTES
                              or state.x3dh_header[:PREFIX_BYTES] != PREFIX_PREKEY):
        raise DecodeError("session state holds a malformed X3DH header")
    counters = (state.sending_index, state.previous_sending, state.receiving_index, state.step)
    if any(not 0 <= value <= MAX_INDEX + 1 for value in counters):
        raise DecodeError("session state holds a counter out of range")
