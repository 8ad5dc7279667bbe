"""State at rest: crypto/state.py (seal_state / open_state) and the serialized group sessions.

Properties: P35 (serialization is lossless, and a restored older state is detected, never
silently reused), P41 (the unit stored is the whole session, sealed as one blob), P43 (no
secret or state byte in repr or error text).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import _sodium
from crypto.errors import (
    AuthenticationError,
    CryptoError,
    DecodeError,
    DuplicateMessageError,
    InvalidInputError,
    InvalidKeyError,
    StaleStateError,
)
from crypto.group import InboundGroupSession, OutboundGroupSession
from crypto.state import MAX_VERSION, MIN_BLOB_BYTES, open_state, seal_state, state_version

KEY = bytes(range(32))
AD = b"conversation-ad"
RECORD = b"tenant-1/device-a/group-7"


def test_round_trip_and_version() -> None:
    blob = seal_state(b"state bytes", KEY, 7, kind="session", record=RECORD)
    assert state_version(blob) == 7
    assert open_state(blob, KEY, 7, kind="session", record=RECORD) == (b"state bytes", 7)
    assert open_state(blob, KEY, 0, kind="session", record=RECORD) == (b"state bytes", 7)
    assert len(blob) == MIN_BLOB_BYTES + len(b"state bytes")
    empty = seal_state(b"", KEY, MAX_VERSION, kind="k")
    assert open_state(empty, KEY, MAX_VERSION, kind="k") == (b"", MAX_VERSION)


def test_P35_stale_version_refused_after_authentication() -> None:
    """P35: a genuine blob older than the newest version seen raises StaleStateError."""
    old = seal_state(b"old", KEY, 4, kind="session")
    with pytest.raises(StaleStateError) as raised:
        open_state(old, KEY, 5, kind="session")
    assert (raised.value.version, raised.value.newest) == (4, 5)


def test_P35_version_cannot_be_edited_upwards() -> None:
    """The version is in the associated data: editing the header to look newer fails."""
    blob = bytearray(seal_state(b"old", KEY, 4, kind="session"))
    blob[8] = 9
    with pytest.raises(AuthenticationError):
        open_state(bytes(blob), KEY, 5, kind="session")


def test_P35_group_sessions_lossless_through_sealed_storage_and_rollback_detected() -> None:
    """P35: a group session stored mid-conversation (skipped keys pending) comes back equal;
    restoring the previous write, which would decrypt a message twice, is refused."""
    outbound = OutboundGroupSession.create(now=0.0, roster_version=1)
    inbound = InboundGroupSession.from_session_key(outbound.session_key())
    sent = [outbound.encrypt(b"m%d" % i, AD) for i in range(4)]
    inbound.decrypt(sent[2], AD)
    stored_v1 = seal_state(inbound.to_bytes(), KEY, 1, kind="group-inbound", record=RECORD)
    assert inbound.decrypt(sent[0], AD) == (b"m0", 0)
    stored_v2 = seal_state(inbound.to_bytes(), KEY, 2, kind="group-inbound", record=RECORD)
    state_bytes, version = open_state(stored_v2, KEY, 2, kind="group-inbound", record=RECORD)
    restored = InboundGroupSession.from_bytes(state_bytes)
    assert version == 2
    assert restored.to_bytes() == inbound.to_bytes()
    with pytest.raises(DuplicateMessageError):
        restored.decrypt(sent[0], AD)
    assert restored.decrypt(sent[1], AD) == (b"m1", 1)
    with pytest.raises(StaleStateError):
        open_state(stored_v1, KEY, 2, kind="group-inbound", record=RECORD)

    out_blob = seal_state(outbound.to_bytes(), KEY, 9, kind="group-outbound", record=RECORD)
    again = OutboundGroupSession.from_bytes(
        open_state(out_blob, KEY, 9, kind="group-outbound", record=RECORD)[0])
    assert again.to_bytes() == outbound.to_bytes()
    assert restored.decrypt(again.encrypt(b"next", AD), AD) == (b"next", 4)


@pytest.mark.parametrize(
    ("key", "kind", "record"),
    [(bytes(32), "session", RECORD), (KEY, "device", RECORD), (KEY, "session", b"other")],
    ids=["key", "kind", "record"],
)
def test_wrong_key_kind_or_record_fails(key: bytes, kind: str, record: bytes) -> None:
    blob = seal_state(b"secret state", KEY, 3, kind="session", record=RECORD)
    with pytest.raises(AuthenticationError):
        open_state(blob, key, 0, kind=kind, record=record)


def test_every_byte_is_authenticated() -> None:
    blob = seal_state(b"secret state", KEY, 3, kind="session")
    for position in range(len(blob)):
        forged = bytearray(blob)
        forged[position] ^= 0x01
        with pytest.raises((AuthenticationError, DecodeError)):
            open_state(bytes(forged), KEY, 0, kind="session")


def test_fresh_nonce_per_seal() -> None:
    first = seal_state(b"same", KEY, 1, kind="session")
    second = seal_state(b"same", KEY, 1, kind="session")
    assert first != second
    assert open_state(first, KEY, 1, kind="session") == open_state(second, KEY, 1, kind="session")


def test_deterministic_under_seeded_randomness() -> None:
    with _sodium.deterministic_random(b"seed"):
        first = seal_state(b"same", KEY, 1, kind="session")
    with _sodium.deterministic_random(b"seed"):
        second = seal_state(b"same", KEY, 1, kind="session")
    assert first == second


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: seal_state(b"s", b"short", 1, kind="k"), InvalidKeyError),
        (lambda: seal_state(b"s", KEY, -1, kind="k"), InvalidInputError),
        (lambda: seal_state(b"s", KEY, MAX_VERSION + 1, kind="k"), InvalidInputError),
        (lambda: seal_state(b"s", KEY, 1, kind=""), InvalidInputError),
        (lambda: seal_state("s", KEY, 1, kind="k"), InvalidInputError),
        (lambda: open_state(b"\x01" * MIN_BLOB_BYTES, "key", 0, kind="k"), InvalidKeyError),
        (lambda: open_state(b"\x02" + bytes(MIN_BLOB_BYTES), KEY, 0, kind="k"), DecodeError),
        (lambda: open_state(bytearray(64), KEY, 0, kind="k"), DecodeError),
    ],
)
def test_bad_arguments_are_typed_errors(call: object, error: type[CryptoError]) -> None:
    with pytest.raises(error):
        call()  # type: ignore[operator]


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=120))
def test_garbage_blob_is_crypto_error(blob: bytes) -> None:
    with pytest.raises((DecodeError, AuthenticationError)):
        open_state(blob, KEY, 0, kind="session")


def test_P43_errors_hold_no_state_bytes() -> None:
    secret_state = b"chain key material 0123456789abcdef"
    blob = seal_state(secret_state, KEY, 2, kind="session")
    texts = []
    for attempt in (lambda: open_state(blob, KEY, 3, kind="session"),
                    lambda: open_state(blob, bytes(32), 0, kind="session")):
        with pytest.raises(CryptoError) as raised:
            attempt()
        texts += [str(raised.value), repr(raised.value)]
    for text in texts:
        assert secret_state.hex() not in text and "chain key" not in text
        assert KEY.hex() not in text and blob[9:33].hex() not in text
