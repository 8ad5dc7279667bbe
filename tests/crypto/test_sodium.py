"""The primitives seam :mod:`crypto._sodium` on its own (Wycheproof lives in test_wycheproof).

Properties of ``../shared/research/security.md`` §1.A: P8 (BLAKE2b: ``hashlib`` equals
libsodium's ``crypto_generichash``, pinned to RFC 7693 / BLAKE2 reference known answers),
P5 (strict Ed25519), P1/P2 (X25519 of converted identity keys), P3 (AEAD nonces), plus the
seam's own contract: wrong lengths and wrong types raise :mod:`crypto.errors` before
libsodium sees them, and no error message carries the bytes it was given.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import _sodium
from crypto.errors import (
    AuthenticationError,
    CryptoError,
    InvalidInputError,
    InvalidKeyError,
    SignatureError,
)

# Distinctive "secret" bytes: if an error message echoed them, their hex would show.
KEY32 = bytes(range(0xA0, 0xC0))
NONCE24 = bytes(range(0x40, 0x58))
SEED = bytes(range(0x10, 0x30))
PK, SK = _sodium.ed25519_seed_keypair(SEED)
SIG = _sodium.ed25519_sign(SK, b"message")
X_PUBLIC = _sodium.x25519_public(KEY32)
SEALED = _sodium.aead_encrypt(KEY32, NONCE24, b"plaintext", b"ad")
IETF_SEALED = _sodium.ietf_aead_encrypt(KEY32, NONCE24[:12], b"plaintext", b"ad")
ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493

# Encodings of small-order Edwards points with elementary proofs of their order:
# y = 1 is the identity, (0, -1) has order 2, y = 0 gives x = ±sqrt(-1) of order 4.
SMALL_ORDER_ED25519 = {
    "identity": bytes([1]) + bytes(31),
    "order2": bytes([0xEC]) + b"\xff" * 30 + bytes([0x7F]),
    "order4": bytes(32),
    "order4_neg": bytes(31) + bytes([0x80]),
}

# name -> (function, arguments that succeed); positions are replaced one at a time below.
GOOD_CALLS: dict[str, tuple[Callable[..., Any], list[Any]]] = {
    "aead_encrypt": (_sodium.aead_encrypt, [KEY32, NONCE24, b"plaintext", b"ad"]),
    "aead_decrypt": (_sodium.aead_decrypt, [KEY32, NONCE24, SEALED, b"ad"]),
    "aead_open": (_sodium.aead_open, [KEY32, NONCE24, SEALED, b"ad"]),
    "ietf_aead_encrypt": (_sodium.ietf_aead_encrypt, [KEY32, NONCE24[:12], b"plaintext", b"ad"]),
    "ietf_aead_decrypt": (_sodium.ietf_aead_decrypt, [KEY32, NONCE24[:12], IETF_SEALED, b"ad"]),
    "x25519": (_sodium.x25519, [KEY32, X_PUBLIC]),
    "x25519_public": (_sodium.x25519_public, [KEY32]),
    "ed25519_seed_keypair": (_sodium.ed25519_seed_keypair, [SEED]),
    "ed25519_sign": (_sodium.ed25519_sign, [SK, b"message"]),
    "ed25519_verify": (_sodium.ed25519_verify, [PK, b"message", SIG]),
    "ed25519_verify_signed": (_sodium.ed25519_verify_signed, [PK, SIG + b"message"]),
    "ed25519_public_to_x25519": (_sodium.ed25519_public_to_x25519, [PK]),
    "ed25519_secret_to_x25519": (_sodium.ed25519_secret_to_x25519, [SK]),
    "blake2b": (_sodium.blake2b, [b"data", KEY32, 32]),
    "generichash": (_sodium.generichash, [b"data", KEY32, 32]),
    "equal": (_sodium.equal, [KEY32, KEY32]),
}

# (function name, argument position, wrong-length value, expected error)
WRONG_LENGTHS: list[tuple[str, int, Any, type[CryptoError]]] = [
    *[("aead_encrypt", 0, KEY32[:n], InvalidKeyError) for n in (0, 31)],
    ("aead_encrypt", 0, KEY32 + b"\x01", InvalidKeyError),
    *[("aead_encrypt", 1, NONCE24[:n], InvalidInputError) for n in (0, 12, 23)],
    ("aead_encrypt", 1, NONCE24 + b"\x01", InvalidInputError),
    ("aead_decrypt", 0, KEY32[:31], InvalidKeyError),
    *[("aead_decrypt", 1, NONCE24[:n], InvalidInputError) for n in (0, 12, 23)],
    *[("aead_decrypt", 2, SEALED[:n], InvalidInputError) for n in (0, 1, 15)],
    ("aead_open", 0, KEY32[:31], InvalidKeyError),
    *[("aead_open", 1, NONCE24[:n], InvalidInputError) for n in (0, 12, 23)],
    ("ietf_aead_encrypt", 0, KEY32 + b"\x01", InvalidKeyError),
    *[("ietf_aead_encrypt", 1, NONCE24[:n], InvalidInputError) for n in (0, 11, 13, 24)],
    ("ietf_aead_decrypt", 0, KEY32[:16], InvalidKeyError),
    ("ietf_aead_decrypt", 1, NONCE24, InvalidInputError),
    ("ietf_aead_decrypt", 2, IETF_SEALED[:15], InvalidInputError),
    *[("x25519", 0, KEY32[:n], InvalidKeyError) for n in (0, 31)],
    ("x25519", 0, KEY32 + KEY32, InvalidKeyError),
    *[("x25519", 1, X_PUBLIC[:n], InvalidKeyError) for n in (0, 31)],
    ("x25519", 1, X_PUBLIC + b"\x00", InvalidKeyError),
    ("x25519_public", 0, KEY32[:31], InvalidKeyError),
    ("ed25519_seed_keypair", 0, SEED[:31], InvalidKeyError),
    ("ed25519_seed_keypair", 0, SK, InvalidKeyError),
    *[("ed25519_sign", 0, SK[:n], InvalidKeyError) for n in (0, 32, 63)],
    ("ed25519_sign", 0, SK + b"\x00", InvalidKeyError),
    *[("ed25519_verify", 0, PK[:n], InvalidKeyError) for n in (0, 31)],
    ("ed25519_verify", 0, SK, InvalidKeyError),
    *[("ed25519_verify", 2, SIG[:n], SignatureError) for n in (0, 32, 63)],
    ("ed25519_verify", 2, SIG + b"\x00", SignatureError),
    *[("ed25519_verify_signed", 0, PK[:n], InvalidKeyError) for n in (0, 31)],
    *[("ed25519_verify_signed", 1, SIG[:n], SignatureError) for n in (0, 63)],
    ("ed25519_public_to_x25519", 0, PK[:31], InvalidKeyError),
    ("ed25519_secret_to_x25519", 0, SK[:32], InvalidKeyError),
    ("blake2b", 1, KEY32 * 2 + b"\x00", InvalidKeyError),
    *[("blake2b", 2, size, InvalidInputError) for size in (0, 15, 65)],
    ("generichash", 1, KEY32 * 2 + b"\x00", InvalidKeyError),
    *[("generichash", 2, size, InvalidInputError) for size in (0, 15, 65)],
]

NOT_BYTES: list[Any] = [None, 7, 2.5, object(), "x" * 32, [300] * 32, [0.5] * 32]


def _call(name: str, position: int, value: Any) -> Any:
    function, args = GOOD_CALLS[name]
    args = list(args)
    args[position] = value
    return function(*args)


def _assert_no_secret(exc: BaseException, *given: Any) -> None:
    text = f"{exc} {exc!r} {exc.args!r}"
    for value in (KEY32, NONCE24, SEED, SK, PK, SIG, SEALED, *given):
        if isinstance(value, bytes | bytearray) and len(value) >= 8:
            assert bytes(value).hex() not in text
            assert repr(bytes(value)) not in text
            assert bytes(value)[:8].hex() not in text


class _Tripwire:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"libsodium {name} reached with arguments the wrapper must refuse")

    def __call__(self, *_args: object, **_kwargs: object) -> Any:
        raise AssertionError("a primitive was reached with arguments the wrapper must refuse")


@pytest.fixture
def no_libsodium(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every libsodium (and hashlib BLAKE2b) entry point of the seam a tripwire."""
    tripwire = _Tripwire()
    monkeypatch.setattr(_sodium, "lib", tripwire)
    for name in ("_aead_xenc", "_aead_xdec", "_aead_ienc", "_aead_idec", "_blake2b"):
        monkeypatch.setattr(_sodium, name, tripwire)


