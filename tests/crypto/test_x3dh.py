"""X3DH (crypto.x3dh via Device): shared secret layout, initial messages, replay, prekey
consumption only on success, identity checks.

Properties (../shared/research/security.md): P11 (both sides derive the same SK with and
without a one-time prekey, pinned to an independent recomputation), P12 (AD binds both
identities and the caller's AD), P13 (one-time prekey consumed only once the first message
decrypts), P14 (replayed initial messages refused, also on the last-resort / 3-DH path),
P15 (repeated X3DH header inside one session), P16 (exhaustion path), P17 (grace window),
P18 (identity mismatch surfaced), P26 (a failed inbound attempt leaves the device
byte-identical), P39 (initial header keys).
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest

from crypto import Device, _sodium, kdf
from crypto.encoding import associated_data
from crypto.errors import (
    AuthenticationError,
    CryptoError,
    DecodeError,
    IdentityMismatchError,
    InvalidInputError,
    ReplayedInitialMessageError,
    SessionMismatchError,
    UnknownPrekeyError,
)
from crypto.prekeys import NO_PREKEY, SIGNED_PREKEY_GRACE, PrekeyBundle
from crypto.ratchet.header import (
    KIND_MESSAGE,
    KIND_PREKEY,
    MESSAGE_OVERHEAD,
    PREKEY_OVERHEAD,
    X3DH_HEADER,
)

T0 = 1_700_000_000.0
AD_FIELDS = {"tenant": b"acme", "conversation": b"conv-1", "envelope": b"env-1",
             "sender_device": b"alice-1", "recipient_device": b"bob-1"}
AD = associated_data(**AD_FIELDS)


def devices(one_time: int = 2) -> tuple[Device, Device]:
    return Device.generate(now=T0), Device.generate(now=T0, one_time_prekeys=one_time)


def without_one_time(bundle: PrekeyBundle) -> PrekeyBundle:
    return msgspec.structs.replace(bundle, one_time_prekey_id=NO_PREKEY, one_time_prekey=b"")


def flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


@pytest.mark.parametrize("with_otk", [True, False])
def test_P11_P39_shared_secret_recomputed_independently(
    monkeypatch: pytest.MonkeyPatch, with_otk: bool
) -> None:
    """P11/P39 with scripted randomness, the initiator's root step and header keys equal an
    independent recomputation: DH1..DH4 with libsodium, SK = generichash(LABEL || 0xFF*32 ||
    DH1..DH4), then root/header keys from SK; the responder reaches the same root key."""
    alice, bob = devices()
    bundle = bob.bundle()
    if not with_otk:
        bundle = without_one_time(bundle)
    ephemeral, ratchet = bytes([0x11]) * 32, bytes([0x22]) * 32
    draws = [ephemeral, ratchet]
    monkeypatch.setattr(_sodium, "random_bytes", lambda n: draws.pop(0)[:n])
    session = alice.create_outbound_session(bundle)
    monkeypatch.undo()
    a_secret = _sodium.ed25519_secret_to_x25519(alice.to_state().identity_secret)
    dhs = [
        _sodium.x25519(a_secret, bundle.signed_prekey),
        _sodium.x25519(ephemeral, _sodium.ed25519_public_to_x25519(bundle.identity_key)),
        _sodium.x25519(ephemeral, bundle.signed_prekey),
    ]
    if with_otk:
        dhs.append(_sodium.x25519(ephemeral, bundle.one_time_prekey))
    secret = _sodium.generichash(b"unigate/v1/x3dh" + b"\xff" * 32 + b"".join(dhs))
    root_key = _sodium.generichash(b"unigate/v1/x3dh/root", secret)
    header_a = _sodium.generichash(b"unigate/v1/x3dh/header-a", secret)
    header_b = _sodium.generichash(b"unigate/v1/x3dh/header-b", secret)
    state = session.to_state()
    assert state.base_key == _sodium.x25519_public(ephemeral)
    assert (state.header_send, state.next_header_receive) == (header_a, header_b)
    dh = _sodium.x25519(ratchet, bundle.signed_prekey)
    step_root, sending, next_send = kdf.kdf_rk(root_key, dh)
    assert (state.root_key, state.sending_chain, state.next_header_send) == (
        step_root, sending, next_send)
    result = bob.create_inbound_session(session.encrypt(b"first", AD), AD)
    assert result.plaintext == b"first"
    b_state = result.session.to_state()
    assert b_state.root_key == kdf.kdf_rk(root_key, dh)[0]
    assert b_state.header_send == header_b  # P39 responder sends under NHK_B first
    assert b_state.header_receive == header_a


def test_P15_round_trip_and_repeated_x3dh_header_until_the_first_reply() -> None:
    """P15 every message before the reply is a prekey message; the responder opens the 2nd
    and 3rd on its existing session; after the reply the initiator sends plain messages."""
    alice, bob = devices()
    a = alice.create_outbound_session(bob.bundle())
    m1, m2, m3 = (a.encrypt(text, AD) for text in (b"one", b"two", b"three"))
    assert all(m[1] == KIND_PREKEY for m in (m1, m2, m3)) and not a.has_received
    assert len(m1) == PREKEY_OVERHEAD + 3
    b, plaintext = bob.create_inbound_session(m1, AD)
    assert plaintext == b"one" and b.matches(m2) and b.matches(m3)
    assert b.decrypt(m3, AD) == b"three"
    assert b.decrypt(m2, AD) == b"two"
    assert a.decrypt(b.encrypt(b"reply", AD), AD) == b"reply"
    assert a.has_received
    m4 = a.encrypt(b"four", AD)
    assert m4[1] == KIND_MESSAGE and len(m4) == MESSAGE_OVERHEAD + 4
    assert b.decrypt(m4, AD) == b"four"
    assert a.session_id == b.session_id
    assert (a.remote_identity, b.remote_identity) == (bob.identity_key, alice.identity_key)


def test_P13_P26_bad_initial_message_consumes_nothing() -> None:
    """P13/P26 a corrupted initial message fails, the device state is byte-identical and the
    one-time prekey still there; the genuine message then opens and consumes it."""
    alice, bob = devices(one_time=1)
    bundle = bob.bundle()
    message = alice.create_outbound_session(bundle).encrypt(b"hello", AD)
    before = bob.to_bytes()
    for index in range(0, len(message), 7):
        with pytest.raises(CryptoError):
            bob.create_inbound_session(flip(message, index), AD)
        assert bob.to_bytes() == before
    with pytest.raises(AuthenticationError):
        bob.create_inbound_session(message, AD + b"x")
    assert bob.to_bytes() == before
    bob.prekeys.one_time_prekey(bundle.one_time_prekey_id)
    assert bob.create_inbound_session(message, AD).plaintext == b"hello"
    with pytest.raises(UnknownPrekeyError):
        bob.prekeys.one_time_prekey(bundle.one_time_prekey_id)


@pytest.mark.parametrize("path", ["one-time", "last-resort", "no-prekey"])
def test_P14_replayed_initial_message_is_refused(path: str) -> None:
    """P14 a second delivery of an accepted initial message is refused and creates nothing,
    on the one-time, the last-resort and the 3-DH path alike."""
    alice, bob = devices(one_time=0 if path == "last-resort" else 1)
    bundle = bob.bundle()
    if path == "no-prekey":
        bundle = without_one_time(bundle)
    message = alice.create_outbound_session(bundle).encrypt(b"hello", AD)
    bob.create_inbound_session(message, AD)
    before = bob.to_bytes()
    with pytest.raises(ReplayedInitialMessageError):
        bob.create_inbound_session(message, AD)
    assert bob.to_bytes() == before


def test_P14_replay_claiming_another_sender_is_refused_by_base_key() -> None:
    """P14 a reused base key is refused before any key agreement, whoever claims to send."""
    alice, bob = devices(one_time=0)
    message = alice.create_outbound_session(bob.bundle()).encrypt(b"hello", AD)
    bob.create_inbound_session(message, AD)
    mallory = Device.generate(now=T0)
    forged = message[:2] + mallory.identity_key + message[34:]
    with pytest.raises(ReplayedInitialMessageError):
        bob.create_inbound_session(forged, AD)


def test_P14_one_time_replay_stays_refused_without_the_cache() -> None:
    """P14 the consumed one-time prekey refuses a replay even if the cache entry is gone."""
    alice, bob = devices(one_time=1)
    message = alice.create_outbound_session(bob.bundle()).encrypt(b"hello", AD)
    bob.create_inbound_session(message, AD)
    state = bob.to_state()
    state.prekeys.seen_base_keys = []
    with pytest.raises(UnknownPrekeyError):
        Device.from_state(state).create_inbound_session(message, AD)


def test_P16_three_dh_session_without_one_time_prekey() -> None:
    """P16 a bundle with no one-time prekey still yields a working session."""
    alice, bob = devices(one_time=0)
    a = alice.create_outbound_session(without_one_time(bob.bundle()))
    message = a.encrypt(b"hi", AD)
    _, _, _, otk_id = X3DH_HEADER.unpack_from(message, 2)
    assert otk_id == NO_PREKEY
    b, plaintext = bob.create_inbound_session(message, AD)
    assert plaintext == b"hi"
    assert a.decrypt(b.encrypt(b"back", AD), AD) == b"back"


def test_P17_message_to_the_previous_signed_prekey_within_and_after_grace() -> None:
    """P17 after a rotation an initial message made for the old signed prekey opens; after
    the grace window it is refused with UnknownPrekeyError."""
    alice, bob = devices(one_time=2)
    early = alice.create_outbound_session(bob.bundle()).encrypt(b"early", AD)
    late = alice.create_outbound_session(bob.bundle()).encrypt(b"late", AD)
    bob.rotate_signed_prekey(T0 + 10)
    assert bob.create_inbound_session(early, AD).plaintext == b"early"
    bob.maintain(T0 + 10 + SIGNED_PREKEY_GRACE)
    with pytest.raises(UnknownPrekeyError):
        bob.create_inbound_session(late, AD)


def test_P18_identity_mismatch_is_surfaced_and_consumes_nothing() -> None:
    """P18 an expected identity that differs from the bundle's or the message's raises
    IdentityMismatchError, and the responder's state is unchanged."""
    alice, bob = devices()
    stranger = Device.generate(now=T0)
    with pytest.raises(IdentityMismatchError):
        alice.create_outbound_session(bob.bundle(), expected_identity=stranger.identity_key)
    a = alice.create_outbound_session(bob.bundle(), expected_identity=bob.identity_key)
    message = a.encrypt(b"hi", AD)
    before = bob.to_bytes()
    with pytest.raises(IdentityMismatchError):
        bob.create_inbound_session(message, AD, expected_identity=stranger.identity_key)
    assert bob.to_bytes() == before
    b = bob.create_inbound_session(message, AD, expected_identity=alice.identity_key).session
    forged = message[:2] + stranger.identity_key + message[34:]
    assert not b.matches(forged)
    with pytest.raises(IdentityMismatchError):
        b.decrypt(forged, AD)


