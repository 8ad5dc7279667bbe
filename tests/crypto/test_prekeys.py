"""Prekeys (crypto.prekeys): signed prekey and its signature, rotation with a grace window,
the one-time pool, the last-resort key, the replay cache, state round trips.

Properties (../shared/research/security.md): P9 (bundle signature checked, every bit),
P13 (one-time prekeys handed out once), P16 (exhaustion: last-resort key), P17 (signed-prekey
rotation with a grace window), P14 (replay cache bounded and scoped to its signed prekey),
P43 (no secret in repr).
"""

from __future__ import annotations

import msgspec
import pytest

from crypto import Device, _sodium
from crypto.errors import (
    CryptoError,
    DecodeError,
    InvalidInputError,
    InvalidKeyError,
    ReplayedInitialMessageError,
    SignatureError,
    UnknownPrekeyError,
)
from crypto.keys import IdentityKeyPair, X25519KeyPair
from crypto.prekeys import (
    MAX_ONE_TIME_PREKEYS,
    MAX_RETIRED_SIGNED_PREKEYS,
    NO_PREKEY,
    REPLAY_CACHE_SIZE,
    SIGNED_PREKEY_GRACE,
    SIGNED_PREKEY_LIFETIME,
    PrekeyBundle,
    PrekeyState,
    PrekeyStore,
    signed_prekey_payload,
    verify_bundle,
)

DAY = 24 * 3600.0
T0 = 1_700_000_000.0


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@pytest.fixture(scope="module")
def bundle() -> PrekeyBundle:
    return Device.generate(now=T0, one_time_prekeys=1).bundle()


def test_P9_valid_bundle_verifies_and_names_its_identity(bundle: PrekeyBundle) -> None:
    """P9 the untouched bundle is accepted; verification returns the signing identity."""
    assert verify_bundle(bundle).ed25519 == bundle.identity_key


@pytest.mark.parametrize("field", ["signed_prekey_signature", "signed_prekey", "identity_key"])
def test_P9_every_single_bit_flip_is_refused(bundle: PrekeyBundle, field: str) -> None:
    """P9 flipping any single bit of the signature, the signed prekey or the identity key
    makes verification fail with a CryptoError (512 signature bits, 256 of each key)."""
    value: bytes = getattr(bundle, field)
    for bit in range(len(value) * 8):
        forged = msgspec.structs.replace(bundle, **{field: flip(value, bit)})
        with pytest.raises((SignatureError, InvalidKeyError)):
            verify_bundle(forged)


def test_P9_signature_covers_id_and_is_domain_separated(bundle: PrekeyBundle) -> None:
    """P9 the signed bytes bind the key id; a plain signature over the key alone is refused."""
    moved = msgspec.structs.replace(bundle, signed_prekey_id=bundle.signed_prekey_id + 1)
    with pytest.raises(SignatureError):
        verify_bundle(moved)
    payload = signed_prekey_payload(bundle.identity_key, 1, bundle.signed_prekey)
    assert payload.startswith(b"\x01") and bundle.signed_prekey in payload
    identity = IdentityKeyPair.generate()
    naive = msgspec.structs.replace(
        bundle, identity_key=identity.ed25519,
        signed_prekey_signature=identity.sign(bundle.signed_prekey),
    )
    with pytest.raises(SignatureError):
        verify_bundle(naive)


@pytest.mark.parametrize("change", [
    {"signed_prekey_id": 0},
    {"signed_prekey_id": 1 << 32},
    {"one_time_prekey_id": -1},
    {"one_time_prekey_id": NO_PREKEY, "one_time_prekey": bytes(32)},
    {"one_time_prekey_id": 5, "one_time_prekey": b""},
    {"one_time_prekey": bytes(31)},
    {"signed_prekey": bytes(33)},
])
def test_malformed_bundles_are_refused_with_crypto_errors(
    bundle: PrekeyBundle, change: dict[str, object]
) -> None:
    """Malformed bundle fields are typed refusals, never stray exceptions."""
    with pytest.raises((InvalidInputError, InvalidKeyError)):
        verify_bundle(msgspec.structs.replace(bundle, **change))


def test_P13_each_one_time_prekey_is_handed_out_once_then_last_resort() -> None:
    """P13/P16 bundles carry distinct one-time prekeys; an empty pool gives the last-resort
    key (the same one each time) and never a repeat of a handed-out one-time key."""
    device = Device.generate(now=T0, one_time_prekeys=3)
    bundles = [device.bundle() for _ in range(5)]
    ids = [b.one_time_prekey_id for b in bundles]
    assert len(set(ids[:3])) == 3 and NO_PREKEY not in ids
    assert ids[3] == ids[4] and ids[3] not in ids[:3]
    assert len(device.prekeys.one_time_prekeys()) == 3  # handed out, not consumed