# --------------------------------------------------------------------------- P8 BLAKE2b

# RFC 7693 Appendix A (BLAKE2b-512 of "abc"), the unkeyed empty-input digest, and the
# first, second and last keyed entries of the BLAKE2 reference blake2b-kat.txt
# (key = 00..3f, input = the first n bytes of 00 01 02 ...). Each is checked against both
# hashlib's and libsodium's implementation.
BLAKE2B_512_KNOWN_ANSWERS = [
    (b"abc", b"", "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
                  "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923"),
    (b"", b"", "786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419"
               "d25e1031afee585313896444934eb04b903a685b1448b755d56f701afe9be2ce"),
    (b"", bytes(range(64)), "10ebb67700b1868efb4417987acf4690ae9d972fb7a590c2f02871799aaa4786"
                            "b5e996e8f0f4eb981fc214b005f42d2ff4233499391653df7aefcbc13fc51568"),
    (b"\x00", bytes(range(64)), "961f6dd1e4dd30f63901690c512e78e4b45e4742ed197c3c5e45c549fd25f2e4"
                                "187b0bc9fe30492b16b0d0bc4ef9b0f34c7003fac09a5ef1532e69430234cebd"),
    (bytes(range(255)), bytes(range(64)),
     "142709d62e28fcccd0af97fad0f8465b971e82201dc51070faa0372aa43e9248"
     "4be1c1e73ba10906d5d1853db6a4106e0a7bf9800d373d6dee2d46d62ef2a461"),
]