def test_prekey_message_of_another_session_is_refused_by_an_open_session() -> None:
    """A prekey message with another base key is SessionMismatchError on an open session."""
    alice, bob = devices()
    first = alice.create_outbound_session(bob.bundle()).encrypt(b"1", AD)
    second = alice.create_outbound_session(bob.bundle()).encrypt(b"2", AD)
    b = bob.create_inbound_session(first, AD).session
    assert not b.matches(second)
    before = b.to_bytes()
    with pytest.raises(SessionMismatchError):
        b.decrypt(second, AD)
    assert b.to_bytes() == before


@pytest.mark.parametrize("field", sorted(AD_FIELDS))
def test_P12_every_associated_data_field_is_bound(field: str) -> None:
    """P12 changing any one AD field (tenant, conversation, envelope, device ids) makes the
    first message and a later message fail to open."""
    alice, bob = devices()
    a = alice.create_outbound_session(bob.bundle())
    other = associated_data(**{**AD_FIELDS, field: AD_FIELDS[field] + b"x"})
    first = a.encrypt(b"first", AD)
    with pytest.raises(AuthenticationError):
        bob.create_inbound_session(first, other)
    b = bob.create_inbound_session(first, AD).session
    reply = b.encrypt(b"later", AD)
    with pytest.raises(AuthenticationError):
        a.decrypt(reply, other)
    assert a.decrypt(reply, AD) == b"later"


