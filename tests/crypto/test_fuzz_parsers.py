"""Fuzzing every entry point that parses bytes from the wire or from storage.

Inputs: arbitrary bytes, bytes shaped like a message (right prefix, plausible length), and
single mutations of real messages (one byte XORed, truncated, extended) — plus a mutated
associated data for the real message. Properties:

* only :class:`crypto.errors.CryptoError` subclasses are ever raised (never TypeError,
  ValueError, IndexError, struct.error, msgspec errors ...): P38 (malformed input is a typed
  refusal, not a crash);
* a failed decrypt or inbound-session attempt leaves the serialized state byte-identical
  (``to_bytes()`` before == after): P26 / spec §3.5, security.md §6.2 (no mutation before
  authentication), P2 (garbage keys from the wire never advance state);
* a mutated message never opens: every byte of ratchet and group messages is authenticated.

The fixtures are built once under ``_sodium.deterministic_random`` so that hypothesis replays
see the very same keys and messages. Each target starts from a stored state
(``from_bytes``), so one bad example cannot leak into the next.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto import Device, Session, _sodium
from crypto.errors import CryptoError
from crypto.group import (
    InboundGroupSession,
    OutboundGroupSession,
    group_message_index,
    group_message_session_id,
)
from crypto.seal import open_sealed, seal, sealed_recipients
from crypto.state import open_state, seal_state, state_version

AD = b"\x01tenant|conversation|envelope"
STORAGE_KEY = bytes(range(32))
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@dataclass(frozen=True)
class Target:
    """A stored receiver state and a genuine message it has not opened yet."""

    state: bytes
    message: bytes
    plaintext: bytes


@dataclass(frozen=True)
class Fixtures:
    ratchet: dict[str, Target]  # Session.from_bytes(state).decrypt(message, AD)
    device: Target  # Device.from_bytes(state).create_inbound_session(message, AD)
    group: dict[str, Target]  # InboundGroupSession.from_bytes(state).decrypt(message, AD)
    session_key: bytes
    sealed: Target  # open_sealed(message, b"bob", Session.from_bytes(state), AD)
    outbound_group: bytes
    stored: Target  # open_state(message, STORAGE_KEY, 7, kind="session", record=b"row")


def _conversation() -> tuple[dict[str, Target], Target]:
    alice = Device.generate(now=0.0, one_time_prekeys=2)
    bob = Device.generate(now=0.0, one_time_prekeys=2)
    bob_before = bob.to_bytes()
    a = alice.create_outbound_session(bob.bundle())
    bob_with_bundle_claimed = bob.to_bytes()
    m1, m1b = a.encrypt(b"m1", AD), a.encrypt(b"m1b", AD)
    b = bob.create_inbound_session(m1, AD).session
    targets = {"prekey-on-open-session": Target(b.to_bytes(), m1b, b"m1b")}
    r1, r1b, r1c = (b.encrypt(text, AD) for text in (b"r1", b"r1b", b"r1c"))
    a.decrypt(r1, AD)
    targets["current-chain"] = Target(a.to_bytes(), r1b, b"r1b")
    a.decrypt(r1c, AD)
    targets["skipped-key"] = Target(a.to_bytes(), r1b, b"r1b")
    b.decrypt(a.encrypt(b"m2", AD), AD)
    r2 = b.encrypt(b"r2", AD)
    targets["new-chain"] = Target(a.to_bytes(), r2, b"r2")
    a.decrypt(r2, AD)
    targets["older-chain"] = Target(a.to_bytes(), r1b, b"r1b")
    assert bob_before != bob_with_bundle_claimed
    return targets, Target(bob_with_bundle_claimed, m1, b"m1")


def _group() -> tuple[dict[str, Target], bytes, bytes]:
    outbound = OutboundGroupSession.create(now=0.0, roster_version=1)
    session_key = outbound.session_key()
    inbound = InboundGroupSession.from_session_key(session_key)
    messages = [outbound.encrypt(b"g%d" % i, AD) for i in range(6)]
    for index in (0, 2):
        inbound.decrypt(messages[index], AD)
    state = inbound.to_bytes()
    targets = {
        "skipped-index": Target(state, messages[1], b"g1"),
        "next-index": Target(state, messages[3], b"g3"),
        "ahead": Target(state, messages[5], b"g5"),
    }
    return targets, session_key, outbound.to_bytes()


def _sealed() -> Target:
    sender = Device.generate(now=0.0)
    sessions: dict[bytes, Session] = {}
    receiving: dict[bytes, Session] = {}
    for name in (b"bob", b"carol"):
        receiver = Device.generate(now=0.0, one_time_prekeys=1)
        outbound = sender.create_outbound_session(receiver.bundle())
        inbound = receiver.create_inbound_session(outbound.encrypt(b"hi", b"x"), b"x").session
        sessions[name], receiving[name] = outbound, inbound
    sealed = seal(b"envelope for two", [b"bob", b"carol"], AD, sessions=sessions)
    return Target(receiving[b"bob"].to_bytes(), sealed, b"envelope for two")


@cache
def fixtures() -> Fixtures:
    with _sodium.deterministic_random(b"unigate fuzz fixtures"):
        ratchet, device = _conversation()
        group, session_key, outbound_group = _group()
        state = ratchet["older-chain"].state
        stored = Target(seal_state(state, STORAGE_KEY, 7, kind="session", record=b"row"),
                        state, b"")
        return Fixtures(ratchet, device, group, session_key, _sealed(), outbound_group, stored)


def mutants(original: bytes) -> st.SearchStrategy[bytes]:
    """One XORed byte, a truncation, or extra bytes — always different from ``original``."""
    size = len(original)
    flip = st.tuples(st.integers(0, size - 1), st.integers(1, 255)).map(
        lambda t: original[:t[0]] + bytes([original[t[0]] ^ t[1]]) + original[t[0] + 1:])
    cut = st.integers(0, size - 1).map(lambda k: original[:k])
    grow = st.binary(min_size=1, max_size=32).map(lambda extra: original + extra)
    return st.one_of(flip, flip, cut, grow)


def shaped_like(original: bytes) -> st.SearchStrategy[bytes]:
    """The original's first ``k`` bytes followed by random bytes, about the original length."""
    return st.tuples(st.integers(0, min(len(original), 80)),
                     st.integers(max(0, len(original) - 8), len(original) + 8),
                     st.randoms(use_true_random=False)).map(
        lambda t: original[:t[0]] + t[2].randbytes(max(0, t[1] - t[0])))