@pytest.mark.parametrize(
    ("data", "key", "expected"),
    BLAKE2B_512_KNOWN_ANSWERS,
    ids=["rfc7693-abc", "empty", "kat-keyed-0", "kat-keyed-1", "kat-keyed-255"],
)
def test_P8_blake2b_known_answers(data: bytes, key: bytes, expected: str) -> None:
    """P8: RFC 7693 / BLAKE2 reference answers, from hashlib and from libsodium alike."""
    assert hashlib.blake2b(data, key=key).hexdigest() == expected
    assert _sodium.blake2b(data, key, 64).hex() == expected
    assert _sodium.generichash(data, key, 64).hex() == expected


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=600), key=st.binary(max_size=64), size=st.integers(16, 64))
def test_P8_hashlib_blake2b_equals_libsodium_generichash(
    data: bytes, key: bytes, size: int
) -> None:
    """P8: _sodium.blake2b (hashlib) equals crypto_generichash for any data, key and size."""
    ours = _sodium.blake2b(data, key, size)
    assert len(ours) == size
    assert ours == _sodium.generichash(data, key, size)


def test_P8_blake2b_output_depends_on_size_and_key() -> None:
    """P8: the digest size and the key are parameters, not truncation/decoration."""
    assert _sodium.blake2b(b"data", b"", 32) != _sodium.blake2b(b"data", b"", 64)[:32]
    assert _sodium.blake2b(b"data", b"k", 32) != _sodium.blake2b(b"data", b"", 32)


# --------------------------------------------------------------------------- seam contract


@pytest.mark.parametrize("name", sorted(GOOD_CALLS))
def test_good_arguments_are_accepted(name: str) -> None:
    """The baseline calls used below succeed, so every rejection is caused by the one change."""
    function, args = GOOD_CALLS[name]
    function(*args)


@pytest.mark.usefixtures("no_libsodium")
@pytest.mark.parametrize(("name", "position", "value", "error"), WRONG_LENGTHS,
                         ids=[f"{n}-arg{p}-{len(v) if isinstance(v, bytes) else v}"
                              for n, p, v, _ in WRONG_LENGTHS])
def test_wrong_lengths_rejected_before_libsodium(
    name: str, position: int, value: Any, error: type[CryptoError]
) -> None:
    """Wrong key/nonce/signature/tag lengths raise the named crypto.errors class while every
    libsodium entry point is a tripwire, and the message does not echo the bytes."""
    with pytest.raises(error) as caught:
        _call(name, position, value)
    _assert_no_secret(caught.value, value)


@pytest.mark.parametrize("name", sorted(GOOD_CALLS))
def test_wrong_types_rejected_with_crypto_errors(name: str) -> None:
    """None, numbers, str, lists (also of out-of-range ints) and arbitrary objects in any
    argument raise a CryptoError — never TypeError, ValueError, OverflowError or a PyNaCl
    exception — and the message does not echo the other (secret) arguments."""
    _, args = GOOD_CALLS[name]
    for position in range(len(args)):
        for value in NOT_BYTES:
            with pytest.raises(CryptoError) as caught:
                _call(name, position, value)
            _assert_no_secret(caught.value)


