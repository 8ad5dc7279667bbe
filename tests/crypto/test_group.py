"""Group sessions (sender keys): crypto/group.py.

Security properties are named as in ../shared/research/security.md (P21, P22, P23, P25, P26,
P27, P30, P35, P43) plus the group-specific ones of docs/protocol.md, "Group sessions":
G1 the chain is forward-only, G2 only the holder of the signing key can produce a message
(a member that knows the chain key cannot forge), G3 the signature binds the associated data,
G4 the session key is signed, G5 rotation rules are data, G6 per-message cost does not grow
with the number of member devices.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import _sodium
from crypto.errors import (
    AuthenticationError,
    CryptoError,
    DecodeError,
    DuplicateMessageError,
    GroupSessionError,
    InvalidInputError,
    MessageGapTooLargeError,
    MissingMessageKeyError,
    SignatureError,
)
from crypto.group import (
    LABEL_GROUP_CHAIN,
    MAX_GROUP_SKIP,
    MAX_GROUP_SKIPPED_KEYS,
    MAX_INDEX,
    MESSAGE_OVERHEAD,
    InboundGroupSession,
    InboundGroupState,
    OutboundGroupSession,
    RotationPolicy,
    RotationReason,
    group_message_index,
    group_message_session_id,
)

AD = b"\x01tenant|conversation|envelope"


def pair() -> tuple[OutboundGroupSession, InboundGroupSession]:
    outbound = OutboundGroupSession.create(now=1000.0, roster_version=1)
    return outbound, InboundGroupSession.from_session_key(outbound.session_key())


def messages(outbound: OutboundGroupSession, count: int) -> list[bytes]:
    return [outbound.encrypt(b"message %d" % i, AD) for i in range(count)]


def test_round_trip_and_indices() -> None:
    outbound, inbound = pair()
    assert outbound.message_index == 0
    first = outbound.encrypt(b"hello", AD)
    second = outbound.encrypt(b"", AD)
    assert outbound.message_index == 2
    assert inbound.decrypt(first, AD) == (b"hello", 0)
    assert inbound.decrypt(second, AD) == (b"", 1)
    assert len(first) == 5 + MESSAGE_OVERHEAD
    assert group_message_session_id(first) == outbound.session_id == inbound.session_id
    assert group_message_index(second) == 1


def test_G1_chain_step_is_the_documented_blake2b_split() -> None:
    """G1: message key = last 32 bytes of BLAKE2b-512(key=chain key, LABEL); the next chain
    key is the first 32 bytes, so the chain only moves forward."""
    outbound, _ = pair()
    export = outbound.session_key()
    chain = export[37:69]
    message = outbound.encrypt(b"x", AD)
    step = hashlib.blake2b(LABEL_GROUP_CHAIN, key=chain, digest_size=64).digest()
    nonce, body = message[37:61], message[61:-64]
    assert _sodium.aead_decrypt(step[32:], nonce, body, AD) == b"x"
    assert outbound.session_key()[37:69] == step[:32]


def test_G1_late_session_key_cannot_read_earlier_messages() -> None:
    """G1: a member given the session key at index k cannot decrypt messages before k."""
    outbound, _ = pair()
    early = messages(outbound, 3)
    late_member = InboundGroupSession.from_session_key(outbound.session_key())
    assert late_member.first_known_index == 3
    for index, message in enumerate(early):
        with pytest.raises(MissingMessageKeyError) as raised:
            late_member.decrypt(message, AD)
        assert raised.value.index == index
    assert late_member.decrypt(outbound.encrypt(b"now", AD), AD) == (b"now", 3)


def test_G4_session_key_signature_checked() -> None:
    """G4: every byte of the session key is covered by its signature (or its framing)."""
    outbound, _ = pair()
    export = outbound.session_key()
    for position in range(len(export)):
        forged = bytearray(export)
        forged[position] ^= 0x01
        with pytest.raises((SignatureError, DecodeError)):
            InboundGroupSession.from_session_key(bytes(forged))
    with pytest.raises(DecodeError):
        InboundGroupSession.from_session_key(export[:-1])
    with pytest.raises(DecodeError):
        InboundGroupSession.from_session_key("not bytes")  # type: ignore[arg-type]


def test_P25_duplicate_rejected_and_state_unchanged() -> None:
    """P25: a second delivery never yields plaintext again and never changes the session."""
    outbound, inbound = pair()
    sent = messages(outbound, 3)
    inbound.decrypt(sent[2], AD)
    inbound.decrypt(sent[0], AD)
    for message in (sent[2], sent[0]):
        before = inbound.to_bytes()
        with pytest.raises(DuplicateMessageError):
            inbound.decrypt(message, AD)
        assert inbound.to_bytes() == before
    assert inbound.decrypt(sent[1], AD) == (b"message 1", 1)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_P21_P25_any_order_with_duplicates_decrypts_each_exactly_once(data: st.DataObject) -> None:
    """P21 + P25: any permutation of the sent messages, with re-deliveries mixed in,
    decrypts every message exactly once; each re-delivery raises DuplicateMessageError."""
    count = data.draw(st.integers(min_value=1, max_value=12))
    outbound, inbound = pair()
    sent = messages(outbound, count)
    order = data.draw(st.permutations(range(count)))
    repeats = data.draw(st.lists(st.sampled_from(range(count)), max_size=6))
    deliveries = list(order)
    for repeat in repeats:
        at = data.draw(st.integers(min_value=deliveries.index(repeat) + 1,
                                   max_value=len(deliveries)))
        deliveries.insert(at, repeat)
    seen: set[int] = set()
    for index in deliveries:
        if index in seen:
            with pytest.raises(DuplicateMessageError):
                inbound.decrypt(sent[index], AD)
        else:
            assert inbound.decrypt(sent[index], AD) == (b"message %d" % index, index)
            seen.add(index)
    assert seen == set(range(count))
    assert inbound.to_state().skipped == []


def test_P26_tampering_any_byte_fails_and_changes_nothing() -> None:
    """P26: flipping any byte of the message, or changing the AD, fails with a CryptoError
    and leaves the serialized session byte-identical; the genuine message still decrypts."""
    outbound, inbound = pair()
    skipped = outbound.encrypt(b"skipped", AD)
    message = outbound.encrypt(b"payload", AD)
    before = inbound.to_bytes()
    for position in range(len(message)):
        forged = bytearray(message)
        forged[position] ^= 0x80
        with pytest.raises(CryptoError):
            inbound.decrypt(bytes(forged), AD)
        assert inbound.to_bytes() == before
    for ad in (b"", AD + b"x", AD[:-1], b"\x02" + AD[1:]):
        with pytest.raises(SignatureError):
            inbound.decrypt(message, ad)
        assert inbound.to_bytes() == before
    assert inbound.decrypt(message, AD) == (b"payload", 1)
    assert inbound.decrypt(skipped, AD) == (b"skipped", 0)


def test_G2_member_with_chain_key_cannot_forge() -> None:
    """G2: a member knows every message key but not the signing key, so a message it builds
    (valid AEAD under the right key) is refused by the other members."""
    outbound, victim = pair()
    export = outbound.session_key()
    step = hashlib.blake2b(LABEL_GROUP_CHAIN, key=export[37:69], digest_size=64).digest()
    nonce = bytes(24)
    body = export[:37] + nonce + _sodium.aead_encrypt(step[32:], nonce, b"forged", AD)
    _, insider_secret = _sodium.ed25519_keypair()
    for signature in (bytes(64), _sodium.ed25519_sign(insider_secret, body + AD)):
        with pytest.raises(SignatureError):
            victim.decrypt(body + signature, AD)
    assert victim.decrypt(outbound.encrypt(b"real", AD), AD) == (b"real", 0)


def test_G3_signature_binds_associated_data() -> None:
    """G3: Poly1305 is not key-committing, so a member could find other AD for the same tag;
    the signature covers the AD (length-suffixed), so a genuine message moved to another
    conversation is refused even by a member who could rebuild the AEAD."""
    outbound, inbound = pair()
    message = outbound.encrypt(b"hi", AD)
    with pytest.raises(SignatureError):
        inbound.decrypt(message, AD + b"\x00")
    with pytest.raises(SignatureError):
        inbound.decrypt(message, AD[:-4])


def test_message_from_another_session_or_garbage() -> None:
    outbound, inbound = pair()
    other, _ = pair()
    with pytest.raises(GroupSessionError):
        inbound.decrypt(other.encrypt(b"x", AD), AD)
    for garbage in (b"", b"\x01" * (MESSAGE_OVERHEAD - 1), b"\x09" + b"\x00" * 200):
        with pytest.raises(DecodeError):
            inbound.decrypt(garbage, AD)
        with pytest.raises(DecodeError):
            group_message_session_id(garbage)
    with pytest.raises(InvalidInputError):
        inbound.decrypt("text", AD)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        inbound.decrypt(outbound.encrypt(b"x", AD), "ad")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        outbound.encrypt("text", AD)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        outbound.encrypt(b"x", None)  # type: ignore[arg-type]


def test_P22_max_skip_enforced_at_the_boundary() -> None:
    """P22: a jump of exactly MAX_GROUP_SKIP indices is accepted, one more is refused before
    any signature work and without changing the session."""
    outbound, inbound = pair()
    for _ in range(MAX_GROUP_SKIP):
        outbound.encrypt(b"", AD)
    at_limit = outbound.encrypt(b"at limit", AD)  # index MAX_GROUP_SKIP: gap MAX_GROUP_SKIP
    beyond = outbound.encrypt(b"beyond", AD)
    fresh = InboundGroupSession.from_bytes(inbound.to_bytes())
    before = fresh.to_bytes()
    with pytest.raises(MessageGapTooLargeError) as raised:
        fresh.decrypt(beyond, AD)
    assert (raised.value.gap, raised.value.limit) == (MAX_GROUP_SKIP + 1, MAX_GROUP_SKIP)
    assert fresh.to_bytes() == before
    assert inbound.decrypt(at_limit, AD) == (b"at limit", MAX_GROUP_SKIP)
    assert inbound.decrypt(beyond, AD)[1] == MAX_GROUP_SKIP + 1


def test_P23_P27_skipped_store_capped_oldest_evicted_used_keys_deleted() -> None:
    """P23: the skipped-key store never exceeds MAX_GROUP_SKIPPED_KEYS; the oldest (lowest
    index) keys go first and then raise MissingMessageKeyError. P27: a used key is deleted."""
    outbound, inbound = pair()
    sent = messages(outbound, 1302)
    inbound.decrypt(sent[600], AD)  # skips 0..599
    assert len(inbound.to_state().skipped) == 600
    inbound.decrypt(sent[1301], AD)  # skips 601..1300: 1300 in total, 300 evicted
    state = inbound.to_state()
    assert len(state.skipped) == MAX_GROUP_SKIPPED_KEYS
    assert state.skipped[0][0] == 300
    for evicted in (0, 299):
        with pytest.raises(MissingMessageKeyError):
            inbound.decrypt(sent[evicted], AD)
    assert inbound.decrypt(sent[300], AD)[1] == 300
    assert all(index != 300 for index, _ in inbound.to_state().skipped)
    with pytest.raises(DuplicateMessageError):
        inbound.decrypt(sent[300], AD)


def test_P23_one_big_jump_keeps_only_the_newest_keys() -> None:
    outbound, inbound = pair()
    sent = messages(outbound, MAX_GROUP_SKIPPED_KEYS + 3)
    inbound.decrypt(sent[-1], AD)  # skips MAX + 2 indices, keeps the newest MAX
    state = inbound.to_state()
    assert len(state.skipped) == MAX_GROUP_SKIPPED_KEYS
    assert [index for index, _ in state.skipped[:1]] == [2]
    for dropped in (0, 1):
        with pytest.raises(MissingMessageKeyError):
            inbound.decrypt(sent[dropped], AD)
    assert inbound.decrypt(sent[2], AD)[1] == 2


def test_P30_nonces_random_even_when_an_index_is_reused_after_rollback() -> None:
    """P30: every message carries a fresh 24-byte nonce; a rolled-back sender that reuses an
    index and its message key still never reuses a keystream."""
    outbound, _ = pair()
    saved = outbound.to_bytes()
    first = outbound.encrypt(b"same", AD)
    again = OutboundGroupSession.from_bytes(saved).encrypt(b"same", AD)
    assert group_message_index(first) == group_message_index(again) == 0
    assert first[37:61] != again[37:61]
    nonces = {m[37:61] for m in messages(outbound, 50)}
    assert len(nonces) == 50


def test_P35_serialization_lossless_mid_conversation() -> None:
    """P35: to_bytes/from_bytes is an identity for both sides, with skipped keys pending, and
    the restored sessions keep working together."""
    outbound, inbound = pair()
    sent = messages(outbound, 6)
    inbound.decrypt(sent[4], AD)
    inbound.decrypt(sent[1], AD)
    restored_in = InboundGroupSession.from_bytes(inbound.to_bytes())
    restored_out = OutboundGroupSession.from_bytes(outbound.to_bytes())
    assert restored_in.to_bytes() == inbound.to_bytes()
    assert restored_out.to_bytes() == outbound.to_bytes()
    assert restored_out.session_id == outbound.session_id
    assert InboundGroupSession.from_state(inbound.to_state()).to_state() == inbound.to_state()
    for index in (0, 2, 3, 5):
        assert restored_in.decrypt(sent[index], AD)[1] == index
    assert restored_in.decrypt(restored_out.encrypt(b"after", AD), AD) == (b"after", 6)


def test_P35_rollback_corollary_old_state_decrypts_again() -> None:
    """P35 corollary: restoring an OLDER inbound state lets a message decrypt a second time,
    which is why stored state is sealed with a monotonic version (crypto.state)."""
    outbound, inbound = pair()
    message = outbound.encrypt(b"once", AD)
    old = inbound.to_bytes()
    inbound.decrypt(message, AD)
    assert InboundGroupSession.from_bytes(old).decrypt(message, AD) == (b"once", 0)


@pytest.mark.parametrize(
    "change",
    [
        {"chain_key": b"\x00" * 31},
        {"session_id": b"\x00" * 33},
        {"floor": 5, "next_index": 4},
        {"first_index": 3, "floor": 2},
        {"skipped": [(1, b"k" * 32), (0, b"k" * 32)]},
        {"skipped": [(9, b"k" * 32)]},
        {"skipped": [(1, b"k" * 31)]},
        {"skipped": [(i, b"k" * 32) for i in range(MAX_GROUP_SKIPPED_KEYS + 1)],
         "next_index": MAX_GROUP_SKIPPED_KEYS + 2},
        {"next_index": MAX_INDEX + 2},
    ],
)
def test_stored_inbound_state_bounds_checked(change: dict[str, object]) -> None:
    """A decoded state is untrusted input: every collection and index is bounded."""
    fields: dict[str, object] = {
        "session_id": b"s" * 32, "first_index": 0, "floor": 0, "next_index": 5,
        "chain_key": b"c" * 32, "skipped": [(1, b"k" * 32), (3, b"k" * 32)],
    }
    InboundGroupSession.from_state(InboundGroupState(**fields))  # type: ignore[arg-type]
    fields.update(change)
    with pytest.raises(DecodeError):
        InboundGroupSession.from_state(InboundGroupState(**fields))  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200) | st.just(b"\x81\xa5\x00\x00\x00\x00\x80"))
def test_from_bytes_garbage_is_decode_error(data: bytes) -> None:
    """Garbage, including msgpack with invalid UTF-8 in a key, is DecodeError."""
    for kind in (InboundGroupSession, OutboundGroupSession):
        with pytest.raises(DecodeError):
            kind.from_bytes(data)


def test_outbound_state_bounds_checked() -> None:
    outbound, _ = pair()
    state = outbound.to_state()
    state.signing_seed = b"short"
    with pytest.raises(DecodeError):
        OutboundGroupSession.from_state(state)
    state = outbound.to_state()
    state.chain_key = b"short"
    with pytest.raises(DecodeError):
        OutboundGroupSession.from_state(state)


def test_exhausted_session_must_rotate() -> None:
    outbound, _ = pair()
    state = outbound.to_state()
    state.index = MAX_INDEX
    last = OutboundGroupSession.from_state(state)
    assert group_message_index(last.encrypt(b"last", AD)) == MAX_INDEX
    with pytest.raises(GroupSessionError):
        last.encrypt(b"one too many", AD)


def test_G5_rotation_rules_are_data() -> None:
    """G5: rotate when the roster changes, after max_messages, or after max_age seconds."""
    policy = RotationPolicy(max_messages=3, max_age=60.0)
    outbound = OutboundGroupSession.create(now=100.0, roster_version=7, policy=policy)
    assert not outbound.needs_rotation(100.0, 7)
    assert outbound.rotation_reason(100.0, 8) is RotationReason.ROSTER_CHANGED
    assert outbound.rotation_reason(159.9, 7) is None
    assert outbound.rotation_reason(160.0, 7) is RotationReason.AGE_LIMIT
    messages(outbound, 2)
    assert not outbound.needs_rotation(101.0, 7)
    messages(outbound, 1)
    assert outbound.rotation_reason(101.0, 7) is RotationReason.MESSAGE_LIMIT
    restored = OutboundGroupSession.from_bytes(outbound.to_bytes())
    assert restored.policy == policy
    assert restored.rotation_reason(101.0, 7) is RotationReason.MESSAGE_LIMIT
    default = OutboundGroupSession.create(now=0.0, roster_version=1)
    assert (default.policy.max_messages, default.policy.max_age) == (100, 7 * 24 * 3600.0)


def test_G6_one_message_serves_any_number_of_members() -> None:
    """G6: the sender's work and the message size do not depend on the member count: one
    encrypt output is decrypted by every member's inbound session."""
    outbound = OutboundGroupSession.create(now=0.0, roster_version=1)
    export = outbound.session_key()
    members = [InboundGroupSession.from_session_key(export) for _ in range(40)]
    message = outbound.encrypt(b"to everyone", AD)
    assert len(message) == len(b"to everyone") + MESSAGE_OVERHEAD
    assert {member.decrypt(message, AD) for member in members} == {(b"to everyone", 0)}


