"""Wycheproof vectors through our own wrappers in :mod:`crypto._sodium`.

Properties of ``../shared/research/security.md`` §1.A checked here: P1 (X25519), P2 at the
primitive level (low-order public keys never yield a shared secret), P3 (XChaCha20-Poly1305),
P4 (ChaCha20-Poly1305-IETF) and P5 (Ed25519 verify).

The JSON files are C2SP/wycheproof ``testvectors_v1`` (provenance in ``SOURCES.md`` next to
them) and are read in place through the ``wycheproof_root`` fixture, never copied into the
repository. Each file must hold exactly ``numberOfTests`` vectors and the inventory of
security.md §3, so a truncated or swapped file fails instead of passing on fewer vectors.

One test per (file, expectation) runs every vector of that class and lists the failing
``tcId`` values in its assertion message. A rejection counts only when it is the
:mod:`crypto.errors` class the test names: a stray ``TypeError``/``ValueError`` or a PyNaCl
exception is a failure (in production it would be a 500, not a refused message).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from crypto import _sodium
from crypto.errors import (
    AuthenticationError,
    CryptoError,
    InvalidInputError,
    InvalidKeyError,
    SignatureError,
)

X25519_FILE = "x25519_test.json"
XCHACHA_FILE = "xchacha20_poly1305_test.json"
CHACHA_FILE = "chacha20_poly1305_test.json"
ED25519_FILE = "ed25519_test.json"

# security.md §3: algorithm, numberOfTests and results per file (C2SP/wycheproof @ dac1dd47).
INVENTORY: dict[str, tuple[str, int, dict[str, int]]] = {
    X25519_FILE: ("XDH", 518, {"valid": 264, "acceptable": 254}),
    XCHACHA_FILE: ("XCHACHA20-POLY1305", 315, {"valid": 246, "invalid": 69}),
    CHACHA_FILE: ("CHACHA20-POLY1305", 325, {"valid": 256, "invalid": 69}),
    ED25519_FILE: ("EDDSA", 151, {"valid": 88, "invalid": 63}),
}

LOW_ORDER_FLAGS = frozenset({"LowOrderPublic", "ZeroSharedSecret"})

Vector = tuple[dict[str, Any], dict[str, Any]]


@cache
def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    return document


def _vectors(root: Path, name: str) -> Iterator[Vector]:
    for group in _load(root / name)["testGroups"]:
        for test in group["tests"]:
            yield group, test


def _hex(test: dict[str, Any], field: str) -> bytes:
    return bytes.fromhex(test[field])


def _outcome(function: Callable[..., Any], *args: Any) -> Any:
    """The result of ``function(*args)``, or the exception it raised (of any type)."""
    try:
        return function(*args)
    except Exception as exc:  # every type is recorded; the caller decides what is allowed
        return exc


def _expect_raises(outcome: Any, error: type[CryptoError], tc_id: int, failures: list[str]) -> None:
    if not isinstance(outcome, error):
        got = type(outcome).__name__ if isinstance(outcome, Exception) else "a result"
        failures.append(f"tcId {tc_id}: expected {error.__name__}, got {got}")


def _expect_value(outcome: Any, expected: Any, tc_id: int, failures: list[str]) -> None:
    if isinstance(outcome, Exception):
        failures.append(f"tcId {tc_id}: raised {type(outcome).__name__}")
    elif outcome != expected:
        failures.append(f"tcId {tc_id}: wrong output")


def _report(failures: list[str]) -> str:
    return f"{len(failures)} vector(s) failed: " + "; ".join(failures[:40])


@pytest.fixture
def no_libsodium(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace the AEAD entry points into libsodium by a tripwire for one test."""

    def tripwire(*_args: object) -> int:
        raise AssertionError("libsodium was called with arguments the wrapper should refuse")

    for name in ("_aead_xenc", "_aead_xdec", "_aead_ienc", "_aead_idec"):
        monkeypatch.setattr(_sodium, name, tripwire)


# --------------------------------------------------------------------------- inventory


