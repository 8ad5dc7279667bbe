"""``crypto.keys.IdentityKeyPair.from_seed``: the identity of a 32-byte Ed25519 seed.

Pinned to RFC 8032 §7.1 TEST 1 (seed → public key → signature of the empty message), so the
derivation is checked against an independent source, not against libsodium alone.
"""

from __future__ import annotations

import pytest

from crypto import IdentityKeyPair, _sodium
from crypto.errors import CryptoError, InvalidKeyError

# RFC 8032 §7.1, TEST 1
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIG_EMPTY = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")


def test_from_seed_matches_rfc8032_test_1() -> None:
    pair = IdentityKeyPair.from_seed(RFC8032_SEED)
    assert pair.ed25519 == RFC8032_PUBLIC
    assert pair.sign(b"") == RFC8032_SIG_EMPTY
    pair.public.verify(b"", RFC8032_SIG_EMPTY)
    assert pair.secret_bytes() == RFC8032_SEED + RFC8032_PUBLIC


def test_from_seed_is_deterministic_and_round_trips_through_the_secret() -> None:
    seed = bytes(range(32))
    first, second = IdentityKeyPair.from_seed(seed), IdentityKeyPair.from_seed(seed)
    assert first.ed25519 == second.ed25519
    assert IdentityKeyPair(first.secret_bytes()).ed25519 == first.ed25519
    assert IdentityKeyPair.from_seed(bytes(32)).ed25519 != first.ed25519
    # the X25519 form used by X3DH agrees between two identities built from seeds
    other = IdentityKeyPair.from_seed(b"\x07" * 32)
    assert first.dh(_sodium.ed25519_public_to_x25519(other.ed25519)) == other.dh(
        _sodium.ed25519_public_to_x25519(first.ed25519))


@pytest.mark.parametrize("seed", [b"", b"\x01" * 31, b"\x01" * 33, b"\x01" * 64, "x" * 32, None])
def test_from_seed_refuses_anything_but_32_bytes(seed: object) -> None:
    with pytest.raises(InvalidKeyError) as caught:
        IdentityKeyPair.from_seed(seed)  # type: ignore[arg-type]
    assert isinstance(caught.value, CryptoError)
    assert "01" * 4 not in str(caught.value)


def test_from_seed_repr_hides_the_secret() -> None:
    pair = IdentityKeyPair.from_seed(RFC8032_SEED)
    assert RFC8032_SEED.hex() not in repr(pair)
    assert "<secret>" in repr(pair)
