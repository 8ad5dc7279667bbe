"""Double Ratchet session (crypto.ratchet.session): round trips, out-of-order delivery, failed
decrypts that change nothing, nonces, the pending sending half-step, state round trips.

Limits (MAX_SKIP, caps, chains, trial order) are in test_ratchet_limits.py; the hypothesis
state machine in test_ratchet_properties.py.

Properties (../shared/research/security.md): P20 (round trip), P21 (out-of-order across DH
steps), P25 (duplicates), P26 (failed decrypt leaves the state byte-identical), P27 (keys
deleted after use), P30/P37 (nonces never repeat), P35 (lossless serialization; rollback
replays), P43 (no secret in repr).
"""

from __future__ import annotations

import random

import msgspec
import pytest

from crypto import Session, _sodium, kdf
from crypto.errors import (
    AuthenticationError,
    CryptoError,
    DecodeError,
    DuplicateMessageError,
    InvalidInputError,
)
from crypto.ratchet.header import MESSAGE_OVERHEAD, NONCE_BYTES, PREFIX_BYTES
from crypto.ratchet.skipped import ReceivingChainState
from crypto.ratchet.state import SessionState
from tests.crypto.sessions import session_pair

AD = b"\x01associated data"


def pair() -> tuple[Session, Session]:
    return session_pair(AD)


def flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x80
    return bytes(out)


def test_P20_round_trip_in_both_directions_and_fresh_ciphertexts() -> None:
    """P20 interleaved sends and receives recover every plaintext; equal plaintexts give
    different ciphertexts; the message is exactly MESSAGE_OVERHEAD longer."""
    a, b = pair()
    rng = random.Random(7)
    for i in range(60):
        sender, receiver = (a, b) if rng.random() < 0.5 else (b, a)
        text = f"message {i}".encode()
        message = sender.encrypt(text, AD)
        assert len(message) == MESSAGE_OVERHEAD + len(text)
        assert receiver.decrypt(message, AD) == text
    assert a.encrypt(b"same", AD) != a.encrypt(b"same", AD)
    assert b.decrypt(a.encrypt(b"", AD), AD) == b""


def test_P21_out_of_order_within_a_chain_and_across_dh_steps() -> None:
    """P21 messages of three chains of each side, delivered shuffled, each decrypt once."""
    a, b = pair()
    to_b: list[tuple[bytes, bytes]] = []
    for turn in range(3):
        to_b += [(a.encrypt(t := f"a{turn}-{i}".encode(), AD), t) for i in range(4)]
        reply = b.encrypt(f"b{turn}".encode(), AD)
        assert a.decrypt(reply, AD) == f"b{turn}".encode()
        if turn == 0:
            to_b.reverse()
    random.Random(3).shuffle(to_b)
    for message, text in to_b:
        assert b.decrypt(message, AD) == text
    for message, _ in to_b:
        with pytest.raises(CryptoError):
            b.decrypt(message, AD)


def test_P25_duplicate_never_gives_plaintext_twice_and_changes_nothing() -> None:
    """P25 re-delivering the last message is DuplicateMessageError, the state is unchanged
    and the session keeps working."""
    a, b = pair()
    message = a.encrypt(b"once", AD)
    assert b.decrypt(message, AD) == b"once"
    before = b.to_bytes()
    with pytest.raises(DuplicateMessageError):
        b.decrypt(message, AD)
    assert b.to_bytes() == before
    assert b.decrypt(a.encrypt(b"next", AD), AD) == b"next"