@pytest.mark.parametrize("name", sorted(GOOD_CALLS))
def test_bytes_like_arguments_agree_with_bytes_or_are_refused(name: str) -> None:
    """bytearray/memoryview arguments either give exactly the bytes result or a CryptoError."""
    function, args = GOOD_CALLS[name]
    expected = function(*args)
    for position, value in enumerate(args):
        if not isinstance(value, bytes):
            continue
        for wrapped in (bytearray(value), memoryview(value)):
            try:
                result = _call(name, position, wrapped)
            except CryptoError:
                continue
            assert result == expected


@pytest.mark.usefixtures("no_libsodium")
@pytest.mark.parametrize("size", [0, 1, 15])
def test_aead_open_treats_a_too_short_ciphertext_as_a_miss(size: int) -> None:
    """Trial decryption: a ciphertext shorter than its tag is a miss (None), decided before
    libsodium, while wrong key and nonce lengths still raise (see WRONG_LENGTHS)."""
    assert _sodium.aead_open(KEY32, NONCE24, SEALED[:size], b"ad") is None


def test_aead_open_agrees_with_aead_decrypt() -> None:
    """aead_open returns the plaintext where aead_decrypt does, and None where it raises
    AuthenticationError (tampered body, other associated data, other key)."""
    assert _sodium.aead_open(KEY32, NONCE24, SEALED, b"ad") == b"plaintext"
    misses = [(KEY32, SEALED[:-1] + bytes([SEALED[-1] ^ 1]), b"ad"), (KEY32, SEALED, b"ae"),
              (bytes(32), SEALED, b"ad")]
    for key, sealed, ad in misses:
        assert _sodium.aead_open(key, NONCE24, sealed, ad) is None
        with pytest.raises(AuthenticationError):
            _sodium.aead_decrypt(key, NONCE24, sealed, ad)


def test_ed25519_verify_signed_agrees_with_ed25519_verify() -> None:
    """P5: the joined-buffer variant accepts and refuses exactly what ed25519_verify does."""
    _sodium.ed25519_verify_signed(PK, SIG + b"message")
    for signed in (SIG + b"messagf", SIG[:63] + bytes([SIG[63] ^ 1]) + b"message", SIG):
        with pytest.raises(SignatureError):
            _sodium.ed25519_verify_signed(PK, signed)
    for public in SMALL_ORDER_ED25519.values():
        with pytest.raises(SignatureError):
            _sodium.ed25519_verify_signed(public, public + bytes(32) + b"message")


def test_authentication_failures_carry_no_secret() -> None:
    """AEAD and signature failures name the failure, not the key, nonce, data or signature."""
    tampered = bytes([SEALED[0] ^ 1]) + SEALED[1:]
    with pytest.raises(AuthenticationError) as aead:
        _sodium.aead_decrypt(KEY32, NONCE24, tampered, b"ad")
    _assert_no_secret(aead.value, tampered, b"plaintext")
    with pytest.raises(SignatureError) as sig:
        _sodium.ed25519_verify(PK, b"another message", SIG)
    _assert_no_secret(sig.value)


# --------------------------------------------------------------------------- Ed25519


@settings(max_examples=40, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=300),
       flip=st.integers(0, 64 * 8 - 1))