def test_one_time_pool_is_capped_and_ids_are_unique() -> None:
    """The private pool never exceeds MAX_ONE_TIME_PREKEYS; every prekey id is distinct."""
    device = Device.generate(now=T0)
    first = device.generate_one_time_prekeys(MAX_ONE_TIME_PREKEYS - 10)
    more = device.generate_one_time_prekeys(50)
    assert len(more) == 10 and device.generate_one_time_prekeys(1) == []
    ids = [i for i, _ in first + more] + [device.prekeys.current_signed_prekey_id]
    assert len(ids) == len(set(ids)) == MAX_ONE_TIME_PREKEYS + 1
    assert all(len(public) == 32 for _, public in first + more)


def test_P17_rotation_keeps_the_previous_signed_prekey_for_the_grace_window() -> None:
    """P17 after one rotation the old signed prekey still works; once the grace window has
    passed it is gone (UnknownPrekeyError)."""
    identity = IdentityKeyPair.generate()
    store = PrekeyStore.create(identity, T0)
    old = store.current_signed_prekey_id
    assert store.maintain(identity, T0 + SIGNED_PREKEY_LIFETIME - 1) is False
    assert store.maintain(identity, T0 + SIGNED_PREKEY_LIFETIME) is True
    new = store.current_signed_prekey_id
    assert new != old
    store.signed_prekey(old)
    store.expire(T0 + SIGNED_PREKEY_LIFETIME + SIGNED_PREKEY_GRACE - 1)
    store.signed_prekey(old)
    store.expire(T0 + SIGNED_PREKEY_LIFETIME + SIGNED_PREKEY_GRACE)
    with pytest.raises(UnknownPrekeyError):
        store.signed_prekey(old)
    store.signed_prekey(new)


def test_P17_rotations_in_quick_succession_keep_a_bounded_number() -> None:
    """P17 however often it rotates, at most MAX_RETIRED_SIGNED_PREKEYS old keys are kept."""
    identity = IdentityKeyPair.generate()
    store = PrekeyStore.create(identity, T0)
    ids = [store.current_signed_prekey_id]
    for i in range(6):
        store.rotate_signed_prekey(identity, T0 + i)
        ids.append(store.current_signed_prekey_id)
    kept = [i for i in ids if _holds_signed(store, i)]
    assert kept == ids[-(MAX_RETIRED_SIGNED_PREKEYS + 1):]


def _holds_signed(store: PrekeyStore, key_id: int) -> bool:
    try:
        store.signed_prekey(key_id)
    except UnknownPrekeyError:
        return False
    return True


def test_rotated_bundle_verifies_with_the_new_signature() -> None:
    """A bundle after rotation names the new signed prekey and its signature verifies."""
    device = Device.generate(now=T0)
    before = device.bundle()
    device.rotate_signed_prekey(T0 + DAY)
    after = device.bundle()
    assert after.signed_prekey_id != before.signed_prekey_id
    assert after.signed_prekey != before.signed_prekey
    verify_bundle(after)


def test_P14_replay_cache_is_bounded_oldest_first() -> None:
    """P14 the cache of accepted base keys keeps the newest REPLAY_CACHE_SIZE entries."""
    identity = IdentityKeyPair.generate()
    store = PrekeyStore.create(identity, T0)
    spk = store.current_signed_prekey_id
    keys = [i.to_bytes(32, "big") for i in range(REPLAY_CACHE_SIZE + 3)]
    for key in keys:
        store.commit_inbound(spk, NO_PREKEY, key)
    for key in keys[:3]:
        store.check_replay(key)  # fell out of the cache
    for key in (keys[3], keys[-1]):
        with pytest.raises(ReplayedInitialMessageError):
            store.check_replay(key)
    assert len(store.to_state().seen_base_keys) == REPLAY_CACHE_SIZE


def test_P14_replay_entries_leave_with_their_signed_prekey() -> None:
    """P14 once its signed prekey expired (messages to it are refused anyway), a base key's
    replay entry is dropped, keeping the cache small."""
    identity = IdentityKeyPair.generate()
    store = PrekeyStore.create(identity, T0)
    store.commit_inbound(store.current_signed_prekey_id, NO_PREKEY, bytes(32))
    store.rotate_signed_prekey(identity, T0 + 1)
    with pytest.raises(ReplayedInitialMessageError):
        store.check_replay(bytes(32))
    store.expire(T0 + 1 + SIGNED_PREKEY_GRACE)
    assert store.to_state().seen_base_keys == []