def test_P12_identities_are_bound_into_the_session_ad() -> None:
    """P12 a session built with another local identity cannot open the messages (the
    identities are part of every header and body AD)."""
    alice, bob = devices()
    a = alice.create_outbound_session(bob.bundle())
    b = bob.create_inbound_session(a.encrypt(b"hi", AD), AD).session
    reply = b.encrypt(b"x", AD)
    state = a.to_state()
    state.local_identity = Device.generate(now=T0).identity_key
    impostor = type(a).from_state(state)
    with pytest.raises(AuthenticationError):
        impostor.decrypt(reply, AD)


@pytest.mark.parametrize("make", [
    lambda m: m[:100], lambda m: b"\x02" + m[1:], lambda m: m[:1] + b"\x07" + m[2:], lambda m: b"",
])
def test_malformed_initial_messages_are_decode_errors(make: Callable[[bytes], bytes]) -> None:
    """Truncated, wrong-version or wrong-kind initial messages are DecodeError."""
    alice, bob = devices()
    message = alice.create_outbound_session(bob.bundle()).encrypt(b"hello", AD)
    with pytest.raises(DecodeError):
        bob.create_inbound_session(make(message), AD)


def test_non_prekey_message_is_not_an_initial_message() -> None:
    """A plain ratchet message handed to create_inbound_session is a DecodeError."""
    alice, bob = devices()
    a = alice.create_outbound_session(bob.bundle())
    b = bob.create_inbound_session(a.encrypt(b"hi", AD), AD).session
    a.decrypt(b.encrypt(b"r", AD), AD)
    with pytest.raises(DecodeError):
        bob.create_inbound_session(a.encrypt(b"plain", AD) + bytes(80), AD)