def _targets() -> dict[str, tuple[Session, bytes, bytes]]:
    """Receiver, genuine message, plaintext for each decrypt path."""
    targets: dict[str, tuple[Session, bytes, bytes]] = {}
    a, b = pair()
    targets["current-chain"] = (b, a.encrypt(b"current", AD), b"current")
    a, b = pair()
    first, second = a.encrypt(b"skipped", AD), a.encrypt(b"ahead", AD)
    b.decrypt(second, AD)
    targets["skipped-key"] = (b, first, b"skipped")
    a, b = pair()
    b.decrypt(a.encrypt(b"x", AD), AD)
    targets["new-chain"] = (a, b.encrypt(b"new chain", AD), b"new chain")
    a, b = pair()
    late = a.encrypt(b"older chain", AD)
    a.encrypt(b"seen", AD)
    b.decrypt(a.encrypt(b"seen2", AD), AD)
    a.decrypt(b.encrypt(b"step", AD), AD)
    b.decrypt(a.encrypt(b"next chain", AD), AD)
    targets["older-chain"] = (b, late, b"older chain")
    return targets


@pytest.mark.parametrize("path", ["current-chain", "skipped-key", "new-chain", "older-chain"])
def test_P26_any_tampered_byte_or_ad_changes_nothing(path: str) -> None:
    """P26 flipping any byte of the message (prefix, header nonce, sealed header, body
    nonce, body, tag) or of the AD raises a CryptoError and leaves to_bytes() identical; the
    genuine message then decrypts."""
    receiver, message, plaintext = _targets()[path]
    before = receiver.to_bytes()
    positions = set(range(0, len(message), 3)) | {0, 1, len(message) - 1}
    for index in sorted(positions):
        with pytest.raises(CryptoError):
            receiver.decrypt(flip(message, index), AD)
        assert receiver.to_bytes() == before
    for bad in (AD + b"\x00", AD[:-1], b"", flip(AD, 0)):
        with pytest.raises(AuthenticationError):
            receiver.decrypt(message, bad)
    for cut in (message[:-1], message[:PREFIX_BYTES + 80], message + b"\x00"):
        with pytest.raises(CryptoError):
            receiver.decrypt(cut, AD)
    assert receiver.to_bytes() == before
    assert receiver.decrypt(message, AD) == plaintext


def test_P26_moving_bytes_between_ad_and_message_fails() -> None:
    """P26/P12 the AD encoding is unambiguous: shifting bytes between the caller's AD and
    the message (or the header) never opens."""
    a, b = pair()
    message = a.encrypt(b"payload", AD)
    before = b.to_bytes()
    for bad_message, bad_ad in ((message + AD[:1], AD[1:]), (message[:-1], message[-1:] + AD)):
        with pytest.raises(CryptoError):
            b.decrypt(bad_message, bad_ad)
    assert b.to_bytes() == before


def test_wrong_argument_types_are_crypto_errors_and_change_nothing() -> None:
    """Non-bytes plaintext, message or AD raise InvalidInputError/DecodeError; no state
    moves (a failed encrypt does not advance the sending chain)."""
    a, b = pair()
    message = a.encrypt(b"ok", AD)
    a_before, b_before = a.to_bytes(), b.to_bytes()
    for bad in ("text", None, 5):
        with pytest.raises(InvalidInputError):
            a.encrypt(bad, AD)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            a.encrypt(b"x", bad)  # type: ignore[arg-type]
        with pytest.raises((InvalidInputError, DecodeError)):
            b.decrypt(bad, AD)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            b.decrypt(message, bad)  # type: ignore[arg-type]
    assert (a.to_bytes(), b.to_bytes()) == (a_before, b_before)
    assert b.decrypt(message, AD) == b"ok"


def test_P27_used_keys_are_gone_and_encrypt_keeps_no_message_key() -> None:
    """P27 after encrypt, the message key is nowhere in the sender's state; a skipped key is
    removed once its message decrypted; chain keys only move forward."""
    a, b = pair()
    b.decrypt(a.encrypt(b"activate", AD), AD)  # a was pending after pair()
    chain_before = a.to_state().sending_chain
    assert len(chain_before) == 32
    message_key = kdf.kdf_ck(chain_before)[32:]
    first = a.encrypt(b"first", AD)
    assert message_key not in a.to_bytes()
    assert chain_before not in a.to_bytes()
    b.decrypt(a.encrypt(b"second", AD), AD)
    assert b.to_state().chains[-1].keys
    b.decrypt(first, AD)
    assert all(not c.keys for c in b.to_state().chains)
    assert message_key not in b.to_bytes()