def garbage(original: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=300), shaped_like(original), mutants(original))


def with_mutated_ad(original: bytes) -> st.SearchStrategy[tuple[bytes, bytes]]:
    """(garbage message, AD) or (the genuine message, a mutated AD)."""
    return st.one_of(st.tuples(garbage(original), st.just(AD)),
                     st.tuples(st.just(original), mutants(AD)))


def refuses(call: Callable[[], Any]) -> CryptoError:
    """Run ``call``; it must raise a CryptoError (any other exception fails the test)."""
    with pytest.raises(CryptoError) as caught:
        call()
    return caught.value


# --------------------------------------------------------------------------- Double Ratchet

RATCHET_TARGETS = ["prekey-on-open-session", "current-chain", "skipped-key", "new-chain",
                   "older-chain"]


def test_fixtures_are_genuine() -> None:
    """Every target's genuine message opens on its stored state (the fuzzing is not vacuous)."""
    f = fixtures()
    assert sorted(f.ratchet) == sorted(RATCHET_TARGETS)
    for target in f.ratchet.values():
        assert Session.from_bytes(target.state).decrypt(target.message, AD) == target.plaintext
    device = Device.from_bytes(f.device.state)
    assert device.create_inbound_session(f.device.message, AD).plaintext == f.device.plaintext
    for target in f.group.values():
        inbound = InboundGroupSession.from_bytes(target.state)
        assert inbound.decrypt(target.message, AD)[0] == target.plaintext
    bob = Session.from_bytes(f.sealed.state)
    assert open_sealed(f.sealed.message, b"bob", bob, AD) == f.sealed.plaintext
    assert open_state(f.stored.state, STORAGE_KEY, 7, kind="session", record=b"row") == (
        f.stored.message, 7)