def test_self_sessions_are_refused() -> None:
    """A device cannot open a session with its own bundle or accept its own message."""
    alice = Device.generate(now=T0, one_time_prekeys=1)
    with pytest.raises(InvalidInputError):
        alice.create_outbound_session(alice.bundle())


def test_responder_session_never_stores_the_signed_prekey_secret() -> None:
    """After the first message the responder's session holds no ratchet secret until it
    sends (pending sending half-step), so the signed prekey secret is not in it."""
    alice, bob = devices()
    message = alice.create_outbound_session(bob.bundle()).encrypt(b"hi", AD)
    spk_secrets = {k.secret for k in bob.to_state().prekeys.signed}
    state = bob.create_inbound_session(message, AD).session.to_state()
    assert state.ratchet_secret == b"" and state.sending_chain == b""
    assert not any(secret in msgspec.msgpack.encode(state) for secret in spk_secrets)


def test_P43_inbound_result_repr_hides_the_plaintext() -> None:
    """P43 InboundResult's repr names the session and the plaintext length only."""
    alice, bob = devices()
    message = alice.create_outbound_session(bob.bundle()).encrypt(b"secret words", AD)
    result = bob.create_inbound_session(message, AD)
    assert "secret words" not in repr(result) and "12 bytes" in repr(result)
    assert "secret" not in str(result.session).lower().replace("session", "")