def test_P30_P37_nonces_never_repeat() -> None:
    """P30/P37 header and body nonces are fresh random 24-byte values: none repeats over a
    long run, nor after restoring an older state (no keystream reuse on rollback)."""
    a, b = pair()
    stale = a.to_bytes()
    nonces: list[bytes] = []
    start = PREFIX_BYTES
    body_nonce_at = start + 80
    for i in range(500):
        message = a.encrypt(b"x", AD)
        nonces += [message[start:start + NONCE_BYTES],
                   message[body_nonce_at:body_nonce_at + NONCE_BYTES]]
        if i % 50 == 0:
            b.decrypt(message, AD)
            a.decrypt(b.encrypt(b"turn", AD), AD)
    restored = Session.from_bytes(stale)
    again = restored.encrypt(b"x", AD)
    nonces += [again[start:start + NONCE_BYTES], again[body_nonce_at:body_nonce_at + NONCE_BYTES]]
    assert len(set(nonces)) == len(nonces)


def test_pending_sending_step_runs_in_the_next_encrypt() -> None:
    """After a DH step on receive the sending half-step waits: no ratchet key in the state;
    the next encrypt draws a fresh key pair, and the peer's DH step uses it."""
    a, b = pair()
    b.decrypt(a.encrypt(b"to b", AD), AD)
    a_ratchet = a.to_state().ratchet_public
    reply = b.encrypt(b"r1", AD)
    b.decrypt(a.encrypt(b"again", AD), AD)
    assert a.decrypt(reply, AD) == b"r1"
    pending = a.to_state()
    assert pending.sending_chain == pending.ratchet_secret == pending.next_header_send == b""
    a.encrypt(b"activate", AD)
    active = a.to_state()
    assert len(active.ratchet_public) == 32 and active.ratchet_public != a_ratchet
    assert active.header_send == pending.header_send


def test_failed_decrypt_draws_no_randomness(monkeypatch: pytest.MonkeyPatch) -> None:
    """A decrypt (even a DH step) never draws randomness: nothing random happens before
    authentication, so a forged message cannot drain or shape it."""
    a, b = pair()
    b.decrypt(a.encrypt(b"x", AD), AD)
    message = b.encrypt(b"step", AD)

    def refuse(n: int) -> bytes:
        raise AssertionError("decrypt drew randomness")

    monkeypatch.setattr(_sodium, "random_bytes", refuse)
    with pytest.raises(AuthenticationError):
        a.decrypt(flip(message, len(message) - 1), AD)
    assert a.decrypt(message, AD) == b"step"


def test_P35_serialization_round_trips_mid_conversation() -> None:
    """P35 to_bytes/from_bytes is lossless with skipped keys pending on several chains; the
    restored copy continues the conversation exactly like the original."""
    a, b = pair()
    held = [a.encrypt(b"held-1", AD), a.encrypt(b"held-2", AD)]
    b.decrypt(a.encrypt(b"seen", AD), AD)
    a.decrypt(b.encrypt(b"step", AD), AD)
    held.append(a.encrypt(b"held-3", AD))
    b.decrypt(a.encrypt(b"seen-2", AD), AD)
    data = b.to_bytes()
    copy = Session.from_bytes(data)
    assert copy.to_bytes() == data
    assert Session.from_state(msgspec.msgpack.decode(data, type=SessionState)).to_bytes() == data
    for message, text in zip(held, (b"held-1", b"held-2", b"held-3"), strict=True):
        assert copy.decrypt(message, AD) == text
        assert b.decrypt(message, AD) == text
    assert copy.to_bytes() == b.to_bytes()
    reply = copy.encrypt(b"from copy", AD)
    assert a.decrypt(reply, AD) == b"from copy"