@pytest.mark.parametrize("name", RATCHET_TARGETS)
@FUZZ
@given(data=st.data())
def test_P38_session_decrypt_refuses_garbage_without_state_change(
    name: str, data: st.DataObject
) -> None:
    """P38/P26: Session.decrypt on garbage, shaped or mutated messages raises only
    CryptoError and leaves to_bytes() byte-identical."""
    target = fixtures().ratchet[name]
    message = data.draw(garbage(target.message), label="message")
    session = Session.from_bytes(target.state)
    before = session.to_bytes()
    refuses(lambda: session.decrypt(message, AD))
    assert session.to_bytes() == before


@pytest.mark.parametrize("name", RATCHET_TARGETS)
@FUZZ
@given(data=st.data())
def test_P26_session_decrypt_refuses_mutated_ad_without_state_change(
    name: str, data: st.DataObject
) -> None:
    """P26/P12: the genuine message under any other associated data is refused; no change."""
    target = fixtures().ratchet[name]
    ad = data.draw(st.one_of(mutants(AD), st.binary(max_size=40)).filter(lambda v: v != AD))
    session = Session.from_bytes(target.state)
    before = session.to_bytes()
    refuses(lambda: session.decrypt(target.message, ad))
    assert session.to_bytes() == before


@pytest.mark.parametrize("name", RATCHET_TARGETS)
def test_P26_genuine_message_opens_after_many_refusals(name: str) -> None:
    """§6.2: after every single-byte flip of the message was refused on the same session
    object, the genuine message still opens, exactly once."""
    target = fixtures().ratchet[name]
    session = Session.from_bytes(target.state)
    for index in range(len(target.message)):
        flipped = bytearray(target.message)
        flipped[index] ^= 0x80
        refuses(lambda m=bytes(flipped): session.decrypt(m, AD))
    assert session.to_bytes() == target.state
    assert session.decrypt(target.message, AD) == target.plaintext
    refuses(lambda: session.decrypt(target.message, AD))


@FUZZ
@given(data=st.data())
def test_P2_inbound_session_refuses_garbage_without_device_change(data: st.DataObject) -> None:
    """P2/P38 and X3DH: Device.create_inbound_session on garbage or a mutated initial message
    (or the genuine one under other associated data) raises only CryptoError; the device
    (one-time prekey, replay cache) is unchanged."""
    target = fixtures().device
    message, ad = data.draw(with_mutated_ad(target.message), label="message, ad")
    device = Device.from_bytes(target.state)
    refuses(lambda: device.create_inbound_session(message, ad))
    assert device.to_bytes() == target.state


STATE_PARSERS: dict[str, tuple[Callable[[bytes], Any], Callable[[Fixtures], bytes]]] = {
    "Session": (Session.from_bytes, lambda f: f.ratchet["older-chain"].state),
    "Device": (Device.from_bytes, lambda f: f.device.state),
    "InboundGroupSession": (InboundGroupSession.from_bytes, lambda f: f.group["ahead"].state),
    "OutboundGroupSession": (OutboundGroupSession.from_bytes, lambda f: f.outbound_group),
}


@pytest.mark.parametrize("name", sorted(STATE_PARSERS))
@FUZZ
@given(data=st.data())
def test_stored_state_parsers_raise_only_crypto_errors(name: str, data: st.DataObject) -> None:
    """from_bytes of every stored state on garbage or mutated blobs: a state object or a
    CryptoError (DecodeError), never another exception (msgspec, UnicodeDecodeError ...)."""
    parse, original = STATE_PARSERS[name]
    blob = data.draw(garbage(original(fixtures())), label="blob")
    with contextlib.suppress(CryptoError):
        parse(blob)