@pytest.mark.parametrize("name", sorted(INVENTORY))
def test_file_is_complete(wycheproof_root: Path, name: str) -> None:
    """numberOfTests equals the vectors iterated and the inventoried count (no truncation)."""
    algorithm, total, results = INVENTORY[name]
    document = _load(wycheproof_root / name)
    vectors = list(_vectors(wycheproof_root, name))
    assert document["algorithm"] == algorithm
    assert document["numberOfTests"] == len(vectors) == total
    assert Counter(test["result"] for _, test in vectors) == Counter(results)
    tc_ids = [test["tcId"] for _, test in vectors]
    assert len(set(tc_ids)) == len(tc_ids), "duplicate tcId"


# --------------------------------------------------------------------------- X25519


def test_P1_x25519_valid_vectors_give_exact_shared_secret(wycheproof_root: Path) -> None:
    """P1: every `valid` X25519 vector yields exactly `shared` through _sodium.x25519."""
    failures: list[str] = []
    checked = 0
    for _, test in _vectors(wycheproof_root, X25519_FILE):
        if test["result"] != "valid":
            continue
        checked += 1
        outcome = _outcome(_sodium.x25519, _hex(test, "private"), _hex(test, "public"))
        _expect_value(outcome, _hex(test, "shared"), test["tcId"], failures)
    assert not failures, _report(failures)
    assert checked == 264


def test_P1_x25519_low_order_vectors_rejected(wycheproof_root: Path) -> None:
    """P1/P2: `acceptable` vectors flagged LowOrderPublic/ZeroSharedSecret (their shared
    secret is 32 zero bytes) are refused with InvalidKeyError — never an all-zero secret."""
    failures: list[str] = []
    checked = 0
    for _, test in _vectors(wycheproof_root, X25519_FILE):
        if not LOW_ORDER_FLAGS & set(test["flags"]):
            continue
        checked += 1
        assert test["result"] == "acceptable"
        assert _hex(test, "shared") == bytes(32)
        outcome = _outcome(_sodium.x25519, _hex(test, "private"), _hex(test, "public"))
        _expect_raises(outcome, InvalidKeyError, test["tcId"], failures)
    assert not failures, _report(failures)
    assert checked == 31


def test_P1_x25519_other_acceptable_vectors_match(wycheproof_root: Path) -> None:
    """P1: the other `acceptable` vectors are accepted with exactly `shared`.

    Their flags: Twist (points on the quadratic twist; X25519 is twist-secure),
    NonCanonicalPublic (u >= 2^255-19, reduced mod p as RFC 7748 §5 requires), public keys
    with the top bit set (masked), SmallPublicKey / SpecialPublicKey / EdgeCase* (arithmetic
    edge cases). All are contributory, so our policy is: accept and return the exact value
    (libsodium does); rejecting them is reserved for the low-order class above.
    """
    failures: list[str] = []
    checked = 0
    for _, test in _vectors(wycheproof_root, X25519_FILE):
        if test["result"] != "acceptable" or LOW_ORDER_FLAGS & set(test["flags"]):
            continue
        checked += 1
        outcome = _outcome(_sodium.x25519, _hex(test, "private"), _hex(test, "public"))
        _expect_value(outcome, _hex(test, "shared"), test["tcId"], failures)
    assert not failures, _report(failures)
    assert checked == 223


def test_P2_low_order_public_keys_rejected_for_any_secret(wycheproof_root: Path) -> None:
    """P2 (primitive level): every distinct low-order public key of the file, combined with
    fresh random secrets (as a key arriving from the wire would be), raises InvalidKeyError."""
    low_order = {
        test["public"]
        for _, test in _vectors(wycheproof_root, X25519_FILE)
        if LOW_ORDER_FLAGS & set(test["flags"])
    }
    assert len(low_order) == 14
    for public_hex in sorted(low_order):
        for _ in range(4):
            with pytest.raises(InvalidKeyError):
                _sodium.x25519(_sodium.random_bytes(32), bytes.fromhex(public_hex))