def test_P35_restoring_an_older_state_replays_so_state_must_be_versioned() -> None:
    """P35 (corollary) restoring an older state lets a message decrypt twice: the reason
    stored states carry a monotonic version (crypto.state) and are never rolled back."""
    a, b = pair()
    old = b.to_bytes()
    message = a.encrypt(b"twice", AD)
    assert b.decrypt(message, AD) == b"twice"
    assert Session.from_bytes(old).decrypt(message, AD) == b"twice"


def _state_with(**changes: object) -> SessionState:
    a, b = pair()
    b.decrypt(a.encrypt(b"x", AD), AD)
    state = b.to_state()
    for name, value in changes.items():
        setattr(state, name, value)
    return state


@pytest.mark.parametrize("changes", [
    {"version": 2},
    {"root_key": bytes(31)},
    {"remote_identity": b""},
    {"sending_chain": bytes(32)},  # active sending chain without its ratchet key pair
    {"receiving_chain": b""},
    {"header_receive": bytes(32)},  # not the current chain's header key
    {"x3dh_header": b"\x01\x01short"},
    {"receiving_index": -1},
    {"sending_index": 1 << 40},
    {"chains": []},
    {"chains": [ReceivingChainState(header_key=bytes(32), step=0, floor=0)] * 6},
])
def test_malformed_states_are_refused(changes: dict[str, object]) -> None:
    """A decoded state that breaks a size, a cap or the chain invariants is a DecodeError."""
    with pytest.raises(DecodeError):
        Session.from_state(_state_with(**changes))


def test_skipped_key_caps_are_checked_when_loading() -> None:
    """A stored state with more skipped keys than the cap, or malformed ones, is refused."""
    state = _state_with()
    current = state.chains[-1]
    current.keys = {i: bytes(32) for i in range(1001)}
    with pytest.raises(DecodeError):
        Session.from_state(state)
    current.keys = {0: bytes(31)}
    with pytest.raises(DecodeError):
        Session.from_state(state)


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x81\xa5\x00\x00\x00\x00\x80", b"\x90"])
def test_garbage_session_bytes_are_decode_errors(data: bytes) -> None:
    """from_bytes turns every msgpack or validation failure into DecodeError."""
    with pytest.raises(DecodeError):
        Session.from_bytes(data)


def test_P43_session_repr_and_state_repr_hide_secrets() -> None:
    """P43 repr/str of a session and its state show ids and counters, no key bytes."""
    a, b = pair()
    state = a.to_state()
    shown = repr(a) + str(a) + repr(state) + str(state) + repr(state.chains) + repr(b._skipped)
    for secret in (state.root_key, state.receiving_chain, state.header_receive,
                   state.next_header_receive, state.ratchet_secret):
        if secret:
            assert secret.hex()[:16] not in shown
    assert "SessionState(<redacted>)" in repr(state)


def test_header_trial_helper_agrees_with_one_open_per_key() -> None:
    """_sodium.aead_open_first (the header trials in one call) returns what opening key by
    key in order would: the first key that opens, or None; wrong sizes are typed errors."""
    keys = tuple(bytes([i]) * 32 for i in range(4))
    nonce = bytes(range(24))
    sealed = _sodium.aead_encrypt(keys[2], nonce, b"header", b"ad")
    assert _sodium.aead_open_first(keys, nonce, sealed, b"ad") == (2, b"header")
    assert _sodium.aead_open_first(keys[:2], nonce, sealed, b"ad") is None
    assert _sodium.aead_open_first(keys, nonce, sealed, b"other ad") is None
    assert _sodium.aead_open_first((), nonce, sealed, b"ad") is None
    assert _sodium.aead_open_first(keys, nonce, sealed[:15], b"ad") is None
    with pytest.raises(CryptoError):
        _sodium.aead_open_first((bytes(31),), nonce, sealed, b"ad")
    with pytest.raises(CryptoError):
        _sodium.aead_open_first(keys, nonce[:23], sealed, b"ad")
    with pytest.raises(InvalidInputError):
        _sodium.aead_open_first(keys, nonce, "s" * 40, b"ad")  # type: ignore[arg-type]