# --------------------------------------------------------------------------- groups

GROUP_TARGETS = ["skipped-index", "next-index", "ahead"]


@pytest.mark.parametrize("name", GROUP_TARGETS)
@FUZZ
@given(data=st.data())
def test_P38_group_decrypt_refuses_garbage_without_state_change(
    name: str, data: st.DataObject
) -> None:
    """P38/P26 for groups: InboundGroupSession.decrypt on garbage, shaped or mutated messages
    (or the genuine message with other associated data) raises only CryptoError and leaves
    to_bytes() byte-identical."""
    target = fixtures().group[name]
    message, ad = data.draw(with_mutated_ad(target.message), label="message, ad")
    inbound = InboundGroupSession.from_bytes(target.state)
    before = inbound.to_bytes()
    refuses(lambda: inbound.decrypt(message, ad))
    assert inbound.to_bytes() == before


@FUZZ
@given(data=st.data())
def test_group_header_parsers_raise_only_crypto_errors(data: st.DataObject) -> None:
    """group_message_session_id / group_message_index on any bytes: a value or a CryptoError."""
    message = data.draw(garbage(fixtures().group["ahead"].message), label="message")
    for parse in (group_message_session_id, group_message_index):
        with contextlib.suppress(CryptoError):
            parse(message)


@FUZZ
@given(data=st.data())
def test_group_session_key_import_refuses_garbage(data: st.DataObject) -> None:
    """InboundGroupSession.from_session_key: every byte of a session key is signed, so any
    mutation (and any garbage) is refused with a CryptoError."""
    key = data.draw(garbage(fixtures().session_key), label="session key")
    refuses(lambda: InboundGroupSession.from_session_key(key))


# --------------------------------------------------------------------------- sealing


@FUZZ
@given(data=st.data())
def test_P38_open_sealed_refuses_garbage_without_state_change(data: st.DataObject) -> None:
    """P38/P26/P44 for sealing: open_sealed on garbage or a mutated sealed message (or under
    other associated data) raises only CryptoError with the pairwise session unchanged — or,
    when the mutation only touched another device's key message, returns exactly the genuine
    envelope."""
    target = fixtures().sealed
    sealed, ad = data.draw(with_mutated_ad(target.message), label="sealed, ad")
    session = Session.from_bytes(target.state)
    try:
        opened = open_sealed(sealed, b"bob", session, ad, expected=[b"bob", b"carol"])
    except CryptoError:
        assert session.to_bytes() == target.state
    else:
        assert opened == target.plaintext


@FUZZ
@given(data=st.data())
def test_sealed_recipients_raises_only_crypto_errors(data: st.DataObject) -> None:
    """sealed_recipients (routing, unauthenticated) on any bytes: a list or a CryptoError."""
    sealed = data.draw(garbage(fixtures().sealed.message), label="sealed")
    try:
        recipients = sealed_recipients(sealed)
    except CryptoError:
        return
    assert all(isinstance(device, bytes) for device in recipients)


# --------------------------------------------------------------------------- state at rest


@FUZZ
@given(data=st.data())
def test_P35_open_state_refuses_garbage(data: st.DataObject) -> None:
    """P35/P38: open_state / state_version on garbage or a mutated sealed state raise only
    CryptoError, and a mutated blob never opens (every byte is authenticated); the genuine
    blob under another kind or record is refused too."""
    blob = fixtures().stored.state
    mutated, kind, record = data.draw(st.one_of(
        st.tuples(garbage(blob), st.just("session"), st.just(b"row")),
        st.tuples(st.just(blob), st.sampled_from(["device", "group-inbound", "sessio"]),
                  st.just(b"row")),
        st.tuples(st.just(blob), st.just("session"), mutants(b"row")),
    ), label="blob, kind, record")
    with contextlib.suppress(CryptoError):
        state_version(mutated)
    refuses(lambda: open_state(mutated, STORAGE_KEY, 0, kind=kind, record=record))