# --------------------------------------------------------------------------- AEAD

# file -> (encrypt, decrypt, our nonce size in bytes); P3 is XChaCha20, P4 ChaCha20-IETF.
AEAD = {
    XCHACHA_FILE: (_sodium.aead_encrypt, _sodium.aead_decrypt, _sodium.XNONCE_BYTES),
    CHACHA_FILE: (_sodium.ietf_aead_encrypt, _sodium.ietf_aead_decrypt, _sodium.IETF_NONCE_BYTES),
}
AEAD_COUNTS = {  # valid, invalid with a modified tag, invalid because of the nonce size
    XCHACHA_FILE: (246, 60, 9),
    CHACHA_FILE: (256, 60, 9),
}
aead_files = pytest.mark.parametrize("name", [XCHACHA_FILE, CHACHA_FILE], ids=["P3", "P4"])


def _fits_our_sizes(group: dict[str, Any], nonce_size: int) -> bool:
    return (group["ivSize"], group["keySize"], group["tagSize"]) == (8 * nonce_size, 256, 128)


@aead_files
def test_P3_P4_aead_valid_vectors_round_trip(wycheproof_root: Path, name: str) -> None:
    """P3/P4: for every `valid` vector, encrypt(msg, aad, iv, key) == ct||tag and
    decrypt(ct||tag, aad, iv, key) == msg."""
    encrypt, decrypt, nonce_size = AEAD[name]
    failures: list[str] = []
    checked = 0
    for group, test in _vectors(wycheproof_root, name):
        if test["result"] != "valid":
            continue
        checked += 1
        assert _fits_our_sizes(group, nonce_size)
        key, iv, aad, msg = (_hex(test, f) for f in ("key", "iv", "aad", "msg"))
        sealed = _hex(test, "ct") + _hex(test, "tag")
        _expect_value(_outcome(encrypt, key, iv, msg, aad), sealed, test["tcId"], failures)
        _expect_value(_outcome(decrypt, key, iv, sealed, aad), msg, test["tcId"], failures)
    assert not failures, _report(failures)
    assert checked == AEAD_COUNTS[name][0]


@aead_files
def test_P3_P4_aead_modified_tags_rejected(wycheproof_root: Path, name: str) -> None:
    """P3/P4: every `invalid` vector of our nonce/tag size (ModifiedTag) fails to open with
    AuthenticationError; no plaintext is returned."""
    _, decrypt, nonce_size = AEAD[name]
    failures: list[str] = []
    checked = 0
    for group, test in _vectors(wycheproof_root, name):
        if test["result"] != "invalid" or not _fits_our_sizes(group, nonce_size):
            continue
        checked += 1
        assert "ModifiedTag" in test["flags"]
        key, iv, aad = (_hex(test, f) for f in ("key", "iv", "aad"))
        sealed = _hex(test, "ct") + _hex(test, "tag")
        _expect_raises(_outcome(decrypt, key, iv, sealed, aad), AuthenticationError,
                       test["tcId"], failures)
    assert not failures, _report(failures)
    assert checked == AEAD_COUNTS[name][1]


@aead_files
@pytest.mark.usefixtures("no_libsodium")
def test_P3_P4_aead_wrong_nonce_sizes_rejected_before_libsodium(
    wycheproof_root: Path, name: str
) -> None:
    """P3/P4: vectors whose group has another nonce size than ours (InvalidNonceSize, 0 to
    256 bits; for XChaCha20 this includes the 96-bit IETF size and vice versa) are refused by
    both encrypt and decrypt with InvalidInputError, without calling libsodium."""
    encrypt, decrypt, nonce_size = AEAD[name]
    failures: list[str] = []
    checked = 0
    for group, test in _vectors(wycheproof_root, name):
        if _fits_our_sizes(group, nonce_size):
            continue
        checked += 1
        assert test["result"] == "invalid"
        assert group["ivSize"] != 8 * nonce_size
        key, iv, aad, msg = (_hex(test, f) for f in ("key", "iv", "aad", "msg"))
        sealed = _hex(test, "ct") + _hex(test, "tag")
        _expect_raises(_outcome(encrypt, key, iv, msg, aad), InvalidInputError,
                       test["tcId"], failures)
        _expect_raises(_outcome(decrypt, key, iv, sealed, aad), InvalidInputError,
                       test["tcId"], failures)
    assert not failures, _report(failures)
    assert checked == AEAD_COUNTS[name][2]