def test_P43_no_secret_in_repr_str_or_errors() -> None:
    """P43: repr/str of sessions and their states show public ids and counters only; error
    text never holds key bytes or plaintext."""
    outbound, inbound = pair()
    plaintext = b"very secret plaintext"
    message = outbound.encrypt(plaintext, AD)
    state_out, state_in = outbound.to_state(), inbound.to_state()
    secrets = [state_out.signing_seed, state_out.chain_key, state_in.chain_key,
               outbound.session_key()[37:69], plaintext]
    texts = [repr(outbound), str(outbound), repr(inbound), str(inbound), repr(state_out),
             str(state_out), repr(state_in), str(state_in)]
    inbound.decrypt(message, AD)
    for attempt in (lambda: inbound.decrypt(message, AD),
                    lambda: inbound.decrypt(message[:-1] + b"\x00", AD)):
        with pytest.raises(CryptoError) as raised:
            attempt()
        texts.append(str(raised.value))
        texts.append(repr(raised.value))
    assert list(state_out.__rich_repr__()) == []
    for text in texts:
        for secret in secrets:
            assert secret.hex() not in text
            assert repr(secret)[2:-1] not in text
    assert outbound.session_id[:8].hex() in repr(outbound)


def test_failed_aead_after_valid_signature_changes_nothing() -> None:
    """A message whose signature is genuine but whose ciphertext does not open under the
    derived key (an inconsistent sender) is refused and leaves the session unchanged."""
    outbound, inbound = pair()
    seed = outbound.to_state().signing_seed
    _, secret = _sodium.ed25519_seed_keypair(seed)
    nonce = bytes(24)
    body = outbound.session_key()[:37] + nonce + _sodium.aead_encrypt(b"w" * 32, nonce, b"x", AD)
    signature = _sodium.ed25519_sign(secret, body + AD + len(AD).to_bytes(4, "big"))
    before = inbound.to_bytes()
    with pytest.raises(AuthenticationError) as raised:
        inbound.decrypt(body + signature, AD)
    assert not isinstance(raised.value, SignatureError)
    assert inbound.to_bytes() == before