def test_commit_consumes_one_time_but_never_the_last_resort_key() -> None:
    """P13/P16 committing an inbound session removes its one-time prekey; the last-resort
    key stays usable."""
    device = Device.generate(now=T0, one_time_prekeys=1)
    otk = device.bundle()
    last_resort = device.bundle()
    store = device.prekeys
    spk = store.current_signed_prekey_id
    store.commit_inbound(spk, last_resort.one_time_prekey_id, b"\x01" * 32)
    store.one_time_prekey(last_resort.one_time_prekey_id)
    store.commit_inbound(spk, otk.one_time_prekey_id, b"\x02" * 32)
    with pytest.raises(UnknownPrekeyError):
        store.one_time_prekey(otk.one_time_prekey_id)
    assert store.one_time_prekeys() == []


def test_prekey_state_round_trips_and_snapshots_do_not_alias() -> None:
    """The prekey state round-trips through msgpack; a snapshot is not changed afterwards."""
    device = Device.generate(now=T0, one_time_prekeys=4)
    snapshot = device.prekeys.to_state()
    device.bundle()
    assert not any(k.handed_out for k in snapshot.one_time)
    data = msgspec.msgpack.encode(device.prekeys.to_state())
    restored = PrekeyStore(msgspec.msgpack.decode(data, type=PrekeyState))
    assert msgspec.msgpack.encode(restored.to_state()) == data
    assert Device.from_bytes(device.to_bytes()).to_bytes() == device.to_bytes()


@pytest.mark.parametrize("damage", ["no-signed", "bad-key", "bad-id", "too-many"])
def test_malformed_prekey_state_is_refused(damage: str) -> None:
    """A decoded prekey state that breaks a bound or a size is a DecodeError."""
    state = Device.generate(now=T0, one_time_prekeys=2).prekeys.to_state()
    if damage == "no-signed":
        state.signed = []
    elif damage == "bad-key":
        state.one_time[0].secret = bytes(31)
    elif damage == "bad-id":
        state.one_time[0].key_id = state.next_id
    else:
        state.one_time = state.one_time * (MAX_ONE_TIME_PREKEYS // 2 + 1)
    with pytest.raises(DecodeError):
        PrekeyStore(state)


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x81\xa5\x00\x00\x00\x00\x80", b"\x93\x01"])
def test_device_from_garbage_bytes_is_a_crypto_error(data: bytes) -> None:
    """Garbage device state is a CryptoError, never a msgspec or Unicode error."""
    with pytest.raises(CryptoError):
        Device.from_bytes(data)


def test_P43_no_secret_in_any_repr() -> None:
    """P43 repr/str of keys, stores, states and devices show no secret bytes."""
    device = Device.generate(now=T0, one_time_prekeys=2)
    pair = X25519KeyPair.generate()
    identity = IdentityKeyPair.generate()
    state = device.to_state()
    prekeys = state.prekeys
    secrets = [state.identity_secret, state.identity_secret[:32], pair.secret_bytes(),
               *(k.secret for k in prekeys.signed), *(k.secret for k in prekeys.one_time),
               prekeys.last_resort.secret, identity.secret_bytes()[:32]]
    shown = " ".join(repr(x) + str(x) for x in (
        device, pair, identity, state, state.prekeys, state.prekeys.signed[0],
        state.prekeys.one_time[0], device.prekeys, identity.public,
    ))
    for secret in secrets:
        assert secret.hex() not in shown and secret.hex()[:16] not in shown
        assert repr(secret) not in shown
    assert "IdentityKeyPair(public=" in repr(identity)


def test_key_classes_refuse_bad_material() -> None:
    """Keys with the wrong length or a mismatched public half are InvalidKeyError."""
    with pytest.raises(InvalidKeyError):
        IdentityKeyPair(bytes(63))
    identity = IdentityKeyPair.generate()
    with pytest.raises(InvalidKeyError):
        IdentityKeyPair(identity.secret_bytes()[:32] + bytes(32))
    with pytest.raises(InvalidKeyError):
        X25519KeyPair(bytes(31))
    with pytest.raises(InvalidKeyError):
        X25519KeyPair(bytes([1]) * 32, public=bytes(32))
    restored = IdentityKeyPair(identity.secret_bytes())
    assert restored.public == identity.public and hash(restored.public) == hash(identity.public)
    assert X25519KeyPair(pair_secret := bytes([5]) * 32).public == _sodium.x25519_public(
        pair_secret)