@aead_files
def test_P3_P4_aead_other_tag_sizes_rejected(wycheproof_root: Path, name: str) -> None:
    """P3/P4: a tag of another size than 16 bytes never opens. The files only hold 128-bit
    tag groups, so the valid vectors are re-cut: tags truncated to 0, 4, 8, 12 and 15 bytes
    and tags with 1 or 16 extra bytes. The wrapper takes ct||tag combined, so a short tag is
    seen as such only when the whole input is under 16 bytes (InvalidInputError, checked
    before libsodium); otherwise the last 16 bytes fail authentication (AuthenticationError)."""
    _, decrypt, _ = AEAD[name]
    failures: list[str] = []
    checked = 0
    for _, test in _vectors(wycheproof_root, name):
        if test["result"] != "valid":
            continue
        key, iv, aad, ct, tag = (_hex(test, f) for f in ("key", "iv", "aad", "ct", "tag"))
        for sealed in [ct + tag[:size] for size in (0, 4, 8, 12, 15)] + [
            ct + tag + b"\x00",
            ct + tag + tag,
        ]:
            checked += 1
            error = InvalidInputError if len(sealed) < _sodium.TAG_BYTES else AuthenticationError
            _expect_raises(_outcome(decrypt, key, iv, sealed, aad), error, test["tcId"], failures)
    assert not failures, _report(failures)
    assert checked == 7 * AEAD_COUNTS[name][0]


# --------------------------------------------------------------------------- Ed25519


def test_P5_ed25519_valid_signatures_verify(wycheproof_root: Path) -> None:
    """P5: every `valid` Ed25519 vector verifies, and the same signature over the message
    with one byte appended is refused with SignatureError (verify is not a no-op)."""
    failures: list[str] = []
    checked = 0
    for group, test in _vectors(wycheproof_root, ED25519_FILE):
        if test["result"] != "valid":
            continue
        checked += 1
        public = bytes.fromhex(group["publicKey"]["pk"])
        msg, sig = _hex(test, "msg"), _hex(test, "sig")
        _expect_value(_outcome(_sodium.ed25519_verify, public, msg, sig), None,
                      test["tcId"], failures)
        _expect_raises(_outcome(_sodium.ed25519_verify, public, msg + b"\x00", sig),
                       SignatureError, test["tcId"], failures)
    assert not failures, _report(failures)
    assert checked == 88


def test_P5_ed25519_invalid_signatures_rejected(wycheproof_root: Path) -> None:
    """P5: every `invalid` Ed25519 vector is refused with SignatureError: truncated, over-long
    and empty signatures (PyNaCl would raise ValueError), malleable S >= L, small-order or
    non-canonical R, modified bits, compressed signatures and the invalid known answer."""
    failures: list[str] = []
    flags: Counter[str] = Counter()
    for group, test in _vectors(wycheproof_root, ED25519_FILE):
        if test["result"] != "invalid":
            continue
        flags.update(test["flags"])
        public = bytes.fromhex(group["publicKey"]["pk"])
        outcome = _outcome(_sodium.ed25519_verify, public, _hex(test, "msg"), _hex(test, "sig"))
        _expect_raises(outcome, SignatureError, test["tcId"], failures)
    assert not failures, _report(failures)
    assert flags == Counter({
        "InvalidEncoding": 22, "InvalidSignature": 20, "SignatureMalleability": 8,
        "SignatureWithGarbage": 5, "CompressedSignature": 4, "TruncatedSignature": 3,
        "InvalidKtv": 1,
    })
