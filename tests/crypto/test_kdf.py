"""Key derivation (crypto.kdf): every KDF recomputed with libsodium's own
``crypto_generichash`` from the formula in docs/protocol.md, label separation, and the
session's inlined copies of KDF_RK / KDF_CK agreeing with the module.

Properties (../shared/research/security.md): P29 (KDF domain separation and known answers),
P11 (X3DH SK layout: label, 32 x 0xFF, DH1..DH4), P39 (initial header keys from SK with their
own labels).
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import Device, _sodium, kdf
from crypto.ratchet import chain, root

KEYS = st.binary(min_size=32, max_size=32)
LABELS = {
    name: getattr(kdf, name)
    for name in dir(kdf)
    if (name.startswith(("LABEL_", "KDF_"))) and isinstance(getattr(kdf, name), bytes)
}


def generichash(data: bytes, key: bytes = b"", size: int = 32) -> bytes:
    return _sodium.generichash(data, key, size)


def test_P29_labels_are_distinct_and_none_prefixes_another_of_the_same_key() -> None:
    """P29 every label is unique; labels used under the same key are prefix-free."""
    assert len(set(LABELS.values())) == len(LABELS) >= 9
    keyed_by_root = [kdf.KDF_RK, kdf.KDF_RK_HEADER]
    keyed_by_sk = [kdf.LABEL_X3DH_ROOT, kdf.LABEL_X3DH_HEADER_A, kdf.LABEL_X3DH_HEADER_B]
    for group in (keyed_by_root, keyed_by_sk):
        for a, b in itertools.permutations(group, 2):
            assert not b.startswith(a)
    assert all(label.startswith(b"unigate/v1/") for label in LABELS.values())


@settings(max_examples=50, deadline=None)
@given(KEYS)
def test_P29_kdf_ck_is_one_64_byte_generichash_split_in_halves(chain_key: bytes) -> None:
    """P29 KDF_CK = crypto_generichash(64, KDF_CK, key=ck): next chain key || message key."""
    expected = generichash(kdf.KDF_CK, chain_key, 64)
    assert kdf.kdf_ck(chain_key) == expected
    assert chain.advance(chain_key) == (expected[:32], expected[32:])
    assert expected[:32] != expected[32:]


@settings(max_examples=50, deadline=None)
@given(KEYS, KEYS)
def test_P29_kdf_rk_matches_generichash_formula(root_key: bytes, dh: bytes) -> None:
    """P29 KDF_RK = generichash(64, KDF_RK||dh, rk) -> rk'||ck, generichash(32,
    KDF_RK_HEADER||dh, rk) -> next header key."""
    out = generichash(kdf.KDF_RK + dh, root_key, 64)
    header = generichash(kdf.KDF_RK_HEADER + dh, root_key, 32)
    assert kdf.kdf_rk(root_key, dh) == (out[:32], out[32:], header)
    assert len({out[:32], out[32:], header}) == 3


def test_P29_chain_skip_equals_repeated_advance() -> None:
    """P29 skipping n keys is n KDF_CK steps; keys come out in index order."""
    start = bytes(range(32))
    key, keys = chain.skip(start, 5)
    walk = start
    for expected in keys:
        walk, message_key = chain.advance(walk)
        assert message_key == expected
    assert walk == key
    assert chain.skip(start, 0) == (start, [])


def test_P29_root_half_step_is_dh_then_kdf_rk() -> None:
    """P29 the DH ratchet half-step is KDF_RK(rk, X25519(own secret, remote public))."""
    secret, other = bytes([7]) * 32, bytes([9]) * 32
    remote = _sodium.x25519_public(other)
    root_key = bytes(range(32, 64))
    expected = kdf.kdf_rk(root_key, _sodium.x25519(secret, remote))
    assert root.ratchet_half_step(root_key, secret, remote) == expected


@pytest.mark.parametrize("with_otk", [True, False])
def test_P11_x3dh_secret_layout(with_otk: bool) -> None:
    """P11 SK = generichash(32, LABEL_X3DH || 0xFF*32 || DH1 || DH2 || DH3 [|| DH4])."""
    dhs = [bytes([i]) * 32 for i in range(1, 5 if with_otk else 4)]
    expected = generichash(kdf.LABEL_X3DH + b"\xff" * 32 + b"".join(dhs))
    assert kdf.x3dh_secret(*dhs) == expected


def test_P39_initial_keys_from_sk_each_with_their_own_label() -> None:
    """P39 root key, header key A and header key B are keyed BLAKE2b of SK, distinct."""
    secret = bytes(range(100, 132))
    root_key, header_a, header_b = kdf.x3dh_keys(secret)
    assert root_key == generichash(kdf.LABEL_X3DH_ROOT, secret)
    assert header_a == generichash(kdf.LABEL_X3DH_HEADER_A, secret)
    assert header_b == generichash(kdf.LABEL_X3DH_HEADER_B, secret)
    assert len({root_key, header_a, header_b, secret}) == 4


def test_session_id_is_public_and_order_sensitive() -> None:
    """The session id hashes initiator identity, responder identity and base key, in order."""
    a, b, base = bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 32
    assert kdf.session_id(a, b, base) == generichash(kdf.LABEL_SESSION_ID + a + b + base)
    assert kdf.session_id(a, b, base) != kdf.session_id(b, a, base)


def test_P29_session_hot_path_kdfs_agree_with_the_kdf_module() -> None:
    """P29 the session inlines KDF_RK and KDF_CK; replaying one DH step and one message with
    the module functions from the pre-step state gives the very keys the session committed."""
    alice = Device.generate(now=0.0)
    bob = Device.generate(now=0.0)
    a = alice.create_outbound_session(bob.bundle())
    b = bob.create_inbound_session(a.encrypt(b"hi", b"ad"), b"ad").session
    before = b.to_state()  # pending sending ratchet: encrypt will do the sending half-step
    reply = b.encrypt(b"reply", b"ad")
    after = b.to_state()
    dh = _sodium.x25519(after.ratchet_secret, before.remote_ratchet)
    root_key, chain_key, next_header = kdf.kdf_rk(before.root_key, dh)
    assert (after.root_key, after.next_header_send) == (root_key, next_header)
    assert after.sending_chain == chain.advance(chain_key)[0]
    a_before = a.to_state()
    assert a.decrypt(reply, b"ad") == b"reply"
    a_after = a.to_state()
    dh = _sodium.x25519(a_before.ratchet_secret, after.ratchet_public)
    root_key, chain_key, next_header = kdf.kdf_rk(a_before.root_key, dh)
    assert (a_after.root_key, a_after.next_header_receive) == (root_key, next_header)
    assert a_after.receiving_chain == chain.advance(chain_key)[0]
    assert a_after.header_receive == a_before.next_header_receive