def test_P5_ed25519_round_trip_and_tamper(seed: bytes, message: bytes, flip: int) -> None:
    """P5: sign/verify round-trips; signing is deterministic; any flipped signature bit or a
    changed message is refused with SignatureError."""
    public, secret = _sodium.ed25519_seed_keypair(seed)
    assert secret[32:] == public
    signature = _sodium.ed25519_sign(secret, message)
    assert len(signature) == 64
    assert _sodium.ed25519_sign(secret, message) == signature
    _sodium.ed25519_verify(public, message, signature)
    bad = bytearray(signature)
    bad[flip // 8] ^= 1 << (flip % 8)
    with pytest.raises(SignatureError):
        _sodium.ed25519_verify(public, message, bytes(bad))
    with pytest.raises(SignatureError):
        _sodium.ed25519_verify(public, message + b"\x00", signature)


@pytest.mark.parametrize("multiple", [1, 2, 15])
def test_P5_ed25519_non_canonical_s_rejected(multiple: int) -> None:
    """P5: S + k·L (the malleated twin of a valid signature) is refused."""
    signature = _sodium.ed25519_sign(SK, b"message")
    s_value = int.from_bytes(signature[32:], "little") + multiple * ED25519_ORDER
    assert s_value < 2**256
    malleated = signature[:32] + s_value.to_bytes(32, "little")
    with pytest.raises(SignatureError):
        _sodium.ed25519_verify(PK, b"message", malleated)


@pytest.mark.parametrize("point", sorted(SMALL_ORDER_ED25519))
def test_P5_ed25519_small_order_public_key_rejected(point: str) -> None:
    """P5/P2: a small-order public key verifies nothing — not even the 'verify anything'
    signature R = identity, S = 0 — and cannot be converted to an X25519 key."""
    public = SMALL_ORDER_ED25519[point]
    for signature in (SMALL_ORDER_ED25519["identity"] + bytes(32), public + bytes(32), SIG):
        with pytest.raises(SignatureError):
            _sodium.ed25519_verify(public, b"message", signature)
    with pytest.raises(InvalidKeyError):
        _sodium.ed25519_public_to_x25519(public)


@settings(max_examples=20, deadline=None)
@given(seed_a=st.binary(min_size=32, max_size=32), seed_b=st.binary(min_size=32, max_size=32))
def test_P1_ed25519_to_x25519_conversion_agrees_both_ways(seed_a: bytes, seed_b: bytes) -> None:
    """P1 (identity keys, security.md §6.16): the converted secret's public key equals the
    converted public key, and DH with converted keys agrees in both directions."""
    public_a, secret_a = _sodium.ed25519_seed_keypair(seed_a)
    public_b, secret_b = _sodium.ed25519_seed_keypair(seed_b)
    xsecret_a = _sodium.ed25519_secret_to_x25519(secret_a)
    xsecret_b = _sodium.ed25519_secret_to_x25519(secret_b)
    xpublic_a = _sodium.ed25519_public_to_x25519(public_a)
    xpublic_b = _sodium.ed25519_public_to_x25519(public_b)
    assert _sodium.x25519_public(xsecret_a) == xpublic_a
    assert _sodium.x25519_public(xsecret_b) == xpublic_b
    shared = _sodium.x25519(xsecret_a, xpublic_b)
    assert shared == _sodium.x25519(xsecret_b, xpublic_a)
    assert shared != bytes(32)


# --------------------------------------------------------------------------- randomness


def test_deterministic_random_is_deterministic_and_restored() -> None:
    """The vector-generation seam: same seed, same stream (also through key generation);
    another seed, another stream; os.urandom is back afterwards, even after an exception."""

    def draw() -> list[bytes]:
        return [_sodium.random_bytes(n) for n in (1, 24, 64, 100)] + [
            *_sodium.x25519_keypair(), *_sodium.ed25519_keypair(),
        ]

    assert _sodium.random_bytes is os.urandom
    with _sodium.deterministic_random(b"seed one"):
        first = draw()
    assert _sodium.random_bytes is os.urandom
    with _sodium.deterministic_random(b"seed one"):
        again = draw()
    with _sodium.deterministic_random(b"seed two"):
        other = draw()
    assert first == again
    assert all(a != b for a, b in zip(first[1:], other[1:], strict=True))
    assert [len(x) for x in first[:4]] == [1, 24, 64, 100]
    with pytest.raises(RuntimeError), _sodium.deterministic_random(b"seed one"):
        raise RuntimeError("boom")
    assert _sodium.random_bytes is os.urandom
    assert _sodium.random_bytes(32) != _sodium.random_bytes(32)


def test_P3_fresh_nonces_make_equal_plaintexts_differ() -> None:
    """P3 / security.md §6.3: 24-byte nonces from random_bytes never repeat in practice, and
    the same plaintext under the same key encrypts differently with each fresh nonce (with
    the same nonce it is identical: the nonce is the only source of the difference)."""
    key = _sodium.random_bytes(_sodium.KEY_BYTES)
    nonces = {_sodium.random_bytes(_sodium.XNONCE_BYTES) for _ in range(1000)}
    assert len(nonces) == 1000
    assert {len(n) for n in nonces} == {_sodium.XNONCE_BYTES}
    first, second = list(nonces)[:2]
    one = _sodium.aead_encrypt(key, first, b"same plaintext", b"ad")
    two = _sodium.aead_encrypt(key, second, b"same plaintext", b"ad")
    assert one != two
    assert _sodium.aead_encrypt(key, first, b"same plaintext", b"ad") == one
    assert _sodium.aead_decrypt(key, second, two, b"ad") == b"same plaintext"
